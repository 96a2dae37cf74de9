//! A → B over HTTP: one trace, right parent links, correlation id everywhere.

use axum::{Json, Router, http::HeaderMap, routing::get};
use forten_shared::{
    Observability, RequestContext,
    telemetry::{
        InMemorySpanExporter, TelemetryConfig, TraceExport, build_subscriber, send_traced,
    },
};
use opentelemetry::trace::SpanKind;
use serde_json::{Value, json};

use crate::support::{Capture, start_server, unique, wait_for};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn trace_and_correlation_id_cross_two_servers() {
    let exporter = InMemorySpanExporter::default();
    let logs = Capture::default();
    let config =
        TelemetryConfig::new("test-process").with_export(TraceExport::InMemory(exporter.clone()));
    let (subscriber, _guard) = build_subscriber(&config, logs.clone()).unwrap();
    let _default = tracing::subscriber::set_default(subscriber);

    let svc_a = unique("svc-a");
    let svc_b = unique("svc-b");

    let obs_b = Observability::new(svc_b.clone(), "1.0.0");
    let b = start_server(obs_b.apply(Router::new().route(
        "/b",
        get(|| async {
            tracing::info!("handled in b");
            Json(json!({"seen": RequestContext::current().map(|c| c.correlation_id)}))
        }),
    )))
    .await;

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
                let echoed = res.headers()["x-correlation-id"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let body: Value = res.json().await.unwrap();
                Json(json!({"echoedByB": echoed, "bSaw": body["seen"]}))
            }
        }),
    )))
    .await;

    let res = reqwest::Client::new()
        .get(format!("{a}/a"))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .header("x-correlation-id", "corr-xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-correlation-id"], "corr-xyz");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["echoedByB"], "corr-xyz",
        "B's response carries the correlation id"
    );
    assert_eq!(
        body["bSaw"], "corr-xyz",
        "B's handler ran in the request context"
    );

    // Spans: A server (child of the remote parent) → A client → B server.
    wait_for(|| {
        let n = exporter
            .spans()
            .iter()
            .filter(|s| s.trace_id == TRACE)
            .count();
        async move { n >= 3 }
    })
    .await;
    let spans: Vec<_> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == TRACE)
        .collect();
    let a_server = spans
        .iter()
        .find(|s| s.service == svc_a && s.kind == SpanKind::Server)
        .expect("A server span");
    let a_client = spans
        .iter()
        .find(|s| s.service == svc_a && s.kind == SpanKind::Client)
        .expect("A client span");
    let b_server = spans
        .iter()
        .find(|s| s.service == svc_b && s.kind == SpanKind::Server)
        .expect("B server span");
    assert_eq!(a_server.parent_span_id, PARENT);
    assert_eq!(a_client.parent_span_id, a_server.span_id);
    assert_eq!(b_server.parent_span_id, a_client.span_id);
    assert_eq!(a_server.name, "GET /a");
    assert_eq!(b_server.name, "GET /b");
    assert_eq!(b_server.attribute("http.route").as_deref(), Some("/b"));
    assert_eq!(
        b_server.attribute("http.response.status_code").as_deref(),
        Some("200")
    );

    // Logs: both handlers' lines carry service, trace, span and correlation ids.
    let lines = logs.lines();
    for (message, service, span) in [
        ("handled in a", &svc_a, a_server),
        ("handled in b", &svc_b, b_server),
    ] {
        let line = lines
            .iter()
            .find(|l| l["message"] == message)
            .expect(message);
        assert_eq!(line["service"], service.as_str(), "{line}");
        assert_eq!(line["correlation_id"], "corr-xyz", "{line}");
        assert_eq!(line["trace_id"], TRACE, "{line}");
        assert_eq!(line["span_id"], span.span_id.as_str(), "{line}");
        assert_eq!(line["level"], "INFO");
    }
}

#[tokio::test]
async fn a_request_without_headers_gets_a_new_trace_and_correlation_id() {
    let exporter = InMemorySpanExporter::default();
    let config =
        TelemetryConfig::new("test-process").with_export(TraceExport::InMemory(exporter.clone()));
    let (subscriber, _guard) = build_subscriber(&config, std::io::sink).unwrap();
    let _default = tracing::subscriber::set_default(subscriber);

    let svc = unique("svc-new");
    let obs = Observability::new(svc.clone(), "1.0.0");
    let url = start_server(obs.apply(Router::new().route(
        "/x",
        get(|headers: HeaderMap| async move {
            let ctx = RequestContext::current().unwrap();
            assert!(headers.get("x-correlation-id").is_none());
            Json(json!({"cid": ctx.correlation_id, "tp": ctx.traceparent}))
        }),
    )))
    .await;

    let res = reqwest::get(format!("{url}/x")).await.unwrap();
    let cid = res.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["cid"], cid.as_str());
    assert_eq!(cid.len(), 36, "a UUID was generated");
    let tp = body["tp"].as_str().unwrap().to_owned();
    let trace_id = tp.split('-').nth(1).unwrap().to_owned();

    wait_for(|| {
        let found = exporter.spans().iter().any(|s| s.trace_id == trace_id);
        async move { found }
    })
    .await;
    let span = exporter
        .spans()
        .into_iter()
        .find(|s| s.trace_id == trace_id)
        .unwrap();
    assert_eq!(span.parent_span_id, "0000000000000000", "a root span");
    assert_eq!(span.service, svc);
}

#[tokio::test]
async fn consumer_span_continues_the_publishers_trace() {
    use forten_shared::telemetry::{Tracer, current_traceparent, span_from_traceparent};

    let exporter = InMemorySpanExporter::default();
    let config =
        TelemetryConfig::new("test-process").with_export(TraceExport::InMemory(exporter.clone()));
    let (subscriber, _guard) = build_subscriber(&config, std::io::sink).unwrap();
    let _default = tracing::subscriber::set_default(subscriber);

    let publisher = Tracer::new(unique("publisher"));
    let consumer_service = unique("consumer");
    let consumer = Tracer::new(consumer_service.clone());

    let publish = publisher.start_span("user.created publish");
    let stamped = publish.in_scope(current_traceparent).unwrap();
    assert_eq!(Some(stamped.clone()), publish.traceparent());

    let handler = consumer.span_from_traceparent("user.created process", Some(&stamped));
    let inner_tp = handler.in_scope(current_traceparent).unwrap();
    let free = handler.in_scope(|| span_from_traceparent("nested", Some(&inner_tp)));
    drop(free);
    drop(handler);
    publish.end();

    let spans = exporter.spans();
    let publish = spans
        .iter()
        .find(|s| s.name == "user.created publish")
        .unwrap();
    let process = spans
        .iter()
        .find(|s| s.name == "user.created process")
        .unwrap();
    let nested = spans.iter().find(|s| s.name == "nested").unwrap();
    assert_eq!(process.trace_id, publish.trace_id);
    assert_eq!(process.parent_span_id, publish.span_id);
    assert_eq!(process.kind, SpanKind::Consumer);
    assert_eq!(process.service, consumer_service);
    assert_eq!(nested.parent_span_id, process.span_id);
    assert_eq!(
        nested.service, consumer_service,
        "inherits the current span's service"
    );
}
