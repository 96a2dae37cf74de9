//! analytics-service: a fixed event set — duplicates, redeliveries, out-of-order times, events
//! in different minutes, hours and days, a camera outage across an hour boundary, alerts
//! acknowledged before they were triggered — gives exactly the expected counts, series,
//! reports, success rates, availability and alert timings, on SQLite and PostgreSQL, through
//! the batch writer and through RabbitMQ; `rebuild` after wiping the aggregates gives the same
//! answers; bad query parameters answer 400 naming the parameter.

use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use forten_shared::events::{
    AccessDenied, AccessGranted, AccessMethod, AlertAcknowledged, AlertResolved, AlertTriggered,
    CameraOffline, CameraOnline, DoorForced, RabbitConfig, Role, Severity, UserCreated,
};
use forten_shared::{Event, EventBuilder, EventBus};
use serde_json::Value;

use crate::services::analytics::{self, AnalyticsConfig, AnalyticsRuntime, AnalyticsState};
use crate::support::{Backend, RABBITMQ_URL, TestDb, assert_problem, call, eventually, unique};

struct App {
    state: AnalyticsState,
    router: Router,
    runtime: Option<AnalyticsRuntime>,
    _db: TestDb,
}

async fn start(backend: Backend, config: AnalyticsConfig) -> App {
    let db = TestDb::new(backend);
    let database = analytics::open_database(&db.config).await.unwrap();
    let state = AnalyticsState::new(database, config);
    App {
        router: analytics::router(state.clone()),
        runtime: Some(AnalyticsRuntime::start(state.clone())),
        state,
        _db: db,
    }
}

/// 2026-11-20T10:00:00Z: the fixture's origin.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn iso(secs: i64) -> String {
    at(secs).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

const DAY: i64 = 86_400;

fn granted(building: &str, door: &str, when: DateTime<Utc>) -> Event {
    EventBuilder::new(
        AccessGranted {
            user_id: "u1".into(),
            door_id: door.into(),
            building_id: building.into(),
            access_method: AccessMethod::Card,
            timestamp: when,
        },
        "access-service",
    )
    .build()
}

fn denied(building: &str, door: &str, when: DateTime<Utc>) -> Event {
    EventBuilder::new(
        AccessDenied {
            user_id: None,
            door_id: door.into(),
            building_id: building.into(),
            access_method: AccessMethod::Pin,
            reason: "not_authorized".into(),
            timestamp: when,
        },
        "access-service",
    )
    .build()
}

fn forced(building: &str, door: &str, when: DateTime<Utc>) -> Event {
    EventBuilder::new(
        DoorForced {
            door_id: door.into(),
            building_id: building.into(),
            timestamp: when,
            severity: Severity::High,
        },
        "access-service",
    )
    .build()
}

fn offline(
    camera: &str,
    building: &str,
    last_seen: DateTime<Utc>,
    detected: DateTime<Utc>,
) -> Event {
    EventBuilder::new(
        CameraOffline {
            camera_id: camera.into(),
            building_id: building.into(),
            last_seen,
            reason: "no heartbeat".into(),
        },
        "monitoring-service",
    )
    .time(detected)
    .build()
}

fn online(camera: &str, building: &str, when: DateTime<Utc>, downtime: u64) -> Event {
    EventBuilder::new(
        CameraOnline {
            camera_id: camera.into(),
            building_id: building.into(),
            timestamp: when,
            downtime_seconds: downtime,
        },
        "monitoring-service",
    )
    .build()
}

fn triggered(alert: &str, when: DateTime<Utc>) -> Event {
    EventBuilder::new(
        AlertTriggered {
            alert_id: alert.into(),
            alert_type: "door_forced".into(),
            severity: Severity::High,
            source: "d1".into(),
            description: "forced".into(),
            timestamp: when,
        },
        "monitoring-service",
    )
    .build()
}

fn acknowledged(alert: &str, when: DateTime<Utc>) -> Event {
    EventBuilder::new(
        AlertAcknowledged {
            alert_id: alert.into(),
            acknowledged_by: "op".into(),
            timestamp: when,
        },
        "monitoring-service",
    )
    .build()
}

fn resolved(alert: &str, when: DateTime<Utc>) -> Event {
    EventBuilder::new(
        AlertResolved {
            alert_id: alert.into(),
            resolved_by: "op".into(),
            timestamp: when,
        },
        "monitoring-service",
    )
    .build()
}

/// The 22 distinct events of the fixture, latest first (out of order), plus 3 redelivered
/// copies (same ids).
fn fixture() -> (Vec<Event>, usize) {
    let g1 = granted("b1", "d1", at(10));
    let c1_off = offline("c1", "b1", at(3000), at(3060)); // outage 10:50 → 11:10
    let a2_ack = acknowledged("a2", at(3720));
    let user = EventBuilder::new(
        UserCreated {
            user_id: "u9".into(),
            email: "u9@example.com".into(),
            first_name: "U".into(),
            last_name: "Nine".into(),
            role: Role::User,
        },
        "auth-service",
    )
    .time(at(5))
    .build();
    let distinct = vec![
        offline("c3", "b2", at(DAY + 3600), at(DAY + 3660)), // never back
        forced("b2", "d3", at(DAY + 20)),
        denied("b2", "d3", at(DAY + 10)),
        granted("b2", "d3", at(DAY + 5)),
        acknowledged("a3", at(7800)),
        triggered("a3", at(7200)),
        resolved("a2", at(4600)),
        online("c1", "b1", at(4200), 1200),
        a2_ack.clone(), // acknowledged before it was triggered
        triggered("a2", at(3600)),
        granted("b1", "d1", at(3700)),
        c1_off.clone(),
        resolved("a1", at(400)),
        acknowledged("a1", at(100)),
        granted("b1", "d1", at(70)),
        forced("b1", "d1", at(40)),
        triggered("a1", at(40)),
        denied("b1", "d1", at(30)),
        granted("b1", "d2", at(20)),
        g1.clone(),
        user,
        online("c2", "b1", at(0), 0),
    ];
    let n = distinct.len();
    let mut all = distinct;
    all.insert(3, g1);
    all.insert(9, c1_off);
    all.push(a2_ack);
    (all, n)
}

async fn get(router: &Router, uri: &str) -> Value {
    let r = call(router, Method::GET, uri, None).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {r:?}");
    r.body
}

#[track_caller]
fn close(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - expected).abs() < 1e-9, "{got} != {expected}");
}

fn series(body: &Value) -> Vec<i64> {
    body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_i64().unwrap())
        .collect()
}

fn group(body: &Value, key: &str) -> Value {
    body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("no group {key} in {body}"))
}

/// Every query the fixture is checked with.
fn queries() -> Vec<String> {
    vec![
        format!(
            "/api/analytics/reports?from={}&to={}&groupBy=type",
            iso(0),
            iso(2 * DAY)
        ),
        format!(
            "/api/analytics/reports?from={}&to={}&groupBy=building",
            iso(0),
            iso(2 * DAY)
        ),
        format!(
            "/api/analytics/reports?from={}&to={}&groupBy=door",
            iso(0),
            iso(2 * DAY)
        ),
        format!(
            "/api/analytics/timeseries?type=access.granted&interval=1m&from={}&to={}",
            iso(0),
            iso(180)
        ),
        format!(
            "/api/analytics/timeseries?type=access.granted&interval=1h&from={}&to={}",
            iso(0),
            iso(3 * 3600)
        ),
        format!(
            "/api/analytics/timeseries?type=access.granted&interval=1d&from={}&to={}",
            iso(0),
            iso(2 * DAY)
        ),
        format!(
            "/api/analytics/timeseries?type=access.granted&interval=1h&buildingId=b1&doorId=d1&from={}&to={}",
            iso(0),
            iso(2 * 3600)
        ),
        format!(
            "/api/analytics/timeseries?type=access.granted&interval=1d&buildingId=b2&from={}&to={}",
            iso(0),
            iso(2 * DAY)
        ),
        format!(
            "/api/analytics/timeseries?interval=1h&from={}&to={}",
            iso(0),
            iso(3 * 3600)
        ),
        format!(
            "/api/analytics/access-rates?from={}&to={}",
            iso(0),
            iso(2 * DAY)
        ),
        format!(
            "/api/analytics/camera-availability?from={}&to={}",
            iso(0),
            iso(7200)
        ),
        format!(
            "/api/analytics/camera-availability?from={}&to={}",
            iso(DAY),
            iso(DAY + 7200)
        ),
        format!("/api/analytics/alerts?from={}&to={}", iso(0), iso(DAY)),
        format!(
            "/api/analytics/forced-doors?from={}&to={}",
            iso(0),
            iso(2 * DAY)
        ),
    ]
}

async fn answers(router: &Router) -> Vec<Value> {
    let mut out = Vec::new();
    for q in queries() {
        out.push(get(router, &q).await);
    }
    out
}

/// The fixture's expected figures.
fn check(a: &[Value]) {
    // reports by type
    let by_type = &a[0];
    assert_eq!(by_type["groupBy"], "type");
    assert_eq!(by_type["total"], 22, "{by_type}");
    for (ty, n) in [
        ("access.granted", 5),
        ("access.denied", 2),
        ("door.forced", 2),
        ("camera.offline", 2),
        ("camera.online", 2),
        ("alert.triggered", 3),
        ("alert.acknowledged", 3),
        ("alert.resolved", 2),
        ("user.created", 1),
    ] {
        assert_eq!(group(by_type, ty)["count"], n, "{ty}");
    }
    assert_eq!(by_type["groups"][0]["key"], "access.granted"); // largest first
    // by building
    let b1 = group(&a[1], "b1");
    assert_eq!(b1["count"], 9, "{b1}");
    assert_eq!(b1["byType"]["access.granted"], 4);
    assert_eq!(b1["byType"]["camera.online"], 2);
    let b2 = group(&a[1], "b2");
    assert_eq!(b2["count"], 4, "{b2}");
    assert_eq!(a[1]["groups"].as_array().unwrap().len(), 2);
    // by door
    let d1 = group(&a[2], "d1");
    assert_eq!(
        (d1["count"].as_i64(), d1["buildingId"].as_str()),
        (Some(5), Some("b1"))
    );
    assert_eq!(d1["byType"]["access.denied"], 1);
    assert_eq!(group(&a[2], "d2")["count"], 1);
    assert_eq!(group(&a[2], "d3")["count"], 3);
    // series: minutes, hours, days, a door, a building, every type
    assert_eq!(series(&a[3]), vec![2, 1, 0]);
    assert_eq!(a[3]["interval"], "1m");
    assert_eq!(series(&a[4]), vec![3, 1, 0]);
    assert_eq!(series(&a[5]), vec![4, 1, 0]);
    assert_eq!(a[5]["from"], "2026-11-20T00:00:00Z");
    assert_eq!(a[5]["points"][1]["time"], "2026-11-21T00:00:00Z");
    assert_eq!(series(&a[6]), vec![2, 1]);
    assert_eq!(series(&a[7]), vec![0, 1, 0]);
    assert_eq!(series(&a[8]), vec![11, 5, 2]);
    assert_eq!(a[8]["total"], 18);
    // access success rates
    let rates = &a[9];
    assert_eq!(
        (
            rates["overall"]["granted"].as_i64(),
            rates["overall"]["denied"].as_i64()
        ),
        (Some(5), Some(2))
    );
    close(&rates["overall"]["successRate"], 5.0 / 7.0);
    let building = |id: &str| {
        rates["buildings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["buildingId"] == id)
            .cloned()
            .unwrap()
    };
    close(&building("b1")["successRate"], 0.8);
    close(&building("b2")["successRate"], 0.5);
    let door = |id: &str| {
        rates["doors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["doorId"] == id)
            .cloned()
            .unwrap()
    };
    close(&door("d1")["successRate"], 0.75);
    close(&door("d2")["successRate"], 1.0);
    assert_eq!(door("d3")["buildingId"], "b2");
    // camera availability: c1 offline 10:50 → 11:10 across the hour, c2 always up
    let cams = &a[10];
    let camera = |body: &Value, id: &str| {
        body["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cameraId"] == id)
            .cloned()
    };
    let c1 = camera(cams, "c1").unwrap();
    close(&c1["availability"], 1.0 - 1200.0 / 7200.0);
    close(&c1["offlineSeconds"], 1200.0);
    assert_eq!(c1["outages"], 1);
    close(&camera(cams, "c2").unwrap()["availability"], 1.0);
    assert!(
        camera(cams, "c3").is_none(),
        "c3 has no event before the range ends"
    );
    close(
        &cams["buildings"][0]["availability"],
        1.0 - 1200.0 / 14_400.0,
    );
    assert_eq!(cams["buildings"][0]["cameras"], 2);
    let next_day = &a[11];
    close(&camera(next_day, "c3").unwrap()["availability"], 0.5);
    close(&camera(next_day, "c1").unwrap()["availability"], 1.0);
    // alerts: acknowledged after 60, 120, 600 s; resolved after 360, 1000 s
    let alerts = &a[12];
    assert_eq!(
        (
            alerts["triggered"].as_i64(),
            alerts["acknowledged"].as_i64(),
            alerts["resolved"].as_i64(),
            alerts["open"].as_i64()
        ),
        (Some(3), Some(3), Some(2), Some(0))
    );
    let tta = &alerts["timeToAcknowledge"];
    assert_eq!(tta["count"], 3);
    close(&tta["meanSeconds"], 260.0);
    close(&tta["p50Seconds"], 120.0);
    close(&tta["p95Seconds"], 600.0);
    let ttr = &alerts["timeToResolve"];
    assert_eq!(ttr["count"], 2);
    close(&ttr["meanSeconds"], 680.0);
    close(&ttr["p50Seconds"], 360.0);
    close(&ttr["p95Seconds"], 1000.0);
    // forced doors per day
    let days = &a[13];
    assert_eq!(days["total"], 2);
    assert_eq!(days["days"].as_array().unwrap().len(), 3);
    assert_eq!(days["days"][0]["date"], "2026-11-20");
    assert_eq!(days["days"][0]["count"], 1);
    assert_eq!(days["days"][0]["buildings"][0]["buildingId"], "b1");
    assert_eq!(days["days"][1]["buildings"][0]["buildingId"], "b2");
    assert_eq!(days["days"][2]["count"], 0);
}

async fn fixture_figures(backend: Backend) {
    let app = start(backend, AnalyticsConfig::default()).await;
    let (events, distinct) = fixture();
    // all at once through the batch writer: duplicates land in the same batch
    let results = futures_util::future::join_all(events.iter().map(|e| app.state.record(e))).await;
    let new = results
        .into_iter()
        .map(Result::unwrap)
        .filter(|n| *n)
        .count();
    assert_eq!(new, distinct);
    // a replay of everything counts nothing
    for e in &events {
        assert!(
            !app.state.record(e).await.unwrap(),
            "{} counted twice",
            e.id
        );
    }
    assert_eq!(app.state.record_all(&events).await.unwrap(), 0);

    let before = answers(&app.router).await;
    check(&before);

    // wipe the aggregates: the figures go, `rebuild` brings them back from the raw events
    let pool = app.state.database().pool();
    for table in [
        "analytics_seconds",
        "analytics_minutes",
        "analytics_hours",
        "analytics_days",
        "analytics_camera_events",
        "analytics_alert_events",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(pool)
            .await
            .unwrap();
    }
    assert_eq!(get(&app.router, &queries()[0]).await["total"], 0);
    let rebuilt = analytics::rebuild(app.state.database()).await.unwrap();
    assert_eq!(
        (rebuilt.events, rebuilt.skipped),
        (u64::try_from(distinct).unwrap(), 0)
    );
    let after = answers(&app.router).await;
    assert_eq!(before, after);
    // rebuilding twice changes nothing
    analytics::rebuild(app.state.database()).await.unwrap();
    assert_eq!(answers(&app.router).await, before);
    if let Some(rt) = app.runtime {
        rt.stop().await;
    }
}

#[tokio::test]
async fn fixture_figures_sqlite() {
    fixture_figures(Backend::Sqlite).await;
}

#[tokio::test]
async fn fixture_figures_postgres() {
    fixture_figures(Backend::Postgres).await;
}

async fn sliding_windows(backend: Backend) {
    let app = start(backend, AnalyticsConfig::default()).await;
    let now = Utc::now();
    let ago = |s: i64| now - chrono::Duration::seconds(s);
    let recent = granted("b1", "d1", ago(10));
    let events = [
        recent.clone(),
        recent, // redelivered
        denied("b1", "d1", ago(20)),
        granted("b1", "d1", ago(120)),
        granted("b1", "d2", ago(1800)),
        granted("b1", "d2", ago(7200)), // outside every window
    ];
    for e in &events {
        app.state.record(e).await.unwrap();
    }
    let m = get(&app.router, "/api/analytics/metrics").await;
    let window = |name: &str| {
        m["windows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["window"] == name)
            .cloned()
            .unwrap()
    };
    for (name, seconds, total, granted) in [("1m", 60, 2, 1), ("5m", 300, 3, 2), ("1h", 3600, 4, 3)]
    {
        let w = window(name);
        assert_eq!(w["seconds"], seconds, "{w}");
        assert_eq!(w["total"], total, "{name}: {w}");
        assert_eq!(w["byType"]["access.granted"]["count"], granted, "{name}");
        assert_eq!(w["byType"]["user.created"]["count"], 0);
        #[allow(clippy::cast_precision_loss)]
        close(&w["ratePerSecond"], f64::from(total) / seconds as f64);
    }
}

#[tokio::test]
async fn sliding_windows_sqlite() {
    sliding_windows(Backend::Sqlite).await;
}

#[tokio::test]
async fn sliding_windows_postgres() {
    sliding_windows(Backend::Postgres).await;
}

#[tokio::test]
async fn through_rabbitmq_with_redeliveries() {
    let exchange = unique("forten.test.analytics");
    let rabbit = || {
        RabbitConfig::new(RABBITMQ_URL)
            .exchange(exchange.clone())
            .connect_timeout(Duration::from_secs(10))
    };
    let bus = EventBus::rabbitmq(
        analytics::SERVICE,
        rabbit().connection_name("analytics-test"),
    )
    .await
    .expect("RabbitMQ must run on 127.0.0.1:5672 for this test");
    let publisher = EventBus::rabbitmq(
        "access-service",
        rabbit().connection_name("analytics-test-pub"),
    )
    .await
    .unwrap();
    let config = AnalyticsConfig {
        queue: unique("analytics-service.all"),
        ..AnalyticsConfig::default()
    };
    let queue = config.queue.clone();
    let app = start(Backend::Postgres, config).await;
    analytics::subscribe(&app.state, &bus).await.unwrap();

    let (events, distinct) = fixture();
    publisher.publish_all(&events).await.unwrap();
    // the same events published again: what redeliveries after lost acks look like
    publisher.publish_all(&events[..5]).await.unwrap();
    let published = u64::try_from(events.len() + 5).unwrap();
    eventually(|| async { (app.state.handled() >= published).then_some(()) }).await;
    assert_eq!(app.state.handled(), published);
    assert_eq!(
        crate::services::analytics::count_events(app.state.database())
            .await
            .unwrap(),
        i64::try_from(distinct).unwrap()
    );
    check(&answers(&app.router).await);
    assert!(bus.dead_letters(&queue, 10).await.unwrap().is_empty());

    bus.shutdown(Duration::from_secs(2)).await;
    publisher.delete_queues(&queue).await.unwrap();
    publisher.shutdown(Duration::from_secs(2)).await;
    let conn = lapin::Connection::connect(RABBITMQ_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .exchange_delete(
            exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await;
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn bad_query_parameters_name_the_parameter() {
    let app = start(Backend::Sqlite, AnalyticsConfig::default()).await;
    let long = "x".repeat(200);
    let cases: Vec<(String, &str)> = vec![
        ("/api/analytics/timeseries?interval=5m".into(), "interval"),
        ("/api/analytics/timeseries?type=door.opened".into(), "type"),
        ("/api/analytics/timeseries?from=yesterday".into(), "from"),
        ("/api/analytics/timeseries?from=2026-11-20T10:00:00Z&to=2026-11-20T09:00:00Z".into(), "to"),
        ("/api/analytics/timeseries?from=2026-11-20T10:00:00Z&to=2026-11-20T10:00:00Z".into(), "to"),
        ("/api/analytics/timeseries?interval=1m&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z".into(), "from"),
        ("/api/analytics/timeseries?doorId=d1".into(), "buildingId"),
        ("/api/analytics/timeseries?buildingId=a%20b".into(), "buildingId"),
        ("/api/analytics/timeseries?color=red".into(), "color"),
        ("/api/analytics/timeseries?type=access.granted&type=access.denied".into(), "type"),
        ("/api/analytics/reports?groupBy=camera".into(), "groupBy"),
        ("/api/analytics/reports?to=not-a-time".into(), "to"),
        ("/api/analytics/reports?group_by=type".into(), "group_by"),
        ("/api/analytics/metrics?window=1m".into(), "window"),
        ("/api/analytics/access-rates?from=2026-13-01T00:00:00Z".into(), "from"),
        (format!("/api/analytics/camera-availability?buildingId={long}"), "buildingId"),
        ("/api/analytics/alerts?from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z".into(), "to"),
        ("/api/analytics/forced-doors?from=1900-01-01T00:00:00Z&to=2026-01-01T00:00:00Z".into(), "from"),
    ];
    for (uri, field) in cases {
        let r = call(&app.router, Method::GET, &uri, None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["field"], field, "{uri}: {r:?}");
        assert!(r.body["detail"].as_str().unwrap().contains(field), "{r:?}");
    }
    // the defaults need no parameter at all
    for route in [
        "metrics",
        "timeseries",
        "reports",
        "access-rates",
        "camera-availability",
        "alerts",
        "forced-doors",
    ] {
        let r = call(
            &app.router,
            Method::GET,
            &format!("/api/analytics/{route}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{route}: {r:?}");
    }
    let r = call(&app.router, Method::POST, "/api/analytics/metrics", None).await;
    assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED);
    let api = get(&app.router, "/openapi.json").await;
    assert!(
        api["paths"]["/api/analytics/timeseries"]["get"].is_object(),
        "{api}"
    );
}

#[tokio::test]
async fn retention_deletes_what_is_past_it() {
    let app = start(Backend::Sqlite, AnalyticsConfig::default()).await;
    let old = granted("b1", "d1", Utc::now() - chrono::Duration::days(10));
    let fresh = granted("b1", "d1", Utc::now() - chrono::Duration::hours(1));
    app.state.record_all(&[old, fresh]).await.unwrap();
    let retention = analytics::Retention {
        raw: Some(Duration::from_secs(5 * 86_400)),
        minutes: Some(Duration::from_secs(5 * 86_400)),
        hours: None,
        days: None,
    };
    let deleted = analytics::apply_retention(app.state.database(), &retention)
        .await
        .unwrap();
    // the raw event, its 3 minute rows (type, building, door)
    assert_eq!(deleted, 4);
    assert_eq!(
        analytics::count_events(app.state.database()).await.unwrap(),
        1
    );
    let r = get(
        &app.router,
        "/api/analytics/reports?groupBy=type&from=2000-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(r["total"], 2, "hour and day buckets are kept: {r}");
}
