//! Structured logs: JSON lines (or pretty text) carrying service, trace and correlation ids.

use std::{fmt, io::Write as _, str::FromStr, sync::OnceLock};

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::{
    Event, Level, Metadata, Subscriber,
    dispatcher::WeakDispatch,
    field::{Field, Visit},
    span,
    subscriber::Interest,
};
use tracing_subscriber::{filter::Targets, fmt::MakeWriter, layer::Context, registry::LookupSpan};

use super::propagation::ServiceTag;
use crate::RequestContext;

/// Output format of the log lines (`LOG_FORMAT`).
///
/// ```
/// use forten_shared::telemetry::LogFormat;
///
/// assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
/// assert!("xml".parse::<LogFormat>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line (the default: what log shippers read).
    #[default]
    Json,
    /// Human-readable single lines for a terminal.
    Pretty,
}

/// `LOG_FORMAT` had a value other than `json` or `pretty`.
///
/// ```
/// let err = "xml".parse::<forten_shared::telemetry::LogFormat>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid LOG_FORMAT `xml`: expected `json` or `pretty`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LOG_FORMAT `{0}`: expected `json` or `pretty`")]
pub struct InvalidLogFormat(String);

impl FromStr for LogFormat {
    type Err = InvalidLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            _ => Err(InvalidLogFormat(s.to_owned())),
        }
    }
}

/// Field names whose values are never written to logs.
const SENSITIVE_FIELDS: &[&str] = &[
    "authorization",
    "cookie",
    "set-cookie",
    "password",
    "secret",
    "token",
    "api_key",
];

fn is_sensitive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SENSITIVE_FIELDS.iter().any(|s| lower.contains(s))
}

#[derive(Debug, Default)]
struct OtelIds {
    trace_id: Option<String>,
    span_id: Option<String>,
    service: Option<String>,
}

/// Log fields named by a span (`service`, `correlation_id`); events use the nearest ones.
#[derive(Debug, Clone, Default)]
struct SpanLogFields {
    service: Option<String>,
    correlation_id: Option<String>,
}

impl SpanLogFields {
    fn is_empty(&self) -> bool {
        self.service.is_none() && self.correlation_id.is_none()
    }
}

struct SpanFieldVisitor<'a>(&'a mut SpanLogFields);

impl Visit for SpanFieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "service" => self.0.service = Some(value.to_owned()),
            "correlation_id" => self.0.correlation_id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "service" | "correlation_id" => {
                let rendered = format!("{value:?}");
                let rendered = rendered.trim_matches('"').to_owned();
                self.record_str(field, &rendered);
            }
            _ => {}
        }
    }
}

struct EventVisitor {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl EventVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if name.starts_with("log.") {
            // `tracing-log` metadata: already represented by target/level.
        } else if is_sensitive(name) {
            self.fields
                .insert(name.to_owned(), Value::String("[redacted]".into()));
        } else {
            self.fields.insert(name.to_owned(), value);
        }
    }
}

impl Visit for EventVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

/// A `tracing` layer writing one structured line per event.
///
/// Every line carries `timestamp`, `level`, `service`, `target`, `message`, `trace_id`,
/// `span_id` and `correlation_id` (the last three when known), then the event's own fields.
/// Fields whose name looks secret (`authorization`, `cookie`, `password`, `token`, …) are
/// written as `[redacted]`. Events are filtered with `RUST_LOG`-style target directives;
/// spans at `INFO` and above are always kept so that traces do not depend on the log level.
///
/// Normally installed by [`init`](crate::telemetry::init).
///
/// ```
/// use forten_shared::telemetry::{LogFormat, LogLayer};
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let layer = LogLayer::new("svc", LogFormat::Json, "info".parse().unwrap(), std::io::sink);
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// ```
pub struct LogLayer<W> {
    service: String,
    format: LogFormat,
    filter: Targets,
    writer: W,
    /// Set once when the subscriber is built; used to ask the OpenTelemetry layer for the
    /// current span's ids without re-entering the dispatcher.
    dispatch: OnceLock<WeakDispatch>,
}

impl<W> fmt::Debug for LogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLayer")
            .field("service", &self.service)
            .field("format", &self.format)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl<W> LogLayer<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    /// A layer for `service` (used when no span names another service).
    ///
    /// ```
    /// use forten_shared::telemetry::{LogFormat, LogLayer};
    /// let _layer = LogLayer::new("svc", LogFormat::Pretty, "warn".parse().unwrap(), std::io::stderr);
    /// ```
    pub fn new(service: impl Into<String>, format: LogFormat, filter: Targets, writer: W) -> Self {
        Self {
            service: service.into(),
            format,
            filter,
            writer,
            dispatch: OnceLock::new(),
        }
    }

    /// Trace id, span id and service of a span, from the OpenTelemetry layer.
    fn otel_ids(&self, span: Option<&span::Id>) -> OtelIds {
        let (Some(id), Some(dispatch)) =
            (span, self.dispatch.get().and_then(WeakDispatch::upgrade))
        else {
            return OtelIds::default();
        };
        let Some(cx) = tracing_opentelemetry::get_otel_context(id, &dispatch) else {
            return OtelIds::default();
        };
        let service = cx.get::<ServiceTag>().map(|tag| tag.0.to_string());
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            OtelIds {
                trace_id: Some(sc.trace_id().to_string()),
                span_id: Some(sc.span_id().to_string()),
                service,
            }
        } else {
            OtelIds {
                service,
                ..OtelIds::default()
            }
        }
    }

    fn enabled_static(&self, meta: &Metadata<'_>) -> bool {
        if meta.is_span() {
            *meta.level() <= Level::INFO || self.filter.would_enable(meta.target(), meta.level())
        } else {
            self.filter.would_enable(meta.target(), meta.level())
        }
    }
}

impl<S, W> tracing_subscriber::Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.enabled_static(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.enabled_static(meta)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        // Only spans naming a service or a correlation id keep anything: events look up the
        // nearest such ancestor, so ordinary spans cost no allocation here.
        let mut fields = SpanLogFields::default();
        attrs.record(&mut SpanFieldVisitor(&mut fields));
        if fields.is_empty() {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let mut recorded = SpanLogFields::default();
        values.record(&mut SpanFieldVisitor(&mut recorded));
        if recorded.is_empty() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanLogFields>() {
            Some(fields) => {
                fields.service = recorded.service.or(fields.service.take());
                fields.correlation_id = recorded.correlation_id.or(fields.correlation_id.take());
            }
            None => ext.insert(recorded),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !self.filter.would_enable(meta.target(), meta.level()) {
            return;
        }
        let leaf = ctx.event_span(event);
        let mut span_fields = SpanLogFields::default();
        if let Some(leaf) = &leaf {
            for span in leaf.scope() {
                if let Some(fields) = span.extensions().get::<SpanLogFields>() {
                    if span_fields.service.is_none() {
                        span_fields.service.clone_from(&fields.service);
                    }
                    if span_fields.correlation_id.is_none() {
                        span_fields
                            .correlation_id
                            .clone_from(&fields.correlation_id);
                    }
                }
                if span_fields.service.is_some() && span_fields.correlation_id.is_some() {
                    break;
                }
            }
        }
        let leaf_id = leaf.as_ref().map(tracing_subscriber::registry::SpanRef::id);
        drop(leaf);
        let OtelIds {
            trace_id,
            span_id,
            service: traced_service,
        } = self.otel_ids(leaf_id.as_ref());
        let correlation_id = span_fields
            .correlation_id
            .or_else(|| RequestContext::current().map(|c| c.correlation_id));
        // A `service` field on a span wins, then the service the trace is exported under.
        let service = span_fields
            .service
            .or(traced_service)
            .unwrap_or_else(|| self.service.clone());

        let mut visitor = EventVisitor {
            message: None,
            fields: Map::new(),
        };
        event.record(&mut visitor);
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

        let mut line = match self.format {
            LogFormat::Json => {
                let mut obj = Map::new();
                obj.insert("timestamp".into(), Value::from(timestamp));
                obj.insert("level".into(), Value::from(meta.level().as_str()));
                obj.insert("service".into(), Value::from(service));
                obj.insert("target".into(), Value::from(meta.target()));
                obj.insert(
                    "message".into(),
                    Value::from(visitor.message.unwrap_or_default()),
                );
                if let Some(v) = trace_id {
                    obj.insert("trace_id".into(), Value::from(v));
                }
                if let Some(v) = span_id {
                    obj.insert("span_id".into(), Value::from(v));
                }
                if let Some(v) = correlation_id {
                    obj.insert("correlation_id".into(), Value::from(v));
                }
                for (k, v) in visitor.fields {
                    obj.entry(k).or_insert(v);
                }
                Value::Object(obj).to_string()
            }
            LogFormat::Pretty => {
                let mut s = format!(
                    "{timestamp} {:>5} {service} {}: {}",
                    meta.level().as_str(),
                    meta.target(),
                    visitor.message.unwrap_or_default()
                );
                for (k, v) in visitor.fields {
                    s.push_str(&format!(" {k}={v}"));
                }
                if let Some(v) = correlation_id {
                    s.push_str(&format!(" correlation_id={v}"));
                }
                if let Some(v) = trace_id {
                    s.push_str(&format!(" trace_id={v}"));
                }
                if let Some(v) = span_id {
                    s.push_str(&format!(" span_id={v}"));
                }
                s
            }
        };
        line.push('\n');
        let mut writer = self.writer.make_writer_for(meta);
        let _ = writer.write_all(line.as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_service_correlation_and_redact_secrets() {
        let buf = Buf::default();
        let writer = buf.clone();
        let layer = LogLayer::new("svc", LogFormat::Json, "info".parse().unwrap(), move || {
            writer.clone()
        });
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("req", service = "other", correlation_id = "c-9");
            span.in_scope(|| tracing::info!(password = "hunter2", n = 3, "hello"));
            tracing::debug!("filtered out");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["service"], "other");
        assert_eq!(line["correlation_id"], "c-9");
        assert_eq!(line["message"], "hello");
        assert_eq!(line["password"], "[redacted]");
        assert_eq!(line["n"], 3);
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].is_string());
    }

    #[test]
    fn pretty_lines_carry_ids_and_request_context_correlation() {
        let buf = Buf::default();
        let writer = buf.clone();
        let layer = LogLayer::new(
            "svc",
            LogFormat::Pretty,
            "warn".parse().unwrap(),
            move || writer.clone(),
        );
        let subscriber = tracing_subscriber::registry().with(layer);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            rt.block_on(RequestContext::new("corr-7").scope(async {
                tracing::warn!(token = "s3cret", "careful");
                tracing::info!("below the filter");
            }));
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains(" WARN svc "), "{out}");
        assert!(out.contains("careful"), "{out}");
        assert!(out.contains("correlation_id=corr-7"), "{out}");
        assert!(out.contains("token=\"[redacted]\""), "{out}");
        assert!(!out.contains("s3cret"), "{out}");
    }
}
