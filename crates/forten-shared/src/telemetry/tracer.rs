//! The guide's tracer API (`createTracer`, `startChildSpan`, `setAttribute`, `setStatus`, `end`)
//! on top of `tracing` and OpenTelemetry.

use std::sync::Arc;

use opentelemetry::trace::{Status, TraceContextExt as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::propagation::{self, ServiceTag};

/// A service's tracer: names the service its spans are exported under.
///
/// Cheap to clone. Spans are `tracing` spans bridged to OpenTelemetry by the subscriber that
/// [`init`](crate::telemetry::init) installs; without it they cost almost nothing and export
/// nothing.
///
/// ```
/// use forten_shared::telemetry::{SpanStatus, Tracer};
///
/// let tracer = Tracer::new("auth-service");
/// let request = tracer.start_span("POST /api/users");
/// let db = tracer.start_child_span("db.insert", &request);
/// db.set_attribute("db.table", "users");
/// db.set_status(SpanStatus::Ok);
/// db.end();
/// request.end();
/// ```
#[derive(Debug, Clone)]
pub struct Tracer {
    service: Arc<str>,
}

/// The outcome recorded on a [`Span`].
///
/// ```
/// let status = forten_shared::telemetry::SpanStatus::Error("db down".into());
/// assert!(matches!(status, forten_shared::telemetry::SpanStatus::Error(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    /// The operation succeeded.
    Ok,
    /// The operation failed, with a description.
    Error(String),
}

/// A span of work: the guide's span object. Ends when [`end`](Span::end) is called or when it
/// is dropped.
///
/// ```
/// use forten_shared::telemetry::Tracer;
///
/// let span = Tracer::new("svc").start_span("work");
/// span.in_scope(|| tracing::info!("inside the span"));
/// span.end();
/// ```
#[derive(Debug, Clone)]
pub struct Span {
    inner: tracing::Span,
}

impl Tracer {
    /// A tracer for `service_name`.
    ///
    /// ```
    /// assert_eq!(forten_shared::telemetry::Tracer::new("svc").service(), "svc");
    /// ```
    pub fn new(service_name: impl Into<String>) -> Self {
        Self {
            service: Arc::from(service_name.into()),
        }
    }

    /// The service name.
    ///
    /// ```
    /// assert_eq!(forten_shared::telemetry::Tracer::new("a").service(), "a");
    /// ```
    pub fn service(&self) -> &str {
        &self.service
    }

    pub(crate) fn tag(&self) -> ServiceTag {
        ServiceTag(self.service.clone())
    }

    /// Starts a span: a child of the current span when there is one, else a new trace.
    ///
    /// ```
    /// let span = forten_shared::telemetry::Tracer::new("svc").start_span("job");
    /// span.end();
    /// ```
    pub fn start_span(&self, name: &str) -> Span {
        let current = tracing::Span::current();
        let inner = tracing::info_span!(
            "span",
            otel.name = %name,
            service = %self.service,
        );
        let parent = if current.is_disabled() {
            opentelemetry::Context::new()
        } else {
            current.context()
        };
        let parent = if parent.has_active_span() {
            parent
        } else {
            opentelemetry::Context::new()
        };
        let _ = inner.set_parent(parent.with_value(self.tag()));
        Span { inner }
    }

    /// Starts a child of `parent` (the guide's `startChildSpan`).
    ///
    /// ```
    /// let tracer = forten_shared::telemetry::Tracer::new("svc");
    /// let parent = tracer.start_span("request");
    /// tracer.start_child_span("db.query", &parent).end();
    /// ```
    pub fn start_child_span(&self, name: &str, parent: &Span) -> Span {
        let inner = tracing::info_span!(
            parent: &parent.inner,
            "span",
            otel.name = %name,
            service = %self.service,
        );
        Span { inner }
    }

    /// A span continuing the remote trace named by `traceparent`, exported under this service
    /// (the consumer side of an event; see
    /// [`span_from_traceparent`](crate::telemetry::span_from_traceparent)).
    ///
    /// ```
    /// let span = forten_shared::telemetry::Tracer::new("analytics-service")
    ///     .span_from_traceparent("user.created process", None);
    /// drop(span);
    /// ```
    pub fn span_from_traceparent(&self, name: &str, traceparent: Option<&str>) -> tracing::Span {
        propagation::span_with_service(name, traceparent, Some(self.tag()))
    }
}

impl Span {
    /// Wraps an existing `tracing` span (for example the server span an HTTP handler finds in
    /// its request extensions).
    ///
    /// ```
    /// let span = forten_shared::telemetry::Span::from_tracing(tracing::Span::current());
    /// span.end();
    /// ```
    pub fn from_tracing(inner: tracing::Span) -> Self {
        Self { inner }
    }

    /// Sets an attribute.
    ///
    /// ```
    /// let span = forten_shared::telemetry::Tracer::new("svc").start_span("x");
    /// span.set_attribute("db.table", "users");
    /// span.set_attribute("rows", 3_i64);
    /// ```
    pub fn set_attribute(
        &self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<opentelemetry::Value>,
    ) {
        self.inner.set_attribute(key, value);
    }

    /// Sets the status (the guide's `setStatus('ok' | 'error', message)`).
    ///
    /// ```
    /// use forten_shared::telemetry::{SpanStatus, Tracer};
    /// Tracer::new("svc").start_span("x").set_status(SpanStatus::Error("boom".into()));
    /// ```
    pub fn set_status(&self, status: SpanStatus) {
        self.inner.set_status(match status {
            SpanStatus::Ok => Status::Ok,
            SpanStatus::Error(message) => Status::error(message),
        });
    }

    /// The W3C `traceparent` of this span, if tracing is active.
    ///
    /// ```
    /// let span = forten_shared::telemetry::Tracer::new("svc").start_span("x");
    /// let _maybe = span.traceparent();
    /// ```
    pub fn traceparent(&self) -> Option<String> {
        propagation::format_traceparent(self.inner.context().span().span_context())
    }

    /// Runs `f` with this span entered.
    ///
    /// ```
    /// let span = forten_shared::telemetry::Tracer::new("svc").start_span("x");
    /// assert_eq!(span.in_scope(|| 2 + 2), 4);
    /// ```
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        self.inner.in_scope(f)
    }

    /// The underlying `tracing` span (to `.instrument()` a future with it).
    ///
    /// ```
    /// use tracing::Instrument as _;
    /// let span = forten_shared::telemetry::Tracer::new("svc").start_span("x");
    /// let fut = async {}.instrument(span.tracing_span().clone());
    /// # drop(fut);
    /// ```
    pub fn tracing_span(&self) -> &tracing::Span {
        &self.inner
    }

    /// Ends the span (the span is exported once every clone is ended or dropped).
    ///
    /// ```
    /// forten_shared::telemetry::Tracer::new("svc").start_span("x").end();
    /// ```
    pub fn end(self) {
        drop(self);
    }
}
