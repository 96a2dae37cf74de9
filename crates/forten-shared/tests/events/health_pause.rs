//! Health drives consumption: a failing critical check pauses the bus's consumers (messages
//! wait in the queue, none is dead-lettered) and they resume on recovery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use forten_shared::events::{HandlerError, Subscribe, UserDeleted};
use forten_shared::health::ConnectionState;
use forten_shared::{Event, EventBuilder, HealthCheck, HealthMonitor};

use crate::support::{TestBroker, eventually, unique};

#[tokio::test]
async fn a_failing_critical_check_pauses_consumers_until_recovery() {
    let broker = TestBroker::new("health");
    let bus = broker.bus("health-svc").await;
    let queue = unique("health");

    let database_up = Arc::new(AtomicBool::new(true));
    let monitor = HealthMonitor::new("health-svc", "1.0.0");
    let up = database_up.clone();
    monitor.register(
        HealthCheck::new("postgres", move || {
            let ok = up.load(Ordering::SeqCst);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("connection refused")
                }
            }
        })
        .critical(true)
        .interval(Duration::from_millis(50)),
    );
    monitor.start();
    bus.pause_while_unhealthy(monitor.subscribe_critical());
    assert!(ConnectionState::is_connected(&bus));

    let handled = Arc::new(AtomicUsize::new(0));
    let (h, up) = (handled.clone(), database_up.clone());
    let sub = bus
        .subscribe(
            Subscribe::new(&queue).pattern("user.deleted").retries(0),
            move |_e: Event| {
                let ok = up.load(Ordering::SeqCst);
                if ok {
                    h.fetch_add(1, Ordering::SeqCst);
                }
                // without the pause, this would send the event straight to the DLQ (retries 0)
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err(HandlerError::transient("database down"))
                    }
                }
            },
        )
        .await
        .unwrap();
    bus.publish(
        &EventBuilder::new(
            UserDeleted {
                user_id: "1".into(),
            },
            "t",
        )
        .build(),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(30), "handled while healthy", || {
        handled.load(Ordering::SeqCst) == 1
    })
    .await;

    database_up.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(30), "subscription paused", || {
        sub.is_paused()
    })
    .await;
    // let the consumer notice and cancel
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        bus.publish(
            &EventBuilder::new(
                UserDeleted {
                    user_id: format!("p{i}"),
                },
                "t",
            )
            .build(),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "nothing handled while the database is down"
    );
    assert!(
        bus.dead_letters(&queue, 10).await.unwrap().is_empty(),
        "nothing dead-lettered"
    );

    database_up.store(true, Ordering::SeqCst);
    eventually(
        Duration::from_secs(30),
        "resumed and handled everything",
        || handled.load(Ordering::SeqCst) == 6,
    )
    .await;
    assert!(!sub.is_paused());
    assert!(bus.dead_letters(&queue, 10).await.unwrap().is_empty());

    monitor.stop();
    broker.finish(&[&bus], &[&queue]).await;
}

#[tokio::test]
async fn an_owner_pause_survives_health_recovery() {
    let bus = forten_shared::EventBus::in_process("svc");
    let (health, critical) = tokio::sync::watch::channel(true);
    bus.pause_while_unhealthy(critical);
    let sub = bus
        .subscribe(Subscribe::new("q").pattern("#"), |_e: Event| async {})
        .await
        .unwrap();
    sub.pause();
    health.send_replace(false);
    eventually(Duration::from_secs(5), "paused", || sub.is_paused()).await;
    health.send_replace(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(sub.is_paused(), "the owner's pause still holds");
    sub.resume();
    assert!(!sub.is_paused());
}
