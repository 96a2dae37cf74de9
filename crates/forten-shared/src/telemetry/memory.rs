//! An in-memory span exporter for tests and debugging.

use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

/// Collects finished spans in memory, each with the `service.name` of the provider that
/// produced it.
///
/// Clones share the same storage, so keep one clone in the test and hand another to
/// [`TraceExport::InMemory`](crate::telemetry::TraceExport::InMemory).
///
/// ```
/// use forten_shared::telemetry::InMemorySpanExporter;
///
/// let exporter = InMemorySpanExporter::default();
/// assert!(exporter.spans().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemorySpanExporter {
    /// Shared by all clones; a `std` mutex because export is synchronous and short.
    spans: Arc<Mutex<Vec<FinishedSpan>>>,
    /// The `service.name` of the resource this clone was given by its provider.
    service: String,
}

/// A finished span as seen by [`InMemorySpanExporter`].
///
/// ```
/// use forten_shared::telemetry::InMemorySpanExporter;
///
/// let spans = InMemorySpanExporter::default().spans();
/// assert!(spans.iter().all(|s| s.trace_id.len() == 32));
/// ```
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    /// `service.name` of the resource the span was exported with.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// Span id, 16 lowercase hex digits.
    pub span_id: String,
    /// Parent span id (16 zeros for a root span).
    pub parent_span_id: String,
    /// Span kind.
    pub kind: SpanKind,
    /// Final status.
    pub status: Status,
    /// The full SDK record.
    pub data: SpanData,
}

impl FinishedSpan {
    /// The value of a string, integer or boolean attribute, rendered as a string.
    ///
    /// ```
    /// # use forten_shared::telemetry::InMemorySpanExporter;
    /// for span in InMemorySpanExporter::default().spans() {
    ///     let _ = span.attribute("http.route");
    /// }
    /// ```
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.data
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }
}

impl InMemorySpanExporter {
    /// A snapshot of every span finished so far.
    ///
    /// ```
    /// # use forten_shared::telemetry::InMemorySpanExporter;
    /// assert_eq!(InMemorySpanExporter::default().spans().len(), 0);
    /// ```
    pub fn spans(&self) -> Vec<FinishedSpan> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets every span collected so far.
    ///
    /// ```
    /// # use forten_shared::telemetry::InMemorySpanExporter;
    /// InMemorySpanExporter::default().reset();
    /// ```
    pub fn reset(&self) {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl SpanExporter for InMemorySpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let finished = batch.into_iter().map(|data| FinishedSpan {
            service: self.service.clone(),
            name: data.name.to_string(),
            trace_id: data.span_context.trace_id().to_string(),
            span_id: data.span_context.span_id().to_string(),
            parent_span_id: data.parent_span_id.to_string(),
            kind: data.span_kind.clone(),
            status: data.status.clone(),
            data,
        });
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(finished);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(name) = resource.get(&opentelemetry::Key::from_static_str("service.name")) {
            self.service = name.to_string();
        }
    }
}
