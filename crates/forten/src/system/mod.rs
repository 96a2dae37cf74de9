//! The Forten system's processes (SPEC §1, §2): `forten up` runs every service in one process
//! on the embedded defaults; `forten run <service>` runs one service as its own process.
//!
//! Both build each service the same way ([`node::Node`]): its own identity (`service.name` in
//! traces, its own `/health`, `/metrics`, `/openapi.json`), its database with migrations, its
//! subscriptions, its registration with the registry that the api-gateway hosts, and the same
//! graceful stop — deregister → readiness 503 → drain in-flight HTTP and event handlers →
//! close.

mod node;
pub(crate) mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use forten_shared::EventBus;
use forten_shared::auth::{
    AuthMode, IssuerConfig, IssuerPolicy, ServiceAuth, TokenIssuer, UserAuth,
};
use forten_shared::events::RabbitConfig;
use tokio::net::TcpListener;
use tokio::time::Instant;

use self::node::Node;
use self::settings::{Settings, env};
use crate::commands::CliError;
use crate::storage::{DatabaseConfig, StorageError};

/// The version every service reports.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long user tokens live.
const USER_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The services of the system, in start order (the gateway first: it hosts the registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ServiceKind {
    /// Registry, routing of `/api/**`, dashboard.
    ApiGateway,
    /// Users, login, roles, service-token issuer.
    AuthService,
    /// Buildings, doors, access profiles and decisions.
    AccessService,
    /// Cameras, heartbeats, alerts.
    MonitoringService,
    /// Counts, time series and derived figures over every event.
    AnalyticsService,
}

impl ServiceKind {
    /// Every service, in start order.
    pub(crate) const ALL: [ServiceKind; 5] = [
        ServiceKind::ApiGateway,
        ServiceKind::AuthService,
        ServiceKind::AccessService,
        ServiceKind::MonitoringService,
        ServiceKind::AnalyticsService,
    ];

    /// Its name (SPEC §2): events' `source`, traces, the registry.
    pub(crate) fn name(self) -> &'static str {
        use crate::services::{access, analytics, auth, gateway, monitoring};
        match self {
            ServiceKind::ApiGateway => gateway::SERVICE,
            ServiceKind::AuthService => auth::SERVICE,
            ServiceKind::AccessService => access::SERVICE,
            ServiceKind::MonitoringService => monitoring::SERVICE,
            ServiceKind::AnalyticsService => analytics::SERVICE,
        }
    }

    /// Its default port (SPEC §3): 3000 … 3004.
    pub(crate) fn default_port(self) -> u16 {
        DEFAULT_PORT_BASE + self.offset()
    }

    /// Its place after the port base.
    fn offset(self) -> u16 {
        match self {
            ServiceKind::ApiGateway => 0,
            ServiceKind::AuthService => 1,
            ServiceKind::AccessService => 2,
            ServiceKind::MonitoringService => 3,
            ServiceKind::AnalyticsService => 4,
        }
    }
}

/// The gateway's default port; the others follow it.
pub(crate) const DEFAULT_PORT_BASE: u16 = 3000;

/// What the services of one process share.
#[derive(Debug)]
pub(crate) struct Shared {
    settings: Settings,
    /// The process's bus; each service uses its own handle on it (`for_service`).
    bus: EventBus,
    /// Signs user tokens, and service tokens in shared-secret mode.
    jwt_secret: String,
    user_auth: UserAuth,
    /// The service-token issuer, when this process hosts it (`up` in issuer mode, or the
    /// auth-service of `run` in issuer mode).
    issuer: Option<Arc<TokenIssuer>>,
    database: DatabaseConfig,
    /// The registry (gateway) URL, fixed once the gateway's port is known.
    registry_url: String,
}

impl Shared {
    fn service_auth(&self, name: &str) -> Result<ServiceAuth, CliError> {
        node::build_service_auth(name, self)
    }

    /// The URL other services reach a service listening on `addr` at.
    fn advertise_url(&self, addr: SocketAddr) -> String {
        if let Some(url) = &self.settings.advertise_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        };
        format!("http://{host}:{}", addr.port())
    }

    /// Where a service registers: the gateway reaches its own registry over loopback.
    fn registry_url_for(&self, kind: ServiceKind, addr: SocketAddr) -> String {
        if kind == ServiceKind::ApiGateway {
            format!("http://127.0.0.1:{}", addr.port())
        } else {
            self.registry_url.clone()
        }
    }
}

impl From<StorageError> for CliError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Config(_) | StorageError::DataDir { .. } => {
                CliError::Usage(format!("{}: {e}", env::DATABASE_URL))
            }
            StorageError::Query(_) => CliError::Unavailable(format!("database: {e}")),
            StorageError::Migration { .. } => CliError::Failed(e.to_string()),
        }
    }
}

/// How `forten up` / `forten run` were asked to start.
#[derive(Debug, Clone, Default)]
pub(crate) struct Launch {
    /// `--port-base` (`up`): the gateway's port, the others after it.
    pub(crate) port_base: Option<u16>,
    /// `--port` (`run`): overrides `PORT`.
    pub(crate) port: Option<u16>,
    /// `--host`: overrides `HOST`.
    pub(crate) host: Option<String>,
    /// `--data-dir`: overrides `FORTEN_DATA_DIR`.
    pub(crate) data_dir: Option<std::path::PathBuf>,
    /// How long a stopping instance keeps serving after deregistering.
    pub(crate) drain_grace: Option<Duration>,
}

/// How long in-flight HTTP requests and event handlers get to finish at stop.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

async fn shared(settings: Settings, embedded: bool) -> Result<Shared, CliError> {
    let jwt_secret = match (&settings.jwt_secret, embedded) {
        (Some(s), _) => s.clone(),
        (None, true) => random_secret()?,
        (None, false) => {
            return Err(CliError::Usage(format!(
                "{}: required by `forten run` (every instance must sign and verify with the same key)",
                env::JWT_SECRET
            )));
        }
    };
    let user_auth = UserAuth::new(&jwt_secret, USER_TOKEN_TTL)
        .map_err(|e| CliError::Usage(format!("{}: {e}", env::JWT_SECRET)))?;
    let bus = match &settings.rabbitmq_url {
        Some(url) => {
            EventBus::rabbitmq("forten", RabbitConfig::new(url).connection_name("forten")).await?
        }
        None if embedded => EventBus::in_process("forten"),
        None => {
            return Err(CliError::Usage(format!(
                "{}: required by `forten run` (services in separate processes talk over RabbitMQ)",
                env::RABBITMQ_URL
            )));
        }
    };
    let database = DatabaseConfig {
        url: settings.database_url.clone(),
        data_dir: settings.data_dir(),
        ..DatabaseConfig::default()
    };
    Ok(Shared {
        registry_url: settings.registry_url().to_owned(),
        jwt_secret,
        user_auth,
        issuer: None,
        bus,
        database,
        settings,
    })
}

/// A fresh `JWT_SECRET` for `forten up` (32 random bytes, hex): tokens die with the process.
fn random_secret() -> Result<String, CliError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| CliError::Failed("no randomness available for JWT_SECRET".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn issuer(policy: IssuerPolicy) -> Result<Arc<TokenIssuer>, CliError> {
    TokenIssuer::new(IssuerConfig::new(policy))
        .map(Arc::new)
        .map_err(|e| CliError::Usage(format!("{}: {e}", env::SERVICE_AUTH_MODE)))
}

async fn bind(host: &str, port: u16, name: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind((host, port))
        .await
        .map_err(|e| CliError::Unavailable(format!("{name}: cannot listen on {host}:{port}: {e}")))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Waits until every node is registered and its checks have run once (again, for checks of
/// peers that registered after them).
async fn wait_ready(nodes: &[Node]) {
    for node in nodes {
        node.wait_registered().await;
    }
    for node in nodes {
        node.health().check_now().await;
    }
}

/// Stops the nodes in reverse start order (the gateway last), then the bus and the databases.
async fn stop_all(nodes: Vec<Node>, bus: &EventBus, grace: Duration) {
    let mut databases = Vec::new();
    for node in nodes.into_iter().rev() {
        if let Some(db) = node.stop(grace, DRAIN_DEADLINE).await {
            databases.push(db);
        }
    }
    bus.shutdown(DRAIN_DEADLINE).await;
    for db in databases {
        db.close().await;
    }
}

/// `forten up`: every service in this process; prints the URLs and the admin login; stops on
/// Ctrl-C / SIGTERM.
pub(crate) async fn up(launch: Launch) -> Result<(), CliError> {
    let started = Instant::now();
    let settings = settings_with(launch.clone())?;
    let base = launch.port_base.unwrap_or(DEFAULT_PORT_BASE);
    if base > u16::MAX - 4 {
        return Err(CliError::Usage(format!(
            "--port-base: {base} leaves no room for five ports"
        )));
    }
    let host = settings.host().to_owned();
    let mut listeners = Vec::new();
    for kind in ServiceKind::ALL {
        let port = if base == 0 { 0 } else { base + kind.offset() };
        listeners.push((kind, bind(&host, port, kind.name()).await?));
    }
    let mut shared = shared(settings, true).await?;
    if shared.settings.auth_mode == AuthMode::Issuer {
        // One process: one issuer every service signs with directly.
        shared.issuer = Some(issuer(IssuerPolicy::new())?);
    }
    let gateway_addr = listeners[0]
        .1
        .local_addr()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if shared.settings.registry_url.is_none() {
        shared.registry_url = shared.advertise_url(gateway_addr);
    }
    let mut nodes = Vec::new();
    for (kind, listener) in listeners {
        match Node::start(kind, &shared, listener).await {
            Ok(node) => nodes.push(node),
            Err(e) => {
                stop_all(nodes, &shared.bus, Duration::ZERO).await;
                return Err(e);
            }
        }
    }
    wait_ready(&nodes).await;
    print_banner(&shared, &nodes, started.elapsed());
    shutdown_signal().await;
    eprintln!("stopping…");
    stop_all(
        nodes,
        &shared.bus,
        launch.drain_grace.unwrap_or(Duration::ZERO),
    )
    .await;
    Ok(())
}

/// `forten run <service>`: one service instance in this process.
pub(crate) async fn run(kind: ServiceKind, launch: Launch) -> Result<(), CliError> {
    let settings = settings_with(launch.clone())?;
    let port = settings.port.unwrap_or(kind.default_port());
    let listener = bind(settings.host(), port, kind.name()).await?;
    let mut shared = shared(settings, false).await?;
    if kind == ServiceKind::AuthService && shared.settings.auth_mode == AuthMode::Issuer {
        let policy = IssuerPolicy::from_env(|k| std::env::var(k).ok())
            .map_err(|e| CliError::Usage(e.to_string()))?;
        shared.issuer = Some(issuer(policy)?);
    }
    let node = Node::start(kind, &shared, listener).await?;
    // Serving starts at once; registration goes on in the background until the registry
    // answers (services may start before the gateway).
    node.health().wait_until_checked().await;
    println!("{} listening on {}", kind.name(), node.url());
    shutdown_signal().await;
    stop_all(
        vec![node],
        &shared.bus,
        launch.drain_grace.unwrap_or(Duration::from_secs(2)),
    )
    .await;
    Ok(())
}

/// The environment with the command-line flags applied over it.
fn settings_with(launch: Launch) -> Result<Settings, CliError> {
    let mut settings = Settings::from_env().map_err(|e| CliError::Usage(e.to_string()))?;
    if launch.port.is_some() {
        settings.port = launch.port;
    }
    if launch.host.is_some() {
        settings.host = launch.host;
    }
    if launch.data_dir.is_some() {
        settings.data_dir = launch.data_dir;
    }
    Ok(settings)
}

fn print_banner(shared: &Shared, nodes: &[Node], took: Duration) {
    let bus = if shared.settings.rabbitmq_url.is_some() {
        "RabbitMQ"
    } else {
        "in-process bus"
    };
    let storage = match &shared.settings.database_url {
        Some(url) if url.starts_with("postgres") => "PostgreSQL".to_owned(),
        Some(_) => "SQLite".to_owned(),
        None => format!("SQLite under {}", shared.settings.data_dir().display()),
    };
    println!(
        "Forten is up: {} services, {bus}, {storage} (ready in {} ms)",
        nodes.len(),
        took.as_millis()
    );
    for node in nodes {
        println!("  {:<20} {}", node.kind().name(), node.url());
    }
    if let Some(gateway) = nodes.first() {
        println!("dashboard: {}/", gateway.url());
    }
    match nodes.iter().find_map(|n| n.generated_admin.as_ref()) {
        Some(admin) => println!(
            "admin login: {} / {}   (shown once; set {} / {} to choose)",
            admin.email,
            admin.password,
            env::FORTEN_ADMIN_EMAIL,
            env::FORTEN_ADMIN_PASSWORD
        ),
        None => {
            let email = shared.settings.admin_email.as_deref();
            let email = email.unwrap_or(crate::services::auth::DEFAULT_ADMIN_EMAIL);
            let password = if shared.settings.admin_password.is_some() {
                format!("the password in {}", env::FORTEN_ADMIN_PASSWORD)
            } else {
                "the password it was created with".to_owned()
            };
            println!("admin login: {email} / {password}");
        }
    }
    println!("Ctrl-C to stop.");
}
