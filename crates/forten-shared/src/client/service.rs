//! [`ServiceClient`]: the guide's `new ServiceClient({...})`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tower::retry::budget::Budget as _;

use super::retry::{is_idempotent, retry_after, retryable_status};
use super::{
    AuthHeaderProvider, CircuitBreaker, CircuitBreakerConfig, CircuitEvent, CircuitState,
    ClientError, Deadline, RetryPolicy,
};
use crate::discovery::{DiscoveryClient, InvalidConfig};
use crate::telemetry::{Metrics, metric_names};

/// Outcomes counted in `http_client_requests_total{outcome}`.
const OUTCOMES: [&str; 6] = [
    "success",
    "client_error",
    "server_error",
    "timeout",
    "connect_error",
    "circuit_open",
];

/// Builds a [`ServiceClient`].
///
/// ```
/// use std::time::Duration;
/// use forten_shared::client::{CircuitBreakerConfig, RetryPolicy, ServiceClient};
/// use forten_shared::discovery::{DiscoveryClient, DiscoveryConfig};
///
/// # tokio_test::block_on(async {
/// let discovery = DiscoveryClient::new(DiscoveryConfig::new("http://127.0.0.1:3000"))?;
/// let access = ServiceClient::builder("access-service", discovery)
///     .caller("auth-service")
///     .circuit_breaker(CircuitBreakerConfig::default().failure_threshold(5).reset_timeout(Duration::from_secs(60)))
///     .retry_policy(RetryPolicy::default().max_retries(3).initial_delay(Duration::from_secs(1)))
///     .build()?;
/// assert_eq!(access.circuit_state().to_string(), "CLOSED");
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct ServiceClientBuilder {
    target: String,
    caller: String,
    discovery: DiscoveryClient,
    breaker: CircuitBreakerConfig,
    retry: RetryPolicy,
    auth: Option<Arc<dyn AuthHeaderProvider>>,
    http: Option<reqwest::Client>,
}

impl ServiceClientBuilder {
    /// The calling service's name (the `service` label of the client metrics; default
    /// `forten`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let client = forten_shared::ServiceClient::builder("access-service", discovery).caller("auth-service").build()?;
    /// # drop(client);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    #[must_use]
    pub fn caller(mut self, name: impl Into<String>) -> Self {
        self.caller = name.into();
        self
    }
    /// Sets the circuit breaker (its `timeout` is the per-attempt timeout).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// use forten_shared::client::CircuitBreakerConfig;
    /// let client = forten_shared::ServiceClient::builder("access-service", discovery)
    ///     .circuit_breaker(CircuitBreakerConfig::default().failure_threshold(3)).build()?;
    /// assert_eq!(client.breaker().config().failure_threshold, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    #[must_use]
    pub fn circuit_breaker(mut self, config: CircuitBreakerConfig) -> Self {
        self.breaker = config;
        self
    }
    /// Sets the retry policy.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let client = forten_shared::ServiceClient::builder("access-service", discovery)
    ///     .retry_policy(forten_shared::client::RetryPolicy::none()).build()?;
    /// # drop(client);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
    /// Adds `provider`'s `Authorization` header (the service token for the target) to every
    /// call.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// use std::sync::Arc;
    /// let token = forten_shared::client::StaticAuthHeader::bearer("jwt")?;
    /// let client = forten_shared::ServiceClient::builder("access-service", discovery).auth(Arc::new(token)).build()?;
    /// # drop(client);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    #[must_use]
    pub fn auth(mut self, provider: Arc<dyn AuthHeaderProvider>) -> Self {
        self.auth = Some(provider);
        self
    }
    /// Uses this HTTP client (connection pool) instead of a new one.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let pool = reqwest::Client::builder().no_proxy().build()?;
    /// let client = forten_shared::ServiceClient::builder("access-service", discovery).http_client(pool).build()?;
    /// # drop(client);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Validates the settings and builds the client.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let err = forten_shared::ServiceClient::builder("access-service", discovery)
    ///     .circuit_breaker(forten_shared::client::CircuitBreakerConfig::default().failure_threshold(0))
    ///     .build();
    /// assert!(err.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    pub fn build(self) -> Result<ServiceClient, ClientError> {
        self.retry.validate()?;
        let metrics = Metrics::new(self.caller.clone());
        let breaker = CircuitBreaker::new(self.target.clone(), self.breaker, Some(&metrics))?;
        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(256)
                .build()
                .map_err(|e| InvalidConfig(format!("http client: {e}")))?,
        };
        let outcomes = OUTCOMES.map(|o| {
            metrics.counter(
                metric_names::HTTP_CLIENT_REQUESTS_TOTAL,
                &[("target", &self.target), ("outcome", o)],
            )
        });
        let latency = metrics.histogram(
            metric_names::HTTP_CLIENT_REQUEST_DURATION_SECONDS,
            &[("target", &self.target)],
        );
        Ok(ServiceClient {
            inner: Arc::new(Inner {
                budget: self.retry.make_budget(),
                target: self.target,
                discovery: self.discovery,
                breaker,
                retry: self.retry,
                auth: self.auth,
                http,
                outcomes,
                latency,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    target: String,
    discovery: DiscoveryClient,
    breaker: CircuitBreaker,
    retry: RetryPolicy,
    budget: tower::retry::budget::TpsBudget,
    auth: Option<Arc<dyn AuthHeaderProvider>>,
    http: reqwest::Client,
    /// Pre-registered counters, one per outcome: no label allocation per call.
    outcomes: [metrics::Counter; 6],
    latency: metrics::Histogram,
}

/// A resilient HTTP client for one target service: each call resolves an instance through
/// discovery (load balanced, failing instances ejected), runs under the target's circuit
/// breaker with a per-attempt timeout, is retried by the retry policy within its budget, and
/// carries the service token, `traceparent`, `x-correlation-id` and the caller's deadline.
///
/// Layer order, outermost first: retry (with budget) → circuit breaker (per target) →
/// balance (per instance, with outlier ejection) → timeout → traced HTTP call.
///
/// ```no_run
/// use forten_shared::client::ServiceClient;
/// # async fn demo(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::client::ClientError> {
/// let access = ServiceClient::builder("access-service", discovery).caller("auth-service").build()?;
/// let doors: serde_json::Value = access.get_json("/api/doors").await?;
/// let door: serde_json::Value = access
///     .post_json("/api/doors", &serde_json::json!({"name": "Main Entrance", "buildingId": "123"}))
///     .await?;
/// match access.get("/api/data").send().await {
///     Err(e) if e.to_string() == "Circuit breaker is OPEN" => { /* serve cached data */ }
///     other => { other?; }
/// }
/// # let _ = (doors, door); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
}

impl ServiceClient {
    /// A builder for calls to `target`, resolved through `discovery`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let client = forten_shared::ServiceClient::builder("access-service", discovery).build()?;
    /// assert_eq!(client.target(), "access-service");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    pub fn builder(target: impl Into<String>, discovery: DiscoveryClient) -> ServiceClientBuilder {
        ServiceClientBuilder {
            target: target.into(),
            caller: "forten".into(),
            discovery,
            breaker: CircuitBreakerConfig::default(),
            retry: RetryPolicy::default(),
            auth: None,
            http: None,
        }
    }

    /// The target service.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// assert_eq!(forten_shared::ServiceClient::builder("a", discovery).build()?.target(), "a");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The circuit's state (the guide's `getCircuitState()`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let client = forten_shared::ServiceClient::builder("a", discovery).build()?;
    /// if client.circuit_state() == forten_shared::client::CircuitState::Open {
    ///     println!("Circuit is open, requests will fail fast");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    pub fn circuit_state(&self) -> CircuitState {
        self.inner.breaker.state()
    }

    /// Circuit state changes, in order (the guide's `onCircuitEvent('circuit:state_changed')`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let client = forten_shared::ServiceClient::builder("a", discovery).build()?;
    /// let mut events = client.circuit_events();
    /// tokio::spawn(async move {
    ///     while let Ok(e) = events.recv().await { println!("Circuit state: {}", e.to); }
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    pub fn circuit_events(&self) -> broadcast::Receiver<CircuitEvent> {
        self.inner.breaker.subscribe()
    }

    /// The breaker.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> { tokio_test::block_on(async {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let client = forten_shared::ServiceClient::builder("a", discovery).build()?;
    /// assert_eq!(client.breaker().state(), client.circuit_state());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }) }
    /// ```
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// A request with any method; `path` is appended to the instance's base URL.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let res = client.request(http::Method::HEAD, "/api/doors").send().await?;
    /// # let _ = res;
    /// # Ok(()) }
    /// ```
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            idempotent: is_idempotent(&method),
            method,
            path: path.to_owned(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            error: None,
        }
    }

    /// `GET path`.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let res = client.get("/api/doors").send().await?;
    /// # let _ = res;
    /// # Ok(()) }
    /// ```
    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, path)
    }
    /// `POST path`.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let res = client.post("/api/doors").json(&serde_json::json!({"name": "Main Entrance"})).send().await?;
    /// # let _ = res;
    /// # Ok(()) }
    /// ```
    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, path)
    }
    /// `PUT path`.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let res = client.put("/api/doors/1").json(&serde_json::json!({"name": "Main Entrance"})).send().await?;
    /// # let _ = res;
    /// # Ok(()) }
    /// ```
    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PUT, path)
    }
    /// `PATCH path`.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let res = client.patch("/api/doors/1").json(&serde_json::json!({"name": "Main Entrance"})).send().await?;
    /// # let _ = res;
    /// # Ok(()) }
    /// ```
    pub fn patch(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PATCH, path)
    }
    /// `DELETE path`.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let res = client.delete("/api/doors/1").send().await?;
    /// # let _ = res;
    /// # Ok(()) }
    /// ```
    pub fn delete(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::DELETE, path)
    }

    /// `GET path`, a 2xx JSON body decoded.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let doors: Vec<serde_json::Value> = client.get_json("/api/doors").await?;
    /// # let _ = doors;
    /// # Ok(()) }
    /// ```
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.get(path).send().await?.error_for_status()?.json()
    }
    /// `POST path` with a JSON body, a 2xx JSON body decoded.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let door: serde_json::Value = client.post_json("/api/doors", &serde_json::json!({"name": "Main Entrance", "buildingId": "123"})).await?;
    /// # let _ = door;
    /// # Ok(()) }
    /// ```
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.post(path)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
    }
    /// `PUT path` with a JSON body, a 2xx JSON body decoded.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let door: serde_json::Value = client.put_json("/api/doors", &serde_json::json!({"name": "Main Entrance", "buildingId": "123"})).await?;
    /// # let _ = door;
    /// # Ok(()) }
    /// ```
    pub async fn put_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.put(path)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
    }
    /// `PATCH path` with a JSON body, a 2xx JSON body decoded.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let door: serde_json::Value = client.patch_json("/api/doors", &serde_json::json!({"name": "Main Entrance", "buildingId": "123"})).await?;
    /// # let _ = door;
    /// # Ok(()) }
    /// ```
    pub async fn patch_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.patch(path)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
    }

    fn count(&self, outcome: usize) {
        if let Some(c) = self.inner.outcomes.get(outcome) {
            c.increment(1);
        }
    }

    async fn execute<T: Answer>(&self, req: RequestBuilder<'_>) -> Result<T, ClientError> {
        let started = Instant::now();
        let result = self.execute_inner::<T>(req).await;
        if !matches!(result, Err(ClientError::CircuitOpen)) {
            self.inner.latency.record(started.elapsed().as_secs_f64());
        }
        result
    }

    async fn execute_inner<T: Answer>(&self, req: RequestBuilder<'_>) -> Result<T, ClientError> {
        if let Some(e) = req.error {
            return Err(e);
        }
        let inner = &*self.inner;
        let deadline = Deadline::current();
        let attempt_timeout = req.timeout.unwrap_or(inner.breaker.config().timeout);
        inner.budget.deposit();
        let mut tried: Vec<String> = Vec::new();
        let mut retry = 0u32;
        loop {
            let now = Instant::now();
            let left = deadline.map(|d| d.saturating_duration_since(now));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(ClientError::DeadlineExceeded(inner.target.clone()));
            }
            let timeout = left.map_or(attempt_timeout, |l| l.min(attempt_timeout));
            let permit = match inner.breaker.acquire() {
                Ok(p) => p,
                Err(open) => {
                    self.count(5);
                    return Err(open.into());
                }
            };
            let excluded: Vec<&str> = tried.iter().map(String::as_str).collect();
            let endpoint = inner.discovery.pick(&inner.target, &excluded).await?;
            let attempt = self.attempt::<T>(&req, endpoint.url(), timeout).await;
            if let Err(ClientError::Auth(_)) = &attempt {
                // Nothing was sent: says nothing about the target (the permit is released).
                return attempt;
            }
            let (healthy, retryable, outcome) = match &attempt {
                Ok(res) if res.status().is_server_error() => {
                    (false, req.idempotent && retryable_status(res.status()), 2)
                }
                Ok(res) if res.status() == StatusCode::TOO_MANY_REQUESTS => {
                    (true, req.idempotent, 1)
                }
                Ok(res) if res.status().is_client_error() => (true, false, 1),
                Ok(_) => (true, false, 0),
                Err(ClientError::Connect { .. }) => (false, true, 4),
                Err(ClientError::Timeout { .. }) => (false, req.idempotent, 3),
                Err(ClientError::Request { .. }) => (false, req.idempotent, 4),
                Err(_) => (true, false, 4),
            };
            permit.record(healthy);
            endpoint.record(healthy);
            self.count(outcome);
            if !retryable || retry >= inner.retry.max_retries {
                return attempt;
            }
            tried.push(endpoint.instance().id.clone());
            drop(endpoint);
            let mut delay = inner.retry.backoff(retry);
            if let Ok(res) = &attempt
                && let Some(after) = retry_after(res.headers())
            {
                if after > inner.retry.max_retry_after {
                    return attempt;
                }
                delay = delay.max(after);
            }
            if let Some(d) = deadline
                && Instant::now() + delay >= d
            {
                return attempt;
            }
            if !inner.budget.withdraw() {
                tracing::debug!(target_service = %inner.target, "retry budget exhausted");
                return attempt;
            }
            tracing::debug!(target_service = %inner.target, retry = retry + 1, ?delay, "retrying");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// One attempt against one instance: the timeout covers what `T` reads (the whole body
    /// for [`Response`], the head for [`StreamingResponse`]).
    async fn attempt<T: Answer>(
        &self,
        req: &RequestBuilder<'_>,
        base: &str,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let inner = &*self.inner;
        let url = format!("{base}{}", req.path);
        let target_url = if req.query.is_empty() {
            reqwest::Url::parse(&url)
        } else {
            reqwest::Url::parse_with_params(&url, &req.query)
        }
        .map_err(|e| ClientError::Request {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let mut builder = inner
            .http
            .request(req.method.clone(), target_url)
            .headers(req.headers.clone());
        if let Some(auth) = &inner.auth {
            let value = auth
                .auth_header(&inner.target)
                .await
                .map_err(|e| ClientError::Auth(e.to_string()))?;
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        if let Some(value) = Deadline::header_value(Instant::now() + timeout) {
            builder = builder.header(super::DEADLINE_HEADER, value);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let call = async {
            let res = crate::telemetry::send_traced(builder).await?;
            T::read(res, &inner.target, base).await
        };
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Err(ClientError::Timeout {
                target: inner.target.clone(),
                after: timeout,
            }),
            Ok(Ok(res)) => Ok(res),
            Ok(Err(e)) if e.is_connect() => Err(ClientError::Connect {
                url,
                message: error_chain(&e),
            }),
            Ok(Err(e)) if e.is_timeout() => Err(ClientError::Timeout {
                target: inner.target.clone(),
                after: timeout,
            }),
            Ok(Err(e)) => Err(ClientError::Request {
                url,
                message: error_chain(&e),
            }),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A request being built; [`RequestBuilder::send`] runs it.
///
/// ```no_run
/// # async fn demo(client: forten_shared::client::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
/// let res = client
///     .post("/api/access/attempts")
///     .json(&serde_json::json!({"userId": "u1", "doorId": "d1", "accessMethod": "card"}))
///     .timeout(std::time::Duration::from_secs(2))
///     .idempotent(true) // safe to retry: the server deduplicates
///     .send()
///     .await?;
/// assert!(res.status().is_success());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a request does nothing until sent"]
pub struct RequestBuilder<'a> {
    client: &'a ServiceClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Bytes>,
    timeout: Option<Duration>,
    idempotent: bool,
    error: Option<ClientError>,
}

impl RequestBuilder<'_> {
    /// Adds a header.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// client.get("/x").header(http::header::ACCEPT, http::HeaderValue::from_static("application/json")).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
    /// Adds a query parameter.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// client.get("/api/analytics/timeseries").query("type", "access.granted").send().await?;
    /// # Ok(()) }
    /// ```
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned()));
        self
    }
    /// Sets a JSON body (and `content-type: application/json`).
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// client.post("/api/doors").json(&serde_json::json!({"name": "d"})).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(Bytes::from(bytes));
                self.headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            Err(e) => self.error = Some(ClientError::Body(e.to_string())),
        }
        self
    }
    /// Sets a raw body.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// client.put("/blob").body("raw bytes").send().await?;
    /// # Ok(()) }
    /// ```
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }
    /// Sets this call's per-attempt timeout (default: the breaker's `timeout`).
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// client.get("/x").timeout(std::time::Duration::from_millis(500)).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Marks the request safe (or not) to retry after it was sent.
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// client.post("/api/access/attempts").idempotent(true).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
    /// Sends it: any HTTP answer is `Ok` (see [`Response::error_for_status`]).
    ///
    /// ```
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let res = client.get("/api/doors").send().await?;
    /// println!("{} from {}", res.status(), res.instance_url());
    /// # Ok(()) }
    /// ```
    pub async fn send(self) -> Result<Response, ClientError> {
        let client = self.client;
        client.execute::<Response>(self).await
    }

    /// Sends it like [`send`](Self::send), but returns as soon as the response head is in:
    /// the body is streamed, never buffered (what a proxy needs). Discovery, balancing, the
    /// breaker and retries work as for `send` up to the head: the breaker and retry decisions
    /// are made on the status (and `Retry-After`), and the timeout covers the head only.
    /// Once the head is returned nothing is retried; an error while reading the body is
    /// reported by the stream.
    ///
    /// ```no_run
    /// use futures_util::StreamExt as _;
    /// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
    /// let res = client.get("/api/analytics/reports").send_streaming().await?;
    /// println!("{} from {}", res.status(), res.instance_url());
    /// let mut body = res.into_body();
    /// while let Some(chunk) = body.next().await {
    ///     println!("{} bytes", chunk?.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn send_streaming(self) -> Result<StreamingResponse, ClientError> {
        let client = self.client;
        client.execute::<StreamingResponse>(self).await
    }
}

/// What an attempt makes of the answer: the buffered [`Response`] reads the whole body, the
/// [`StreamingResponse`] the head only. The retry loop looks at the status and headers.
trait Answer: Sized + Send {
    /// Reads what this kind of response needs from `res` (within the attempt's timeout).
    fn read(
        res: reqwest::Response,
        target: &str,
        instance: &str,
    ) -> impl Future<Output = Result<Self, reqwest::Error>> + Send;
    /// The status.
    fn status(&self) -> StatusCode;
    /// The headers.
    fn headers(&self) -> &HeaderMap;
}

impl Answer for Response {
    async fn read(
        mut res: reqwest::Response,
        target: &str,
        instance: &str,
    ) -> Result<Self, reqwest::Error> {
        let status = res.status();
        let headers = std::mem::take(res.headers_mut());
        let body = res.bytes().await?;
        Ok(Self {
            status,
            headers,
            body,
            target: target.to_owned(),
            instance: instance.to_owned(),
        })
    }
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl Answer for StreamingResponse {
    async fn read(
        mut res: reqwest::Response,
        target: &str,
        instance: &str,
    ) -> Result<Self, reqwest::Error> {
        let status = res.status();
        let headers = std::mem::take(res.headers_mut());
        Ok(Self {
            status,
            headers,
            body: res,
            target: target.to_owned(),
            instance: instance.to_owned(),
        })
    }
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// A response whose body is still on the wire ([`RequestBuilder::send_streaming`]): read it
/// chunk by chunk with [`chunk`](Self::chunk), or as a [`Stream`] with
/// [`into_body`](Self::into_body). Dropping it closes the connection if the body was not read
/// to its end.
///
/// ```no_run
/// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), forten_shared::client::ClientError> {
/// let mut res = client.get("/api/cameras").send_streaming().await?;
/// assert!(res.status().is_success());
/// let mut size = 0;
/// while let Some(chunk) = res.chunk().await? {
///     size += chunk.len();
/// }
/// # let _ = size; Ok(()) }
/// ```
#[derive(Debug)]
pub struct StreamingResponse {
    status: StatusCode,
    headers: HeaderMap,
    /// The response, its headers taken: only its body is left to read.
    body: reqwest::Response,
    target: String,
    instance: String,
}

impl StreamingResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The target service.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// The base URL of the instance that answered.
    pub fn instance_url(&self) -> &str {
        &self.instance
    }
    /// The next chunk of the body as it arrives; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        self.body
            .chunk()
            .await
            .map_err(|e| body_error(&self.body, &e))
    }
    /// The status, the headers and the body as a stream.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, BodyStream) {
        let (status, headers) = (self.status, self.headers.clone());
        (status, headers, self.into_body())
    }
    /// The body as a stream of chunks.
    pub fn into_body(self) -> BodyStream {
        let stream = futures_util::stream::try_unfold(self.body, |mut res| async move {
            match res.chunk().await {
                Ok(Some(chunk)) => Ok(Some((chunk, res))),
                Ok(None) => Ok(None),
                Err(e) => Err(body_error(&res, &e)),
            }
        });
        BodyStream {
            inner: Box::pin(stream),
        }
    }
}

fn body_error(res: &reqwest::Response, e: &reqwest::Error) -> ClientError {
    ClientError::Request {
        url: res.url().to_string(),
        message: error_chain(e),
    }
}

/// The body of a [`StreamingResponse`]: a [`Stream`] of chunks, as they arrive.
///
/// ```no_run
/// # async fn demo(client: forten_shared::ServiceClient) -> Result<(), Box<dyn std::error::Error>> {
/// let body = client.get("/api/alerts").send_streaming().await?.into_body();
/// // e.g. relayed by an axum handler without buffering:
/// let relayed = axum::body::Body::from_stream(body);
/// # drop(relayed); Ok(()) }
/// ```
pub struct BodyStream {
    inner: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>,
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream").finish_non_exhaustive()
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A buffered response.
///
/// ```
/// let res = forten_shared::client::Response::new(http::StatusCode::OK, http::HeaderMap::new(), r#"{"a":1}"#.into());
/// let v: serde_json::Value = res.json()?;
/// assert_eq!(v["a"], 1);
/// # Ok::<(), forten_shared::client::ClientError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    target: String,
    instance: String,
}

impl Response {
    /// A response (for tests and adapters).
    ///
    /// ```
    /// let res = forten_shared::client::Response::new(http::StatusCode::OK, http::HeaderMap::new(), "hi".into());
    /// assert_eq!(res.text(), "hi");
    /// ```
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            status,
            headers,
            body,
            target: String::new(),
            instance: String::new(),
        }
    }
    /// The status.
    ///
    /// ```
    /// let res = forten_shared::client::Response::new(http::StatusCode::OK, http::HeaderMap::new(), "hi".into());
    /// assert_eq!(res.status(), 200);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The headers.
    ///
    /// ```
    /// let res = forten_shared::client::Response::new(http::StatusCode::OK, http::HeaderMap::new(), "hi".into());
    /// assert!(res.headers().is_empty());
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The body.
    ///
    /// ```
    /// let res = forten_shared::client::Response::new(http::StatusCode::OK, http::HeaderMap::new(), "hi".into());
    /// assert_eq!(&res.bytes()[..], b"hi");
    /// ```
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }
    /// The base URL of the instance that answered.
    ///
    /// ```
    /// let res = forten_shared::client::Response::new(http::StatusCode::OK, http::HeaderMap::new(), "hi".into());
    /// assert_eq!(res.instance_url(), "");
    /// ```
    pub fn instance_url(&self) -> &str {
        &self.instance
    }
    /// The body as text (lossy UTF-8).
    ///
    /// ```
    /// let res = forten_shared::client::Response::new(http::StatusCode::OK, http::HeaderMap::new(), "hi".into());
    /// assert_eq!(res.text(), "hi");
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body decoded from JSON.
    ///
    /// ```
    /// let res = forten_shared::client::Response::new(http::StatusCode::OK, http::HeaderMap::new(), "[1,2]".into());
    /// assert_eq!(res.json::<Vec<u8>>()?, vec![1, 2]);
    /// # Ok::<(), forten_shared::client::ClientError>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Body(e.to_string()))
    }
    /// `Err(ClientError::Status)` unless 2xx.
    ///
    /// ```
    /// let res = forten_shared::client::Response::new(http::StatusCode::NOT_FOUND, http::HeaderMap::new(), "".into());
    /// assert_eq!(res.error_for_status().unwrap_err().status(), Some(http::StatusCode::NOT_FOUND));
    /// ```
    pub fn error_for_status(self) -> Result<Self, ClientError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(ClientError::Status {
                target: self.target.clone(),
                status: self.status,
                body: self.text(),
            })
        }
    }
}
