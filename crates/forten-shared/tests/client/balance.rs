use std::sync::Arc;
use std::sync::atomic::Ordering;

use forten_shared::client::RetryPolicy;
use forten_shared::discovery::{BalanceStrategy, DiscoveryConfig};
use forten_shared::telemetry::Metrics;

use crate::{Cluster, fast_retries, lenient_breaker, outlier};

#[tokio::test]
async fn round_robin_spreads_evenly() {
    let cluster = Cluster::start(3, BalanceStrategy::RoundRobin).await;
    let client = cluster.client(lenient_breaker(), RetryPolicy::none());
    for _ in 0..300 {
        let res = client.get("/work").send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(cluster.hits(), vec![100, 100, 100]);
}

#[tokio::test]
async fn random_reaches_every_instance() {
    let cluster = Cluster::start(3, BalanceStrategy::Random).await;
    let client = cluster.client(lenient_breaker(), RetryPolicy::none());
    for _ in 0..300 {
        client.get("/work").send().await.unwrap();
    }
    assert!(
        cluster.hits().iter().all(|&h| h > 0),
        "{:?}",
        cluster.hits()
    );
    assert_eq!(cluster.hits().iter().sum::<usize>(), 300);
}

#[tokio::test]
async fn p2c_favours_the_less_loaded_instance() {
    let cluster = Cluster::start(3, BalanceStrategy::LeastOutstanding).await;
    cluster.backends[0].delay_ms.store(40, Ordering::SeqCst);
    let client = cluster.client(lenient_breaker(), RetryPolicy::none());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    assert_eq!(client.get("/work").send().await.unwrap().status(), 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let hits = cluster.hits();
    assert_eq!(hits.iter().sum::<usize>(), 400);
    assert!(
        hits[0] < hits[1] && hits[0] < hits[2],
        "slow one should get the least: {hits:?}"
    );
}

#[tokio::test]
async fn killed_instance_stops_being_chosen_and_gets_no_call_failing() {
    let mut cluster = Cluster::start_with(
        3,
        DiscoveryConfig::new("http://placeholder").outlier(outlier(2)),
    )
    .await;
    let caller = crate::support::unique("killer");
    let client =
        forten_shared::client::ServiceClient::builder(&cluster.service, cluster.discovery.clone())
            .caller(&caller)
            .circuit_breaker(lenient_breaker())
            .retry_policy(fast_retries(3))
            .build()
            .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let done = done.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let res = client.get("/work").send().await.expect("no call may fail");
                    assert_eq!(res.status(), 200);
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Kill instance 1 once a third of the load has gone through.
    crate::support::wait_until("some load", std::time::Duration::from_secs(30), || async {
        done.load(Ordering::SeqCst) >= 130
    })
    .await;
    let killed = cluster.servers[1].take().unwrap();
    killed.stop().await;
    let hits_at_kill = cluster.backends[1].hits();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 400);
    // After the kill, the other two served everything.
    assert_eq!(cluster.backends[1].hits(), hits_at_kill);
    let text = Metrics::new(&caller).render();
    let failed: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("http_client_requests_total")
                && (l.contains("connect_error") || l.contains("timeout"))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    // 8 callers in flight at the kill, 2 consecutive failures to eject: a handful at most.
    assert!(failed <= 10.0, "{failed} failed attempts:\n{text}");
}
