use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use forten_shared::RequestContext;
use forten_shared::client::{
    ClientError, DEADLINE_HEADER, DeadlineLayer, RetryPolicy, ServiceClient, StaticAuthHeader,
};
use forten_shared::discovery::{BalanceStrategy, Registration};

use crate::support::TestServer;
use crate::{Cluster, lenient_breaker};

#[tokio::test]
async fn calls_carry_token_correlation_trace_and_deadline() {
    let cluster = Cluster::start(1, BalanceStrategy::RoundRobin).await;
    let client = ServiceClient::builder(&cluster.service, cluster.discovery.clone())
        .auth(Arc::new(StaticAuthHeader::bearer("service-token").unwrap()))
        .build()
        .unwrap();
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    RequestContext::new("corr-42")
        .with_traceparent(tp)
        .scope(async { client.get("/x").query("a", "b c").send().await.unwrap() })
        .await;
    let headers = cluster.backends[0].last_headers.lock().unwrap().clone();
    assert_eq!(headers["authorization"], "Bearer service-token");
    assert_eq!(headers["x-correlation-id"], "corr-42");
    assert!(headers.contains_key("traceparent"));
    assert!(headers.contains_key(DEADLINE_HEADER));
}

#[tokio::test]
async fn nested_call_gets_no_more_than_the_callers_deadline() {
    // B is slow; A calls B while handling a request whose caller allows 300 ms.
    let cluster = Cluster::start(1, BalanceStrategy::RoundRobin).await;
    cluster.backends[0].delay_ms.store(5_000, Ordering::SeqCst);
    let to_b = cluster.client(lenient_breaker(), RetryPolicy::none()); // 10 s attempt timeout
    let a = TestServer::start(
        Router::new()
            .route(
                "/a",
                get(move || {
                    let to_b = to_b.clone();
                    async move {
                        match to_b.get("/slow").send().await {
                            Err(ClientError::Timeout { after, .. }) => {
                                format!("timeout {}", after.as_millis())
                            }
                            other => format!("unexpected {other:?}"),
                        }
                    }
                }),
            )
            .layer(DeadlineLayer),
    )
    .await;
    cluster
        .registry
        .register(
            Registration::new("caller-a", "1", "127.0.0.1", a.addr.port()).health_check_url(None),
        )
        .await
        .unwrap();
    // A's caller allows 300 ms (a bare client sending the header, waiting up to 5 s).
    let mut headers = http::HeaderMap::new();
    forten_shared::client::Deadline::inject(
        &mut headers,
        tokio::time::Instant::now() + Duration::from_millis(300),
    );
    let res = reqwest::Client::new()
        .get(format!("{}/a", a.url))
        .headers(headers)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let budget: u128 = text.strip_prefix("timeout ").expect(&text).parse().unwrap();
    assert!(budget <= 300, "inner call allowed {budget} ms");
    a.stop().await;
}
