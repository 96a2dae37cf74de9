//! The distributed deployment: one `forten run` process per service instance, RabbitMQ (a
//! vhost of its own), PostgreSQL (a database of its own), two access-service instances.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use forten_shared::events::{RabbitConfig, Subscribe};
use forten_shared::{Event, EventBus};
use reqwest::StatusCode;
use serde_json::json;

use crate::flow;
use crate::support::{ADMIN_PASSWORD, Api, Forten, JWT_SECRET, PgDatabase, Vhost};

struct Cluster {
    vhost: Vhost,
    db: PgDatabase,
    gateway_url: String,
    processes: Vec<Forten>,
}

impl Cluster {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RABBITMQ_URL", self.vhost.url()),
            ("DATABASE_URL", self.db.url()),
            ("JWT_SECRET", JWT_SECRET.to_owned()),
            ("REGISTRY_URL", self.gateway_url.clone()),
            ("FORTEN_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ]
    }

    /// `forten run <service>` on a free port; waits until it serves.
    async fn start(&mut self, service: &str) -> usize {
        let mut p = Forten::start(
            service,
            &["run", service, "--port", "0", "--drain-grace", "1500ms"],
            &self.env(),
        );
        p.listening_url().await;
        self.processes.push(p);
        self.processes.len() - 1
    }

    async fn new() -> Self {
        let vhost = Vhost::create();
        let db = PgDatabase::create().await;
        let mut cluster = Self {
            vhost,
            db,
            gateway_url: String::new(),
            processes: Vec::new(),
        };
        let mut gateway = Forten::start(
            "api-gateway",
            &["run", "api-gateway", "--port", "0"],
            &cluster.env(),
        );
        cluster.gateway_url = gateway.listening_url().await;
        cluster.processes.push(gateway);
        for service in [
            "auth-service",
            "access-service",
            "access-service",
            "monitoring-service",
        ] {
            cluster.start(service).await;
        }
        cluster
    }

    /// Waits until the registry hands out `n` healthy instances of `service`.
    async fn wait_instances(&self, admin: &Api, service: &str, n: usize) {
        admin
            .eventually("GET", &format!("/registry/services/{service}"), |s, b| {
                s == StatusCode::OK && b["instances"].as_array().is_some_and(|i| i.len() == n)
            })
            .await;
        // the gateway's discovery cache refreshes every second
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
}

#[tokio::test]
async fn separate_processes_tell_the_same_story_over_rabbitmq_and_postgres() {
    let mut cluster = Cluster::new().await;
    // watch the bus as an outside consumer would
    let bus = EventBus::rabbitmq("system-test", RabbitConfig::new(cluster.vhost.url()))
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ is required for this test: {e}"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    bus.subscribe(
        Subscribe::new("system-test.access.granted").pattern("access.granted"),
        move |event: Event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
                Ok::<_, forten_shared::events::HandlerError>(())
            }
        },
    )
    .await
    .unwrap();

    let admin = Api::new(&cluster.gateway_url)
        .login(crate::support::ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    cluster.wait_instances(&admin, "access-service", 2).await;
    let story = flow::story(&cluster.gateway_url).await;
    let granted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = rx.recv().await.expect("subscription open");
            let json = String::from_utf8(event.to_vec().unwrap()).unwrap();
            if json.contains(&story.user_id) {
                return event;
            }
        }
    })
    .await
    .expect("access.granted for the new user on RabbitMQ");
    assert_eq!(granted.source, "access-service");
    flow::camera_outage(&story.admin, &story.building_id).await;

    // every process stops cleanly on SIGTERM
    bus.delete_queues("system-test.access.granted").await.ok();
    bus.shutdown(Duration::from_secs(2)).await;
    for p in &mut cluster.processes {
        assert_eq!(
            p.stop(),
            Some(0),
            "{} did not stop cleanly:\n{}",
            p.name,
            p.output()
        );
    }
}

#[tokio::test]
async fn stopping_and_rolling_restarting_access_instances_under_load_drops_no_request() {
    let mut cluster = Cluster::new().await;
    let admin = Api::new(&cluster.gateway_url)
        .login(crate::support::ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    cluster.wait_instances(&admin, "access-service", 2).await;
    let building = flow::created(
        &admin,
        "/api/buildings",
        json!({"name": "B", "address": "A"}),
    )
    .await;
    let door = flow::created(
        &admin,
        "/api/doors",
        json!({"name": "D", "buildingId": building}),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (admin, stop, ok, failures) =
            (admin.clone(), stop.clone(), ok.clone(), failures.clone());
        let (building, door) = (building.clone(), door.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (status, body) = if (i + worker).is_multiple_of(2) {
                    admin
                        .call("GET", &format!("/api/buildings/{building}"), None)
                        .await
                } else {
                    let attempt =
                        json!({"userId": "load-user", "doorId": door, "accessMethod": "card"});
                    admin
                        .call("POST", "/api/access/attempts", Some(attempt))
                        .await
                };
                if status == StatusCode::OK {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.lock().unwrap().push(format!("{status} {body}"));
                }
            }
        }));
    }
    let served = |ok: &AtomicU64| ok.load(Ordering::Relaxed);

    // the access-service processes are at indexes 2 and 3 (gateway, auth, access, access, …)
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = served(&ok);
    assert_eq!(
        cluster.processes[2].stop(),
        Some(0),
        "{}",
        cluster.processes[2].output()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(served(&ok) > before, "requests go on with one instance");

    // rolling restart: bring a replacement up, then stop the other old one, then replace it
    cluster.start("access-service").await;
    cluster.wait_instances(&admin, "access-service", 2).await;
    assert_eq!(
        cluster.processes[3].stop(),
        Some(0),
        "{}",
        cluster.processes[3].output()
    );
    cluster.start("access-service").await;
    cluster.wait_instances(&admin, "access-service", 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed, e.g. {:?}",
        failures.len(),
        served(&ok) + failures.len() as u64,
        failures.first()
    );
    eprintln!(
        "{} requests served through stop + rolling restart, none failed",
        served(&ok)
    );
    for p in &mut cluster.processes {
        p.stop();
    }
}
