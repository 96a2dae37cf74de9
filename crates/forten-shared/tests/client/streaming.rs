//! `RequestBuilder::send_streaming`: the body arrives as it is produced, and everything up to
//! the response head (balancing, retries, breaker) works as for `send`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::get;
use forten_shared::client::{CircuitBreakerConfig, CircuitState, RetryPolicy, ServiceClient};
use forten_shared::discovery::{BalanceStrategy, Registration};
use futures_util::StreamExt as _;
use tokio::sync::{Mutex, mpsc};

use crate::support::{FAIL_500, TestServer, UNAVAILABLE, unique};
use crate::{Cluster, fast_retries, lenient_breaker};

/// A backend whose `/stream` answers 200 at once and sends each chunk the test pushes into
/// the channel; the body ends when the test drops its sender.
async fn gated_backend() -> (TestServer, mpsc::UnboundedSender<&'static str>) {
    let (tx, rx) = mpsc::unbounded_channel::<&'static str>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let app = Router::new().route(
        "/stream",
        get(move || {
            let rx = rx.clone();
            async move {
                let rx = rx.lock().await.take().expect("one streamed request");
                let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv()
                        .await
                        .map(|c| (Ok::<_, std::io::Error>(Bytes::from(c)), rx))
                });
                ([("content-type", "text/plain")], Body::from_stream(chunks))
            }
        }),
    );
    (TestServer::start(app).await, tx)
}

#[tokio::test]
async fn the_body_arrives_chunk_by_chunk_before_it_is_complete() {
    let cluster = Cluster::start(0, BalanceStrategy::RoundRobin).await;
    let (server, tx) = gated_backend().await;
    cluster
        .registry
        .register(
            Registration::new(&cluster.service, "1", "127.0.0.1", server.addr.port())
                .health_check_url(None),
        )
        .await
        .unwrap();
    let client = cluster.client(lenient_breaker(), RetryPolicy::none());

    tx.send("first;").unwrap();
    let res = client.get("/stream").send_streaming().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.instance_url(), server.url);
    let mut body = res.into_body();
    // The last chunk does not exist yet: only the first can have arrived.
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first;");

    tx.send("second;").unwrap();
    tx.send("last").unwrap();
    drop(tx);
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"second;last");
    server.stop().await;
}

#[tokio::test]
async fn a_failing_status_is_retried_elsewhere_before_the_head_is_returned() {
    let cluster = Cluster::start(2, BalanceStrategy::RoundRobin).await;
    cluster.backends[0].set_mode(UNAVAILABLE); // 503 without Retry-After
    let client = cluster.client(lenient_breaker(), fast_retries(2));
    for _ in 0..4 {
        let mut res = client.get("/x").send_streaming().await.unwrap();
        assert_eq!(res.status(), 200);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.unwrap() {
            body.extend_from_slice(&chunk);
        }
        assert_eq!(body, b"b1", "answered by the healthy instance");
    }
    assert!(
        cluster.backends[0].hits() >= 1,
        "the failing instance was tried"
    );
    assert_eq!(cluster.backends[1].hits(), 4);
}

#[tokio::test]
async fn the_breaker_counts_streamed_calls_by_their_status() {
    let cluster = Cluster::start(1, BalanceStrategy::RoundRobin).await;
    cluster.backends[0].set_mode(FAIL_500);
    let client = ServiceClient::builder(&cluster.service, cluster.discovery.clone())
        .caller(unique("stream-caller"))
        .circuit_breaker(
            CircuitBreakerConfig::default()
                .failure_threshold(2)
                .reset_timeout(Duration::from_secs(60)),
        )
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    for _ in 0..2 {
        let res = client.get("/x").send_streaming().await.unwrap();
        assert_eq!(
            res.status(),
            500,
            "an error status is an answer, not an Err"
        );
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
    let err = client.get("/x").send_streaming().await.unwrap_err();
    assert!(err.is_circuit_open());
    assert_eq!(cluster.backends[0].hits.load(Ordering::SeqCst), 2);
}
