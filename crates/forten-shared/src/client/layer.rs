//! [`CircuitBreakerLayer`]: the circuit breaker as a tower middleware, for stacks built by
//! hand (the gateway's proxy): a call while the circuit is open fails fast with
//! [`CircuitOpen`]; each outcome is classified by a [`ClassifyOutcome`] policy.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::{BoxError, CircuitBreaker, CircuitOpen, Permit};

/// Decides whether a call's outcome counts as a success for the breaker (a policy trait;
/// [`ServerErrorsFail`] is the default for HTTP).
///
/// ```
/// use forten_shared::client::ClassifyOutcome;
///
/// /// Any `Ok` is a success.
/// #[derive(Debug, Clone)]
/// struct OkIsSuccess;
/// impl<R, E> ClassifyOutcome<R, E> for OkIsSuccess {
///     fn is_success(&self, outcome: &Result<R, E>) -> bool { outcome.is_ok() }
/// }
/// ```
pub trait ClassifyOutcome<R, E> {
    /// `true` when the outcome shows the target healthy.
    fn is_success(&self, outcome: &Result<R, E>) -> bool;
}

/// HTTP default: errors and 5xx answers are failures; anything else (4xx included) is a
/// success.
///
/// ```
/// use forten_shared::client::{ClassifyOutcome, ServerErrorsFail};
/// let ok: Result<http::Response<()>, ()> = Ok(http::Response::builder().status(404).body(()).unwrap());
/// assert!(ServerErrorsFail.is_success(&ok));
/// let bad: Result<http::Response<()>, ()> = Ok(http::Response::builder().status(503).body(()).unwrap());
/// assert!(!ServerErrorsFail.is_success(&bad));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerErrorsFail;

impl<B, E> ClassifyOutcome<http::Response<B>, E> for ServerErrorsFail {
    fn is_success(&self, outcome: &Result<http::Response<B>, E>) -> bool {
        matches!(outcome, Ok(res) if !res.status().is_server_error())
    }
}

/// Wraps a service in a [`CircuitBreaker`].
///
/// ```
/// use forten_shared::client::{CircuitBreaker, CircuitBreakerLayer};
/// use tower::{ServiceBuilder, service_fn};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new("access-service", Default::default(), None)?;
/// let svc = ServiceBuilder::new()
///     .layer(CircuitBreakerLayer::new(breaker))
///     .service(service_fn(|_req: http::Request<()>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(()))
///     }));
/// # drop(svc); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = ServerErrorsFail> {
    breaker: CircuitBreaker,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer with the HTTP default classification.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classify: ServerErrorsFail,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Uses `classify` to judge outcomes.
    ///
    /// ```
    /// # use forten_shared::client::{CircuitBreaker, CircuitBreakerLayer, ServerErrorsFail};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new("t", Default::default(), None)?).classify(ServerErrorsFail);
    /// # drop(layer); Ok(()) }
    /// ```
    pub fn classify<C2>(self, classify: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// The service built by [`CircuitBreakerLayer`].
///
/// ```
/// # use forten_shared::client::{CircuitBreaker, CircuitBreakerService};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let svc = CircuitBreakerService::new((), CircuitBreaker::new("t", Default::default(), None)?);
/// assert_eq!(svc.get_ref(), &());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C = ServerErrorsFail> {
    inner: S,
    breaker: CircuitBreaker,
    classify: C,
}

// === impl CircuitBreakerService ===

impl<S> CircuitBreakerService<S> {
    /// Wraps `inner` with the HTTP default classification.
    ///
    /// ```
    /// # use forten_shared::client::{CircuitBreaker, CircuitBreakerService};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let svc = CircuitBreakerService::new(1, CircuitBreaker::new("t", Default::default(), None)?);
    /// assert_eq!(svc.into_inner(), 1);
    /// # Ok(()) }
    /// ```
    pub fn new(inner: S, breaker: CircuitBreaker) -> Self {
        Self {
            inner,
            breaker,
            classify: ServerErrorsFail,
        }
    }
}

impl<S, C> CircuitBreakerService<S, C> {
    /// The inner service.
    ///
    /// ```
    /// # use forten_shared::client::{CircuitBreaker, CircuitBreakerService};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert_eq!(CircuitBreakerService::new(1, CircuitBreaker::new("t", Default::default(), None)?).get_ref(), &1);
    /// # Ok(()) }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
    /// The inner service, mutably.
    ///
    /// ```
    /// # use forten_shared::client::{CircuitBreaker, CircuitBreakerService};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut svc = CircuitBreakerService::new(1, CircuitBreaker::new("t", Default::default(), None)?);
    /// *svc.get_mut() = 2;
    /// assert_eq!(svc.into_inner(), 2);
    /// # Ok(()) }
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    /// Unwraps the inner service.
    ///
    /// ```
    /// # use forten_shared::client::{CircuitBreaker, CircuitBreakerService};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert_eq!(CircuitBreakerService::new(1, CircuitBreaker::new("t", Default::default(), None)?).into_inner(), 1);
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    C: ClassifyOutcome<S::Response, S::Error> + Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let permit: Permit = match self.breaker.acquire() {
            Ok(p) => p,
            Err(open) => {
                return ResponseFuture {
                    inner: Box::pin(async move { Err::<S::Response, BoxError>(Box::new(open)) }),
                };
            }
        };
        let fut = self.inner.call(req);
        let classify = self.classify.clone();
        ResponseFuture {
            inner: Box::pin(async move {
                let outcome = fut.await;
                permit.record(classify.is_success(&outcome));
                outcome.map_err(Into::into)
            }),
        }
    }
}

/// Future of [`CircuitBreakerService`].
pub struct ResponseFuture<R> {
    inner: Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>,
}

impl<R> std::fmt::Debug for ResponseFuture<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<R> Future for ResponseFuture<R> {
    type Output = Result<R, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// Whether `err` (from a [`CircuitBreakerService`]) is the open circuit.
///
/// ```
/// let err: forten_shared::client::BoxError = Box::new(forten_shared::client::CircuitOpen);
/// assert!(forten_shared::client::is_circuit_open(&*err));
/// ```
pub fn is_circuit_open(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<CircuitOpen>() {
            return true;
        }
        cur = e.source();
    }
    false
}
