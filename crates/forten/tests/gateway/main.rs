#![allow(
    unreachable_pub,
    missing_docs,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used
)]

//! Integration tests of the api-gateway's routing layer over real loopback HTTP: a `Registry`
//! on its own port, echo backends registered in it as the SPEC's services, the gateway router
//! on its own port, and reqwest as the user.
//!
//! The gateway lives in the `forten` binary crate; its modules are compiled into this test
//! binary from their source files.

#[path = "../../src/services/mod.rs"]
mod services;
#[path = "../../src/storage/mod.rs"]
mod storage;

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use forten_shared::Observability;
use forten_shared::auth::{UserAuth, UserIdentity};
use forten_shared::client::{CircuitBreakerConfig, CircuitState, RetryPolicy};
use forten_shared::discovery::{Registry, RegistryConfig};
use forten_shared::events::Role;
use reqwest::Method;
use serde_json::Value;
use tower::ServiceExt as _;

use services::gateway::{self, GatewayConfig, Route, default_routes};
use support::{Bench, PATIENCE, problem};

fn fast_retries(n: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(n)
        .initial_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
}

/// Every SPEC service with one echo instance (index order: auth, access, monitoring,
/// analytics).
async fn full_bench(config: GatewayConfig) -> Bench {
    let mut bench = Bench::start(config).await;
    bench.add_backend("auth-service", "auth-1").await;
    bench.add_backend("access-service", "access-1").await;
    bench
        .add_backend("monitoring-service", "monitoring-1")
        .await;
    bench.add_backend("analytics-service", "analytics-1").await;
    bench
}

#[tokio::test]
async fn each_prefix_reaches_its_owner() {
    let bench = full_bench(GatewayConfig::default()).await;
    for (path, instance) in [
        ("/api/auth/me", "auth-1"),
        ("/api/users", "auth-1"),
        ("/api/users/u1", "auth-1"),
        ("/api/buildings", "access-1"),
        ("/api/doors/d1", "access-1"),
        ("/api/access/profiles/u1", "access-1"),
        ("/api/cameras", "monitoring-1"),
        ("/api/alerts/a1", "monitoring-1"),
        ("/api/analytics/metrics", "analytics-1"),
    ] {
        let res = bench.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let echo: Value = res.json().await.unwrap();
        assert_eq!(echo["instance"], instance, "{path}");
        assert_eq!(echo["path"], path);
    }
}

#[tokio::test]
async fn method_path_query_body_status_and_authorization_are_preserved() {
    let bench = full_bench(GatewayConfig::default()).await;
    let res = bench
        .authed(Method::POST, "/api/doors?b=1&a=%20x&a=2")
        .header("content-type", "application/json")
        .header("x-echo-status", "201")
        .header("connection", "x-hop")
        .header("x-hop", "must not pass")
        .header("x-request-deadline", "1")
        .body(r#"{"name":"Main Entrance","buildingId":"b1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-backend"], "access-1");
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/doors");
    assert_eq!(echo["query"], "b=1&a=%20x&a=2");
    assert_eq!(
        echo["body"],
        r#"{"name":"Main Entrance","buildingId":"b1"}"#
    );
    assert_eq!(
        echo["authorization"].as_str().unwrap(),
        format!("Bearer {}", bench.token),
        "the user's token is forwarded unchanged"
    );
    assert_ne!(
        echo["deadline"], "1",
        "the caller's deadline is replaced by the gateway's"
    );
    assert!(echo["deadline"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(echo["forwardedFor"], "127.0.0.1");
    let seen = bench.echo(1).last_headers();
    assert!(
        !seen.contains_key("x-hop"),
        "a header named in Connection is hop-by-hop"
    );
    assert_eq!(seen["content-type"], "application/json");

    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::GET] {
        let res = bench
            .authed(method.clone(), "/api/buildings/b1")
            .header("x-echo-status", "202")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{method}");
        let echo: Value = res.json().await.unwrap();
        assert_eq!(echo["method"], method.as_str());
        assert_eq!(echo["path"], "/api/buildings/b1");
    }
    let res = bench
        .authed(Method::GET, "/api/cameras")
        .header("x-echo-status", "404")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "the service's own answers are relayed as they are"
    );
}

#[tokio::test]
async fn a_user_token_is_required_except_for_login() {
    let bench = full_bench(GatewayConfig::default()).await;
    let res = bench
        .http
        .get(bench.url("/api/doors"))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body = problem(res, 401).await;
    assert_eq!(body["reason"], "missing_token");

    let res = bench
        .http
        .get(bench.url("/api/doors"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res, 401).await["reason"], "malformed");

    let other = UserAuth::new(
        "another-secret-0123456789abcdefghij",
        Duration::from_secs(60),
    )
    .unwrap();
    let forged = other
        .issue(&UserIdentity {
            user_id: "u".into(),
            email: "u@x.test".into(),
            role: Role::Admin,
        })
        .unwrap()
        .token;
    let res = bench
        .http
        .post(bench.url("/api/users"))
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res, 401).await["reason"], "bad_signature");
    // Unknown prefixes are no way around the check.
    let res = bench
        .http
        .get(bench.url("/api/nothing"))
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    assert_eq!(
        bench.echo(0).hits() + bench.echo(1).hits(),
        0,
        "nothing was forwarded"
    );

    let res = bench
        .http
        .post(bench.url("/api/auth/login"))
        .json(&serde_json::json!({"email": "a@b.test", "password": "pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login needs no token");
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["instance"], "auth-1");
    assert_eq!(echo["authorization"], Value::Null);
    // Only POST on the login path is exempt.
    let res = bench
        .http
        .get(bench.url("/api/auth/login"))
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
}

#[tokio::test]
async fn unknown_prefixes_and_dot_segments_are_problems() {
    let bench = full_bench(GatewayConfig::default()).await;
    for path in ["/api/nothing", "/api/doorsX", "/api"] {
        let body = problem(bench.get(path).await, 404).await;
        assert_eq!(body["reason"], "not_found", "{path}");
    }
    let res = bench
        .http
        .get(bench.url("/elsewhere"))
        .send()
        .await
        .unwrap();
    problem(res, 404).await;

    // reqwest would normalise these paths itself: send them raw through the router.
    let app = gateway::router(bench.state.clone());
    for path in [
        "/api/users/../internal/doors",
        "/api/users/%2e%2E/internal/doors",
    ] {
        let req = Request::get(path)
            .header("authorization", format!("Bearer {}", bench.token))
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
    }
    assert_eq!(bench.echo(0).hits(), 0);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let bench = full_bench(GatewayConfig::default().max_body_bytes(1024)).await;
    let res = bench
        .authed(Method::POST, "/api/doors")
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    let body = problem(res, 413).await;
    assert_eq!(body["reason"], "payload_too_large");
    assert_eq!(bench.echo(1).hits(), 0, "nothing was forwarded");

    let res = bench
        .authed(Method::POST, "/api/doors")
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a body at the limit passes");

    // A chunked body (no content-length) is counted as it arrives.
    let chunks = futures_util::stream::iter(
        (0..3).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'y'; 400]))),
    );
    let req = Request::post("/api/doors")
        .header("authorization", format!("Bearer {}", bench.token))
        .body(Body::from_stream(chunks))
        .unwrap();
    let res = gateway::router(bench.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(bench.echo(1).hits(), 1);
}

#[tokio::test]
async fn a_killed_instance_is_retried_around() {
    let config = GatewayConfig::default()
        .retry(fast_retries(2))
        .breaker(CircuitBreakerConfig::default().failure_threshold(1000));
    let mut bench = Bench::start(config).await;
    let first = bench.add_backend("access-service", "access-1").await;
    let second = bench.add_backend("access-service", "access-2").await;
    // Both instances answer while alive.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        let echo: Value = bench.get("/api/doors").await.json().await.unwrap();
        seen.insert(echo["instance"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 2, "balanced over both: {seen:?}");

    bench.kill(first).await;
    let before = bench.echo(second).hits();
    for _ in 0..8 {
        let res = bench.get("/api/doors").await;
        assert_eq!(res.status(), 200);
        let echo: Value = res.json().await.unwrap();
        assert_eq!(echo["instance"], "access-2");
    }
    // POST is retried too when nothing was sent (connection refused).
    for _ in 0..4 {
        let res = bench
            .authed(Method::POST, "/api/doors")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        bench.echo(second).hits() - before,
        12,
        "each request answered once"
    );
}

#[tokio::test]
async fn no_instance_is_a_503_naming_the_service_and_its_circuit() {
    let bench = Bench::start(GatewayConfig::default()).await;
    let res = bench.get("/api/analytics/metrics").await;
    let body = problem(res, 503).await;
    assert_eq!(body["reason"], "no_instance");
    assert_eq!(body["service"], "analytics-service");
    assert_eq!(body["circuit"], "closed");
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures() {
    let config = GatewayConfig::default().retry(RetryPolicy::none()).breaker(
        CircuitBreakerConfig::default()
            .failure_threshold(2)
            .reset_timeout(Duration::from_secs(30)),
    );
    let mut bench = Bench::start(config).await;
    let only = bench
        .add_backend("monitoring-service", "monitoring-1")
        .await;
    assert_eq!(bench.get("/api/cameras").await.status(), 200);
    bench.kill(only).await;

    let body = problem(bench.get("/api/cameras").await, 503).await;
    assert_eq!(body["service"], "monitoring-service");
    assert_eq!(body["circuit"], "closed", "one failure: still closed");
    assert_eq!(body["reason"], "upstream_unavailable");
    let body = problem(bench.get("/api/cameras").await, 503).await;
    assert_eq!(body["circuit"], "open", "the second failure opened it");

    let res = bench.get("/api/cameras").await;
    assert_eq!(res.headers()["retry-after"], "30");
    let body = problem(res, 503).await;
    assert_eq!(body["reason"], "circuit_open");
    assert_eq!(body["circuit"], "open");
    assert_eq!(body["service"], "monitoring-service");
    let client = bench.state.client("monitoring-service").unwrap();
    assert_eq!(client.circuit_state(), CircuitState::Open);
    // Other targets are unaffected.
    assert_eq!(
        bench
            .state
            .client("access-service")
            .unwrap()
            .circuit_state(),
        CircuitState::Closed
    );
}

#[tokio::test]
async fn correlation_ids_are_issued_echoed_and_passed_through() {
    correlation_checks(full_bench(GatewayConfig::default()).await).await;
}

#[tokio::test]
async fn correlation_ids_behind_the_telemetry_layer() {
    let obs = Observability::new(gateway::SERVICE, "test");
    let mut bench = Bench::start_wrapped(GatewayConfig::default(), |r| obs.apply(r)).await;
    bench.add_backend("access-service", "access-1").await;
    correlation_checks(bench).await;
}

async fn correlation_checks(bench: Bench) {
    // Issued at the edge when absent: the same id reaches the service and comes back.
    let res = bench.get("/api/doors").await;
    assert_eq!(res.status(), 200);
    let issued = res.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(issued.len(), 36, "a UUID: {issued}");
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["correlationId"], issued.as_str());

    // An incoming one passes through unchanged, and the trace continues.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = bench
        .authed(Method::GET, "/api/doors")
        .header("x-correlation-id", "req-42")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-correlation-id"], "req-42");
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["correlationId"], "req-42");
    let tp = echo["traceparent"].as_str().unwrap();
    assert_eq!(&tp[3..35], trace, "same trace id: {tp}");

    // Also on the gateway's own answers.
    let res = bench
        .http
        .get(bench.url("/api/doors"))
        .header("x-correlation-id", "req-43")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-correlation-id"], "req-43");
    problem(res, 401).await;
}

#[tokio::test]
async fn the_answer_is_streamed_not_buffered() {
    let bench = full_bench(GatewayConfig::default()).await;
    let tx = bench.echo(3).stream_from_test().await;
    tx.send("first;").unwrap();
    // A gateway that buffered would hold the head back until the body ends: it never would.
    let mut res = tokio::time::timeout(PATIENCE, bench.get("/api/analytics/stream"))
        .await
        .expect("the head arrives while the body is still open");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    // The last chunk is produced only after the first was received through the gateway.
    let first = tokio::time::timeout(PATIENCE, res.chunk())
        .await
        .expect("the first chunk arrives while the body is still open")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first;");
    tx.send("second;").unwrap();
    tx.send("last").unwrap();
    drop(tx);
    let mut rest = Vec::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"second;last");
}

#[tokio::test]
async fn a_route_timeout_answers_504_naming_the_service() {
    let mut routes = default_routes();
    routes
        .push(Route::new("/api/doors/slow", "access-service").timeout(Duration::from_millis(300)));
    let bench = full_bench(
        GatewayConfig::default()
            .routes(routes)
            .retry(fast_retries(1)),
    )
    .await;
    let res = bench.get("/api/doors/slow").await;
    let body = problem(res, 504).await;
    assert_eq!(body["reason"], "upstream_timeout");
    assert_eq!(body["service"], "access-service");
    assert_eq!(body["circuit"], "closed");
    bench.echo(1).release.notify_waiters();
    // The default timeout still applies elsewhere on the same service.
    assert_eq!(bench.get("/api/doors/1").await.status(), 200);
}

#[tokio::test]
async fn dashboard_openapi_and_registry_mount_together() {
    let bench = Bench::start(GatewayConfig::default()).await;
    let res = bench.http.get(bench.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("/api/auth/login") && html.contains("/registry/services"));

    let res = bench
        .http
        .get(bench.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let api: Value = res.json().await.unwrap();
    assert_eq!(api["info"]["title"], "api-gateway");
    assert!(api["paths"]["/api/doors/{path}"]["post"].is_object());

    // What `forten up` does: the registry's routes and observability beside the gateway's.
    let registry = Registry::builder(RegistryConfig::default().health_checks(None))
        .start()
        .unwrap();
    let obs = Observability::new(gateway::SERVICE, "test");
    let app = obs.apply(gateway::router(bench.state.clone()).merge(registry.router()));
    for (path, status) in [
        ("/registry/services", 200),
        ("/health/live", 200),
        ("/", 200),
        ("/nope", 404),
    ] {
        let res = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{path}");
    }
}
