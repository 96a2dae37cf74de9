//! Readiness turns 503 when draining starts, while in-flight requests still complete.

use std::time::Duration;

use axum::{Router, routing::get};
use forten_shared::Observability;
use tokio::sync::{Notify, oneshot};

#[tokio::test]
async fn readiness_is_503_at_drain_start_while_in_flight_requests_complete() {
    let obs = Observability::new("drain-svc", "1.0.0");
    let release = std::sync::Arc::new(Notify::new());
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let started_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let gate = release.clone();
    let app = obs.apply(Router::new().route(
        "/slow",
        get(move || {
            let gate = gate.clone();
            let started = started_tx.lock().unwrap().take();
            async move {
                if let Some(tx) = started {
                    let _ = tx.send(());
                }
                gate.notified().await;
                "done"
            }
        }),
    ));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (signal_tx, signal_rx) = oneshot::channel::<()>();
    // A long grace keeps the listener open for the whole test: nothing here waits on it.
    let shutdown = obs.health().drain_on(
        async move {
            let _ = signal_rx.await;
        },
        Duration::from_secs(3600),
    );
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .unwrap();
    });

    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{url}/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let slow = tokio::spawn({
        let client = client.clone();
        let url = format!("{url}/slow");
        async move {
            let res = client.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    });
    started_rx.await.unwrap();

    signal_tx.send(()).unwrap();
    while !obs.health().is_draining() {
        tokio::task::yield_now().await;
    }
    let res = reqwest::Client::new()
        .get(format!("{url}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["reason"], "draining");
    assert_eq!(
        reqwest::Client::new()
            .get(format!("{url}/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still alive while draining"
    );

    release.notify_one();
    assert_eq!(slow.await.unwrap(), (200, "done".to_owned()));
}
