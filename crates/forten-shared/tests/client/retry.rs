use std::sync::atomic::Ordering;
use std::time::Duration;

use forten_shared::client::RetryPolicy;
use forten_shared::discovery::{BalanceStrategy, Registration};
use tokio::time::Instant;

use crate::support::{UNAVAILABLE, UNAVAILABLE_RETRY_AFTER};
use crate::{Cluster, fast_retries, lenient_breaker};

#[tokio::test]
async fn post_is_not_retried_after_it_was_sent_unless_idempotent() {
    let cluster = Cluster::start(1, BalanceStrategy::RoundRobin).await;
    cluster.backends[0].set_mode(UNAVAILABLE);
    let client = cluster.client(lenient_breaker(), fast_retries(3));
    let res = client
        .post("/api/doors")
        .json(&serde_json::json!({"name": "d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(cluster.backends[0].hits(), 1, "POST sent once");

    let res = client
        .post("/api/doors")
        .idempotent(true)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        cluster.backends[0].hits(),
        1 + 4,
        "marked idempotent: 1 + 3 retries"
    );

    let res = client.get("/api/doors").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(cluster.backends[0].hits(), 5 + 4, "GET: 1 + 3 retries");
}

#[tokio::test]
async fn post_is_retried_when_the_connection_was_refused() {
    let cluster = Cluster::start(1, BalanceStrategy::RoundRobin).await;
    // A dead instance (nothing listens on its port) next to the live one.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    cluster
        .registry
        .register(
            Registration::new(&cluster.service, "1", "127.0.0.1", dead_port).health_check_url(None),
        )
        .await
        .unwrap();
    let client = cluster.client(lenient_breaker(), fast_retries(2));
    for _ in 0..6 {
        let res = client.post("/api/doors").send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        cluster.backends[0].hits(),
        6,
        "each POST reached the live instance once"
    );
}

#[tokio::test]
async fn retry_after_on_503_is_honoured() {
    let cluster = Cluster::start(1, BalanceStrategy::RoundRobin).await;
    cluster.backends[0].fail_first.store(1, Ordering::SeqCst);
    let client = cluster.client(
        lenient_breaker(),
        RetryPolicy::default()
            .max_retries(2)
            .initial_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(2)),
    );
    let started = Instant::now();
    let res = client.get("/x").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(cluster.backends[0].hits(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After: 1"
    );

    // A Retry-After longer than max_retry_after is not waited for.
    cluster.backends[0].set_mode(UNAVAILABLE_RETRY_AFTER);
    let client = cluster.client(
        lenient_breaker(),
        fast_retries(3).max_retry_after(Duration::from_millis(500)),
    );
    let res = client.get("/x").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(cluster.backends[0].hits(), 3);
}

#[tokio::test]
async fn retry_budget_caps_attempts_under_a_failing_target() {
    let cluster = Cluster::start(1, BalanceStrategy::RoundRobin).await;
    cluster.backends[0].set_mode(UNAVAILABLE);
    // 10 % of requests may be retried, no floor: 50 calls → at most ~5 retries, where
    // `max_retries(3)` alone would allow 150.
    let client = cluster.client(
        lenient_breaker(),
        RetryPolicy::default()
            .max_retries(3)
            .initial_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(2))
            .budget(0.1, 0, Duration::from_secs(10)),
    );
    for _ in 0..50 {
        assert_eq!(client.get("/x").send().await.unwrap().status(), 503);
    }
    let hits = cluster.backends[0].hits();
    assert!((50..=56).contains(&hits), "{hits} attempts for 50 calls");
}
