//! Errors of the registry and of the discovery client.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::StoreError;

/// An RFC 7807 `application/problem+json` response.
pub(crate) fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    res
}

/// A registry request that failed, answered as problem+json.
///
/// ```
/// use axum::response::IntoResponse as _;
/// let res = forten_shared::discovery::RegistryError::UnknownInstance("i-1".into()).into_response();
/// assert_eq!(res.status(), 404);
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No such instance (a heartbeat after eviction or a registry restart).
    #[error("unknown instance {0}")]
    UnknownInstance(String),
    /// The request body is invalid.
    #[error("invalid registration: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::UnknownInstance(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        problem(status, &self.to_string())
    }
}

/// An invalid registry or discovery configuration.
///
/// ```
/// let e = forten_shared::discovery::InvalidConfig("ttl must be at least 1s".into());
/// assert_eq!(e.to_string(), "invalid configuration: ttl must be at least 1s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct InvalidConfig(pub String);

/// A discovery client failure.
///
/// ```
/// let e = forten_shared::discovery::DiscoveryError::NoInstances("access-service".into());
/// assert_eq!(e.to_string(), "no healthy instance of access-service");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The registry could not be reached and nothing is cached.
    #[error("registry unreachable: {0}")]
    Unreachable(String),
    /// The registry answered with an error status.
    #[error("registry answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The body (problem+json detail, usually).
        body: String,
    },
    /// The service has no healthy instance.
    #[error("no healthy instance of {0}")]
    NoInstances(String),
    /// The auth header provider failed.
    #[error("auth header: {0}")]
    Auth(String),
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    /// Not called inside a tokio runtime.
    #[error("no tokio runtime: the discovery client spawns background tasks")]
    NoRuntime,
}
