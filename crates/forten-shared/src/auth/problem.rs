//! RFC 7807 `application/problem+json` responses for rejected requests.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};

/// Content type of problem documents.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Builds a problem response; `reason` becomes both the `type` URN suffix and a `reason`
/// extension member, `www_authenticate` the challenge header (when given).
pub(crate) fn problem(
    status: StatusCode,
    reason: &str,
    detail: &str,
    www_authenticate: Option<String>,
) -> Response<Body> {
    let body = serde_json::json!({
        "type": format!("urn:forten:problem:{reason}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "reason": reason,
    });
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if let Some(v) = www_authenticate.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// The `WWW-Authenticate` challenge for a rejection (RFC 6750 §3).
pub(crate) fn bearer_challenge(err: &super::TokenError, realm: &str) -> String {
    use super::TokenError;
    match err {
        TokenError::Missing => format!("Bearer realm=\"{realm}\""),
        TokenError::MissingScope(scope) => format!(
            "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
            sanitize(scope)
        ),
        other => format!(
            "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
            sanitize(&other.to_string())
        ),
    }
}

/// Keeps a header parameter printable and free of quotes.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
        .collect()
}

/// Extracts the token from `Authorization: Bearer <token>` (scheme case-insensitive).
pub(crate) fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}
