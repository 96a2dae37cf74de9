//! Event handlers: what a subscription runs for each event, and the explicit [`Outcome`] it
//! returns.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::Event;

/// What a handler decided about an event.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::events::Outcome;
/// let retry_soon = Outcome::retry_after(Duration::from_millis(200));
/// assert!(matches!(retry_soon, Outcome::Retry { after: Some(_) }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: acknowledge.
    Ack,
    /// Try again later: after the subscription's backoff, or after the given delay. Once the
    /// subscription's `retries` are used up the event goes to the DLQ.
    Retry {
        /// Overrides the subscription's backoff for this retry.
        after: Option<Duration>,
    },
    /// Poison: straight to the DLQ with this reason, never retried.
    Reject(String),
    /// Not interesting: acknowledge without processing (counted as `dropped`).
    Drop,
}

impl Outcome {
    /// Retry after the subscription's backoff.
    pub const RETRY: Outcome = Outcome::Retry { after: None };

    /// Retry after `delay`.
    pub fn retry_after(delay: Duration) -> Self {
        Outcome::Retry { after: Some(delay) }
    }

    /// Reject as poison with a reason.
    ///
    /// ```
    /// assert_eq!(forten_shared::events::Outcome::reject("bad"), forten_shared::events::Outcome::Reject("bad".into()));
    /// ```
    pub fn reject(reason: impl Into<String>) -> Self {
        Outcome::Reject(reason.into())
    }
}

/// Whether a failure can go away by itself.
///
/// ```
/// use forten_shared::events::{FailureKind, HandlerError};
/// assert_eq!(HandlerError::permanent("bad id").kind(), FailureKind::Permanent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A dependency is down, a timeout, a 5xx: retried.
    Transient,
    /// Bad data, a 4xx-like refusal: never retried, straight to the DLQ.
    Permanent,
}

/// A handler failure, classified as transient (retried) or permanent (dead-lettered at once).
///
/// Errors of your own convert with `?` when they implement [`Classify`]; anything that only
/// implements `Display` can be wrapped with [`HandlerError::transient`] or
/// [`HandlerError::permanent`].
///
/// ```
/// use forten_shared::events::HandlerError;
/// let e = HandlerError::transient("db down");
/// assert_eq!(e.to_string(), "db down");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    kind: FailureKind,
    message: String,
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn transient(err: impl fmt::Display) -> Self {
        Self {
            kind: FailureKind::Transient,
            message: err.to_string(),
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(err: impl fmt::Display) -> Self {
        Self {
            kind: FailureKind::Permanent,
            message: err.to_string(),
        }
    }

    /// Its classification.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Its text (what lands in `x-forten-error`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HandlerError {}

/// Classifies an error type for [`HandlerError`], so handlers can use `?` on it.
///
/// ```
/// use forten_shared::events::{Classify, FailureKind, HandlerError};
///
/// #[derive(Debug)]
/// struct NotFound;
/// impl std::fmt::Display for NotFound {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("not found") }
/// }
/// impl Classify for NotFound {
///     fn failure_kind(&self) -> FailureKind { FailureKind::Permanent }
/// }
/// let e: HandlerError = NotFound.into();
/// assert_eq!(e.kind(), FailureKind::Permanent);
/// ```
pub trait Classify: fmt::Display {
    /// Transient unless said otherwise.
    fn failure_kind(&self) -> FailureKind {
        FailureKind::Transient
    }
}

impl<E: Classify> From<E> for HandlerError {
    fn from(e: E) -> Self {
        Self {
            kind: e.failure_kind(),
            message: e.to_string(),
        }
    }
}

impl Classify for super::EventError {
    fn failure_kind(&self) -> FailureKind {
        FailureKind::Permanent
    }
}

impl Classify for serde_json::Error {
    fn failure_kind(&self) -> FailureKind {
        FailureKind::Permanent
    }
}

impl Classify for std::io::Error {}

/// What a handler may return: an [`Outcome`], `()`, or a `Result` of either with a
/// [`HandlerError`].
///
/// ```
/// use forten_shared::events::{HandlerError, IntoOutcome, Outcome};
/// assert_eq!(().into_outcome(), Ok(Outcome::Ack));
/// let r: Result<(), HandlerError> = Err(HandlerError::transient("x"));
/// assert!(r.into_outcome().is_err());
/// ```
pub trait IntoOutcome {
    /// Converts into the outcome the bus acts on.
    fn into_outcome(self) -> Result<Outcome, HandlerError>;
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Result<Outcome, HandlerError> {
        Ok(self)
    }
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Result<Outcome, HandlerError> {
        Ok(Outcome::Ack)
    }
}

impl<T: IntoOutcome> IntoOutcome for Result<T, HandlerError> {
    fn into_outcome(self) -> Result<Outcome, HandlerError> {
        self.and_then(IntoOutcome::into_outcome)
    }
}

/// Handles events of a subscription. Implemented for every
/// `Fn(Event) -> impl Future<Output = impl IntoOutcome>`.
///
/// ```
/// use forten_shared::events::{Handler, HandlerError, Outcome};
/// use forten_shared::Event;
///
/// fn assert_handler<H: Handler>(_: H) {}
/// assert_handler(|event: Event| async move {
///     if event.subject.is_none() {
///         return Ok(Outcome::reject("no subject"));
///     }
///     Ok::<_, HandlerError>(Outcome::Ack)
/// });
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles one event.
    fn handle(&self, event: Event) -> BoxFuture<'static, Result<Outcome, HandlerError>>;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoOutcome,
{
    fn handle(&self, event: Event) -> BoxFuture<'static, Result<Outcome, HandlerError>> {
        let fut = (self)(event);
        Box::pin(async move { fut.await.into_outcome() })
    }
}
