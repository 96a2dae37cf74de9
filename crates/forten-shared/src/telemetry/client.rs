//! Outgoing HTTP: propagate `traceparent` and `x-correlation-id`, with a client span.

use tracing::{Instrument as _, field::Empty};

use super::propagation::inject_headers;

/// Adds the current trace context and correlation id to a `reqwest` request.
///
/// ```
/// use forten_shared::telemetry::TraceRequestExt as _;
///
/// let req = reqwest::Client::new().get("http://127.0.0.1:9/").with_trace_context();
/// # drop(req);
/// ```
pub trait TraceRequestExt {
    /// Sets `traceparent` (the current span's) and `x-correlation-id` (the current
    /// [`RequestContext`](crate::RequestContext)'s).
    fn with_trace_context(self) -> Self;
}

impl TraceRequestExt for reqwest::RequestBuilder {
    fn with_trace_context(self) -> Self {
        let mut headers = http::HeaderMap::new();
        inject_headers(&mut headers);
        self.headers(headers)
    }
}

/// Sends a request inside a client span (a child of the current span), propagating the
/// span's `traceparent` and the current correlation id.
///
/// ```no_run
/// # async fn demo() -> Result<(), reqwest::Error> {
/// let client = reqwest::Client::new();
/// let res = forten_shared::telemetry::send_traced(client.get("http://127.0.0.1:3001/api/users")).await?;
/// # drop(res); Ok(()) }
/// ```
pub async fn send_traced(
    builder: reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    let (client, request) = builder.build_split();
    let mut request = request?;
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        "http.client",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = %method,
        server.address = request.url().host_str().unwrap_or_default(),
        url.full = %request.url(),
        http.response.status_code = Empty,
    );
    span.in_scope(|| inject_headers(request.headers_mut()));
    let result = client.execute(request).instrument(span.clone()).await;
    match &result {
        Ok(res) => {
            span.record(
                "http.response.status_code",
                i64::from(res.status().as_u16()),
            );
            if res.status().is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(_) => {
            span.record("otel.status_code", "ERROR");
        }
    }
    result
}
