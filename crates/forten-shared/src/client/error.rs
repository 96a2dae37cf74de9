//! Errors of the service client.

use std::time::Duration;

use http::StatusCode;

use super::CircuitOpen;
use crate::discovery::{DiscoveryError, InvalidConfig};

/// A failed service call.
///
/// ```
/// use forten_shared::client::ClientError;
/// let e = ClientError::CircuitOpen;
/// assert_eq!(e.to_string(), "Circuit breaker is OPEN");
/// assert!(e.is_circuit_open());
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The target's circuit is open: the call was not made.
    #[error("Circuit breaker is OPEN")]
    CircuitOpen,
    /// No instance could be found.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The attempt did not finish within its timeout.
    #[error("request to {target} timed out after {after:?}")]
    Timeout {
        /// The target service.
        target: String,
        /// The timeout.
        after: Duration,
    },
    /// The caller's deadline passed before the call could be made.
    #[error("deadline exceeded before calling {0}")]
    DeadlineExceeded(String),
    /// No connection could be made (the request was never sent).
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The instance URL.
        url: String,
        /// The cause.
        message: String,
    },
    /// The request failed after it may have been sent.
    #[error("request to {url} failed: {message}")]
    Request {
        /// The instance URL.
        url: String,
        /// The cause.
        message: String,
    },
    /// The target answered with an error status (from the JSON helpers and
    /// [`Response::error_for_status`](super::Response::error_for_status)).
    #[error("{target} answered {status}: {body}")]
    Status {
        /// The target service.
        target: String,
        /// The status.
        status: StatusCode,
        /// The body, as text.
        body: String,
    },
    /// The body could not be encoded or decoded.
    #[error("body: {0}")]
    Body(String),
    /// The auth header provider failed.
    #[error("auth header: {0}")]
    Auth(String),
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] InvalidConfig),
}

impl From<CircuitOpen> for ClientError {
    fn from(_: CircuitOpen) -> Self {
        Self::CircuitOpen
    }
}

impl ClientError {
    /// Whether the circuit was open.
    ///
    /// ```
    /// assert!(!forten_shared::client::ClientError::Body("x".into()).is_circuit_open());
    /// ```
    pub fn is_circuit_open(&self) -> bool {
        matches!(self, Self::CircuitOpen)
    }

    /// The status, for [`ClientError::Status`].
    ///
    /// ```
    /// use forten_shared::client::ClientError;
    /// let e = ClientError::Status { target: "t".into(), status: http::StatusCode::NOT_FOUND, body: String::new() };
    /// assert_eq!(e.status(), Some(http::StatusCode::NOT_FOUND));
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
