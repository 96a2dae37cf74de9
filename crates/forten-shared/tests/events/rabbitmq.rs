//! RabbitMQ-specific behaviour: wire format, invalid messages, connection loss, shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use forten_shared::events::*;
use forten_shared::{Event, EventBuilder, EventBus, EventType};
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;

use crate::support::{Proxy, TestBroker, eventually, unique};

const LIMIT: Duration = Duration::from_secs(60);

/// One event of every catalogue type.
fn catalogue() -> Vec<Event> {
    let now = Utc::now();
    let data: Vec<EventData> = vec![
        UserCreated {
            user_id: "u1".into(),
            email: "a@b.c".into(),
            first_name: "Ada".into(),
            last_name: "L".into(),
            role: Role::Operator,
        }
        .into(),
        UserUpdated {
            user_id: "u1".into(),
            changes: serde_json::json!({"lastName": "Lovelace"}),
        }
        .into(),
        UserDeleted {
            user_id: "u1".into(),
        }
        .into(),
        AccessGranted {
            user_id: "u1".into(),
            door_id: "d1".into(),
            building_id: "b1".into(),
            access_method: AccessMethod::Card,
            timestamp: now,
        }
        .into(),
        AccessDenied {
            user_id: None,
            door_id: "d1".into(),
            building_id: "b1".into(),
            access_method: AccessMethod::Biometric,
            reason: "unknown_user".into(),
            timestamp: now,
        }
        .into(),
        DoorForced {
            door_id: "d1".into(),
            building_id: "b1".into(),
            timestamp: now,
            severity: Severity::Critical,
        }
        .into(),
        DoorHeldOpen {
            door_id: "d1".into(),
            building_id: "b1".into(),
            duration_seconds: 95,
            timestamp: now,
        }
        .into(),
        CameraOffline {
            camera_id: "c1".into(),
            building_id: "b1".into(),
            last_seen: now,
            reason: "Network timeout".into(),
        }
        .into(),
        CameraOnline {
            camera_id: "c1".into(),
            building_id: "b1".into(),
            timestamp: now,
            downtime_seconds: 42,
        }
        .into(),
        AlertTriggered {
            alert_id: "a1".into(),
            alert_type: "security".into(),
            severity: Severity::High,
            source: "d1".into(),
            description: "Unauthorized access attempt".into(),
            timestamp: now,
        }
        .into(),
        AlertAcknowledged {
            alert_id: "a1".into(),
            acknowledged_by: "u1".into(),
            timestamp: now,
        }
        .into(),
        AlertResolved {
            alert_id: "a1".into(),
            resolved_by: "u1".into(),
            timestamp: now,
        }
        .into(),
        ServiceRegistered {
            service_name: "auth-service".into(),
            instance_id: "i1".into(),
            url: "http://127.0.0.1:3001".into(),
        }
        .into(),
        ServiceDeregistered {
            service_name: "auth-service".into(),
            instance_id: "i1".into(),
            url: "http://127.0.0.1:3001".into(),
        }
        .into(),
    ];
    assert_eq!(data.len(), EventType::ALL.len(), "one per catalogue type");
    data.into_iter()
        .map(|d| {
            EventBuilder::new(d, "round-trip")
                .subject("s")
                .correlation_id("corr-1")
                .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .build()
        })
        .collect()
}

/// Checks a body against the CloudEvents 1.0 JSON format, attribute by attribute.
fn assert_cloudevent(body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body).expect("body is JSON");
    let obj = v.as_object().expect("a JSON object");
    assert_eq!(obj["specversion"], "1.0");
    for required in ["id", "source", "type"] {
        let s = obj[required]
            .as_str()
            .unwrap_or_else(|| panic!("{required} is a string"));
        assert!(!s.is_empty(), "{required} non-empty");
    }
    // source is a URI-reference; ours are service names (relative references)
    assert!(!obj["source"].as_str().unwrap().contains(' '));
    let ty = obj["type"].as_str().unwrap();
    assert!(
        EventType::ALL.iter().any(|t| t.as_str() == ty),
        "known type {ty}"
    );
    uuid::Uuid::parse_str(obj["id"].as_str().unwrap()).expect("id is a UUID");
    chrono::DateTime::parse_from_rfc3339(obj["time"].as_str().expect("time is a string"))
        .expect("time is RFC 3339");
    assert_eq!(obj["datacontenttype"], "application/json");
    assert!(obj["data"].is_object(), "data is a JSON object");
    assert!(obj["subject"].is_string());
    // extension attribute names: lowercase a-z0-9, at most 20 characters (spec recommendation)
    let context = [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "dataschema",
        "subject",
        "data",
    ];
    for (k, v) in obj {
        if !context.contains(&k.as_str()) {
            assert!(
                k.len() <= 20
                    && k.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "extension name {k}"
            );
            assert!(v.is_string(), "extension {k} is a string");
        }
    }
    assert_eq!(obj["correlationid"], "corr-1");
    let tp = obj["traceparent"].as_str().unwrap();
    assert_eq!(
        tp.split('-').map(str::len).collect::<Vec<_>>(),
        vec![2, 32, 16, 2],
        "W3C traceparent"
    );
    // data fields are camelCase
    for k in obj["data"].as_object().unwrap().keys() {
        assert!(!k.contains('_'), "camelCase field {k}");
    }
}

#[tokio::test]
async fn every_catalogue_type_round_trips_as_a_valid_cloudevent() {
    let broker = TestBroker::new("catalogue");
    let bus = broker.bus("round-trip").await;
    let queue = unique("catalogue");
    let raw_queue = unique("catalogue.raw");

    // a raw queue to see exactly what lands in RabbitMQ
    let conn = broker.raw().await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        raw_queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        raw_queue.as_str().into(),
        broker.exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s = seen.clone();
    bus.subscribe(Subscribe::new(&queue).pattern("#"), move |e: Event| {
        s.lock().unwrap().push(e);
        async {}
    })
    .await
    .unwrap();

    let events = catalogue();
    bus.publish_all(&events).await.unwrap();
    eventually(LIMIT, "all types handled", || {
        seen.lock().unwrap().len() == events.len()
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    for e in &events {
        assert!(seen.contains(e), "{} came back unchanged", e.event_type());
    }

    let mut types = HashSet::new();
    for _ in 0..events.len() {
        let msg = ch
            .basic_get(raw_queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("message in raw queue");
        assert_cloudevent(&msg.delivery.data);
        let p = &msg.delivery.properties;
        assert_eq!(p.delivery_mode(), &Some(2), "persistent");
        assert_eq!(
            p.content_type().as_ref().map(|s| s.as_str()),
            Some("application/cloudevents+json")
        );
        let ev = Event::from_slice(&msg.delivery.data).unwrap();
        assert_eq!(
            msg.delivery.routing_key.as_str(),
            ev.event_type().as_str(),
            "routing key = type"
        );
        assert_eq!(
            p.message_id().as_ref().map(|s| s.as_str()),
            Some(ev.id.as_str())
        );
        types.insert(ev.event_type());
    }
    assert_eq!(types.len(), EventType::ALL.len());

    ch.queue_delete(raw_queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    broker.finish(&[&bus], &[&queue]).await;
}

#[tokio::test]
async fn invalid_messages_go_to_the_dlq_with_the_reason() {
    let broker = TestBroker::new("invalid");
    let bus = broker.bus("invalid").await;
    let queue = unique("invalid");
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    bus.subscribe(Subscribe::new(&queue).pattern("#"), move |_e: Event| {
        h.fetch_add(1, Ordering::SeqCst);
        async {}
    })
    .await
    .unwrap();

    let good = EventBuilder::new(
        UserDeleted {
            user_id: "u".into(),
        },
        "x",
    )
    .build();
    let mut wrong_version: serde_json::Value =
        serde_json::from_slice(&good.to_vec().unwrap()).unwrap();
    wrong_version["specversion"] = "0.3".into();
    let mut unknown_type = wrong_version.clone();
    unknown_type["specversion"] = "1.0".into();
    unknown_type["type"] = "user.teleported".into();
    let mut bad_data = unknown_type.clone();
    bad_data["type"] = "user.deleted".into();
    bad_data["data"] = serde_json::json!({"userId": 42});
    let bodies: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not json".to_vec(), "not a JSON CloudEvent"),
        (
            serde_json::to_vec(&wrong_version).unwrap(),
            "unsupported specversion",
        ),
        (
            serde_json::to_vec(&unknown_type).unwrap(),
            "unknown event type",
        ),
        (
            serde_json::to_vec(&bad_data).unwrap(),
            "does not match the schema",
        ),
    ];
    let conn = broker.raw().await;
    let ch = conn.create_channel().await.unwrap();
    for (body, _) in &bodies {
        ch.basic_publish(
            broker.exchange.as_str().into(),
            "user.deleted".into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    bus.publish(&good).await.unwrap();
    eventually(
        LIMIT,
        "the valid event handled after the invalid ones",
        || handled.load(Ordering::SeqCst) == 1,
    )
    .await;
    let mut dlq = Vec::new();
    for _ in 0..500 {
        dlq = bus.dead_letters(&queue, 10).await.unwrap();
        if dlq.len() == bodies.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dlq.len(), bodies.len());
    for (body, reason) in &bodies {
        let d = dlq
            .iter()
            .find(|d| &d.body == body)
            .expect("body kept unchanged in the DLQ");
        assert!(
            d.error.contains(reason),
            "{:?} should mention {reason}",
            d.error
        );
        assert_eq!(d.attempts, 1);
        assert_eq!(d.routing_key, "user.deleted");
    }
    let _ = conn.close(200, "bye".into()).await;
    broker.finish(&[&bus], &[&queue]).await;
}

/// Connections are cut three times while 10,000 events are published: every accepted event
/// reaches the handler at least once, and exactly once through the dedup wrapper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cuts_lose_nothing_that_publish_accepted() {
    let broker = TestBroker::new("cuts");
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let config = broker
        .config_at(&proxy.url())
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
        .confirm_timeout(Duration::from_secs(5));
    let publisher = broker.bus_with("cuts-publisher", config.clone()).await;
    let consumer = broker.bus_with("cuts-consumer", config).await;
    let (q_plain, q_dedup) = (unique("cuts.plain"), unique("cuts.dedup"));

    let plain: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let exact: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let p = plain.clone();
    consumer
        .subscribe(
            Subscribe::new(&q_plain)
                .pattern("#")
                .prefetch(200)
                .concurrency(32),
            move |e: Event| {
                *p.lock().unwrap().entry(e.id).or_default() += 1;
                async {}
            },
        )
        .await
        .unwrap();
    let x = exact.clone();
    let dedup = Deduplicate::new(
        &q_dedup,
        Arc::new(MemoryDedupStore::default()),
        move |e: Event| {
            *x.lock().unwrap().entry(e.id).or_default() += 1;
            async {}
        },
    );
    consumer
        .subscribe(
            Subscribe::new(&q_dedup)
                .pattern("#")
                .prefetch(200)
                .concurrency(32),
            dedup,
        )
        .await
        .unwrap();
    let mut reconnects = consumer.connection_events();

    let events: Vec<Event> = (0..10_000)
        .map(|i| {
            EventBuilder::new(
                UserDeleted {
                    user_id: i.to_string(),
                },
                "cuts",
            )
            .build()
        })
        .collect();
    let accepted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let published = Arc::new(AtomicUsize::new(0));
    let (acc, pubd, bus) = (accepted.clone(), published.clone(), publisher.clone());
    let producer = tokio::spawn(async move {
        futures_util::stream::iter(events)
            .for_each_concurrent(256, |e| {
                let (acc, pubd, bus) = (acc.clone(), pubd.clone(), bus.clone());
                async move {
                    if bus.publish(&e).await.is_ok() {
                        acc.lock().unwrap().insert(e.id);
                    }
                    pubd.fetch_add(1, Ordering::SeqCst);
                }
            })
            .await;
    });
    let mut cuts = 0;
    for threshold in [1_500, 4_000, 7_000] {
        eventually(LIMIT, "publishing progresses", || {
            published.load(Ordering::SeqCst) >= threshold || producer.is_finished()
        })
        .await;
        if producer.is_finished() {
            break;
        }
        cuts += usize::from(proxy.cut_all() > 0);
    }
    producer.await.unwrap();
    assert!(cuts >= 2, "connections were cut while publishing ({cuts})");
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(
        accepted.len(),
        10_000,
        "publish retried until confirmed: every publish accepted"
    );
    let missing = || {
        let plain = plain.lock().unwrap();
        let exact = exact.lock().unwrap();
        let p = accepted
            .iter()
            .filter(|id| !plain.contains_key(*id))
            .count();
        let x = accepted
            .iter()
            .filter(|id| !exact.contains_key(*id))
            .count();
        (p, x)
    };
    for _ in 0..6000 {
        if missing() == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if missing() != (0, 0) {
        // say where the missing events are: still queued (a consumer stalled) or gone
        let conn = broker.raw().await;
        let ch = conn.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let depth = |q: &str| {
            let (ch, q) = (ch.clone(), q.to_owned());
            async move {
                ch.queue_declare(q.as_str().into(), passive, FieldTable::default())
                    .await
                    .map(|q| (q.message_count(), q.consumer_count()))
            }
        };
        panic!(
            "accepted events never handled (without dedup, with dedup): {:?}; queues (ready, consumers): {:?} {:?}; connected: {}",
            missing(),
            depth(&q_plain).await,
            depth(&q_dedup).await,
            consumer.is_connected()
        );
    }
    // let any late redeliveries arrive
    tokio::time::sleep(Duration::from_secs(1)).await;
    let exact = exact.lock().unwrap().clone();
    let dupes: Vec<_> = exact.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        dupes.is_empty(),
        "dedup handled each event exactly once; duplicates: {}",
        dupes.len()
    );
    assert_eq!(exact.len(), 10_000);
    let mut saw_reconnect = false;
    while let Ok(ev) = reconnects.try_recv() {
        saw_reconnect |= ev == ConnectionEvent::Reconnected;
    }
    assert!(saw_reconnect, "a Reconnected event was emitted");
    assert!(consumer.is_connected());

    broker
        .finish(&[&publisher, &consumer], &[&q_plain, &q_dedup])
        .await;
}

/// Shutdown with handlers in flight: finished work is acknowledged, unfinished work is
/// redelivered to the next consumer (never dead-lettered), nothing is lost.
#[tokio::test]
async fn shutdown_finishes_in_flight_work_and_loses_nothing() {
    let broker = TestBroker::new("shutdown");
    let queue = unique("shutdown");
    let first = broker.bus("shutdown-1").await;
    let started = Arc::new(AtomicUsize::new(0));
    let done: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (s, d) = (started.clone(), done.clone());
    first
        .subscribe(
            Subscribe::new(&queue)
                .pattern("#")
                .prefetch(4)
                .concurrency(4),
            move |e: Event| {
                s.fetch_add(1, Ordering::SeqCst);
                let d = d.clone();
                async move {
                    let user = e.data_as::<UserDeleted>().unwrap().user_id.clone();
                    if user == "stuck" {
                        std::future::pending::<()>().await; // never finishes: must be redelivered
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    d.lock().unwrap().insert(e.id);
                }
            },
        )
        .await
        .unwrap();
    let mut events = vec![
        EventBuilder::new(
            UserDeleted {
                user_id: "stuck".into(),
            },
            "t",
        )
        .build(),
    ];
    events.extend((0..20).map(|i| {
        EventBuilder::new(
            UserDeleted {
                user_id: i.to_string(),
            },
            "t",
        )
        .build()
    }));
    first.publish_all(&events).await.unwrap();
    eventually(LIMIT, "handlers in flight", || {
        started.load(Ordering::SeqCst) >= 4
    })
    .await;
    first.shutdown(Duration::from_secs(2)).await;
    assert!(
        first.publish(&events[1]).await.is_err(),
        "publishing after shutdown fails"
    );
    let finished_first = done.lock().unwrap().clone();
    assert!(
        !finished_first.is_empty(),
        "in-flight handlers were allowed to finish"
    );

    let second = broker.bus("shutdown-2").await;
    let rest: Arc<Mutex<Vec<String>>> = Arc::default();
    let r = rest.clone();
    second
        .subscribe(Subscribe::new(&queue).pattern("#"), move |e: Event| {
            r.lock().unwrap().push(e.id);
            async {}
        })
        .await
        .unwrap();
    eventually(LIMIT, "the rest handled by the next consumer", || {
        finished_first.len() + rest.lock().unwrap().len() >= events.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rest = rest.lock().unwrap().clone();
    for id in &rest {
        assert!(
            !finished_first.contains(id),
            "finished work was acknowledged, not redelivered"
        );
    }
    let all: HashSet<String> = finished_first
        .iter()
        .cloned()
        .chain(rest.iter().cloned())
        .collect();
    assert_eq!(all.len(), events.len(), "nothing lost");
    assert!(
        rest.contains(&events[0].id),
        "the unfinished event was redelivered"
    );
    assert!(
        second.dead_letters(&queue, 10).await.unwrap().is_empty(),
        "nothing dead-lettered on shutdown"
    );
    broker.finish(&[&second], &[&queue]).await;
}

#[tokio::test]
async fn quorum_queues_work_end_to_end() {
    let broker = TestBroker::new("quorum");
    let bus = broker.bus("quorum").await;
    let queue = unique("quorum");
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    bus.subscribe(
        Subscribe::new(&queue)
            .pattern("user.*")
            .quorum(true)
            .retries(1)
            .retry_delay(Duration::from_millis(50)),
        move |_e: Event| {
            let n = s.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(HandlerError::transient("once"))
                } else {
                    Ok(())
                }
            }
        },
    )
    .await
    .unwrap();
    bus.publish(
        &EventBuilder::new(
            UserDeleted {
                user_id: "q".into(),
            },
            "t",
        )
        .build(),
    )
    .await
    .unwrap();
    eventually(LIMIT, "retried on a quorum queue", || {
        seen.load(Ordering::SeqCst) == 2
    })
    .await;
    // a classic declaration of the same queue is a conflict, reported to the caller
    let err = bus
        .subscribe(
            Subscribe::new(&queue).pattern("user.*"),
            |_e: Event| async {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Broker(_)), "{err}");
    broker.finish(&[&bus], &[&queue]).await;
}

#[tokio::test]
async fn unreachable_broker_fails_fast_with_a_clear_error() {
    // a port nothing listens on
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let cfg = RabbitConfig::new(format!("amqp://guest:secret@127.0.0.1:{port}/%2f"))
        .connect_timeout(Duration::from_secs(1));
    let err = EventBus::rabbitmq("t", cfg).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains("secret"), "password hidden");
    let err = EventBus::rabbitmq("t", RabbitConfig::new("http://nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::InvalidUrl(_)), "{err}");
}
