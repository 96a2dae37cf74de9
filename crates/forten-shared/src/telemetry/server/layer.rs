use tower::Layer;

use super::TelemetryService;
use crate::telemetry::{Metrics, Tracer};

/// Applies [`TelemetryService`] to a service: server span, correlation id and HTTP metrics.
///
/// Add it with `Router::layer` so that the route template (`MatchedPath`) is known.
///
/// ```
/// use axum::{Router, routing::get};
/// use forten_shared::telemetry::{Metrics, TelemetryLayer, Tracer};
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "ok" }))
///     .layer(TelemetryLayer::new(Tracer::new("svc"), Metrics::new("svc")));
/// ```
#[derive(Debug, Clone)]
pub struct TelemetryLayer {
    tracer: Tracer,
    metrics: Metrics,
}

impl TelemetryLayer {
    /// A layer recording spans with `tracer` and metrics with `metrics`.
    ///
    /// ```
    /// use forten_shared::telemetry::{Metrics, TelemetryLayer, Tracer};
    /// let _layer = TelemetryLayer::new(Tracer::new("svc"), Metrics::new("svc"));
    /// ```
    pub fn new(tracer: Tracer, metrics: Metrics) -> Self {
        Self { tracer, metrics }
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = TelemetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TelemetryService::new(inner, self.tracer.clone(), self.metrics.clone())
    }
}
