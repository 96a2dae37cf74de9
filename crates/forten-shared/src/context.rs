//! Request context carried across HTTP calls and events: the correlation id and the W3C
//! `traceparent` of the work in progress.
//!
//! The context lives in a tokio task-local. The HTTP layers of `telemetry` scope every request
//! in one, the event consumer scopes every handler in the context of the event it handles, and
//! [`EventBuilder`](crate::EventBuilder) reads it when it creates an event, so an event published
//! while handling a request or another event carries the same correlation id and trace.
//!
//! ```
//! use forten_shared::RequestContext;
//!
//! # tokio_test::block_on(async {
//! let ctx = RequestContext::new("req-42");
//! let seen = ctx.clone().scope(async { RequestContext::current() }).await;
//! assert_eq!(seen.unwrap().correlation_id, "req-42");
//! assert!(RequestContext::current().is_none());
//! # });
//! ```

use std::future::Future;

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// The correlation id and trace context of the work in progress.
///
/// ```
/// let ctx = forten_shared::RequestContext::new("abc").with_traceparent(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// );
/// assert_eq!(ctx.correlation_id, "abc");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestContext {
    /// The `x-correlation-id` of the request (CloudEvents extension `correlationid`).
    pub correlation_id: String,
    /// The W3C `traceparent` of the current span, when tracing is active.
    pub traceparent: Option<String>,
}

impl RequestContext {
    /// A context with the given correlation id and no trace.
    ///
    /// ```
    /// assert!(forten_shared::RequestContext::new("x").traceparent.is_none());
    /// ```
    pub fn new(correlation_id: impl Into<String>) -> Self {
        Self {
            correlation_id: correlation_id.into(),
            traceparent: None,
        }
    }

    /// A context with a freshly generated correlation id (UUID v4).
    ///
    /// ```
    /// let ctx = forten_shared::RequestContext::generate();
    /// assert_eq!(ctx.correlation_id.len(), 36);
    /// ```
    pub fn generate() -> Self {
        Self::new(uuid::Uuid::new_v4().to_string())
    }

    /// Sets the W3C `traceparent`.
    ///
    /// ```
    /// let ctx = forten_shared::RequestContext::new("x").with_traceparent("00-1-2-01");
    /// assert_eq!(ctx.traceparent.as_deref(), Some("00-1-2-01"));
    /// ```
    #[must_use]
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// The context of the current task, if one was scoped.
    ///
    /// ```
    /// assert!(forten_shared::RequestContext::current().is_none());
    /// ```
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with this context as the current one.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let ctx = forten_shared::RequestContext::new("c1");
    /// let id = ctx.scope(async { forten_shared::RequestContext::current().unwrap().correlation_id }).await;
    /// assert_eq!(id, "c1");
    /// # });
    /// ```
    pub fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, fut)
    }
}
