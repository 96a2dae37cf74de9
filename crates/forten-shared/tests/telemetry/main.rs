//! Integration tests of `forten_shared::telemetry` against real axum servers on loopback.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod metrics;
mod otlp;
mod overhead;
mod support;
mod trace_events;
mod trace_http;
