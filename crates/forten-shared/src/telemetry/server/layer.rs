use tower::Layer;

use super::{RouteMetricsCache, TelemetryService};
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
    /// Shared by every route this layer wraps.
    cache: RouteMetricsCache,
}

impl TelemetryLayer {
    /// A layer recording spans with `tracer` and metrics with `metrics`.
    ///
    /// ```
    /// use forten_shared::telemetry::{Metrics, TelemetryLayer, Tracer};
    /// let _layer = TelemetryLayer::new(Tracer::new("svc"), Metrics::new("svc"));
    /// ```
    pub fn new(tracer: Tracer, metrics: Metrics) -> Self {
        Self {
            tracer,
            metrics,
            cache: RouteMetricsCache::default(),
        }
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = TelemetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TelemetryService::with_cache(
            inner,
            self.tracer.clone(),
            self.metrics.clone(),
            self.cache.clone(),
        )
    }
}
