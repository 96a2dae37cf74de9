//! `/metrics` parses as Prometheus text and counts what was served.

use axum::{Router, routing::get};
use forten_shared::{Metrics, Observability};
use prom_text_format_parser::{Scrape, Type, ValueType};

use crate::support::{start_server, unique};

/// The value of the first sample of `metric` (of `value_type`) whose labels include `labels`.
fn find(
    scrape: &Scrape,
    metric: &str,
    value_type: ValueType,
    labels: &[(&str, &str)],
) -> Option<f64> {
    scrape
        .metrics
        .iter()
        .filter(|m| m.name == metric)
        .flat_map(|m| m.samples.iter())
        .find(|s| {
            s.value.value_type == value_type
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|l| l.key == *k && l.value == *v))
        })
        .map(|s| s.value.value.as_f64())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let service = unique("metrics-svc");
    let obs = Observability::new(service.clone(), "1.0.0");
    let url =
        start_server(obs.apply(Router::new().route("/items/{id}", get(|| async { "item" })))).await;
    // Another service in the same process must not leak into this one's /metrics.
    let other = Metrics::new(unique("other"));
    other.event_published("user.created");
    obs.metrics().event_published("user.created");
    obs.metrics().event_consumed("q1", "user.created", "ack");
    obs.metrics()
        .event_handler_duration("q1", "user.created", 0.02);

    let client = reqwest::Client::new();
    for id in 1..=3 {
        assert_eq!(
            client
                .get(format!("{url}/items/{id}"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            client
                .get(format!("{url}/missing"))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }

    let res = client.get(format!("{url}/metrics")).send().await.unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    let scrape = Scrape::parse(&text).unwrap();

    let svc = service.as_str();
    assert!(
        scrape
            .metrics
            .iter()
            .flat_map(|m| m.samples.iter())
            .all(|s| s
                .labels
                .iter()
                .any(|l| l.key == "service" && l.value == svc)),
        "{text}"
    );
    let requests = "http_server_requests_total";
    assert_eq!(
        find(
            &scrape,
            requests,
            ValueType::Sample,
            &[
                ("service", svc),
                ("method", "GET"),
                ("route", "/items/{id}"),
                ("status", "200")
            ]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        find(
            &scrape,
            requests,
            ValueType::Sample,
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(2.0),
        "{text}"
    );
    let duration = "http_server_request_duration_seconds";
    let kind = scrape
        .metrics
        .iter()
        .find(|m| m.name == duration)
        .map(|m| m.kind);
    assert_eq!(
        kind,
        Some(Type::Histogram),
        "explicit buckets, not a summary"
    );
    assert_eq!(
        find(
            &scrape,
            duration,
            ValueType::Count,
            &[("route", "/items/{id}")]
        ),
        Some(3.0)
    );
    assert_eq!(
        find(
            &scrape,
            duration,
            ValueType::Sample,
            &[("route", "/items/{id}"), ("le", "+Inf")]
        ),
        Some(3.0)
    );
    assert_eq!(
        find(
            &scrape,
            "events_published_total",
            ValueType::Sample,
            &[("type", "user.created")]
        ),
        Some(1.0)
    );
    assert_eq!(
        find(
            &scrape,
            "events_consumed_total",
            ValueType::Sample,
            &[("queue", "q1"), ("outcome", "ack")]
        ),
        Some(1.0)
    );
    let handler = scrape
        .metrics
        .iter()
        .find(|m| m.name == "event_handler_duration_seconds");
    assert_eq!(handler.map(|m| m.kind), Some(Type::Histogram));
    // The health and metrics routes are not counted.
    assert_eq!(
        find(
            &scrape,
            requests,
            ValueType::Sample,
            &[("route", "/metrics")]
        ),
        None
    );
}
