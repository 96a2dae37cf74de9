//! A → B over HTTP, B publishes an event on RabbitMQ, C consumes it: one trace, right parent
//! links, and the correlation id in B's response, C's event and the log lines of all three.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Json, Router, routing::get};
use forten_shared::events::{RabbitConfig, Subscribe, UserDeleted};
use forten_shared::telemetry::{
    InMemorySpanExporter, TelemetryConfig, TraceExport, build_subscriber, send_traced,
};
use forten_shared::{Event, EventBuilder, EventBus, Observability};
use opentelemetry::trace::SpanKind;
use serde_json::json;

use crate::support::{Capture, start_server, unique, wait_for};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

fn rabbit_url() -> String {
    std::env::var("RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn bus(service: &str, exchange: &str) -> EventBus {
    EventBus::rabbitmq(service, RabbitConfig::new(rabbit_url()).exchange(exchange))
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ is required for this test and is not reachable: {e}"))
}

#[tokio::test]
async fn one_trace_from_http_through_an_event_to_its_consumer() {
    let exporter = InMemorySpanExporter::default();
    let logs = Capture::default();
    let config =
        TelemetryConfig::new("test-process").with_export(TraceExport::InMemory(exporter.clone()));
    let (subscriber, _guard) = build_subscriber(&config, logs.clone()).unwrap();
    let _default = tracing::subscriber::set_default(subscriber);

    let (svc_a, svc_b, svc_c) = (unique("svc-a"), unique("svc-b"), unique("svc-c"));
    let exchange = format!("test.trace.x.{}", uuid::Uuid::new_v4().simple());
    let queue = format!("test.trace.{}", uuid::Uuid::new_v4().simple());

    // C consumes
    let bus_c = bus(&svc_c, &exchange).await;
    let seen: Arc<Mutex<Option<Event>>> = Arc::default();
    let s = seen.clone();
    bus_c
        .subscribe(
            Subscribe::new(&queue).pattern("user.deleted"),
            move |e: Event| {
                tracing::info!("handled in c");
                *s.lock().unwrap() = Some(e);
                async {}
            },
        )
        .await
        .unwrap();

    // B publishes while handling its request
    let bus_b = bus(&svc_b, &exchange).await;
    let obs_b = Observability::new(svc_b.clone(), "1.0.0");
    let (pb, src) = (bus_b.clone(), svc_b.clone());
    let b = start_server(obs_b.apply(Router::new().route(
        "/b",
        get(move || {
            let (bus, src) = (pb.clone(), src.clone());
            async move {
                tracing::info!("handled in b");
                let event = EventBuilder::new(
                    UserDeleted {
                        user_id: "u-1".into(),
                    },
                    src,
                )
                .build();
                bus.publish(&event).await.unwrap();
                Json(json!({"published": event.id}))
            }
        }),
    )))
    .await;

    // A calls B
    let obs_a = Observability::new(svc_a.clone(), "1.0.0");
    let b_url = format!("{b}/b");
    let a = start_server(obs_a.apply(Router::new().route(
        "/a",
        get(move || {
            let b_url = b_url.clone();
            async move {
                tracing::info!("handled in a");
                let res = send_traced(reqwest::Client::new().get(&b_url))
                    .await
                    .unwrap();
                let corr = res.headers()["x-correlation-id"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                Json(json!({"bCorrelation": corr}))
            }
        }),
    )))
    .await;

    let res = reqwest::Client::new()
        .get(format!("{a}/a"))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .header("x-correlation-id", "corr-evt")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["bCorrelation"], "corr-evt",
        "B's response carries the correlation id"
    );

    wait_for(|| {
        let done = seen.lock().unwrap().is_some();
        async move { done }
    })
    .await;
    let event = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        event.correlation_id.as_deref(),
        Some("corr-evt"),
        "C's event carries the correlation id"
    );

    wait_for(|| {
        let n = exporter
            .spans()
            .iter()
            .filter(|s| s.trace_id == TRACE)
            .count();
        async move { n >= 4 }
    })
    .await;
    let spans: Vec<_> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == TRACE)
        .collect();
    let b_server = spans
        .iter()
        .find(|s| s.service == svc_b && s.kind == SpanKind::Server)
        .expect("B server span");
    let c_consumer = spans
        .iter()
        .find(|s| s.service == svc_c)
        .expect("C's consumer span, in the same trace");
    assert_eq!(c_consumer.kind, SpanKind::Consumer);
    assert_eq!(
        c_consumer.parent_span_id, b_server.span_id,
        "the handler's span is a child of the publisher's"
    );
    assert_eq!(c_consumer.name, "user.deleted process");
    assert_eq!(
        event.traceparent.as_deref(),
        Some(format!("00-{TRACE}-{}-01", b_server.span_id).as_str())
    );

    let lines = logs.lines();
    for (message, service) in [
        ("handled in a", &svc_a),
        ("handled in b", &svc_b),
        ("handled in c", &svc_c),
    ] {
        let line = lines
            .iter()
            .find(|l| l["message"] == message)
            .expect(message);
        assert_eq!(line["service"], service.as_str(), "{line}");
        assert_eq!(line["correlation_id"], "corr-evt", "{line}");
        assert_eq!(line["trace_id"], TRACE, "{line}");
    }

    bus_b.shutdown(Duration::from_secs(2)).await;
    bus_c.shutdown(Duration::from_secs(2)).await;
    let admin = bus("cleanup", &exchange).await;
    admin.delete_queues(&queue).await.unwrap();
    admin.shutdown(Duration::from_secs(1)).await;
    let conn = lapin::Connection::connect(&rabbit_url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .exchange_delete(
            exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await;
}
