//! A burst of probes never reaches the database: checks run in the background only.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use forten_shared::{HealthCheck, HealthMonitor, health::routes};

use crate::start_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_probes_run_the_db_check_once() {
    let pings = Arc::new(AtomicUsize::new(0));
    let counter = pings.clone();
    let monitor = HealthMonitor::new("svc", "1.0.0");
    monitor.register(
        HealthCheck::database("postgres", move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, String>(()) }
        })
        .interval(Duration::from_secs(3600)),
    );
    monitor.start();
    monitor.wait_until_checked().await;
    let url = start_server(routes(monitor.clone())).await;

    let client = reqwest::Client::new();
    let probes = (0..1000).map(|i| {
        let client = client.clone();
        let path = ["/health", "/health/ready", "/health/live"][i % 3];
        let url = format!("{url}{path}");
        tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
    });
    let statuses = futures_util::future::join_all(probes).await;
    assert!(statuses.into_iter().all(|s| s.unwrap() == 200));
    assert_eq!(
        pings.load(Ordering::SeqCst),
        1,
        "one run per interval, whatever the probes"
    );
    assert_eq!(monitor.runs("postgres"), Some(1));
    monitor.stop();
}

#[tokio::test(start_paused = true)]
async fn checks_rerun_on_their_interval_only() {
    let monitor = HealthMonitor::new("svc", "1.0.0");
    monitor.register(
        HealthCheck::database("postgres", || async { Ok::<_, String>(()) })
            .interval(Duration::from_secs(10)),
    );
    monitor.start();
    monitor.wait_until_checked().await;
    assert_eq!(monitor.runs("postgres"), Some(1));
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(monitor.runs("postgres"), Some(1), "not before the interval");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        monitor.runs("postgres"),
        Some(2),
        "once the interval has passed"
    );
    monitor.stop();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(monitor.runs("postgres"), Some(2), "stopped");
}
