//! The gateway's errors: [`GatewayError`] at construction, [`ProxyError`] per request (each
//! answers `application/problem+json`, never a 500 for a downstream failure).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use forten_shared::auth::TokenError;
use forten_shared::client::{CircuitState, ClientError};
use forten_shared::discovery::DiscoveryError;
use serde_json::json;

use crate::services::api::PROBLEM_JSON;

/// The gateway could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    /// A setting is invalid (the message names it).
    #[error("invalid gateway configuration: {0}")]
    InvalidConfig(String),
    /// A service client could not be built.
    #[error("service client for {service}: {source}")]
    Client {
        /// The target service.
        service: String,
        /// Why.
        source: ClientError,
    },
}

/// Why a proxied request was answered by the gateway itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// 401: no user token, or an invalid one.
    #[error("{0}")]
    Unauthorized(TokenError),
    /// 404: no service owns the path.
    #[error("no service serves {0}")]
    NoRoute(String),
    /// 400: the request cannot be forwarded (a dot segment in the path, an unreadable body).
    #[error("{0}")]
    BadRequest(String),
    /// 413: the body is larger than the gateway accepts.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// 503 / 504: the owning service could not answer (no instance, circuit open, every
    /// attempt failed, timeout).
    #[error("{service} unavailable: {error}")]
    Upstream {
        /// The target service.
        service: String,
        /// Its circuit's state after the call.
        circuit: CircuitState,
        /// When the circuit is open: how long until it lets a probe through (at most).
        retry_after: Option<Duration>,
        /// What went wrong.
        error: ClientError,
    },
}

impl ProxyError {
    /// The status answered.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Upstream { error, .. } if is_timeout(error) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable reason code (`type` suffix and `reason` member).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Unauthorized(e) => e.reason(),
            Self::NoRoute(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Upstream { error, .. } => match error {
                ClientError::CircuitOpen => "circuit_open",
                ClientError::Discovery(DiscoveryError::NoInstances(_)) => "no_instance",
                ClientError::Discovery(_) => "discovery_unavailable",
                e if is_timeout(e) => "upstream_timeout",
                _ => "upstream_unavailable",
            },
        }
    }
}

fn is_timeout(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Timeout { .. } | ClientError::DeadlineExceeded(_)
    )
}

/// The lowercase circuit name used in problem bodies: `closed`, `open`, `half-open`.
pub(crate) fn circuit_name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::HalfOpen => "half-open",
        CircuitState::Open => "open",
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let status = self.status();
        let reason = self.reason();
        let mut body = json!({
            "type": format!("urn:forten:problem:{reason}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
            "reason": reason,
        });
        let mut extra_headers = Vec::new();
        match &self {
            Self::Upstream {
                service,
                circuit,
                retry_after,
                error,
            } => {
                tracing::warn!(target_service = %service, circuit = circuit_name(*circuit), %error, "proxied request failed");
                body["service"] = json!(service);
                body["circuit"] = json!(circuit_name(*circuit));
                if let Some(after) = retry_after {
                    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                    extra_headers.push((header::RETRY_AFTER, HeaderValue::from(secs.max(1))));
                }
            }
            Self::Unauthorized(e) => {
                let challenge = match e {
                    TokenError::Missing => "Bearer realm=\"forten\"".to_owned(),
                    other => format!(
                        "Bearer realm=\"forten\", error=\"invalid_token\", error_description=\"{}\"",
                        other.reason()
                    ),
                };
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    extra_headers.push((header::WWW_AUTHENTICATE, v));
                }
            }
            _ => {}
        }
        let mut res = (
            status,
            [(header::CONTENT_TYPE, PROBLEM_JSON)],
            body.to_string(),
        )
            .into_response();
        res.headers_mut().extend(extra_headers);
        res
    }
}
