//! api-gateway (SPEC §6, §8): the single entry point of the API. This module is its routing
//! layer; the process around it (the registry it hosts, health, metrics, registration,
//! shutdown) is mounted by `forten up` / `forten run`.
//!
//! - [`router`]: `ANY /api/**` proxied to the owning service, `GET /` the operator dashboard,
//!   `GET /openapi.json`; every other path is a problem+json 404. It has no route under
//!   `/registry` and no `/health*` or `/metrics`, so `Registry::router()` and
//!   `Observability::apply` combine with it.
//! - The routing table ([`GatewayConfig::routes`], SPEC §8 by default) maps path prefixes,
//!   segment-wise and longest first, to services: `/api/auth/**` and `/api/users/**` →
//!   auth-service; `/api/buildings/**`, `/api/doors/**`, `/api/access/**` → access-service;
//!   `/api/cameras/**`, `/api/alerts/**` → monitoring-service; `/api/analytics/**` →
//!   analytics-service.
//!
//! Per request under `/api`:
//! 1. a valid user token (`Authorization: Bearer`, [`UserAuth::verify`]) is required, except
//!    for `POST /api/auth/login`: 401 problem+json otherwise;
//! 2. a path with a `.` or `..` segment is refused (400), one no service owns is a 404;
//! 3. the body is buffered up to [`GatewayConfig::max_body_bytes`] (413 beyond): a retried
//!    request is sent again whole;
//! 4. the request goes out through the target's own `ServiceClient` (discovery, balancing,
//!    outlier ejection, circuit breaker, retries within a budget, tracing): method, path,
//!    query, body and the end-to-end headers unchanged — the user's `Authorization` too (the
//!    services check roles themselves; the clients carry no service token) — without
//!    hop-by-hop headers, with `x-forwarded-for` / `x-forwarded-host`, the correlation id
//!    and `traceparent` of the request, and a deadline (`x-request-deadline`) of the route's
//!    timeout which bounds every attempt and retry. GET, HEAD, PUT, DELETE and OPTIONS are
//!    retried by the client's policy; POST and PATCH only when nothing was sent (connection
//!    refused);
//! 5. the answer's status and end-to-end headers are relayed, and its body **streamed**;
//! 6. a target that cannot answer (no instance, circuit open, every attempt failed) is a 503
//!    problem+json naming the `service` and its `circuit` (`closed`, `open`, `half-open`),
//!    with `Retry-After` while the circuit is open; a timeout a 504. Never a 500 for a
//!    downstream failure.
//!
//! The correlation id is the request's `x-correlation-id` when acceptable, else a new one,
//! and it is echoed on the answer (by the telemetry layer when mounted behind
//! `Observability::apply`, by the gateway itself otherwise).

mod error;
mod proxy;
mod routes;
mod table;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use forten_shared::auth::UserAuth;
use forten_shared::client::{CircuitBreakerConfig, RetryPolicy};
use forten_shared::{DiscoveryClient, ServiceClient};

pub(crate) use self::error::GatewayError;
pub(crate) use self::table::{Route, RouteTable, default_routes};

/// The service's name (registration, traces, health, the client metrics' `service` label).
pub(crate) const SERVICE: &str = "api-gateway";
/// Default largest request body: 1 MiB.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default per-request timeout (retries included).
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway's routing settings.
#[derive(Debug, Clone)]
pub(crate) struct GatewayConfig {
    /// The routing table (SPEC §8 by default); per-route timeouts override
    /// [`request_timeout`](Self::request_timeout).
    pub(crate) routes: Vec<Route>,
    /// Largest request body accepted (buffered for retries); default 1 MiB.
    pub(crate) max_body_bytes: usize,
    /// Time a proxied request may take up to the answer's head, retries included; default
    /// 10 s.
    pub(crate) request_timeout: Duration,
    /// Retries of each target's client (the toolkit's default: 3, from 100 ms, with a budget).
    pub(crate) retry: RetryPolicy,
    /// Each target's circuit breaker (the toolkit's default: opens after 5 consecutive
    /// failures, probes after 60 s).
    pub(crate) breaker: CircuitBreakerConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            routes: default_routes(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
            breaker: CircuitBreakerConfig::default(),
        }
    }
}

impl GatewayConfig {
    /// Replaces the routing table.
    #[must_use]
    pub(crate) fn routes(mut self, routes: Vec<Route>) -> Self {
        self.routes = routes;
        self
    }
    /// Sets the largest request body.
    #[must_use]
    pub(crate) fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
    /// Sets the default per-request timeout.
    #[must_use]
    pub(crate) fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Sets the targets' retry policy.
    #[must_use]
    pub(crate) fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
    /// Sets the targets' circuit breaker.
    #[must_use]
    pub(crate) fn breaker(mut self, breaker: CircuitBreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }
}

/// What the handlers share: the routing table, one `ServiceClient` per target service, the
/// user-token verifier. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct GatewayState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    table: RouteTable,
    /// One client per target service: each has its own breaker, budget and metrics labels;
    /// they share one connection pool.
    clients: HashMap<String, ServiceClient>,
    /// Where the targets are resolved (shared with the clients).
    discovery: DiscoveryClient,
    user_auth: UserAuth,
    config: GatewayConfig,
}

impl GatewayState {
    /// Validates `config` and builds a client for each service of its table, resolved through
    /// `discovery` (which must be allowed to read the registry).
    pub(crate) fn new(
        discovery: DiscoveryClient,
        user_auth: UserAuth,
        config: GatewayConfig,
    ) -> Result<Self, GatewayError> {
        let table = RouteTable::new(&config.routes)?;
        if config.max_body_bytes == 0 {
            return Err(GatewayError::InvalidConfig(
                "max_body_bytes must be positive".into(),
            ));
        }
        if config.request_timeout.is_zero() {
            return Err(GatewayError::InvalidConfig(
                "request_timeout must be positive".into(),
            ));
        }
        // A proxy relays redirects instead of following them, and never goes through a
        // system proxy.
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| GatewayError::InvalidConfig(format!("http client: {e}")))?;
        let mut clients = HashMap::new();
        for route in table.routes() {
            if clients.contains_key(&route.service) {
                continue;
            }
            let client = ServiceClient::builder(&route.service, discovery.clone())
                .caller(SERVICE)
                .circuit_breaker(config.breaker)
                .retry_policy(config.retry)
                .http_client(http.clone())
                .build()
                .map_err(|source| GatewayError::Client {
                    service: route.service.clone(),
                    source,
                })?;
            clients.insert(route.service.clone(), client);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                table,
                clients,
                discovery,
                user_auth,
                config,
            }),
        })
    }

    /// The client of `service` (its circuit state, its events), if the table names it.
    pub(crate) fn client(&self, service: &str) -> Option<&ServiceClient> {
        self.inner.clients.get(service)
    }

    /// The discovery client the targets are resolved through.
    pub(crate) fn discovery(&self) -> &DiscoveryClient {
        &self.inner.discovery
    }

    /// The settings.
    pub(crate) fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }
}

/// `ANY /api/**` (the proxy), `GET /` (the dashboard), `GET /openapi.json`; a problem+json
/// 404 elsewhere.
pub(crate) fn router(state: GatewayState) -> Router {
    routes::router(state)
}

/// The generated OpenAPI description (the proxied prefixes of the default table).
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    routes::openapi(
        &RouteTable::new(&default_routes()).map_or_else(|_| Vec::new(), |t| t.routes().to_vec()),
    )
}
