//! The `/api/**` proxy: user-token check, routing, body limit, header filtering, the call
//! through the owning service's `ServiceClient`, and the streamed answer.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use forten_shared::RequestContext;
use forten_shared::auth::TokenError;
use forten_shared::client::{CircuitState, DEADLINE_HEADER, Deadline};
use forten_shared::telemetry::{CORRELATION_ID_HEADER, TRACEPARENT_HEADER};
use futures_util::StreamExt as _;
use tokio::time::Instant;

use super::GatewayState;
use super::error::ProxyError;
use super::table::is_safe_path;

/// The only request under `/api` that needs no user token.
const LOGIN_PATH: &str = "/api/auth/login";
/// Longest correlation id taken from a caller (longer ones are replaced).
const MAX_CORRELATION_ID_LEN: usize = 128;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus `host`
/// (the client sets the instance's) and `content-length` (recomputed from the buffered body).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "host",
    "content-length",
];

/// `ANY /api/**`.
pub(super) async fn proxy(State(state): State<GatewayState>, req: Request) -> Response {
    // Behind `Observability::apply` the telemetry layer has scoped a context already (and
    // echoes the id); mounted bare, the gateway issues the correlation id itself.
    let ctx = RequestContext::current()
        .or_else(|| req.extensions().get::<RequestContext>().cloned())
        .unwrap_or_else(|| edge_context(req.headers()));
    let correlation_id = ctx.correlation_id.clone();
    let mut res = ctx
        .scope(async move {
            match forward(&state, req).await {
                Ok(res) => res,
                Err(e) => e.into_response(),
            }
        })
        .await;
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        res.headers_mut().insert(CORRELATION_ID_HEADER, v);
    }
    res
}

/// A context for a request that arrived without one: its `x-correlation-id` when acceptable,
/// else a new one, and its `traceparent`.
fn edge_context(headers: &HeaderMap) -> RequestContext {
    let incoming = headers
        .get(CORRELATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_CORRELATION_ID_LEN
                && v.bytes().all(|b| b.is_ascii_graphic())
        });
    let mut ctx = incoming.map_or_else(RequestContext::generate, RequestContext::new);
    ctx.traceparent = headers
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ctx
}

async fn forward(state: &GatewayState, req: Request) -> Result<Response, ProxyError> {
    let path = req.uri().path().to_owned();
    if !(req.method() == Method::POST && path == LOGIN_PATH) {
        let token =
            bearer_token(req.headers()).ok_or(ProxyError::Unauthorized(TokenError::Missing))?;
        state
            .inner
            .user_auth
            .verify(token)
            .map_err(ProxyError::Unauthorized)?;
    }
    if !is_safe_path(&path) {
        return Err(ProxyError::BadRequest(
            "the path must not contain `.` or `..` segments".to_owned(),
        ));
    }
    let route = state
        .inner
        .table
        .resolve(&path)
        .ok_or_else(|| ProxyError::NoRoute(path.clone()))?;
    let client = state
        .inner
        .clients
        .get(&route.service)
        .ok_or_else(|| ProxyError::NoRoute(path.clone()))?;
    let timeout = route.timeout.unwrap_or(state.inner.config.request_timeout);

    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let limit = state.inner.config.max_body_bytes;
    let body = read_body(body, &parts.headers, limit).await?;

    let target = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let mut call = client
        .request(parts.method.clone(), &target)
        .timeout(timeout);
    for (name, value) in &forwarded_headers(&parts.headers, peer) {
        call = call.header(name.clone(), value.clone());
    }
    if !body.is_empty() || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        call = call.body(body);
    }
    // The deadline bounds the whole call, retries included; the backend receives it too.
    let answer = Deadline::scope(Some(Instant::now() + timeout), call.send_streaming()).await;
    let upstream = match answer {
        Ok(upstream) => upstream,
        Err(error) => {
            let circuit = client.circuit_state();
            return Err(ProxyError::Upstream {
                service: route.service.clone(),
                circuit,
                retry_after: (circuit == CircuitState::Open)
                    .then(|| client.breaker().config().reset_timeout),
                error,
            });
        }
    };
    let (status, headers, body) = upstream.into_parts();
    let mut res = Response::new(Body::from_stream(body));
    *res.status_mut() = status;
    *res.headers_mut() = strip_hop_by_hop(&headers);
    Ok(res)
}

/// `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Buffers the request body (it may be sent more than once when retried), at most `limit`
/// bytes: a larger declared or actual body is a 413.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ProxyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ProxyError::BadRequest(format!("cannot read the body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ProxyError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Whether `name` is hop-by-hop (or one the gateway sets itself).
fn is_hop_by_hop(name: &HeaderName, listed: &[String]) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(&n) || n.starts_with("proxy-") || listed.iter().any(|l| l == n)
}

/// The header names listed in `Connection` (hop-by-hop too, RFC 9110 §7.6.1).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The caller's headers as sent on: end-to-end ones only (the user's `Authorization`
/// included, unchanged), without a caller-set deadline (the gateway sets its own), with
/// `x-forwarded-for` / `x-forwarded-host` added.
fn forwarded_headers(headers: &HeaderMap, peer: Option<SocketAddr>) -> HeaderMap {
    let listed = connection_listed(headers);
    let mut out = HeaderMap::with_capacity(headers.len() + 2);
    for (name, value) in headers {
        if is_hop_by_hop(name, &listed) || name.as_str() == DEADLINE_HEADER {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Some(host) = headers.get(header::HOST) {
        out.insert("x-forwarded-host", host.clone());
    }
    if let Some(peer) = peer {
        let ip = peer.ip().to_string();
        let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert("x-forwarded-for", v);
        }
    }
    out
}

/// The service's answer headers without the hop-by-hop ones (`content-length` is kept: the
/// body is relayed unchanged).
fn strip_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || !is_hop_by_hop(name, &listed) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let h = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("proxy-foo", "1"),
            ("host", "gateway:3000"),
            ("content-length", "3"),
            ("x-secret-hop", "1"),
            ("x-request-deadline", "1"),
            ("authorization", "Bearer user-token"),
            ("accept", "application/json"),
            ("x-correlation-id", "c1"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ]);
        let out = forwarded_headers(&h, Some("10.1.2.3:5000".parse().unwrap()));
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "accept",
                "authorization",
                "traceparent",
                "x-correlation-id",
                "x-forwarded-for",
                "x-forwarded-host"
            ]
        );
        assert_eq!(out["authorization"], "Bearer user-token");
        assert_eq!(out["x-forwarded-for"], "10.1.2.3");
        assert_eq!(out["x-forwarded-host"], "gateway:3000");
    }

    #[test]
    fn forwarded_for_is_appended_to() {
        let h = map(&[("x-forwarded-for", "1.1.1.1")]);
        let out = forwarded_headers(&h, Some("127.0.0.1:1".parse().unwrap()));
        assert_eq!(out["x-forwarded-for"], "1.1.1.1, 127.0.0.1");
    }

    #[test]
    fn answer_headers_keep_content_length() {
        let h = map(&[
            ("content-length", "12"),
            ("content-type", "application/json"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        let out = strip_hop_by_hop(&h);
        assert_eq!(out["content-length"], "12");
        assert_eq!(out.get_all("set-cookie").iter().count(), 2);
        assert!(!out.contains_key("connection"));
        assert!(!out.contains_key("transfer-encoding"));
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(
            bearer_token(&map(&[("authorization", "bearer abc")])),
            Some("abc")
        );
        assert_eq!(bearer_token(&map(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer_token(&map(&[("authorization", "Bearer ")])), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn edge_context_keeps_an_acceptable_id_only() {
        assert_eq!(
            edge_context(&map(&[("x-correlation-id", "abc-1")])).correlation_id,
            "abc-1"
        );
        let long = "x".repeat(200);
        let ctx = edge_context(&map(&[("x-correlation-id", &long)]));
        assert_eq!(ctx.correlation_id.len(), 36);
        assert_eq!(edge_context(&HeaderMap::new()).correlation_id.len(), 36);
    }
}
