//! W3C Trace Context (`traceparent`) and correlation-id propagation.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::RequestContext;

/// Header carrying the correlation id of a request (SPEC §5).
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";
/// Header carrying the W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Longest accepted incoming correlation id; longer ones are replaced by a fresh id so that a
/// client cannot blow up every log line.
pub(crate) const MAX_CORRELATION_ID_LEN: usize = 128;

/// The name of the service a span belongs to, carried in the OpenTelemetry [`Context`] so that
/// every descendant span is exported under the right `service.name` even when several services
/// share one process (`forten up`).
///
/// [`Context`]: opentelemetry::Context
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceTag(pub(crate) Arc<str>);

/// Parses a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`) into a remote span context.
///
/// Returns `None` for anything malformed or for the all-zero (invalid) ids.
///
/// ```
/// use forten_shared::telemetry::parse_traceparent;
///
/// let cx = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// assert_eq!(cx.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(cx.is_sampled());
/// assert!(parse_traceparent("garbage").is_none());
/// ```
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2 || version == "ff" || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Version 00 has exactly four parts; later versions may append fields.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    if !(trace.bytes().chain(span.bytes()).chain(flags.bytes()))
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & 0x01),
        true,
        TraceState::default(),
    ))
}

/// Formats a span context as a W3C `traceparent`; `None` when the context is invalid.
///
/// ```
/// use forten_shared::telemetry::{format_traceparent, parse_traceparent};
///
/// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// assert_eq!(format_traceparent(&parse_traceparent(tp).unwrap()).as_deref(), Some(tp));
/// ```
pub fn format_traceparent(cx: &SpanContext) -> Option<String> {
    cx.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            cx.trace_id(),
            cx.span_id(),
            cx.trace_flags().to_u8()
        )
    })
}

/// The OpenTelemetry context to continue from a `traceparent`, or an empty one (a new trace).
pub(crate) fn remote_context(traceparent: Option<&str>) -> opentelemetry::Context {
    match traceparent.and_then(parse_traceparent) {
        Some(sc) => opentelemetry::Context::new().with_remote_span_context(sc),
        None => opentelemetry::Context::new(),
    }
}

/// The service tag of the current span, if any.
pub(crate) fn current_service_tag() -> Option<ServiceTag> {
    tracing::Span::current()
        .context()
        .get::<ServiceTag>()
        .cloned()
}

/// A `tracing` span that continues the remote trace named by `traceparent` (or starts a new
/// trace when there is none or it is malformed).
///
/// This is the hook for event consumers: the bus scopes each handler in
/// `span_from_traceparent("<type> process", event.traceparent.as_deref())`, so the handler's
/// span is a child of the publisher's. The span is exported under the service of the current
/// span (use [`Tracer::span_from_traceparent`](crate::telemetry::Tracer::span_from_traceparent)
/// to name the service explicitly).
///
/// ```
/// use forten_shared::telemetry::span_from_traceparent;
///
/// let span = span_from_traceparent(
///     "user.created process",
///     Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
/// );
/// let _entered = span.enter();
/// ```
pub fn span_from_traceparent(name: &str, traceparent: Option<&str>) -> tracing::Span {
    let tag = current_service_tag();
    span_with_service(name, traceparent, tag)
}

pub(crate) fn span_with_service(
    name: &str,
    traceparent: Option<&str>,
    tag: Option<ServiceTag>,
) -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "consume",
        otel.name = %name,
        otel.kind = "consumer",
        service = tracing::field::Empty,
    );
    let mut cx = remote_context(traceparent);
    if let Some(tag) = tag {
        span.record("service", &*tag.0);
        cx = cx.with_value(tag);
    }
    // Fails only when no OpenTelemetry layer is installed: then there is no trace to continue.
    let _ = span.set_parent(cx);
    span
}

/// The W3C `traceparent` of the current span, falling back to the one of the current
/// [`RequestContext`]; `None` outside any trace.
///
/// This is what the event builder should stamp on an event published now.
///
/// ```
/// use forten_shared::{RequestContext, telemetry::current_traceparent};
///
/// # tokio_test::block_on(async {
/// assert_eq!(current_traceparent(), None);
/// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let seen = RequestContext::new("c").with_traceparent(tp).scope(async { current_traceparent() }).await;
/// assert_eq!(seen.as_deref(), Some(tp));
/// # });
/// ```
pub fn current_traceparent() -> Option<String> {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        let cx = span.context();
        if let Some(tp) = format_traceparent(cx.span().span_context()) {
            return Some(tp);
        }
    }
    RequestContext::current().and_then(|ctx| ctx.traceparent)
}

/// Adds `x-correlation-id` and `traceparent` for the work in progress to outgoing headers.
///
/// The trace context is the current span's (so the callee's span becomes its child); the
/// correlation id comes from the current [`RequestContext`]. Existing values are overwritten.
///
/// ```
/// use forten_shared::{RequestContext, telemetry::inject_headers};
///
/// # tokio_test::block_on(async {
/// let mut headers = http::HeaderMap::new();
/// RequestContext::new("corr-1").scope(async { inject_headers(&mut headers) }).await;
/// assert_eq!(headers["x-correlation-id"], "corr-1");
/// # });
/// ```
pub fn inject_headers(headers: &mut HeaderMap) {
    if let Some(ctx) = RequestContext::current()
        && let Ok(value) = HeaderValue::from_str(&ctx.correlation_id)
    {
        headers.insert(CORRELATION_ID_HEADER, value);
    }
    if let Some(tp) = current_traceparent()
        && let Ok(value) = HeaderValue::from_str(&tp)
    {
        headers.insert(TRACEPARENT_HEADER, value);
    }
}

/// Whether an incoming correlation id is acceptable (non-empty, bounded, visible ASCII).
pub(crate) fn valid_correlation_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_CORRELATION_ID_LEN
        && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn correlation_ids_are_bounded() {
        assert!(valid_correlation_id("abc-123"));
        assert!(!valid_correlation_id(""));
        assert!(!valid_correlation_id("has space"));
        assert!(!valid_correlation_id(&"x".repeat(129)));
    }
}
