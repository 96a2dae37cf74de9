//! The trace pipeline: one OpenTelemetry tracer provider per service, chosen per span.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use opentelemetry::{
    Context,
    trace::{SpanBuilder, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource,
    trace::{SdkTracer, SdkTracerProvider},
};

use super::{InMemorySpanExporter, TelemetryError, propagation::ServiceTag};

/// Where finished spans go.
///
/// ```
/// use forten_shared::telemetry::{InMemorySpanExporter, TraceExport};
///
/// let export = TraceExport::InMemory(InMemorySpanExporter::default());
/// assert!(matches!(TraceExport::default(), TraceExport::None));
/// # drop(export);
/// ```
#[derive(Debug, Clone, Default)]
pub enum TraceExport {
    /// Spans are created (ids and propagation work) but exported nowhere.
    #[default]
    None,
    /// OTLP/HTTP protobuf, batched on a background thread.
    Otlp {
        /// Base endpoint (`http://collector:4318`); spans are posted to `<endpoint>/v1/traces`.
        /// `None` lets the exporter read the standard `OTEL_EXPORTER_OTLP_*` variables.
        endpoint: Option<String>,
    },
    /// Exported synchronously into memory (tests).
    InMemory(InMemorySpanExporter),
}

/// One provider per service name: `forten up` runs five services in one process, each with its
/// own `service.name` resource.
#[derive(Debug)]
struct Inner {
    export: TraceExport,
    default_service: ServiceTag,
    /// Read on every span start, written once per new service: a `RwLock` keeps readers
    /// parallel.
    providers: RwLock<HashMap<Arc<str>, (SdkTracerProvider, SdkTracer)>>,
}

/// An OpenTelemetry tracer that routes each span to the provider of the service named by the
/// [`ServiceTag`] in its parent context (or the default service).
#[derive(Debug, Clone)]
pub(crate) struct RoutingTracer {
    inner: Arc<Inner>,
}

impl RoutingTracer {
    pub(crate) fn new(default_service: &str, export: TraceExport) -> Result<Self, TelemetryError> {
        let this = Self {
            inner: Arc::new(Inner {
                export,
                default_service: ServiceTag(Arc::from(default_service)),
                providers: RwLock::new(HashMap::new()),
            }),
        };
        // Build the default provider now so that a bad exporter configuration fails at start.
        let provider = this.build_provider(default_service)?;
        let tracer = provider.tracer("forten");
        this.inner
            .providers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(Arc::from(default_service), (provider, tracer));
        Ok(this)
    }

    fn build_provider(&self, service: &str) -> Result<SdkTracerProvider, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(service.to_owned())
            .build();
        let builder = SdkTracerProvider::builder().with_resource(resource);
        let builder = match &self.inner.export {
            TraceExport::None => builder,
            TraceExport::InMemory(exporter) => builder.with_simple_exporter(exporter.clone()),
            TraceExport::Otlp { endpoint } => {
                let mut otlp = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary);
                if let Some(endpoint) = endpoint {
                    otlp =
                        otlp.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
                }
                let exporter = otlp
                    .build()
                    .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
                builder.with_batch_exporter(exporter)
            }
        };
        Ok(builder.build())
    }

    fn tracer_for(&self, service: &Arc<str>) -> SdkTracer {
        if let Some((_, tracer)) = self
            .inner
            .providers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
        {
            return tracer.clone();
        }
        let mut providers = self
            .inner
            .providers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, tracer)) = providers.get(service) {
            return tracer.clone();
        }
        // A provider for this exporter kind was already built once at start, so this cannot
        // fail in practice; fall back to the default service's provider if it does.
        match self.build_provider(service) {
            Ok(provider) => {
                let tracer = provider.tracer("forten");
                providers.insert(service.clone(), (provider, tracer.clone()));
                tracer
            }
            Err(_) => providers
                .get(&self.inner.default_service.0)
                .map(|(_, t)| t.clone())
                .unwrap_or_else(|| SdkTracerProvider::builder().build().tracer("forten")),
        }
    }

    /// Flushes every provider's pending spans (blocking: call from a blocking thread when the
    /// exporter is OTLP).
    pub(crate) fn force_flush(&self) -> Result<(), TelemetryError> {
        let providers: Vec<SdkTracerProvider> = self
            .inner
            .providers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|(p, _)| p.clone())
            .collect();
        for provider in providers {
            provider
                .force_flush()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        }
        Ok(())
    }

    /// Flushes and shuts every provider down.
    pub(crate) fn shutdown(&self) {
        let providers: Vec<SdkTracerProvider> = self
            .inner
            .providers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, (p, _))| p)
            .collect();
        for provider in providers {
            let _ = provider.shutdown();
        }
    }
}

impl opentelemetry::trace::Tracer for RoutingTracer {
    type Span = opentelemetry_sdk::trace::Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Self::Span {
        let service = parent_cx
            .get::<ServiceTag>()
            .map_or_else(|| self.inner.default_service.0.clone(), |tag| tag.0.clone());
        self.tracer_for(&service)
            .build_with_context(builder, parent_cx)
    }
}
