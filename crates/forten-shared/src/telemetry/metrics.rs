//! Prometheus metrics through the `metrics` facade, one `service` label per series.
//!
//! One process-wide recorder (`metrics-exporter-prometheus`, with histogram buckets set) holds
//! every series; each series carries a `service` label, and [`Metrics::render`] returns only
//! the series of its own service. So five services sharing one process (`forten up`) each
//! serve their own `/metrics`.

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Label};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Metric names (Prometheus / OpenTelemetry conventions, SPEC §5).
///
/// ```
/// use forten_shared::telemetry::metric_names;
/// assert_eq!(metric_names::EVENTS_PUBLISHED_TOTAL, "events_published_total");
/// ```
pub mod metric_names {
    /// Counter `{service,method,route,status}`.
    pub const HTTP_SERVER_REQUESTS_TOTAL: &str = "http_server_requests_total";
    /// Histogram (seconds) `{service,method,route}`.
    pub const HTTP_SERVER_REQUEST_DURATION_SECONDS: &str = "http_server_request_duration_seconds";
    /// Counter `{service,target,outcome}`.
    pub const HTTP_CLIENT_REQUESTS_TOTAL: &str = "http_client_requests_total";
    /// Histogram (seconds) `{service,target}`: client call latency, retries included.
    pub const HTTP_CLIENT_REQUEST_DURATION_SECONDS: &str = "http_client_request_duration_seconds";
    /// Gauge `{service,target}`: 0 closed, 1 half-open, 2 open.
    pub const CIRCUIT_BREAKER_STATE: &str = "circuit_breaker_state";
    /// Counter `{service,type}`.
    pub const EVENTS_PUBLISHED_TOTAL: &str = "events_published_total";
    /// Counter `{service,queue,type,outcome}`.
    pub const EVENTS_CONSUMED_TOTAL: &str = "events_consumed_total";
    /// Histogram (seconds) `{service,queue,type}`.
    pub const EVENT_HANDLER_DURATION_SECONDS: &str = "event_handler_duration_seconds";
    /// Counter `{service,queue,type}`.
    pub const EVENTS_RETRIED_TOTAL: &str = "events_retried_total";
    /// Counter `{service,queue,reason}`.
    pub const EVENTS_DEAD_LETTERED_TOTAL: &str = "events_dead_lettered_total";
    /// Gauge `{service}`: 1 connected, 0 not.
    pub const EVENT_BUS_CONNECTED: &str = "event_bus_connected";
    /// Gauge `{service,status}`.
    pub const REGISTRY_INSTANCES: &str = "registry_instances";
    /// Gauge `{service,check}`: 1 healthy, 0 not.
    pub const HEALTH_CHECK_STATUS: &str = "health_check_status";
}

/// Histogram buckets (seconds) used for every histogram: 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (idempotent). Returns `None` when another
/// recorder was installed first, in which case metrics go there and `render` is empty.
fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS).ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metric_names::*;
    metrics::describe_counter!(HTTP_SERVER_REQUESTS_TOTAL, "HTTP requests served");
    metrics::describe_histogram!(
        HTTP_SERVER_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "HTTP server request duration"
    );
    metrics::describe_counter!(
        HTTP_CLIENT_REQUESTS_TOTAL,
        "HTTP requests made to other services"
    );
    metrics::describe_gauge!(CIRCUIT_BREAKER_STATE, "0 closed, 1 half-open, 2 open");
    metrics::describe_counter!(EVENTS_PUBLISHED_TOTAL, "events published (confirmed)");
    metrics::describe_counter!(EVENTS_CONSUMED_TOTAL, "events consumed, by outcome");
    metrics::describe_histogram!(
        EVENT_HANDLER_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "event handler duration"
    );
    metrics::describe_counter!(EVENTS_RETRIED_TOTAL, "event handler retries scheduled");
    metrics::describe_counter!(
        EVENTS_DEAD_LETTERED_TOTAL,
        "events moved to a dead-letter queue"
    );
    metrics::describe_gauge!(EVENT_BUS_CONNECTED, "1 when the event bus is connected");
    metrics::describe_gauge!(REGISTRY_INSTANCES, "registered service instances");
    metrics::describe_gauge!(HEALTH_CHECK_STATUS, "1 when the health check passes");
}

/// A service's handle on the metrics registry: every series it creates carries
/// `service="<name>"`.
///
/// Adding a metric is one line:
///
/// ```
/// use forten_shared::telemetry::Metrics;
///
/// let metrics = Metrics::new("doc-metrics-service");
/// metrics.counter("widgets_made_total", &[("color", "blue")]).increment(1);
/// assert!(metrics.render().contains("widgets_made_total{service=\"doc-metrics-service\",color=\"blue\"} 1"));
/// ```
#[derive(Debug, Clone)]
pub struct Metrics {
    service: Arc<str>,
}

impl Metrics {
    /// A handle for `service`, installing the process-wide recorder on first use.
    ///
    /// ```
    /// let m = forten_shared::telemetry::Metrics::new("svc");
    /// assert_eq!(m.service(), "svc");
    /// ```
    pub fn new(service: impl Into<String>) -> Self {
        let _ = recorder();
        Self {
            service: Arc::from(service.into()),
        }
    }

    /// The service label value.
    ///
    /// ```
    /// assert_eq!(forten_shared::telemetry::Metrics::new("s").service(), "s");
    /// ```
    pub fn service(&self) -> &str {
        &self.service
    }

    fn labels(&self, labels: &[(&'static str, &str)]) -> Vec<Label> {
        let mut out = Vec::with_capacity(labels.len() + 1);
        out.push(Label::new("service", self.service.to_string()));
        out.extend(labels.iter().map(|(k, v)| Label::new(*k, (*v).to_owned())));
        out
    }

    /// A counter with this service's label plus `labels`.
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").counter("jobs_total", &[]).increment(2);
    /// ```
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        metrics::counter!(name, self.labels(labels))
    }

    /// A gauge with this service's label plus `labels`.
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").gauge("queue_depth", &[("queue", "q")]).set(4.0);
    /// ```
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        metrics::gauge!(name, self.labels(labels))
    }

    /// A histogram (bucketed with [`LATENCY_BUCKETS`]) with this service's label plus `labels`.
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").histogram("job_seconds", &[]).record(0.2);
    /// ```
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        metrics::histogram!(name, self.labels(labels))
    }

    /// Counts one confirmed publish of an event of type `event_type`.
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").event_published("user.created");
    /// ```
    pub fn event_published(&self, event_type: &str) {
        self.counter(
            metric_names::EVENTS_PUBLISHED_TOTAL,
            &[("type", event_type)],
        )
        .increment(1);
    }

    /// Counts one consumed event with its outcome (`ack`, `retry`, `dead_lettered`,
    /// `duplicate`, `invalid`).
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").event_consumed("q", "user.created", "ack");
    /// ```
    pub fn event_consumed(&self, queue: &str, event_type: &str, outcome: &str) {
        self.counter(
            metric_names::EVENTS_CONSUMED_TOTAL,
            &[("queue", queue), ("type", event_type), ("outcome", outcome)],
        )
        .increment(1);
    }

    /// Records how long a handler ran.
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").event_handler_duration("q", "user.created", 0.003);
    /// ```
    pub fn event_handler_duration(&self, queue: &str, event_type: &str, seconds: f64) {
        self.histogram(
            metric_names::EVENT_HANDLER_DURATION_SECONDS,
            &[("queue", queue), ("type", event_type)],
        )
        .record(seconds);
    }

    /// Counts one retry scheduled for a failed handler.
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").event_retried("q", "user.created");
    /// ```
    pub fn event_retried(&self, queue: &str, event_type: &str) {
        self.counter(
            metric_names::EVENTS_RETRIED_TOTAL,
            &[("queue", queue), ("type", event_type)],
        )
        .increment(1);
    }

    /// Counts one message moved to `<queue>.dlq`.
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").event_dead_lettered("q", "handler_failed");
    /// ```
    pub fn event_dead_lettered(&self, queue: &str, reason: &str) {
        self.counter(
            metric_names::EVENTS_DEAD_LETTERED_TOTAL,
            &[("queue", queue), ("reason", reason)],
        )
        .increment(1);
    }

    /// Sets the bus connection gauge.
    ///
    /// ```
    /// forten_shared::telemetry::Metrics::new("s").bus_connected(true);
    /// ```
    pub fn bus_connected(&self, connected: bool) {
        self.gauge(metric_names::EVENT_BUS_CONNECTED, &[])
            .set(if connected { 1.0 } else { 0.0 });
    }

    /// This service's series in Prometheus text format (version 0.0.4).
    ///
    /// ```
    /// let m = forten_shared::telemetry::Metrics::new("render-doc");
    /// m.event_published("user.created");
    /// assert!(m.render().contains("events_published_total{service=\"render-doc\",type=\"user.created\"} 1"));
    /// ```
    pub fn render(&self) -> String {
        match recorder() {
            Some(handle) => {
                handle.run_upkeep();
                filter_service(&handle.render(), &self.service)
            }
            None => String::new(),
        }
    }
}

/// Keeps the samples whose labels include `service="<service>"`, with their `# HELP` / `# TYPE`
/// lines.
fn filter_service(text: &str, service: &str) -> String {
    let needle = format!("service=\"{service}\"");
    let mut out = String::with_capacity(text.len() / 2);
    let mut header = String::new();
    let mut in_header = false;
    for line in text.lines() {
        if line.starts_with('#') {
            if !in_header {
                header.clear();
                in_header = true;
            }
            header.push_str(line);
            header.push('\n');
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        in_header = false;
        let Some(open) = line.find('{') else { continue };
        let Some(close) = line.rfind('}') else {
            continue;
        };
        let labels = &line[open..=close];
        let matches = labels.match_indices(&needle).any(|(i, _)| {
            let before = labels.as_bytes().get(i.wrapping_sub(1)).copied();
            let after = labels.as_bytes().get(i + needle.len()).copied();
            matches!(before, Some(b'{' | b',')) && matches!(after, Some(b',' | b'}'))
        });
        if matches {
            if !header.is_empty() {
                out.push_str(&header);
                header.clear();
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filter_keeps_only_own_series_and_their_headers() {
        let text = "# HELP a_total A\n# TYPE a_total counter\na_total{service=\"x\"} 1\na_total{service=\"xy\"} 2\n\n# TYPE b gauge\nb{k=\"v\",service=\"y\"} 3\nc 4\n";
        let out = filter_service(text, "x");
        assert_eq!(
            out,
            "# HELP a_total A\n# TYPE a_total counter\na_total{service=\"x\"} 1\n"
        );
        let out = filter_service(text, "y");
        assert_eq!(out, "# TYPE b gauge\nb{k=\"v\",service=\"y\"} 3\n");
    }
}
