//! monitoring-service: cameras and the watchdog, alert rules, acknowledge and resolve — on
//! SQLite and PostgreSQL.

use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use forten_shared::events::{
    AccessDenied, AccessMethod, AlertTriggered, CameraOffline, CameraOnline, DoorForced, Severity,
};
use forten_shared::{Event, EventBuilder, EventBus};
use serde_json::{Value, json};

use crate::services::monitoring::{self, MonitoringConfig, MonitoringState, Watchdog};
use crate::support::{Backend, TestDb, assert_problem, call, eventually, next_event, no_event};

pub struct MonitoringApp {
    pub state: MonitoringState,
    pub router: Router,
    pub bus: EventBus,
    pub _db: TestDb,
}

pub async fn start(backend: Backend, config: MonitoringConfig) -> MonitoringApp {
    let db = TestDb::new(backend);
    let database = monitoring::open_database(&db.config).await.unwrap();
    let bus = EventBus::in_process(monitoring::SERVICE);
    let state = MonitoringState::new(database, bus.clone(), config);
    MonitoringApp {
        router: monitoring::router(state.clone()),
        state,
        bus,
        _db: db,
    }
}

fn door_forced(door: &str) -> Event {
    EventBuilder::new(
        DoorForced {
            door_id: door.into(),
            building_id: "b1".into(),
            timestamp: Utc::now(),
            severity: Severity::Critical,
        },
        "access-service",
    )
    .build()
}

fn denied(door: &str, at: DateTime<Utc>) -> Event {
    EventBuilder::new(
        AccessDenied {
            user_id: Some("u1".into()),
            door_id: door.into(),
            building_id: "b1".into(),
            access_method: AccessMethod::Card,
            reason: "not_authorized".into(),
            timestamp: at,
        },
        "access-service",
    )
    .build()
}

async fn alerts(router: &Router, query: &str) -> Vec<Value> {
    let r = call(router, Method::GET, &format!("/api/alerts{query}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.body["alerts"].as_array().unwrap().clone()
}

async fn cameras(backend: Backend) {
    let config = MonitoringConfig {
        watchdog_interval: Duration::from_millis(50),
        ..MonitoringConfig::default()
    };
    let app = start(backend, config).await;
    let r = &app.router;
    let mut tail = app.bus.tail("camera.*").await.unwrap();
    let created = call(
        r,
        Method::POST,
        "/api/cameras",
        Some(json!({"name": "Gate", "buildingId": "b1", "heartbeatTimeoutSeconds": 1, "location": "north"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["status"], "pending");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let other = call(
        r,
        Method::POST,
        "/api/cameras",
        Some(json!({"name": "Hall", "buildingId": "b2"})),
    )
    .await;
    assert_eq!(other.body["heartbeatTimeoutSeconds"], 60);

    let beat = call(
        r,
        Method::POST,
        &format!("/api/cameras/{id}/heartbeat"),
        None,
    )
    .await;
    assert_eq!(beat.status, StatusCode::OK);
    assert_eq!(beat.body["status"], "online");
    let last_seen: DateTime<Utc> = beat.body["lastSeen"].as_str().unwrap().parse().unwrap();

    // Silent past its timeout: the watchdog takes it offline, once.
    let watchdog = Watchdog::start(app.state.clone());
    let offline = next_event(&mut tail, "camera.offline").await;
    let data = offline.data_as::<CameraOffline>().unwrap();
    assert_eq!(data.camera_id, id);
    assert_eq!(data.building_id, "b1");
    assert_eq!(
        data.last_seen.timestamp_millis(),
        last_seen.timestamp_millis()
    );
    let got = call(r, Method::GET, &format!("/api/cameras/{id}"), None).await;
    assert_eq!(got.body["status"], "offline");
    let list = call(r, Method::GET, "/api/cameras?status=offline", None).await;
    assert_eq!(list.body["cameras"].as_array().unwrap().len(), 1);
    watchdog.stop().await;
    assert_eq!(monitoring::check_cameras(&app.state).await.unwrap(), 0);

    // Back: camera.online with the downtime since its last heartbeat.
    let beat = call(
        r,
        Method::POST,
        &format!("/api/cameras/{id}/heartbeat"),
        None,
    )
    .await;
    assert_eq!(beat.body["status"], "online");
    let back: DateTime<Utc> = beat.body["lastSeen"].as_str().unwrap().parse().unwrap();
    let online = next_event(&mut tail, "camera.online").await;
    let data = online.data_as::<CameraOnline>().unwrap();
    assert_eq!(data.camera_id, id);
    let expected = u64::try_from((back - last_seen).num_milliseconds() / 1000).unwrap();
    assert_eq!(data.downtime_seconds, expected);
    assert!(data.downtime_seconds >= 1);
    // A second heartbeat is just a heartbeat.
    call(
        r,
        Method::POST,
        &format!("/api/cameras/{id}/heartbeat"),
        None,
    )
    .await;
    assert!(no_event(&mut tail, "camera.online", Duration::from_millis(200)).await);

    let updated = call(
        r,
        Method::PUT,
        &format!("/api/cameras/{id}"),
        Some(json!({"name": "Gate 2", "buildingId": "b1"})),
    )
    .await;
    assert_eq!(updated.body["name"], "Gate 2");
    let by_building = call(r, Method::GET, "/api/cameras?buildingId=b2", None).await;
    assert_eq!(by_building.body["cameras"].as_array().unwrap().len(), 1);
    let gone = call(r, Method::DELETE, &format!("/api/cameras/{id}"), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let missing = call(
        r,
        Method::POST,
        &format!("/api/cameras/{id}/heartbeat"),
        None,
    )
    .await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cameras_sqlite() {
    cameras(Backend::Sqlite).await;
}

#[tokio::test]
async fn cameras_postgres() {
    cameras(Backend::Postgres).await;
}

async fn door_forced_alerts(backend: Backend) {
    let app = start(backend, MonitoringConfig::default()).await;
    let r = &app.router;
    monitoring::subscribe(&app.state, &app.bus).await.unwrap();
    let mut tail = app.bus.tail("alert.*").await.unwrap();

    let forced = door_forced("d1");
    app.bus.publish(&forced).await.unwrap();
    let triggered = next_event(&mut tail, "alert.triggered").await;
    let data = triggered.data_as::<AlertTriggered>().unwrap().clone();
    assert_eq!(data.alert_type, "door_forced");
    assert_eq!(data.severity, Severity::Critical);
    assert_eq!(data.source, "d1");

    // The same event again (a redelivery): no second alert, no second alert.triggered.
    monitoring::on_door_forced(&app.state, &forced)
        .await
        .unwrap();
    app.bus.publish(&forced).await.unwrap();
    assert!(no_event(&mut tail, "alert.triggered", Duration::from_millis(300)).await);
    let open = alerts(r, "?status=open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], data.alert_id.as_str());
    assert_eq!(open[0]["buildingId"], "b1");

    let id = data.alert_id;
    let ack = call(
        r,
        Method::POST,
        &format!("/api/alerts/{id}/acknowledge"),
        Some(json!({"acknowledgedBy": "op-1"})),
    )
    .await;
    assert_eq!(ack.status, StatusCode::OK, "{ack:?}");
    assert_eq!(ack.body["status"], "acknowledged");
    assert_eq!(ack.body["acknowledgedBy"], "op-1");
    let event = next_event(&mut tail, "alert.acknowledged").await;
    assert_eq!(event.subject.as_deref(), Some(id.as_str()));
    let again = call(
        r,
        Method::POST,
        &format!("/api/alerts/{id}/acknowledge"),
        None,
    )
    .await;
    assert_problem(&again, StatusCode::CONFLICT);
    assert!(alerts(r, "?status=open").await.is_empty());
    assert_eq!(alerts(r, "?status=acknowledged").await.len(), 1);

    let resolved = call(r, Method::POST, &format!("/api/alerts/{id}/resolve"), None).await;
    assert_eq!(resolved.status, StatusCode::OK);
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(resolved.body["resolvedBy"], "operator");
    next_event(&mut tail, "alert.resolved").await;
    let again = call(r, Method::POST, &format!("/api/alerts/{id}/resolve"), None).await;
    assert_problem(&again, StatusCode::CONFLICT);
    assert_eq!(
        alerts(r, "?status=resolved&severity=critical").await.len(),
        1
    );
    let missing = call(r, Method::POST, "/api/alerts/ghost/acknowledge", None).await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn door_forced_alerts_sqlite() {
    door_forced_alerts(Backend::Sqlite).await;
}

#[tokio::test]
async fn door_forced_alerts_postgres() {
    door_forced_alerts(Backend::Postgres).await;
}

async fn denial_bursts(backend: Backend) {
    let config = MonitoringConfig {
        denied_burst_threshold: 3,
        denied_burst_window: Duration::from_secs(60),
        ..MonitoringConfig::default()
    };
    let app = start(backend, config).await;
    let mut tail = app.bus.tail("alert.*").await.unwrap();
    // Event times inside one window period, so the test does not depend on the clock.
    let base = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 1).unwrap();
    let at = |s: i64| base + chrono::Duration::seconds(s);
    let s = &app.state;

    let first = denied("d1", at(0));
    monitoring::on_access_denied(s, &first).await.unwrap();
    monitoring::on_access_denied(s, &denied("d1", at(1)))
        .await
        .unwrap();
    monitoring::on_access_denied(s, &first).await.unwrap(); // a duplicate does not count
    monitoring::on_access_denied(s, &denied("d2", at(2)))
        .await
        .unwrap(); // another door
    monitoring::on_access_denied(s, &denied("d1", at(-120)))
        .await
        .unwrap(); // long before
    assert!(alerts(&app.router, "").await.is_empty());

    monitoring::on_access_denied(s, &denied("d1", at(3)))
        .await
        .unwrap();
    let triggered = next_event(&mut tail, "alert.triggered").await;
    let data = triggered.data_as::<AlertTriggered>().unwrap();
    assert_eq!(data.alert_type, "access_denied_burst");
    assert_eq!(data.severity, Severity::High);
    assert_eq!(data.source, "d1");
    // More denials in the same period: still one alert.
    monitoring::on_access_denied(s, &denied("d1", at(4)))
        .await
        .unwrap();
    let all = alerts(&app.router, "").await;
    assert_eq!(all.len(), 1, "{all:?}");
}

#[tokio::test]
async fn denial_bursts_sqlite() {
    denial_bursts(Backend::Sqlite).await;
}

#[tokio::test]
async fn denial_bursts_postgres() {
    denial_bursts(Backend::Postgres).await;
}

/// access → bus → monitoring in one process: a forced door becomes an alert.
#[tokio::test]
async fn forced_door_becomes_an_alert_across_services() {
    use crate::services::access::{self, AccessConfig, AccessState};
    let bus = EventBus::in_process("forten");
    let access_db = TestDb::new(Backend::Sqlite);
    let monitoring_db = TestDb::new(Backend::Sqlite);
    let access_state = AccessState::new(
        access::open_database(&access_db.config).await.unwrap(),
        bus.clone(),
        AccessConfig::default(),
    );
    let monitoring_state = MonitoringState::new(
        monitoring::open_database(&monitoring_db.config)
            .await
            .unwrap(),
        bus.clone(),
        MonitoringConfig::default(),
    );
    access::subscribe(&access_state, &bus).await.unwrap();
    monitoring::subscribe(&monitoring_state, &bus)
        .await
        .unwrap();
    let access_router = access::router(access_state);
    let monitoring_router = monitoring::router(monitoring_state);

    let (_, door) = crate::access::building_with_door(&access_router).await;
    let r = call(
        &access_router,
        Method::POST,
        &format!("/api/doors/{door}/forced"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let alert = eventually(|| async {
        alerts(&monitoring_router, "?status=open")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(alert["type"], "door_forced");
    assert_eq!(alert["source"], door.as_str());
    assert_eq!(alert["severity"], "critical");
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let app = start(Backend::Sqlite, MonitoringConfig::default()).await;
    let api = call(&app.router, Method::GET, "/openapi.json", None).await;
    let paths = api.body["paths"].as_object().unwrap();
    for p in [
        "/api/cameras",
        "/api/cameras/{id}",
        "/api/cameras/{id}/heartbeat",
        "/api/alerts",
        "/api/alerts/{id}",
        "/api/alerts/{id}/acknowledge",
        "/api/alerts/{id}/resolve",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    let ack = &api.body["paths"]["/api/alerts/{id}/acknowledge"]["post"];
    assert_ne!(ack["requestBody"]["required"], true, "optional body: {ack}");
}

/// Several deliveries of one `door.forced` handled at once: one alert, one `alert.triggered`.
async fn concurrent_duplicates(backend: Backend) {
    let app = start(backend, MonitoringConfig::default()).await;
    let mut tail = app.bus.tail("alert.*").await.unwrap();
    let forced = door_forced("d9");
    let runs = (0..6).map(|_| monitoring::on_door_forced(&app.state, &forced));
    for outcome in futures_util::future::join_all(runs).await {
        outcome.unwrap();
    }
    next_event(&mut tail, "alert.triggered").await;
    assert!(no_event(&mut tail, "alert.triggered", Duration::from_millis(300)).await);
    assert_eq!(alerts(&app.router, "").await.len(), 1);
}

#[tokio::test]
async fn concurrent_duplicates_sqlite() {
    concurrent_duplicates(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_duplicates_postgres() {
    concurrent_duplicates(Backend::Postgres).await;
}
