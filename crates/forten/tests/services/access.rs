//! access-service: CRUD, profiles from `user.created`, decisions and their events, forced
//! doors, internal routes, OpenAPI — on SQLite and PostgreSQL.

use axum::Router;
use axum::http::{Method, StatusCode};
use forten_shared::events::{Role, UserCreated};
use forten_shared::{Event, EventBuilder, EventBus};
use serde_json::{Value, json};

use crate::services::access::{self, AccessConfig, AccessState, DefaultPolicy};
use crate::support::{Backend, TestDb, assert_problem, call, eventually, next_event};

pub struct AccessApp {
    pub state: AccessState,
    pub router: Router,
    pub internal: Router,
    pub bus: EventBus,
    pub _db: TestDb,
}

pub async fn start(backend: Backend, config: AccessConfig) -> AccessApp {
    let db = TestDb::new(backend);
    let database = access::open_database(&db.config).await.unwrap();
    let bus = EventBus::in_process(access::SERVICE);
    let state = AccessState::new(database, bus.clone(), config);
    access::subscribe(&state, &bus).await.unwrap();
    AccessApp {
        router: access::router(state.clone()),
        internal: access::internal_router(state.clone()),
        state,
        bus,
        _db: db,
    }
}

pub fn user_created(user_id: &str) -> Event {
    EventBuilder::new(
        UserCreated {
            user_id: user_id.into(),
            email: format!("{user_id}@example.com"),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            role: Role::User,
        },
        "auth-service",
    )
    .subject(user_id.to_owned())
    .build()
}

/// Creates a building and a door; returns (building id, door id).
pub async fn building_with_door(router: &Router) -> (String, String) {
    let b = call(
        router,
        Method::POST,
        "/api/buildings",
        Some(json!({"name": "HQ", "address": "1 Main St"})),
    )
    .await;
    assert_eq!(b.status, StatusCode::CREATED, "{b:?}");
    let building = b.body["id"].as_str().unwrap().to_owned();
    let d = call(
        router,
        Method::POST,
        "/api/doors",
        Some(json!({"name": "Lobby", "buildingId": building})),
    )
    .await;
    assert_eq!(d.status, StatusCode::CREATED, "{d:?}");
    (building, d.body["id"].as_str().unwrap().to_owned())
}

async fn wait_profile(router: &Router, user: &str) -> Value {
    eventually(|| async {
        let r = call(
            router,
            Method::GET,
            &format!("/api/access/profiles/{user}"),
            None,
        )
        .await;
        (r.status == StatusCode::OK).then_some(r.body)
    })
    .await
}

async fn attempt(router: &Router, user: &str, door: &str) -> Value {
    let r = call(
        router,
        Method::POST,
        "/api/access/attempts",
        Some(json!({"userId": user, "doorId": door, "accessMethod": "card"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.body
}

async fn crud(backend: Backend) {
    let app = start(backend, AccessConfig::default()).await;
    let r = &app.router;
    let created = call(
        r,
        Method::POST,
        "/api/buildings",
        Some(json!({"name": " HQ ", "address": "1 Main St"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["name"], "HQ");
    assert!(created.body["createdAt"].is_string());

    let got = call(r, Method::GET, &format!("/api/buildings/{id}"), None).await;
    assert_eq!(got.body, created.body);
    let updated = call(
        r,
        Method::PUT,
        &format!("/api/buildings/{id}"),
        Some(json!({"name": "Head office", "address": "2 Main St"})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["address"], "2 Main St");

    let door = call(
        r,
        Method::POST,
        "/api/doors",
        Some(json!({"name": "Lobby", "buildingId": id})),
    )
    .await;
    assert_eq!(door.status, StatusCode::CREATED);
    assert_eq!(door.body["buildingId"], id.as_str());
    assert_eq!(door.body["locked"], false);
    let door_id = door.body["id"].as_str().unwrap().to_owned();

    let list = call(r, Method::GET, &format!("/api/doors?buildingId={id}"), None).await;
    assert_eq!(list.body["doors"].as_array().unwrap().len(), 1);
    let other = call(r, Method::GET, "/api/doors?buildingId=elsewhere", None).await;
    assert_eq!(other.body["doors"].as_array().unwrap().len(), 0);
    let buildings = call(r, Method::GET, "/api/buildings?limit=10", None).await;
    assert_eq!(buildings.body["buildings"].as_array().unwrap().len(), 1);

    let locked = call(
        r,
        Method::PUT,
        &format!("/api/doors/{door_id}"),
        Some(json!({"name": "Lobby", "buildingId": id, "locked": true})),
    )
    .await;
    assert_eq!(locked.body["locked"], true);

    let busy = call(r, Method::DELETE, &format!("/api/buildings/{id}"), None).await;
    assert_problem(&busy, StatusCode::CONFLICT);
    let gone = call(r, Method::DELETE, &format!("/api/doors/{door_id}"), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let gone = call(r, Method::DELETE, &format!("/api/buildings/{id}"), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let missing = call(r, Method::GET, &format!("/api/buildings/{id}"), None).await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn crud_sqlite() {
    crud(Backend::Sqlite).await;
}

#[tokio::test]
async fn crud_postgres() {
    crud(Backend::Postgres).await;
}

async fn decisions(backend: Backend) {
    let app = start(backend, AccessConfig::default()).await;
    let r = &app.router;
    let mut tail = app.bus.tail("access.*").await.unwrap();
    let (building, door) = building_with_door(r).await;

    // A new user gets the default profile through user.created: every door.
    app.bus.publish(&user_created("u1")).await.unwrap();
    let profile = wait_profile(r, "u1").await;
    assert_eq!(profile["allDoors"], true);
    let granted = attempt(r, "u1", &door).await;
    assert_eq!(granted["decision"], "granted");
    assert_eq!(granted["reason"], "authorized");
    let event = next_event(&mut tail, "access.granted").await;
    assert_eq!(event.id, granted["eventId"].as_str().unwrap());
    assert_eq!(event.source, "access-service");
    let data = serde_json::to_value(
        event
            .data_as::<forten_shared::events::AccessGranted>()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["userId"], "u1");
    assert_eq!(data["doorId"], door.as_str());
    assert_eq!(data["buildingId"], building.as_str());
    assert_eq!(data["accessMethod"], "card");

    // Unknown user: 200 denied.
    let denied = attempt(r, "nobody", &door).await;
    assert_eq!(denied["decision"], "denied");
    assert_eq!(denied["reason"], "unknown_user");
    let event = next_event(&mut tail, "access.denied").await;
    let data = event
        .data_as::<forten_shared::events::AccessDenied>()
        .unwrap();
    assert_eq!(data.reason, "unknown_user");
    assert_eq!(data.user_id.as_deref(), Some("nobody"));

    // Unknown door: 404.
    let missing = call(
        r,
        Method::POST,
        "/api/access/attempts",
        Some(json!({"userId": "u1", "doorId": "no-such-door", "accessMethod": "pin"})),
    )
    .await;
    assert_problem(&missing, StatusCode::NOT_FOUND);

    // A profile limited to another building's doors.
    let put = call(
        r,
        Method::PUT,
        "/api/access/profiles/u2",
        Some(json!({"buildingIds": [], "doorIds": [], "schedule": null})),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put:?}");
    assert_eq!(attempt(r, "u2", &door).await["reason"], "not_authorized");

    // By door, then by building, with schedules.
    let put = call(
        r,
        Method::PUT,
        "/api/access/profiles/u2",
        Some(json!({"doorIds": [door], "schedule": [
            {"days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "00:00", "end": "24:00"}
        ]})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(attempt(r, "u2", &door).await["decision"], "granted");
    let put = call(
        r,
        Method::PUT,
        "/api/access/profiles/u2",
        Some(json!({"buildingIds": [building], "schedule": [
            {"days": [], "start": "00:00", "end": "24:00"}
        ]})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(attempt(r, "u2", &door).await["reason"], "outside_schedule");

    // A locked door denies everyone.
    call(
        r,
        Method::PUT,
        &format!("/api/doors/{door}"),
        Some(json!({"name": "Lobby", "buildingId": building, "locked": true})),
    )
    .await;
    assert_eq!(attempt(r, "u1", &door).await["reason"], "door_locked");

    // Profiles referring to unknown doors are refused, naming the field.
    let bad = call(
        r,
        Method::PUT,
        "/api/access/profiles/u2",
        Some(json!({"doorIds": [door, "ghost"]})),
    )
    .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["field"], "doorIds[1]");
}

#[tokio::test]
async fn decisions_sqlite() {
    decisions(Backend::Sqlite).await;
}

#[tokio::test]
async fn decisions_postgres() {
    decisions(Backend::Postgres).await;
}

#[tokio::test]
async fn default_policy_none_grants_nothing() {
    let config = AccessConfig {
        default_policy: DefaultPolicy::None,
        ..AccessConfig::default()
    };
    let app = start(Backend::Sqlite, config).await;
    let (_, door) = building_with_door(&app.router).await;
    app.bus.publish(&user_created("u1")).await.unwrap();
    let profile = wait_profile(&app.router, "u1").await;
    assert_eq!(profile["allDoors"], false);
    assert_eq!(
        attempt(&app.router, "u1", &door).await["reason"],
        "not_authorized"
    );
}

#[test]
fn default_policy_parses() {
    assert_eq!("all".parse::<DefaultPolicy>().unwrap(), DefaultPolicy::All);
    assert_eq!(
        " NONE ".parse::<DefaultPolicy>().unwrap(),
        DefaultPolicy::None
    );
    let err = "some".parse::<DefaultPolicy>().unwrap_err();
    assert!(err.to_string().contains("ACCESS_DEFAULT_POLICY"));
}

async fn redelivery(backend: Backend) {
    let app = start(backend, AccessConfig::default()).await;
    let event = user_created("u1");
    // The handler itself, twice with the same event, then again after an operator change.
    access::on_user_created(&app.state, &event).await.unwrap();
    access::on_user_created(&app.state, &event).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_profiles")
        .fetch_one(app.state.database().pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
    let put = call(
        &app.router,
        Method::PUT,
        "/api/access/profiles/u1",
        Some(json!({"allDoors": false})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    access::on_user_created(&app.state, &event).await.unwrap();
    let profile = wait_profile(&app.router, "u1").await;
    assert_eq!(
        profile["allDoors"], false,
        "a redelivery must not overwrite"
    );
}

#[tokio::test]
async fn redelivered_user_created_sqlite() {
    redelivery(Backend::Sqlite).await;
}

#[tokio::test]
async fn redelivered_user_created_postgres() {
    redelivery(Backend::Postgres).await;
}

#[tokio::test]
async fn user_deleted_removes_the_profile() {
    let app = start(Backend::Sqlite, AccessConfig::default()).await;
    app.bus.publish(&user_created("u1")).await.unwrap();
    wait_profile(&app.router, "u1").await;
    let deleted = EventBuilder::new(
        forten_shared::events::UserDeleted {
            user_id: "u1".into(),
        },
        "auth-service",
    )
    .build();
    app.bus.publish(&deleted).await.unwrap();
    eventually(|| async {
        let r = call(&app.router, Method::GET, "/api/access/profiles/u1", None).await;
        (r.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
}

#[tokio::test]
async fn forced_door_publishes_a_critical_event() {
    let app = start(Backend::Sqlite, AccessConfig::default()).await;
    let mut tail = app.bus.tail("door.*").await.unwrap();
    let (building, door) = building_with_door(&app.router).await;
    let r = call(
        &app.router,
        Method::POST,
        &format!("/api/doors/{door}/forced"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let event = next_event(&mut tail, "door.forced").await;
    let data = event
        .data_as::<forten_shared::events::DoorForced>()
        .unwrap();
    assert_eq!(data.door_id, door);
    assert_eq!(data.building_id, building);
    assert_eq!(data.severity, forten_shared::events::Severity::Critical);
    let missing = call(&app.router, Method::POST, "/api/doors/ghost/forced", None).await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn internal_doors_and_openapi() {
    let app = start(Backend::Sqlite, AccessConfig::default()).await;
    let (_, door) = building_with_door(&app.router).await;
    let r = call(&app.internal, Method::GET, "/internal/doors", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["doors"][0]["id"], door.as_str());
    // The internal routes are not on the public router.
    let hidden = call(&app.router, Method::GET, "/internal/doors", None).await;
    assert_problem(&hidden, StatusCode::NOT_FOUND);

    let api = call(&app.router, Method::GET, "/openapi.json", None).await;
    assert_eq!(api.status, StatusCode::OK);
    let paths = api.body["paths"].as_object().unwrap();
    for p in [
        "/api/buildings",
        "/api/buildings/{id}",
        "/api/doors",
        "/api/doors/{id}",
        "/api/doors/{id}/forced",
        "/api/access/profiles/{userId}",
        "/api/access/attempts",
        "/internal/doors",
    ] {
        assert!(paths.contains_key(p), "{p} missing from /openapi.json");
    }
    assert!(api.body["components"]["schemas"]["Problem"].is_object());
    assert!(api.body["components"]["schemas"]["AttemptResult"].is_object());
    let list = &api.body["paths"]["/api/doors"]["get"]["parameters"];
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|p| p["in"] == "query" && p["required"] == false)
    );
    let not_found = &api.body["paths"]["/api/doors/{id}"]["get"]["responses"]["404"]["content"];
    assert!(
        not_found["application/problem+json"].is_object(),
        "{not_found}"
    );
}

/// The router served for real on a loopback socket, with the toolkit's observability.
#[tokio::test]
async fn served_with_observability() {
    let app = start(Backend::Sqlite, AccessConfig::default()).await;
    let obs = forten_shared::Observability::new(access::SERVICE, "test");
    let db = app.state.database().clone();
    obs.health()
        .register(forten_shared::HealthCheck::database("sqlite", move || {
            let db = db.clone();
            async move { db.ping().await }
        }));
    obs.health().start();
    let router = obs.apply(app.router.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let client = reqwest::Client::new();
    let created = client
        .post(format!("http://{addr}/api/buildings"))
        .json(&json!({"name": "A", "address": "B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let health = eventually(|| async {
        let resp = client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .ok()?;
        let body: Value = resp.json().await.ok()?;
        (body["checks"][0]["status"] == "healthy").then_some(body)
    })
    .await;
    assert_eq!(health["service"], "access-service");

    // Events published while serving a request carry its correlation id and trace.
    let mut tail = app.bus.tail("door.forced").await.unwrap();
    let (_, door) = building_with_door(&app.router).await;
    let forced = client
        .post(format!("http://{addr}/api/doors/{door}/forced"))
        .header("x-correlation-id", "corr-services-1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 200);
    let event = next_event(&mut tail, "door.forced").await;
    assert_eq!(event.correlation_id.as_deref(), Some("corr-services-1"));
    let traceparent = event.traceparent.unwrap_or_default();
    assert!(
        traceparent.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{traceparent}"
    );
    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_server_requests_total"), "{metrics}");
    server.abort();
}
