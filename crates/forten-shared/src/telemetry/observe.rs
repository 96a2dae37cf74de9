//! One helper giving a service tracing, correlation ids, metrics and health routes.

use axum::{Router, http::header, routing::get};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use super::{Metrics, TelemetryLayer, Tracer};
use crate::health::{self, HealthMonitor};

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything a service needs to be observable, in one value: its [`Tracer`], [`Metrics`] and
/// [`HealthMonitor`] (the guide's `app.use(tracingMiddleware(tracer))` +
/// `createHealthRoutes(healthMonitor)` + metrics).
///
/// ```
/// use axum::{Router, routing::get};
/// use forten_shared::{HealthCheck, Observability};
///
/// # tokio_test::block_on(async {
/// let obs = Observability::new("auth-service", "1.0.0");
/// obs.health().register(HealthCheck::database("postgres", || async { Ok::<_, String>(()) }));
/// obs.health().start();
/// let app: Router = obs.apply(Router::new().route("/api/users", get(|| async { "[]" })));
/// // serve `app`; on shutdown: axum::serve(..).with_graceful_shutdown(obs.health().drain_on(signal, grace))
/// # drop(app);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Observability {
    tracer: Tracer,
    metrics: Metrics,
    health: HealthMonitor,
}

impl Observability {
    /// Tracer, metrics and health monitor for `service` at `version`.
    ///
    /// ```
    /// let obs = forten_shared::Observability::new("svc", "1.0.0");
    /// assert_eq!(obs.tracer().service(), "svc");
    /// ```
    pub fn new(service: impl Into<String>, version: impl Into<String>) -> Self {
        let service = service.into();
        let metrics = Metrics::new(service.clone());
        let health = HealthMonitor::new(service.clone(), version);
        health.export_metrics(metrics.clone());
        Self {
            tracer: Tracer::new(service),
            metrics,
            health,
        }
    }

    /// From parts (a monitor with a given instance id, say).
    ///
    /// ```
    /// use forten_shared::{HealthMonitor, Metrics, Observability, Tracer};
    /// let obs = Observability::from_parts(Tracer::new("s"), Metrics::new("s"), HealthMonitor::new("s", "1"));
    /// # drop(obs);
    /// ```
    pub fn from_parts(tracer: Tracer, metrics: Metrics, health: HealthMonitor) -> Self {
        Self {
            tracer,
            metrics,
            health,
        }
    }

    /// The tracer.
    ///
    /// ```
    /// let _t = forten_shared::Observability::new("s", "1").tracer();
    /// ```
    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    /// The metrics handle.
    ///
    /// ```
    /// forten_shared::Observability::new("s", "1").metrics().counter("x_total", &[]).increment(1);
    /// ```
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The health monitor.
    ///
    /// ```
    /// assert!(forten_shared::Observability::new("s", "1").health().is_ready());
    /// ```
    pub fn health(&self) -> &HealthMonitor {
        &self.health
    }

    /// The request middleware ([`TelemetryLayer`]) for this service.
    ///
    /// ```
    /// let _layer = forten_shared::Observability::new("s", "1").layer();
    /// ```
    pub fn layer(&self) -> TelemetryLayer {
        TelemetryLayer::new(self.tracer.clone(), self.metrics.clone())
    }

    /// `/health`, `/health/live`, `/health/ready` and `/metrics`.
    ///
    /// ```
    /// let _routes: axum::Router = forten_shared::Observability::new("s", "1").routes();
    /// ```
    pub fn routes<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let metrics = self.metrics.clone();
        health::routes(self.health.clone()).route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
                        metrics.render(),
                    )
                }
            }),
        )
    }

    /// Wraps `router` with the telemetry middleware (and marks `Authorization`, `Cookie` and
    /// `Proxy-Authorization` as sensitive so no layer ever logs them), then adds
    /// [`routes`](Self::routes) — which are themselves neither traced nor counted.
    ///
    /// Layer order, outermost first: sensitive headers → telemetry (span, correlation id,
    /// metrics) → the service's own routes and layers.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// let app: Router = forten_shared::Observability::new("s", "1")
    ///     .apply(Router::new().route("/", get(|| async { "ok" })));
    /// # drop(app);
    /// ```
    pub fn apply<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let traced = router
            .layer(self.layer())
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ]));
        // `merge` keeps the fallback of its argument when both are defaults: merging the
        // traced router *into* the plain routes keeps unmatched requests traced and counted.
        self.routes().merge(traced)
    }
}
