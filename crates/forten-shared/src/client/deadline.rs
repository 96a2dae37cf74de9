//! Deadline propagation: a call made while handling a request gets at most the time that
//! request has left, carried between services in [`DEADLINE_HEADER`].

use std::future::Future;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Request};
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;
use tower::{Layer, Service};

/// Header carrying the caller's deadline: Unix time in milliseconds.
///
/// ```
/// assert_eq!(forten_shared::client::DEADLINE_HEADER, "x-request-deadline");
/// ```
pub const DEADLINE_HEADER: &str = "x-request-deadline";

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// The deadline of the work in progress.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::client::Deadline;
/// # tokio_test::block_on(async {
/// assert!(Deadline::current().is_none());
/// let at = tokio::time::Instant::now() + Duration::from_secs(1);
/// assert_eq!(Deadline::scope(Some(at), async { Deadline::current() }).await, Some(at));
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Deadline;

impl Deadline {
    /// The current task's deadline, if one was scoped.
    ///
    /// ```
    /// assert!(forten_shared::client::Deadline::current().is_none());
    /// ```
    pub fn current() -> Option<Instant> {
        DEADLINE.try_with(|d| *d).ok().flatten()
    }

    /// Runs `fut` with `deadline` as the current one (a nested scope can only shorten it).
    ///
    /// ```
    /// use std::time::Duration;
    /// use forten_shared::client::Deadline;
    /// # tokio_test::block_on(async {
    /// let now = tokio::time::Instant::now();
    /// let outer = now + Duration::from_secs(1);
    /// let inner = Deadline::scope(Some(outer), async {
    ///     Deadline::scope(Some(now + Duration::from_secs(5)), async { Deadline::current() }).await
    /// }).await;
    /// assert_eq!(inner, Some(outer), "a nested scope cannot extend the deadline");
    /// # });
    /// ```
    pub fn scope<F: Future>(
        deadline: Option<Instant>,
        fut: F,
    ) -> TaskLocalFuture<Option<Instant>, F> {
        let effective = match (Self::current(), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        DEADLINE.scope(effective, fut)
    }

    /// Parses [`DEADLINE_HEADER`] into a local instant.
    ///
    /// ```
    /// use forten_shared::client::{Deadline, DEADLINE_HEADER};
    /// let mut h = http::HeaderMap::new();
    /// Deadline::inject(&mut h, tokio::time::Instant::now() + std::time::Duration::from_secs(5));
    /// let left = Deadline::from_headers(&h).unwrap() - tokio::time::Instant::now();
    /// assert!(left <= std::time::Duration::from_secs(5));
    /// assert!(h.contains_key(DEADLINE_HEADER));
    /// ```
    pub fn from_headers(headers: &HeaderMap) -> Option<Instant> {
        let ms: u64 = headers
            .get(DEADLINE_HEADER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let now_ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_millis(),
        )
        .ok()?;
        Some(Instant::now() + Duration::from_millis(ms.saturating_sub(now_ms)))
    }

    /// Writes `deadline` into [`DEADLINE_HEADER`].
    ///
    /// ```
    /// let mut headers = http::HeaderMap::new();
    /// forten_shared::client::Deadline::inject(&mut headers, tokio::time::Instant::now());
    /// assert!(headers["x-request-deadline"].to_str().unwrap().parse::<u64>().is_ok());
    /// ```
    pub fn inject(headers: &mut HeaderMap, deadline: Instant) {
        if let Some(v) = Self::header_value(deadline) {
            headers.insert(DEADLINE_HEADER, v);
        }
    }

    /// The [`DEADLINE_HEADER`] value for `deadline`.
    pub(crate) fn header_value(deadline: Instant) -> Option<HeaderValue> {
        let left = deadline.saturating_duration_since(Instant::now());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        let at = u64::try_from((now + left).as_millis()).unwrap_or(u64::MAX);
        Some(HeaderValue::from(at))
    }
}

/// Scopes each request's handler in the deadline its caller sent, so that the
/// [`ServiceClient`](super::ServiceClient) calls it makes end by then.
///
/// ```
/// use axum::{Router, routing::get};
/// let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(forten_shared::client::DeadlineLayer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService { inner }
    }
}

/// The service built by [`DeadlineLayer`].
///
/// ```
/// use tower::Layer as _;
/// let svc = forten_shared::client::DeadlineLayer.layer(());
/// assert_eq!(svc.get_ref(), &());
/// ```
#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
}

// === impl DeadlineService ===

impl<S> DeadlineService<S> {
    /// Wraps `inner`.
    ///
    /// ```
    /// let svc = forten_shared::client::DeadlineService::new(());
    /// assert_eq!(svc.get_ref(), &());
    /// ```
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
    /// The inner service.
    ///
    /// ```
    /// assert_eq!(forten_shared::client::DeadlineService::new(1).get_ref(), &1);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
    /// The inner service, mutably.
    ///
    /// ```
    /// let mut svc = forten_shared::client::DeadlineService::new(1);
    /// *svc.get_mut() = 2;
    /// assert_eq!(svc.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    /// Unwraps the inner service.
    ///
    /// ```
    /// assert_eq!(forten_shared::client::DeadlineService::new(1).into_inner(), 1);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for DeadlineService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<Option<Instant>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let deadline = Deadline::from_headers(req.headers());
        DEADLINE.scope(deadline, self.inner.call(req))
    }
}
