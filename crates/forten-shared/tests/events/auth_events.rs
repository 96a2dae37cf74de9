//! Authenticated publishers on the real broker: a forged, missing or unauthorised publisher
//! identity sends the event to the DLQ with the reason, never to the handler.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use forten_shared::auth::{EventAuthenticator, PublishPolicy, ServiceAuth, ServiceAuthConfig};
use forten_shared::events::{DoorForced, Severity, Subscribe};
use forten_shared::{Event, EventBuilder, EventBus};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;

use crate::support::{TestBroker, eventually, unique};

const SECRET: &str = "events-test-secret-of-at-least-32-bytes!";

fn policy() -> PublishPolicy {
    PublishPolicy::new()
        .allow("door.forced", ["access-service"])
        .allow("camera.*", ["monitoring-service"])
}

fn authenticator(service: &str, secret: &str) -> EventAuthenticator {
    let auth = ServiceAuth::new(ServiceAuthConfig::shared_secret(service, secret)).unwrap();
    EventAuthenticator::new(&auth, policy()).unwrap()
}

fn forced(source: &str, door: &str) -> Event {
    EventBuilder::new(
        DoorForced {
            door_id: door.into(),
            building_id: "b1".into(),
            timestamp: chrono::Utc::now(),
            severity: Severity::Critical,
        },
        source,
    )
    .subject(door)
    .build()
}

#[tokio::test]
async fn only_verified_allowed_publishers_reach_the_handler() {
    let broker = TestBroker::new("authn");
    let queue = unique("authn");
    let consumer = broker
        .bus("analytics-service")
        .await
        .authenticate_with(authenticator("analytics-service", SECRET));
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    let h = handled.clone();
    consumer
        .subscribe(
            Subscribe::new(&queue).pattern("#").require_publisher(true),
            move |e: Event| {
                h.lock()
                    .unwrap()
                    .push(e.subject.clone().unwrap_or_default());
                async {}
            },
        )
        .await
        .unwrap();

    // the legitimate publisher
    let access = broker
        .bus("access-service")
        .await
        .authenticate_with(authenticator("access-service", SECRET));
    access
        .publish(&forced("access-service", "legit"))
        .await
        .unwrap();
    // a service the policy does not allow for door.forced, with a valid identity
    let monitoring = broker
        .bus("monitoring-service")
        .await
        .authenticate_with(authenticator("monitoring-service", SECRET));
    monitoring
        .publish(&forced("monitoring-service", "not-allowed"))
        .await
        .unwrap();
    // no identity at all
    let anonymous = broker.bus("access-service").await;
    anonymous
        .publish(&forced("access-service", "missing"))
        .await
        .unwrap();
    // a token minted with another secret (forged identity)
    let forger = broker
        .bus("access-service")
        .await
        .authenticate_with(authenticator(
            "access-service",
            "a-completely-different-secret-32-bytes!!",
        ));
    forger
        .publish(&forced("access-service", "forged-token"))
        .await
        .unwrap();
    // a genuine signature lifted onto altered data
    let mut tampered = forced("access-service", "original");
    authenticator("access-service", SECRET)
        .sign(&mut tampered)
        .await
        .unwrap();
    tampered.subject = Some("tampered".into());
    if let forten_shared::events::EventData::DoorForced(d) = &mut tampered.data {
        d.door_id = "tampered".into();
    }
    let conn = broker.raw().await;
    let ch = conn.create_channel().await.unwrap();
    ch.basic_publish(
        broker.exchange.as_str().into(),
        "door.forced".into(),
        BasicPublishOptions::default(),
        &tampered.to_vec().unwrap(),
        BasicProperties::default(),
    )
    .await
    .unwrap();

    eventually(
        Duration::from_secs(30),
        "the legitimate event handled",
        || !handled.lock().unwrap().is_empty(),
    )
    .await;
    for _ in 0..500 {
        if consumer.dead_letters(&queue, 10).await.unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        *handled.lock().unwrap(),
        vec!["legit".to_owned()],
        "only the verified, allowed publisher got through"
    );
    let dlq = consumer.dead_letters(&queue, 10).await.unwrap();
    assert_eq!(dlq.len(), 4, "{dlq:?}");
    let reason_of = |door: &str| {
        dlq.iter()
            .find(|d| Event::from_slice(&d.body).unwrap().subject.as_deref() == Some(door))
            .map(|d| d.error.clone())
            .unwrap_or_else(|| panic!("{door} in the DLQ"))
    };
    assert!(
        reason_of("not-allowed").contains("publisher_not_allowed"),
        "{}",
        reason_of("not-allowed")
    );
    assert!(
        reason_of("missing").contains("unauthenticated publisher"),
        "{}",
        reason_of("missing")
    );
    assert!(
        reason_of("forged-token").contains("unauthenticated publisher"),
        "{}",
        reason_of("forged-token")
    );
    assert!(
        reason_of("tampered").contains("unauthenticated publisher"),
        "{}",
        reason_of("tampered")
    );
    assert!(dlq.iter().all(|d| d.attempts == 1), "never retried");

    let _ = conn.close(200, "bye".into()).await;
    broker
        .finish(
            &[&consumer, &access, &monitoring, &anonymous, &forger],
            &[&queue],
        )
        .await;
}

#[tokio::test]
async fn requiring_publishers_needs_an_authenticator() {
    let bus = EventBus::in_process("svc");
    let err = bus
        .subscribe(
            Subscribe::new("q").pattern("#").require_publisher(true),
            |_e: Event| async {},
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no authenticator"), "{err}");
}
