//! The HTTP server middleware: one span per request (continuing an incoming `traceparent`),
//! the correlation id, and the HTTP server metrics.

mod future;
mod layer;

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    task::{Context, Poll},
};

use axum::extract::MatchedPath;
use http::{HeaderValue, Request, Response};
use metrics::{Counter, Histogram};
use opentelemetry::trace::TraceContextExt as _;
use tower::Service;
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub(crate) use self::HandleCache as RouteMetricsCache;
pub use self::{future::ResponseFuture, layer::TelemetryLayer};
use super::{
    Metrics, Tracer,
    metrics::metric_names,
    propagation::{
        CORRELATION_ID_HEADER, TRACEPARENT_HEADER, format_traceparent, parse_traceparent,
        remote_context, valid_correlation_id,
    },
};
use crate::RequestContext;

/// Route label for requests that matched no route (keeps label cardinality bounded).
const UNMATCHED_ROUTE: &str = "unmatched";

/// A random (v4) UUID from a userspace generator: `Uuid::new_v4` makes a `getrandom` system
/// call per id, which showed up in the per-request profile. Correlation ids need uniqueness,
/// not cryptographic strength.
fn new_correlation_id() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

/// Middleware tracing, correlating and measuring every request.
///
/// For each request it:
/// 1. takes `x-correlation-id` (or generates one) and echoes it in the response;
/// 2. opens a server span continuing the incoming W3C `traceparent` (or a new trace), exported
///    under the tracer's service, and puts it in the request extensions (as `tracing::Span` and
///    [`telemetry::Span`](crate::telemetry::Span)), with the [`RequestContext`];
/// 3. runs the handler inside that span and a [`RequestContext`] scope (so logs, outgoing calls
///    and published events carry both ids);
/// 4. counts `http_server_requests_total{service,method,route,status}` and records
///    `http_server_request_duration_seconds{service,method,route}`.
///
/// ```
/// use axum::{Router, routing::get};
/// use forten_shared::telemetry::{Metrics, TelemetryLayer, Tracer};
/// use tower::ServiceExt as _;
///
/// # tokio_test::block_on(async {
/// let app = Router::new()
///     .route("/", get(|| async { "hi" }))
///     .layer(TelemetryLayer::new(Tracer::new("svc"), Metrics::new("svc")));
/// let req = http::Request::get("/").header("x-correlation-id", "abc").body(axum::body::Body::empty()).unwrap();
/// let res = app.oneshot(req).await.unwrap();
/// assert_eq!(res.headers()["x-correlation-id"], "abc");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TelemetryService<S> {
    inner: S,
    tracer: Tracer,
    metrics: Metrics,
    cache: HandleCache,
}

/// (method, route template, status).
type RouteKey = (http::Method, String, u16);

/// Metric handles per (method, route template, status), so that a request costs one map
/// lookup instead of building label sets and querying the registry twice. Bounded: routes are
/// templates (or `unmatched`), methods and statuses are few.
#[derive(Debug, Clone, Default)]
pub(crate) struct HandleCache {
    /// A `std` `RwLock`: read on every request, written once per new combination, never held
    /// across an await.
    map: Arc<RwLock<HashMap<RouteKey, (Counter, Histogram)>>>,
}

impl HandleCache {
    fn handles(
        &self,
        metrics: &Metrics,
        method: http::Method,
        route: String,
        status: u16,
    ) -> (Counter, Histogram) {
        let key = (method, route, status);
        if let Some(handles) = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return handles.clone();
        }
        let (method, route, status) = &key;
        let status_label = status.to_string();
        let handles = (
            metrics.counter(
                metric_names::HTTP_SERVER_REQUESTS_TOTAL,
                &[
                    ("method", method.as_str()),
                    ("route", route),
                    ("status", &status_label),
                ],
            ),
            metrics.histogram(
                metric_names::HTTP_SERVER_REQUEST_DURATION_SECONDS,
                &[("method", method.as_str()), ("route", route)],
            ),
        );
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, handles.clone());
        handles
    }
}

// === impl TelemetryService ===

impl<S> TelemetryService<S> {
    /// Wraps `inner`.
    ///
    /// ```
    /// use forten_shared::telemetry::{Metrics, TelemetryService, Tracer};
    /// let svc = TelemetryService::new(tower::service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// }), Tracer::new("s"), Metrics::new("s"));
    /// # drop(svc);
    /// ```
    pub fn new(inner: S, tracer: Tracer, metrics: Metrics) -> Self {
        Self::with_cache(inner, tracer, metrics, HandleCache::default())
    }

    /// Shares the layer's handle cache between all the routes it wraps.
    pub(crate) fn with_cache(
        inner: S,
        tracer: Tracer,
        metrics: Metrics,
        cache: HandleCache,
    ) -> Self {
        Self {
            inner,
            tracer,
            metrics,
            cache,
        }
    }

    /// The inner service.
    ///
    /// ```
    /// # use forten_shared::telemetry::{Metrics, TelemetryService, Tracer};
    /// let svc = TelemetryService::new(7, Tracer::new("s"), Metrics::new("s"));
    /// assert_eq!(*svc.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// ```
    /// # use forten_shared::telemetry::{Metrics, TelemetryService, Tracer};
    /// let mut svc = TelemetryService::new(7, Tracer::new("s"), Metrics::new("s"));
    /// *svc.get_mut() = 8;
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    ///
    /// ```
    /// # use forten_shared::telemetry::{Metrics, TelemetryService, Tracer};
    /// assert_eq!(TelemetryService::new(7, Tracer::new("s"), Metrics::new("s")).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TelemetryService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + 'static,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let start = tokio::time::Instant::now();
        let method = req.method().clone();
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
        let correlation_id = req
            .headers()
            .get(CORRELATION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| valid_correlation_id(v))
            .map_or_else(new_correlation_id, str::to_owned);
        let incoming = req
            .headers()
            .get(TRACEPARENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| parse_traceparent(v).is_some())
            .map(str::to_owned);

        // `&str` values (not `%` Display ones) spare every layer a trip through `fmt`.
        let name = format!("{method} {route}");
        let span = tracing::info_span!(
            parent: None,
            "http.server",
            otel.name = name.as_str(),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method.as_str(),
            http.route = route.as_str(),
            url.path = req.uri().path(),
            http.response.status_code = Empty,
            correlation_id = correlation_id.as_str(),
        );
        let _ = span.set_parent(remote_context(incoming.as_deref()).with_value(self.tracer.tag()));
        // The span's own traceparent when tracing is on; else pass the incoming one through.
        let traceparent = format_traceparent(span.context().span().span_context()).or(incoming);

        let mut ctx = RequestContext::new(correlation_id.clone());
        ctx.traceparent = traceparent;
        req.extensions_mut().insert(span.clone());
        req.extensions_mut()
            .insert(crate::telemetry::Span::from_tracing(span.clone()));
        req.extensions_mut().insert(ctx.clone());

        // Creating the inner future does no work worth a span enter/exit; polling it does.
        // Boxed now so the wrappers below move a pointer, not the whole inner state.
        let fut = Box::pin(self.inner.call(req));
        let metrics = self.metrics.clone();
        let cache = self.cache.clone();
        let record_span = span.clone();
        let fut = async move {
            let result = fut.await;
            let status = match &result {
                Ok(res) => res.status().as_u16(),
                Err(_) => 500,
            };
            record_span.record("http.response.status_code", i64::from(status));
            if status >= 500 {
                record_span.record("otel.status_code", "ERROR");
            }
            let (requests, duration) = cache.handles(&metrics, method, route, status);
            requests.increment(1);
            duration.record(start.elapsed().as_secs_f64());
            match result {
                Ok(mut res) => {
                    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
                        res.headers_mut().insert(CORRELATION_ID_HEADER, value);
                    }
                    Ok(res)
                }
                Err(err) => {
                    tracing::error!(error = %err, "request failed");
                    Err(err)
                }
            }
        };
        ResponseFuture {
            inner: Box::pin(ctx.scope(fut.instrument(span))),
        }
    }
}
