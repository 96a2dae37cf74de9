//! Degraded, unhealthy, timeouts, recovery, and the critical watch.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use forten_shared::{HealthCheck, HealthMonitor, health::routes};

use crate::{get_json, start_server};

fn toggle(name: &str, up: &Arc<AtomicBool>) -> HealthCheck {
    let up = up.clone();
    HealthCheck::new(name, move || {
        let ok = up.load(Ordering::SeqCst);
        async move {
            if ok {
                Ok(())
            } else {
                Err("connection refused")
            }
        }
    })
}

#[tokio::test]
async fn report_has_the_spec_shape() {
    let monitor = HealthMonitor::with_instance_id("auth-service", "1.0.0", "inst-1");
    monitor.register(HealthCheck::database("postgres", || async {
        Ok::<_, String>(())
    }));
    monitor.check_now().await;
    let url = start_server(routes(monitor)).await;
    let (status, body) = get_json(&format!("{url}/health")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "auth-service");
    assert_eq!(body["version"], "1.0.0");
    assert_eq!(body["instanceId"], "inst-1");
    assert!(body["uptimeSeconds"].is_u64());
    let check = &body["checks"][0];
    assert_eq!(check["name"], "postgres");
    assert_eq!(check["status"], "healthy");
    assert_eq!(check["critical"], true);
    assert!(check["latencyMs"].is_f64());
    assert!(check["message"].is_null());
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    let (live, _) = get_json(&format!("{url}/health/live")).await;
    assert_eq!(live, 200);
}

#[tokio::test]
async fn failing_non_critical_check_degrades_but_stays_ready() {
    let up = Arc::new(AtomicBool::new(false));
    let monitor = HealthMonitor::new("svc", "1.0.0");
    monitor.register(toggle("cache", &up));
    monitor.check_now().await;
    let url = start_server(routes(monitor.clone())).await;

    let (status, body) = get_json(&format!("{url}/health")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("degraded")));
    assert_eq!(body["checks"][0]["message"], "connection refused");
    assert_eq!(get_json(&format!("{url}/health/ready")).await.0, 200);

    up.store(true, Ordering::SeqCst);
    monitor.check_now().await;
    let (status, body) = get_json(&format!("{url}/health")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("healthy")));
}

#[tokio::test]
async fn failing_critical_check_is_unhealthy_unready_and_recovers() {
    let up = Arc::new(AtomicBool::new(true));
    let monitor = HealthMonitor::new("svc", "1.0.0");
    monitor.register(toggle("postgres", &up).critical(true));
    let mut critical = monitor.subscribe_critical();
    monitor.check_now().await;
    let url = start_server(routes(monitor.clone())).await;
    assert_eq!(get_json(&format!("{url}/health/ready")).await.0, 200);
    assert!(*critical.borrow_and_update());

    up.store(false, Ordering::SeqCst);
    monitor.check_now().await;
    let (status, body) = get_json(&format!("{url}/health")).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("unhealthy")));
    let (status, body) = get_json(&format!("{url}/health/ready")).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"][0], "postgres");
    assert_eq!(
        get_json(&format!("{url}/health/live")).await.0,
        200,
        "liveness ignores deps"
    );
    assert!(critical.has_changed().unwrap());
    assert!(
        !*critical.borrow_and_update(),
        "the bus would pause consumers now"
    );

    up.store(true, Ordering::SeqCst);
    monitor.check_now().await;
    assert_eq!(get_json(&format!("{url}/health")).await.0, 200);
    assert_eq!(get_json(&format!("{url}/health/ready")).await.0, 200);
    assert!(*critical.borrow_and_update(), "and resume them");
}

#[tokio::test]
async fn a_check_that_times_out_counts_as_failed() {
    let monitor = HealthMonitor::new("svc", "1.0.0");
    monitor.register(
        HealthCheck::database("postgres", std::future::pending::<Result<(), String>>)
            .timeout(Duration::from_millis(20)),
    );
    monitor.register(
        HealthCheck::new("search", std::future::pending::<Result<(), String>>)
            .timeout(Duration::from_millis(20)),
    );
    monitor.check_now().await;
    let report = monitor.report();
    assert_eq!(
        report.status,
        forten_shared::health::HealthStatus::Unhealthy
    );
    for check in &report.checks {
        assert_eq!(check.message.as_deref(), Some("timed out after 20 ms"));
    }
    assert!(!monitor.is_ready());
}

#[tokio::test]
async fn rabbitmq_and_http_service_checks() {
    let connected = Arc::new(AtomicBool::new(false));
    let source = connected.clone();
    let peer = HealthMonitor::new("peer", "1.0.0");
    let peer_url = start_server(routes(peer.clone())).await;

    let monitor = HealthMonitor::new("svc", "1.0.0");
    monitor
        .register(HealthCheck::rabbitmq(
            "rabbitmq",
            Arc::new(move || source.load(Ordering::SeqCst)),
        ))
        .register(HealthCheck::http_service("peer", peer_url.clone()));
    monitor.check_now().await;
    let report = monitor.report();
    assert_eq!(report.checks[0].message.as_deref(), Some("not connected"));
    assert!(report.checks[1].message.is_none(), "{:?}", report.checks[1]);

    connected.store(true, Ordering::SeqCst);
    peer.start_draining();
    monitor.check_now().await;
    let report = monitor.report();
    assert!(report.checks[0].message.is_none());
    assert_eq!(
        report.checks[1].message.as_deref(),
        Some("answered 503 Service Unavailable")
    );
    assert_eq!(report.status, forten_shared::health::HealthStatus::Degraded);
}
