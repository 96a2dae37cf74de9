use std::time::Duration;

use forten_shared::client::{
    CircuitBreaker, CircuitBreakerConfig, CircuitEvent, CircuitState, RetryPolicy, ServiceClient,
};
use forten_shared::discovery::BalanceStrategy;
use forten_shared::telemetry::Metrics;
use tokio::sync::broadcast;

use crate::Cluster;
use crate::support::{FAIL_500, OK, unique, wait_until};

fn next(rx: &mut broadcast::Receiver<CircuitEvent>) -> (CircuitState, CircuitState) {
    let e = rx.try_recv().unwrap();
    (e.from, e.to)
}

#[tokio::test]
async fn circuit_opens_fails_fast_probes_closes_and_reopens() {
    let cluster = Cluster::start(1, BalanceStrategy::RoundRobin).await;
    let backend = &cluster.backends[0];
    let caller = unique("breaker-caller");
    let client = ServiceClient::builder(&cluster.service, cluster.discovery.clone())
        .caller(&caller)
        .circuit_breaker(
            CircuitBreakerConfig::default()
                .failure_threshold(3)
                .success_threshold(2)
                .reset_timeout(Duration::from_millis(300)),
        )
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let mut events = client.circuit_events();

    backend.set_mode(FAIL_500);
    for _ in 0..3 {
        assert_eq!(client.get("/x").send().await.unwrap().status(), 500);
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
    // Fails fast: nothing reaches the server.
    for _ in 0..5 {
        let err = client.get("/x").send().await.unwrap_err();
        assert_eq!(err.to_string(), "Circuit breaker is OPEN");
    }
    assert_eq!(backend.hits(), 3);
    let gauge = format!(
        "circuit_breaker_state{{service=\"{caller}\",target=\"{}\"}} 2",
        cluster.service
    );
    assert!(Metrics::new(&caller).render().contains(&gauge));

    // After reset_timeout: half-open, probes go through; two successes close it.
    backend.set_mode(OK);
    wait_until("half-open", Duration::from_secs(10), || async {
        client.circuit_state() == CircuitState::HalfOpen
    })
    .await;
    assert_eq!(client.get("/x").send().await.unwrap().status(), 200);
    assert_eq!(client.circuit_state(), CircuitState::HalfOpen);
    assert_eq!(client.get("/x").send().await.unwrap().status(), 200);
    assert_eq!(client.circuit_state(), CircuitState::Closed);

    // Open again; a failed probe re-opens it.
    backend.set_mode(FAIL_500);
    for _ in 0..3 {
        client.get("/x").send().await.unwrap();
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
    wait_until("half-open again", Duration::from_secs(10), || async {
        client.circuit_state() == CircuitState::HalfOpen
    })
    .await;
    assert_eq!(client.get("/x").send().await.unwrap().status(), 500);
    assert_eq!(client.circuit_state(), CircuitState::Open);
    assert_eq!(backend.hits(), 3 + 2 + 3 + 1);

    use CircuitState::*;
    let seen: Vec<_> = (0..6).map(|_| next(&mut events)).collect();
    assert_eq!(
        seen,
        vec![
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open)
        ]
    );
    let text = Metrics::new(&caller).render();
    assert!(text.contains("outcome=\"circuit_open\"} 5"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_a_bounded_number_of_probes() {
    let breaker = CircuitBreaker::new(
        "svc",
        CircuitBreakerConfig::default()
            .failure_threshold(1)
            .success_threshold(2)
            .half_open_max_probes(2)
            .reset_timeout(Duration::from_secs(60)),
        None,
    )
    .unwrap();
    breaker.acquire().unwrap().record(false);
    assert_eq!(breaker.state(), CircuitState::Open);
    assert!(breaker.acquire().is_err());
    tokio::time::advance(Duration::from_secs(61)).await;
    let a = breaker.acquire().unwrap();
    let b = breaker.acquire().unwrap();
    assert!(breaker.acquire().is_err(), "third probe refused");
    drop(a); // cancelled: frees its slot without counting
    let c = breaker.acquire().unwrap();
    b.record(true);
    c.record(true);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn late_answer_from_before_opening_does_not_count() {
    let breaker = CircuitBreaker::new(
        "svc",
        CircuitBreakerConfig::default().failure_threshold(1),
        None,
    )
    .unwrap();
    let slow = breaker.acquire().unwrap();
    breaker.acquire().unwrap().record(false);
    assert_eq!(breaker.state(), CircuitState::Open);
    slow.record(true); // a success from the previous period must not close it
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn breaker_layer_fails_fast_without_calling_the_inner_service() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use forten_shared::client::{CircuitBreakerLayer, is_circuit_open};
    use tower::{ServiceBuilder, ServiceExt as _, service_fn};

    let calls = Arc::new(AtomicUsize::new(0));
    let breaker = CircuitBreaker::new(
        "svc",
        CircuitBreakerConfig::default().failure_threshold(2),
        None,
    )
    .unwrap();
    let counter = calls.clone();
    let svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .service(service_fn(move |_req: http::Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder().status(502).body(()).unwrap(),
                )
            }
        }));
    for _ in 0..2 {
        let res = svc.clone().oneshot(http::Request::new(())).await.unwrap();
        assert_eq!(res.status(), 502);
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    let err = svc
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap_err();
    assert!(is_circuit_open(&*err));
    assert_eq!(err.to_string(), "Circuit breaker is OPEN");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
