//! Installing the telemetry pipeline: logs + traces in one `tracing` subscriber.

use tracing::Subscriber;
use tracing_subscriber::{filter::Targets, fmt::MakeWriter, layer::SubscriberExt as _};

use super::{LogFormat, LogLayer, TraceExport, pipeline::RoutingTracer};

/// Environment variable names read by [`TelemetryConfig::from_env`].
pub mod env {
    /// `json` (default) or `pretty`.
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    /// Target filter, e.g. `info,forten_shared=debug`.
    pub const RUST_LOG: &str = "RUST_LOG";
    /// When set, traces are exported over OTLP/HTTP protobuf.
    pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// Per-signal override honoured by the exporter.
    pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
}

/// Errors setting telemetry up.
///
/// ```
/// let err = forten_shared::telemetry::TelemetryError::InvalidFilter("x=bogus".into());
/// assert_eq!(err.to_string(), "invalid RUST_LOG `x=bogus`");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// `RUST_LOG` could not be parsed.
    #[error("invalid RUST_LOG `{0}`")]
    InvalidFilter(String),
    /// `LOG_FORMAT` could not be parsed.
    #[error(transparent)]
    InvalidLogFormat(#[from] super::InvalidLogFormat),
    /// The trace exporter could not be built.
    #[error("trace exporter: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Telemetry configuration of one process.
///
/// ```
/// use forten_shared::telemetry::{LogFormat, TelemetryConfig, TraceExport};
///
/// let config = TelemetryConfig::new("auth-service")
///     .with_log_format(LogFormat::Pretty)
///     .with_log_filter("info,forten_shared=debug");
/// assert!(matches!(config.export, TraceExport::None));
///
/// let from_env = TelemetryConfig::from_lookup("svc", |k| match k {
///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".into()),
///     _ => None,
/// }).unwrap();
/// assert!(matches!(from_env.export, TraceExport::Otlp { endpoint: None }));
/// ```
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Default service of log lines and spans outside any service's request.
    pub service: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// `RUST_LOG`-style target directives (`info`, `warn,forten=debug`).
    pub log_filter: String,
    /// Where spans go.
    pub export: TraceExport,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            service: "forten".into(),
            log_format: LogFormat::Json,
            log_filter: "info".into(),
            export: TraceExport::None,
        }
    }
}

impl TelemetryConfig {
    /// Defaults for `service`: JSON logs at `info`, no trace export.
    ///
    /// ```
    /// assert_eq!(forten_shared::telemetry::TelemetryConfig::new("s").log_filter, "info");
    /// ```
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            ..Self::default()
        }
    }

    /// Reads `LOG_FORMAT`, `RUST_LOG` and `OTEL_EXPORTER_OTLP_ENDPOINT` from the process
    /// environment.
    ///
    /// ```
    /// let config = forten_shared::telemetry::TelemetryConfig::from_env("svc");
    /// # drop(config);
    /// ```
    pub fn from_env(service: impl Into<String>) -> Result<Self, TelemetryError> {
        Self::from_lookup(service, |k| std::env::var(k).ok())
    }

    /// Like [`from_env`](Self::from_env) with an explicit lookup (tests never touch the
    /// process environment).
    ///
    /// ```
    /// use forten_shared::telemetry::{LogFormat, TelemetryConfig};
    /// let c = TelemetryConfig::from_lookup("s", |k| (k == "LOG_FORMAT").then(|| "pretty".into())).unwrap();
    /// assert_eq!(c.log_format, LogFormat::Pretty);
    /// ```
    pub fn from_lookup(
        service: impl Into<String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let mut config = Self::new(service);
        if let Some(format) = lookup(env::LOG_FORMAT).filter(|v| !v.trim().is_empty()) {
            config.log_format = format.parse()?;
        }
        if let Some(filter) = lookup(env::RUST_LOG).filter(|v| !v.trim().is_empty()) {
            filter
                .parse::<Targets>()
                .map_err(|_| TelemetryError::InvalidFilter(filter.clone()))?;
            config.log_filter = filter;
        }
        let otlp = [
            env::OTEL_EXPORTER_OTLP_ENDPOINT,
            env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
        ]
        .iter()
        .any(|k| lookup(k).is_some_and(|v| !v.trim().is_empty()));
        if otlp {
            config.export = TraceExport::Otlp { endpoint: None };
        }
        Ok(config)
    }

    /// Sets the log format.
    ///
    /// ```
    /// # use forten_shared::telemetry::{LogFormat, TelemetryConfig};
    /// let c = TelemetryConfig::new("s").with_log_format(LogFormat::Pretty);
    /// # drop(c);
    /// ```
    #[must_use]
    pub fn with_log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }

    /// Sets the log filter directives.
    ///
    /// ```
    /// # use forten_shared::telemetry::TelemetryConfig;
    /// let c = TelemetryConfig::new("s").with_log_filter("debug");
    /// # drop(c);
    /// ```
    #[must_use]
    pub fn with_log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = filter.into();
        self
    }

    /// Sets where spans go.
    ///
    /// ```
    /// # use forten_shared::telemetry::{TelemetryConfig, TraceExport};
    /// let c = TelemetryConfig::new("s").with_export(TraceExport::Otlp { endpoint: Some("http://127.0.0.1:4318".into()) });
    /// # drop(c);
    /// ```
    #[must_use]
    pub fn with_export(mut self, export: TraceExport) -> Self {
        self.export = export;
        self
    }
}

/// Owns the trace pipeline; flushes and shuts it down when dropped (keep it alive in `main`).
///
/// ```
/// use forten_shared::telemetry::{TelemetryConfig, build_subscriber};
///
/// let (subscriber, guard) = build_subscriber(&TelemetryConfig::new("svc"), std::io::sink).unwrap();
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hi"));
/// guard.force_flush().unwrap();
/// ```
#[derive(Debug)]
pub struct TelemetryGuard {
    tracer: RoutingTracer,
}

impl TelemetryGuard {
    /// Exports every finished span now. Blocks: with OTLP export, call it from a blocking
    /// thread (`tokio::task::spawn_blocking`).
    ///
    /// ```
    /// # let (_s, guard) = forten_shared::telemetry::build_subscriber(&Default::default(), std::io::sink).unwrap();
    /// guard.force_flush().unwrap();
    /// ```
    pub fn force_flush(&self) -> Result<(), TelemetryError> {
        self.tracer.force_flush()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.tracer.shutdown();
    }
}

/// Builds the subscriber (log layer + OpenTelemetry layer) without installing it: tests use it
/// with `tracing::subscriber::set_default` and a capture writer.
///
/// ```
/// use forten_shared::telemetry::{TelemetryConfig, build_subscriber};
/// let (_subscriber, _guard) = build_subscriber(&TelemetryConfig::new("svc"), std::io::stdout).unwrap();
/// ```
pub fn build_subscriber<W>(
    config: &TelemetryConfig,
    writer: W,
) -> Result<(impl Subscriber + Send + Sync + 'static, TelemetryGuard), TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter: Targets = config
        .log_filter
        .parse()
        .map_err(|_| TelemetryError::InvalidFilter(config.log_filter.clone()))?;
    let tracer = RoutingTracer::new(&config.service, config.export.clone())?;
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer.clone())
        // Source location, target and thread attributes cost several allocations per span and
        // say nothing an operator needs on a request span.
        .with_location(false)
        // We read span contexts through `OpenTelemetrySpanExt::context`, never through
        // `opentelemetry::Context::current()`: attaching the context on every enter/exit would
        // cost two thread-local swaps per poll.
        .with_context_activation(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_threads(false);
    let logs = LogLayer::new(config.service.clone(), config.log_format, filter, writer);
    let subscriber = tracing_subscriber::registry().with(logs).with(otel);
    Ok((subscriber, TelemetryGuard { tracer }))
}

/// Installs logs and traces process-wide (call once, at the top of `main`); logs go to stdout.
///
/// ```no_run
/// use forten_shared::telemetry::{TelemetryConfig, init};
///
/// let _guard = init(&TelemetryConfig::from_env("auth-service")?)?;
/// tracing::info!("started");
/// # Ok::<(), forten_shared::telemetry::TelemetryError>(())
/// ```
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let (subscriber, guard) = build_subscriber(config, std::io::stdout)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(guard)
}
