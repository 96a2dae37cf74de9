//! Shared helpers: test databases, calling routers, waiting for events.

use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use forten_shared::Event;
use forten_shared::events::Tail;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::storage::DatabaseConfig;

/// The PostgreSQL the tests use (trust auth).
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The RabbitMQ the tests use.
pub const RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Upper bound for something that should happen (not a timing assertion: only a hang guard).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A unique lowercase name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: a temporary directory (SQLite) or a unique schema (PostgreSQL),
/// removed on drop.
#[derive(Debug)]
pub struct TestDb {
    pub config: DatabaseConfig,
    dir: Option<PathBuf>,
    schema: Option<String>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique("forten_test"));
                let config = DatabaseConfig {
                    data_dir: dir.clone(),
                    ..DatabaseConfig::default()
                };
                Self {
                    config,
                    dir: Some(dir),
                    schema: None,
                }
            }
            Backend::Postgres => {
                let schema = unique("t");
                let config = DatabaseConfig {
                    url: Some(POSTGRES_URL.to_owned()),
                    schema: Some(schema.clone()),
                    max_connections: 4,
                    ..DatabaseConfig::default()
                };
                Self {
                    config,
                    dir: None,
                    schema: Some(schema),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(schema) = self.schema.take() {
            // Async cleanup from a synchronous drop: a short-lived runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    sqlx::any::install_default_drivers();
                    if let Ok(pool) = sqlx::AnyPool::connect(POSTGRES_URL).await {
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA IF EXISTS {schema} CASCADE"
                        )))
                        .execute(&pool)
                        .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// An answer: status, content type, JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

/// Calls `router` with an optional JSON body.
pub async fn call(router: &Router, method: Method, uri: &str, body: Option<Value>) -> Resp {
    match body {
        Some(b) => call_raw(router, method, uri, Some("application/json"), b.to_string()).await,
        None => call_raw(router, method, uri, None, String::new()).await,
    }
}

/// Calls `router` with a raw body and content type.
pub async fn call_raw(
    router: &Router,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: String,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req.body(Body::from(body)).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        content_type,
        body,
    }
}

/// Checks that `resp` is a problem document with `status`.
#[track_caller]
pub fn assert_problem(resp: &Resp, status: StatusCode) {
    assert_eq!(resp.status, status, "{resp:?}");
    assert_eq!(resp.content_type, "application/problem+json", "{resp:?}");
    assert_eq!(resp.body["status"], status.as_u16(), "{resp:?}");
    assert!(
        resp.body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:forten:problem:"))
    );
    assert!(resp.body["title"].is_string(), "{resp:?}");
    assert!(resp.body["detail"].is_string(), "{resp:?}");
}

/// The next event of type `ty` on `tail` (others are skipped).
pub async fn next_event(tail: &mut Tail, ty: &str) -> Event {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let tapped = tail.next().await.expect("bus closed");
            if let Ok(event) = tapped.event
                && event.event_type().as_str() == ty
            {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {ty} event"))
}

/// Whether an event of type `ty` arrives on `tail` before the bus is idle for `quiet`.
pub async fn no_event(tail: &mut Tail, ty: &str, quiet: Duration) -> bool {
    loop {
        match tokio::time::timeout(quiet, tail.next()).await {
            Err(_) | Ok(None) => return true,
            Ok(Some(t)) => {
                if t.event.is_ok_and(|e| e.event_type().as_str() == ty) {
                    return false;
                }
            }
        }
    }
}

/// Polls `check` until it returns `Some` (bounded by [`PATIENCE`]).
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("condition never met")
}
