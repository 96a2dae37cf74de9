//! One behavioural suite, run against both transports: the same semantics in-process and on
//! RabbitMQ.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forten_shared::events::{
    AccessDenied, AccessGranted, AccessMethod, DoorForced, HandlerError, Outcome, Severity,
    Subscribe, UserDeleted,
};
use forten_shared::{Event, EventBuilder, EventBus};

use crate::support::{TestBroker, eventually, unique};

const LIMIT: Duration = Duration::from_secs(30);

/// A bus of one transport, and what to clean up afterwards.
pub struct Env {
    broker: Option<TestBroker>,
    buses: Vec<EventBus>,
    queues: Vec<String>,
}

impl Env {
    pub async fn new(rabbit: bool, name: &str) -> Self {
        let broker = rabbit.then(|| TestBroker::new(name));
        Self {
            broker,
            buses: Vec::new(),
            queues: Vec::new(),
        }
    }

    /// A bus: in-process ones share nothing, so one in-process bus is handed out every time.
    pub async fn bus(&mut self) -> EventBus {
        if let Some(b) = &self.broker {
            let bus = b.bus("suite").await;
            self.buses.push(bus.clone());
            bus
        } else {
            if self.buses.is_empty() {
                self.buses.push(EventBus::in_process("suite"));
            }
            self.buses[0].clone()
        }
    }

    pub fn queue(&mut self, name: &str) -> String {
        let q = unique(name);
        self.queues.push(q.clone());
        q
    }

    pub async fn finish(self) {
        for bus in &self.buses {
            bus.shutdown(Duration::from_secs(5)).await;
        }
        if let Some(b) = &self.broker {
            let admin = b.bus("cleanup").await;
            for q in &self.queues {
                admin.delete_queues(q).await.unwrap();
            }
            admin.shutdown(Duration::from_secs(1)).await;
            b.cleanup().await;
        }
    }
}

fn granted() -> Event {
    EventBuilder::new(
        AccessGranted {
            user_id: "u".into(),
            door_id: "d".into(),
            building_id: "b".into(),
            access_method: AccessMethod::Card,
            timestamp: chrono::Utc::now(),
        },
        "suite",
    )
    .build()
}

fn denied() -> Event {
    EventBuilder::new(
        AccessDenied {
            user_id: None,
            door_id: "d".into(),
            building_id: "b".into(),
            access_method: AccessMethod::Pin,
            reason: "unknown_user".into(),
            timestamp: chrono::Utc::now(),
        },
        "suite",
    )
    .build()
}

fn forced() -> Event {
    EventBuilder::new(
        DoorForced {
            door_id: "d".into(),
            building_id: "b".into(),
            timestamp: chrono::Utc::now(),
            severity: Severity::High,
        },
        "suite",
    )
    .build()
}

fn deleted(user: &str) -> Event {
    EventBuilder::new(
        UserDeleted {
            user_id: user.into(),
        },
        "suite",
    )
    .build()
}

type Seen = Arc<Mutex<Vec<Event>>>;

fn recorder(seen: &Seen) -> impl Fn(Event) -> std::future::Ready<()> + Send + Sync + 'static {
    let seen = seen.clone();
    move |e: Event| {
        seen.lock().unwrap().push(e);
        std::future::ready(())
    }
}

/// Topic patterns route by type; every queue bound gets its copy (fan-out).
pub async fn patterns_and_fan_out(rabbit: bool) {
    let mut env = Env::new(rabbit, "patterns").await;
    let bus = env.bus().await;
    let (q1, q2) = (env.queue("access"), env.queue("all"));
    let access: Seen = Arc::default();
    let all: Seen = Arc::default();
    bus.subscribe(Subscribe::new(&q1).pattern("access.*"), recorder(&access))
        .await
        .unwrap();
    bus.subscribe(Subscribe::new(&q2).pattern("#"), recorder(&all))
        .await
        .unwrap();
    let events = [granted(), forced(), denied()];
    for e in &events {
        bus.publish(e).await.unwrap();
    }
    eventually(LIMIT, "all events on the # queue", || {
        all.lock().unwrap().len() == 3
    })
    .await;
    eventually(LIMIT, "access events", || access.lock().unwrap().len() == 2).await;
    let mut got: Vec<String> = access
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    got.sort();
    let mut want = vec![events[0].id.clone(), events[2].id.clone()];
    want.sort();
    assert_eq!(got, want);
    // the received event equals the published one
    assert!(all.lock().unwrap().contains(&events[1]));
    env.finish().await;
}

/// Two consumers of one queue share its messages: each event is handled once.
pub async fn competing_consumers(rabbit: bool) {
    let mut env = Env::new(rabbit, "competing").await;
    let (a, b) = (env.bus().await, env.bus().await);
    let q = env.queue("shared");
    let seen: Seen = Arc::default();
    a.subscribe(Subscribe::new(&q).pattern("user.*"), recorder(&seen))
        .await
        .unwrap();
    b.subscribe(Subscribe::new(&q).pattern("user.*"), recorder(&seen))
        .await
        .unwrap();
    let events: Vec<Event> = (0..50).map(|i| deleted(&i.to_string())).collect();
    a.publish_all(&events).await.unwrap();
    eventually(LIMIT, "50 events handled", || {
        seen.lock().unwrap().len() >= 50
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        50,
        "each event handled exactly once"
    );
    env.finish().await;
}

/// Fails twice then succeeds: three runs, acked, nothing in the DLQ; another event on the same
/// queue is handled while the first waits for its retry.
pub async fn retry_then_success_without_blocking(rabbit: bool) {
    let mut env = Env::new(rabbit, "retry").await;
    let bus = env.bus().await;
    let q = env.queue("retry");
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let (l, a) = (log.clone(), attempts.clone());
    let sub = Subscribe::new(&q)
        .pattern("user.deleted")
        .retries(3)
        .retry_delay(Duration::from_millis(700))
        .backoff_multiplier(1.0);
    bus.subscribe(sub, move |e: Event| {
        let (l, a) = (l.clone(), a.clone());
        async move {
            let user = e.data_as::<UserDeleted>().unwrap().user_id.clone();
            if user == "flaky" {
                let n = a.fetch_add(1, Ordering::SeqCst) + 1;
                l.lock().unwrap().push(format!("flaky#{n}"));
                if n <= 2 {
                    return Err(HandlerError::transient(format!("failure {n}")));
                }
            } else {
                l.lock().unwrap().push(user);
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    bus.publish(&deleted("flaky")).await.unwrap();
    eventually(LIMIT, "first attempt", || {
        attempts.load(Ordering::SeqCst) >= 1
    })
    .await;
    bus.publish(&deleted("other")).await.unwrap();
    eventually(LIMIT, "three attempts", || {
        attempts.load(Ordering::SeqCst) >= 3
    })
    .await;
    eventually(LIMIT, "other handled", || {
        log.lock().unwrap().iter().any(|s| s == "other")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = log.lock().unwrap().clone();
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "ran exactly three times: {log:?}"
    );
    let other = log.iter().position(|s| s == "other").unwrap();
    let second = log.iter().position(|s| s == "flaky#2").unwrap();
    assert!(
        other < second,
        "the other event waited behind the retry: {log:?}"
    );
    assert!(
        bus.dead_letters(&q, 10).await.unwrap().is_empty(),
        "nothing in the DLQ"
    );
    env.finish().await;
}

/// Always failing: exactly one DLQ entry after retries + 1 attempts, with the reason headers;
/// replaying it to a fixed handler empties the DLQ.
pub async fn exhausted_retries_dead_letter_and_replay(rabbit: bool) {
    let mut env = Env::new(rabbit, "dlq").await;
    let bus = env.bus().await;
    let q = env.queue("dlq");
    let runs = Arc::new(AtomicUsize::new(0));
    let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (r, f) = (runs.clone(), fixed.clone());
    let sub = Subscribe::new(&q)
        .pattern("user.deleted")
        .retries(2)
        .retry_delay(Duration::from_millis(100));
    bus.subscribe(sub, move |_e: Event| {
        r.fetch_add(1, Ordering::SeqCst);
        let ok = f.load(Ordering::SeqCst);
        async move {
            if ok {
                Ok(())
            } else {
                Err(HandlerError::transient("database unavailable"))
            }
        }
    })
    .await
    .unwrap();
    let event = deleted("doomed");
    bus.publish(&event).await.unwrap();
    let mut dlq = Vec::new();
    for _ in 0..500 {
        dlq = bus.dead_letters(&q, 10).await.unwrap();
        if !dlq.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dlq2 = bus.dead_letters(&q, 10).await.unwrap();
    assert_eq!(dlq2.len(), 1, "exactly one dead letter");
    assert_eq!(dlq, dlq2, "listing does not consume");
    assert_eq!(runs.load(Ordering::SeqCst), 3, "retries + 1 attempts");
    let d = &dlq2[0];
    assert_eq!(d.attempts, 3);
    assert_eq!(d.routing_key, "user.deleted");
    assert!(d.error.contains("database unavailable"), "{}", d.error);
    chrono::DateTime::parse_from_rfc3339(&d.first_failure).unwrap();
    chrono::DateTime::parse_from_rfc3339(&d.last_failure).unwrap();
    assert!(d.first_failure <= d.last_failure);
    assert_eq!(Event::from_slice(&d.body).unwrap(), event, "body unchanged");

    fixed.store(true, Ordering::SeqCst);
    assert_eq!(bus.replay_dead_letters(&q, 100).await.unwrap(), 1);
    eventually(LIMIT, "replayed event handled", || {
        runs.load(Ordering::SeqCst) == 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(bus.dead_letters(&q, 10).await.unwrap().is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    env.finish().await;
}

/// Reject and permanent errors go straight to the DLQ (one attempt); Drop acknowledges.
pub async fn reject_permanent_and_drop(rabbit: bool) {
    let mut env = Env::new(rabbit, "reject").await;
    let bus = env.bus().await;
    let q = env.queue("reject");
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let r = runs.clone();
    bus.subscribe(
        Subscribe::new(&q)
            .pattern("user.deleted")
            .retries(5)
            .retry_delay(Duration::from_millis(50)),
        move |e: Event| {
            let user = e.data_as::<UserDeleted>().unwrap().user_id.clone();
            *r.lock().unwrap().entry(user.clone()).or_default() += 1;
            async move {
                match user.as_str() {
                    "poison" => Ok(Outcome::reject("malformed badge")),
                    "bad" => Err(HandlerError::permanent("user id is not a uuid")),
                    _ => Ok(Outcome::Drop),
                }
            }
        },
    )
    .await
    .unwrap();
    for u in ["poison", "bad", "boring"] {
        bus.publish(&deleted(u)).await.unwrap();
    }
    for _ in 0..500 {
        let dlq = bus.dead_letters(&q, 10).await.unwrap();
        if dlq.len() >= 2 && runs.lock().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dlq = bus.dead_letters(&q, 10).await.unwrap();
    assert_eq!(dlq.len(), 2);
    assert!(
        dlq.iter().all(|d| d.attempts == 1),
        "never retried: {dlq:?}"
    );
    assert!(dlq.iter().any(|d| d.error.contains("malformed badge")));
    assert!(dlq.iter().any(|d| d.error.contains("not a uuid")));
    assert_eq!(
        *runs.lock().unwrap(),
        HashMap::from([
            ("poison".into(), 1),
            ("bad".into(), 1),
            ("boring".into(), 1)
        ])
    );
    assert_eq!(bus.purge_dead_letters(&q).await.unwrap(), 2);
    assert!(bus.dead_letters(&q, 10).await.unwrap().is_empty());
    env.finish().await;
}

/// A paused subscription leaves messages in the queue; resuming handles them.
pub async fn pause_and_resume(rabbit: bool) {
    let mut env = Env::new(rabbit, "pause").await;
    let bus = env.bus().await;
    let q = env.queue("pause");
    let seen: Seen = Arc::default();
    let sub = bus
        .subscribe(Subscribe::new(&q).pattern("user.deleted"), recorder(&seen))
        .await
        .unwrap();
    bus.publish(&deleted("1")).await.unwrap();
    eventually(LIMIT, "first event", || seen.lock().unwrap().len() == 1).await;
    sub.pause();
    assert!(sub.is_paused());
    tokio::time::sleep(Duration::from_millis(300)).await;
    bus.publish(&deleted("2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing handled while paused"
    );
    assert!(bus.dead_letters(&q, 10).await.unwrap().is_empty());
    sub.resume();
    eventually(LIMIT, "event handled after resume", || {
        seen.lock().unwrap().len() == 2
    })
    .await;
    env.finish().await;
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            $( #[tokio::test] async fn $name() { super::$name(false).await } )*
        }
        mod rabbitmq {
            $( #[tokio::test] async fn $name() { super::$name(true).await } )*
        }
    };
}

both!(
    patterns_and_fan_out,
    competing_consumers,
    retry_then_success_without_blocking,
    exhausted_retries_dead_letter_and_replay,
    reject_permanent_and_drop,
    pause_and_resume,
);
