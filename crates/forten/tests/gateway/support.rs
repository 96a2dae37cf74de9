//! The gateway's test bench: a registry on loopback, echo backends registered in it, the
//! gateway router on its own port, and a user token.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use forten_shared::DiscoveryClient;
use forten_shared::auth::{UserAuth, UserIdentity};
use forten_shared::discovery::{DiscoveryConfig, Registration, Registry, RegistryConfig};
use forten_shared::events::Role;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::services::gateway::{self, GatewayConfig, GatewayState};

/// The user-token secret of the tests.
pub const SECRET: &str = "gateway-tests-secret-0123456789abcdef";
/// A guard against hangs (never a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn trace_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A server on loopback (with the peer address in the extensions), stopped gracefully.
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let handle = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
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
        let _ = tokio::time::timeout(PATIENCE, self.handle).await;
    }
}

/// What an echo backend saw of its last request.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub headers: HeaderMap,
}

/// A backend instance: every path echoes the request as JSON (`instance`, `method`, `path`,
/// `query`, `body`, selected headers), with the status asked for in `x-echo-status`;
/// `/api/analytics/stream` streams chunks the test pushes; `/api/doors/slow` never answers
/// before the test releases it.
#[derive(Clone)]
pub struct Echo {
    pub instance: String,
    pub hits: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Seen>>,
    pub chunks: Arc<tokio::sync::Mutex<Option<mpsc::UnboundedReceiver<&'static str>>>>,
    pub release: Arc<Notify>,
}

impl Echo {
    pub fn new(instance: &str) -> Self {
        Self {
            instance: instance.to_owned(),
            hits: Arc::default(),
            seen: Arc::default(),
            chunks: Arc::default(),
            release: Arc::default(),
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn last_headers(&self) -> HeaderMap {
        self.seen.lock().unwrap().headers.clone()
    }

    /// Makes `/api/analytics/stream` send whatever is pushed into the returned sender.
    pub async fn stream_from_test(&self) -> mpsc::UnboundedSender<&'static str> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.chunks.lock().await = Some(rx);
        tx
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/api/analytics/stream", get(stream))
            .route("/api/doors/slow", get(slow))
            .fallback(any(echo))
            .with_state(self.clone())
    }

    pub async fn serve(&self) -> TestServer {
        TestServer::start(self.router()).await
    }
}

async fn echo(State(e): State<Echo>, req: Request) -> Response {
    e.hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    e.seen.lock().unwrap().headers = parts.headers.clone();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let status = parts
        .headers
        .get("x-echo-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = json!({
        "instance": e.instance,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "body": String::from_utf8_lossy(&body),
        "authorization": header("authorization"),
        "correlationId": header("x-correlation-id"),
        "traceparent": header("traceparent"),
        "deadline": header("x-request-deadline"),
        "connection": header("connection"),
        "forwardedFor": header("x-forwarded-for"),
    });
    (
        status,
        [
            ("x-backend", e.instance.as_str()),
            ("x-correlation-id", "backend-echo-must-not-win"),
        ],
        axum::Json(answer),
    )
        .into_response()
}

async fn stream(State(e): State<Echo>) -> Response {
    e.hits.fetch_add(1, Ordering::SeqCst);
    let Some(rx) = e.chunks.lock().await.take() else {
        return (StatusCode::CONFLICT, "no stream prepared").into_response();
    };
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|c| (Ok::<_, std::io::Error>(Bytes::from(c)), rx))
    });
    ([("content-type", "text/plain")], Body::from_stream(chunks)).into_response()
}

async fn slow(State(e): State<Echo>) -> &'static str {
    e.hits.fetch_add(1, Ordering::SeqCst);
    e.release.notified().await;
    "late"
}

/// A registry, the gateway in front of it, and a user.
pub struct Bench {
    pub registry: Registry,
    pub registry_server: TestServer,
    pub state: GatewayState,
    pub gateway: TestServer,
    pub users: UserAuth,
    pub token: String,
    pub http: reqwest::Client,
    pub backends: Vec<(Echo, Option<TestServer>)>,
}

impl Bench {
    pub async fn start(config: GatewayConfig) -> Self {
        Self::start_wrapped(config, |r| r).await
    }

    /// Like [`start`](Self::start), with the gateway router passed through `wrap` (e.g.
    /// `Observability::apply`).
    pub async fn start_wrapped(config: GatewayConfig, wrap: impl FnOnce(Router) -> Router) -> Self {
        trace_init();
        forten_shared::auth::install_crypto_provider();
        let registry = Registry::builder(RegistryConfig::default().health_checks(None))
            .start()
            .unwrap();
        let registry_server = TestServer::start(registry.router()).await;
        let discovery = DiscoveryClient::new(
            DiscoveryConfig::new(&registry_server.url).refresh_interval(Duration::from_millis(100)),
        )
        .unwrap();
        let users = UserAuth::new(SECRET, Duration::from_secs(3600)).unwrap();
        let token = users
            .issue(&UserIdentity {
                user_id: "u-admin".into(),
                email: "admin@forten.test".into(),
                role: Role::Admin,
            })
            .unwrap()
            .token;
        let state = GatewayState::new(discovery, users.clone(), config).unwrap();
        let gateway = TestServer::start(wrap(gateway::router(state.clone()))).await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            registry,
            registry_server,
            state,
            gateway,
            users,
            token,
            http,
            backends: Vec::new(),
        }
    }

    /// Starts an echo backend and registers it as an instance of `service`; returns its index.
    pub async fn add_backend(&mut self, service: &str, instance: &str) -> usize {
        let echo = Echo::new(instance);
        let server = echo.serve().await;
        self.registry
            .register(
                Registration::new(service, "1.0.0", "127.0.0.1", server.addr.port())
                    .health_check_url(None),
            )
            .await
            .unwrap();
        self.backends.push((echo, Some(server)));
        self.backends.len() - 1
    }

    pub fn echo(&self, i: usize) -> &Echo {
        &self.backends[i].0
    }

    /// Stops backend `i` (it stays registered: a dead instance discovery still hands out).
    pub async fn kill(&mut self, i: usize) {
        if let Some(server) = self.backends[i].1.take() {
            server.stop().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url)
    }

    /// A request as the logged-in user.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.authed(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }
}

/// Reads a problem+json answer, checking its content type and status member.
pub async fn problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "content type"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:forten:problem:")
    );
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}
