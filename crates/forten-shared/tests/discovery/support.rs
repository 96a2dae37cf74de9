//! Shared helpers for the discovery and client tests: servers on loopback that can be
//! stopped and restarted on the same port, backends that count their hits, polling.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn trace_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The Redis of this machine (`REDIS_URL`, default 127.0.0.1:6379), read, never written.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A server on loopback that shuts down gracefully (idle keep-alive connections closed).
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(app: Router) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), app).await
    }

    /// Binds `addr` (retrying briefly: the port was just released by a stopped server).
    pub async fn start_at(addr: SocketAddr, app: Router) -> Self {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot bind {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let handle = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .unwrap();
        });
        Self {
            addr,
            url: format!("http://{addr}"),
            cancel,
            handle,
        }
    }

    /// Stops accepting, lets in-flight requests finish, closes every connection.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle).await;
    }
}

/// What a [`Backend`] answers.
pub const OK: u8 = 0;
pub const FAIL_500: u8 = 1;
pub const UNAVAILABLE_RETRY_AFTER: u8 = 2;
pub const UNAVAILABLE: u8 = 3;

/// A service instance: `/health`, and every other path answers with its name and counts the
/// hit; its behaviour and delay can be changed while it runs.
#[derive(Clone)]
pub struct Backend {
    pub name: String,
    pub hits: Arc<AtomicUsize>,
    pub mode: Arc<AtomicU8>,
    pub delay_ms: Arc<AtomicUsize>,
    /// Hits answered `UNAVAILABLE_RETRY_AFTER` before answering OK.
    pub fail_first: Arc<AtomicUsize>,
    /// Headers of the last request.
    pub last_headers: Arc<std::sync::Mutex<HeaderMap>>,
}

impl Backend {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            hits: Arc::default(),
            mode: Arc::default(),
            delay_ms: Arc::default(),
            fail_first: Arc::default(),
            last_headers: Arc::default(),
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/health", get(|| async { "ok" }))
            .fallback(any(handle))
            .with_state(self.clone())
    }

    pub async fn serve(&self) -> TestServer {
        TestServer::start(self.router()).await
    }
}

async fn handle(State(b): State<Backend>, headers: HeaderMap) -> Response {
    b.hits.fetch_add(1, Ordering::SeqCst);
    *b.last_headers.lock().unwrap() = headers;
    let delay = b.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    if b.fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            "busy",
        )
            .into_response();
    }
    match b.mode.load(Ordering::SeqCst) {
        FAIL_500 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        UNAVAILABLE_RETRY_AFTER => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            "busy",
        )
            .into_response(),
        UNAVAILABLE => (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
        _ => (StatusCode::OK, b.name.clone()).into_response(),
    }
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit` (a safety net
/// against hangs, not a timing assertion).
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
