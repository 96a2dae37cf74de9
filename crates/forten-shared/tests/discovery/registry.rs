use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use forten_shared::EventBus;
use forten_shared::discovery::{
    AccessDenied, HealthCheckConfig, InstanceStatus, Registration, Registry, RegistryAccess,
    RegistryAuthorizer, RegistryConfig,
};
use forten_shared::events::{EventPublisher, EventType};
use forten_shared::telemetry::Metrics;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::support::{Backend, FAIL_500, OK, TestServer, trace_init, unique, wait_until};

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, headers, json)
}

fn post(uri: &str, body: &Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn no_checks() -> RegistryConfig {
    RegistryConfig::default().health_checks(None)
}

#[tokio::test]
async fn routes_follow_spec_section_6() {
    trace_init();
    let registry = Registry::builder(no_checks()).start().unwrap();
    let app: axum::Router = registry.router();
    let body = json!({"name": "auth-service", "version": "1.0.0", "host": "127.0.0.1", "port": 3001,
        "healthCheckUrl": "http://127.0.0.1:3001/health", "metadata": {"capabilities": ["authentication"]}});
    let (status, _, created) = call(&app, post("/registry/services", &body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["ttlSeconds"], 30);

    let (status, _, list) = call(
        &app,
        Request::get("/registry/services")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["services"][0]["name"], "auth-service");
    assert_eq!(list["services"][0]["instances"][0]["id"], id.as_str());

    let (status, _, found) = call(
        &app,
        Request::get("/registry/services/auth-service")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["service"], "auth-service");
    let inst = &found["instances"][0];
    for field in [
        "id",
        "name",
        "version",
        "url",
        "healthCheckUrl",
        "metadata",
        "status",
        "registeredAt",
        "lastHeartbeat",
    ] {
        assert!(inst.get(field).is_some(), "missing {field} in {inst}");
    }
    assert_eq!(inst["url"], "http://127.0.0.1:3001");
    assert_eq!(inst["status"], "healthy");
    assert_eq!(inst["metadata"]["capabilities"][0], "authentication");

    let (status, _, _) = call(
        &app,
        Request::put(format!("/registry/services/{id}/heartbeat"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, problem) = call(
        &app,
        Request::put("/registry/services/nope/heartbeat")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["status"], 404);

    let (status, _, _) = call(
        &app,
        Request::delete(format!("/registry/services/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 204);
    let (_, _, found) = call(
        &app,
        Request::get("/registry/services/auth-service")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(found["instances"], json!([]));
}

#[tokio::test]
async fn bad_registration_is_a_problem() {
    let registry = Registry::builder(no_checks()).start().unwrap();
    let app: axum::Router = registry.router();
    let (status, headers, problem) =
        call(&app, post("/registry/services", &json!({"name": "x"}))).await;
    assert_eq!(status, 422);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["status"], 422);
    let (status, _, _) = call(
        &app,
        post(
            "/registry/services",
            &json!({"name": "", "host": "h", "port": 1}),
        ),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn silent_instance_is_evicted_after_the_ttl_and_announced() {
    trace_init();
    let bus = EventBus::in_process("api-gateway");
    let mut tail = bus.tail("service.*").await.unwrap();
    let registry = Registry::builder(
        no_checks()
            .ttl(Duration::from_secs(1))
            .sweep_interval(Duration::from_millis(50)),
    )
    .events(EventPublisher::new(bus.clone()))
    .start()
    .unwrap();
    let name = unique("evicted");
    let created = registry
        .register(Registration::new(&name, "1", "127.0.0.1", 9).health_check_url(None))
        .await
        .unwrap();
    let registered = tail.next().await.unwrap().event.unwrap();
    assert_eq!(registered.event_type(), EventType::ServiceRegistered);
    assert_eq!(registry.instances(&name, true).await.unwrap().len(), 1);

    // No heartbeat: gone after the TTL.
    wait_until("eviction", Duration::from_secs(10), || async {
        registry.instances(&name, true).await.unwrap().is_empty()
    })
    .await;
    wait_until(
        "the sweeper to remove it from the store",
        Duration::from_secs(10),
        || async {
            registry
                .services()
                .await
                .unwrap()
                .iter()
                .all(|s| s.name != name)
        },
    )
    .await;
    let deregistered = tail.next().await.unwrap().event.unwrap();
    assert_eq!(deregistered.event_type(), EventType::ServiceDeregistered);
    let json = serde_json::to_value(&deregistered).unwrap();
    assert_eq!(json["data"]["instanceId"], created.id.as_str());
    assert_eq!(json["data"]["serviceName"], name.as_str());
    // A heartbeat now is a 404: the client registers again.
    assert!(registry.heartbeat(&created.id).await.is_err());
}

#[tokio::test]
async fn failing_health_checks_mark_unhealthy_and_recovery_restores() {
    trace_init();
    let backend = Backend::new("b");
    let server = TestServer::start(axum::Router::new().route(
        "/health",
        axum::routing::get({
            let b = backend.clone();
            move || {
                let b = b.clone();
                async move {
                    if b.mode.load(std::sync::atomic::Ordering::SeqCst) == FAIL_500 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }
        }),
    ))
    .await;
    let registry = Registry::builder(
        RegistryConfig::default().health_checks(Some(
            HealthCheckConfig::default()
                .interval(Duration::from_millis(50))
                .timeout(Duration::from_millis(500))
                .thresholds(2, 2),
        )),
    )
    .start()
    .unwrap();
    let name = unique("checked");
    registry
        .register(Registration::new(
            &name,
            "1",
            "127.0.0.1",
            server.addr.port(),
        ))
        .await
        .unwrap();
    backend.set_mode(FAIL_500);
    wait_until("unhealthy", Duration::from_secs(10), || async {
        registry.instances(&name, false).await.unwrap().is_empty()
    })
    .await;
    let all = registry.instances(&name, true).await.unwrap();
    assert_eq!(all[0].status, InstanceStatus::Unhealthy);

    backend.set_mode(OK);
    wait_until("healthy again", Duration::from_secs(10), || async {
        registry.instances(&name, false).await.unwrap().len() == 1
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn registry_metrics_count_instances_by_service_and_status() {
    let service = unique("gw");
    let registry = Registry::builder(no_checks().service(&service))
        .start()
        .unwrap();
    registry
        .register(Registration::new("auth-service", "1", "h", 1).health_check_url(None))
        .await
        .unwrap();
    registry
        .register(Registration::new("auth-service", "1", "h", 2).health_check_url(None))
        .await
        .unwrap();
    let text = Metrics::new(&service).render();
    let line = format!(
        "registry_instances{{service=\"{service}\",target=\"auth-service\",status=\"healthy\"}} 2"
    );
    assert!(text.contains(&line), "{text}");
}

/// Admits writes with `Bearer writer`, reads with `Bearer reader` or `Bearer writer`.
#[derive(Debug)]
struct Tokens;

impl RegistryAuthorizer for Tokens {
    fn authorize<'a>(
        &'a self,
        headers: &'a HeaderMap,
        access: RegistryAccess,
    ) -> BoxFuture<'a, Result<(), AccessDenied>> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        Box::pin(async move {
            match (token.as_deref(), access) {
                (None, _) => Err(AccessDenied::Unauthenticated("missing token".into())),
                (Some("writer"), _) | (Some("reader"), RegistryAccess::Read) => Ok(()),
                (Some("reader"), RegistryAccess::Write) => Err(AccessDenied::Forbidden(format!(
                    "missing scope {}",
                    access.required_scope()
                ))),
                _ => Err(AccessDenied::Unauthenticated("invalid token".into())),
            }
        })
    }
}

#[tokio::test]
async fn authorizer_guards_read_and_write_groups() {
    let registry = Registry::builder(no_checks())
        .authorizer(Arc::new(Tokens))
        .start()
        .unwrap();
    let app: axum::Router = registry.router();
    let body = json!({"name": "a", "version": "1", "host": "h", "port": 1, "healthCheckUrl": null, "metadata": {}});
    let (status, headers, problem) = call(&app, post("/registry/services", &body)).await;
    assert_eq!(status, 401);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(problem["status"], 401);

    let mut req = post("/registry/services", &body);
    req.headers_mut()
        .insert("authorization", "Bearer reader".parse().unwrap());
    let (status, _, problem) = call(&app, req).await;
    assert_eq!(status, 403);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("registry:write")
    );

    let mut req = post("/registry/services", &body);
    req.headers_mut()
        .insert("authorization", "Bearer writer".parse().unwrap());
    assert_eq!(call(&app, req).await.0, 201);

    let (status, _, _) = call(
        &app,
        Request::get("/registry/services")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let req = Request::get("/registry/services/a")
        .header("authorization", "Bearer reader")
        .body(Body::empty())
        .unwrap();
    let (status, _, found) = call(&app, req).await;
    assert_eq!(status, 200);
    assert_eq!(found["instances"].as_array().unwrap().len(), 1);
}
