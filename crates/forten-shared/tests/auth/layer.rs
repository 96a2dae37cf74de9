//! The layer without a socket: identity in extensions, metrics by outcome.

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use forten_shared::auth::ServiceIdentity;
use http::Request;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::ServiceExt as _;

use crate::support::*;

#[test]
fn accepted_and_rejected_requests_are_counted_by_reason() {
    init();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let server = shared("monitoring-service", &[]);
            let app = Router::new()
                .route(
                    "/internal/doors",
                    get(|Extension(id): Extension<ServiceIdentity>| async move { id.name }),
                )
                .layer(server.layer(["internal:read"]));
            let client = shared("access-service", &["internal:read"]);
            let token = client.token("monitoring-service").await.expect("token");
            let ok = app
                .clone()
                .oneshot(
                    Request::get("/internal/doors")
                        .header("authorization", format!("Bearer {token}"))
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("infallible");
            assert_eq!(ok.status(), 200);
            let body = axum::body::to_bytes(ok.into_body(), 1024)
                .await
                .expect("body");
            assert_eq!(&body[..], b"access-service");
            let missing = app
                .oneshot(
                    Request::get("/internal/doors")
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("infallible");
            assert_eq!(missing.status(), 401);
        });
    });
    let counts: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "service_auth_requests_total")
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let n = match value {
                DebugValue::Counter(n) => n,
                _ => 0,
            };
            (labels.join(","), n)
        })
        .collect();
    assert!(
        counts.contains(&(
            "service=monitoring-service,outcome=accepted,reason=ok".into(),
            1
        )),
        "{counts:?}"
    );
    assert!(
        counts.contains(&(
            "service=monitoring-service,outcome=rejected,reason=missing_token".into(),
            1
        )),
        "{counts:?}"
    );
}
