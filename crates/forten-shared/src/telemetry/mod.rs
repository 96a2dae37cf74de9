#![doc = include_str!("README.md")]

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
