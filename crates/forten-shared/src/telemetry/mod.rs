//! Telemetry: distributed tracing (OpenTelemetry over `tracing`), correlation ids, structured
//! logs and Prometheus metrics — the guide's "Distributed Tracing" and "Monitoring and
//! Observability".
//!
//! | piece | what |
//! | --- | --- |
//! | [`init`] / [`build_subscriber`] | one `tracing` subscriber: [`LogLayer`] (JSON or pretty lines with `service`, `trace_id`, `span_id`, `correlation_id`) + the OpenTelemetry layer (OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set) |
//! | [`Tracer`] / [`Span`] | the guide's `createTracer`, `startChildSpan`, `setAttribute`, `setStatus`, `end` |
//! | [`TelemetryLayer`] | server middleware: span per request continuing `traceparent`, `x-correlation-id`, HTTP metrics |
//! | [`send_traced`] / [`TraceRequestExt`] / [`inject_headers`] | outgoing calls carry `traceparent` and `x-correlation-id` |
//! | [`span_from_traceparent`] / [`current_traceparent`] | hooks for the event bus (consumer span, publisher stamp) |
//! | [`Metrics`] | per-service handle on the Prometheus registry; [`metric_names`] |
//! | [`Observability`] | all of the above plus `/health*` and `/metrics` for one service, in one call |
//!
//! Several services may share one process (`forten up`): each [`Tracer`] names its service,
//! and every span below a service's request is exported with that service's `service.name`
//! resource; each [`Metrics`] renders only its own series.
//!
//! ```
//! use axum::{Router, routing::get};
//! use forten_shared::telemetry::{Observability, TelemetryConfig, build_subscriber};
//!
//! let (_subscriber, _guard) = build_subscriber(&TelemetryConfig::new("auth-service"), std::io::sink).unwrap();
//! let obs = Observability::new("auth-service", "1.0.0");
//! let app: Router = obs.apply(Router::new().route("/api/users", get(|| async { "[]" })));
//! ```

mod client;
mod init;
mod logs;
mod memory;
mod metrics;
mod observe;
mod pipeline;
mod propagation;
mod server;
mod tracer;

pub use self::{
    client::{TraceRequestExt, send_traced},
    init::{TelemetryConfig, TelemetryError, TelemetryGuard, build_subscriber, env, init},
    logs::{InvalidLogFormat, LogFormat, LogLayer},
    memory::{FinishedSpan, InMemorySpanExporter},
    metrics::{LATENCY_BUCKETS, Metrics, metric_names},
    observe::Observability,
    pipeline::TraceExport,
    propagation::{
        CORRELATION_ID_HEADER, TRACEPARENT_HEADER, current_traceparent, format_traceparent,
        inject_headers, parse_traceparent, span_from_traceparent,
    },
    server::{ResponseFuture, TelemetryLayer, TelemetryService},
    tracer::{Span, SpanStatus, Tracer},
};
