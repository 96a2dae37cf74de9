//! OTLP/HTTP protobuf export reaches a real receiver on loopback.

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use forten_shared::telemetry::{TelemetryConfig, TraceExport, Tracer, build_subscriber};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::sync::mpsc;

use crate::support::{start_server, unique};

async fn receive(
    State(tx): State<mpsc::UnboundedSender<ExportTraceServiceRequest>>,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    match ExportTraceServiceRequest::decode(body) {
        Ok(req) => {
            let _ = tx.send(req);
            (
                StatusCode::OK,
                [("content-type", "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            [("content-type", "text/plain")],
            Vec::new(),
        ),
    }
}

#[tokio::test]
async fn spans_are_exported_over_otlp_http() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let collector = start_server(
        Router::new()
            .route("/v1/traces", post(receive))
            .with_state(tx),
    )
    .await;

    let service = unique("otlp-svc");
    let config = TelemetryConfig::new(service.clone()).with_export(TraceExport::Otlp {
        endpoint: Some(collector),
    });
    let (subscriber, guard) = build_subscriber(&config, std::io::sink).unwrap();
    {
        let _default = tracing::subscriber::set_default(subscriber);
        let tracer = Tracer::new(service.clone());
        let root = tracer.start_span("checkout");
        let child = tracer.start_child_span("db.insert", &root);
        child.set_attribute("db.table", "orders");
        child.end();
        root.end();
    }
    // The batch exporter blocks: flush from a blocking thread while this runtime serves.
    tokio::task::spawn_blocking(move || {
        guard.force_flush().unwrap();
        drop(guard);
    })
    .await
    .unwrap();

    let mut names = Vec::new();
    let mut services = Vec::new();
    while let Ok(req) = rx.try_recv() {
        for rs in req.resource_spans {
            let svc = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                });
            services.extend(svc);
            for ss in rs.scope_spans {
                names.extend(ss.spans.into_iter().map(|s| s.name));
            }
        }
    }
    assert!(services.contains(&service), "{services:?}");
    names.sort();
    assert_eq!(names, ["checkout", "db.insert"]);
}
