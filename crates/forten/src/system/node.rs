//! One service instance inside a process: its state, its HTTP server, its registration, its
//! subscriptions and background tasks — started by [`Node::start`], stopped in order by
//! [`Node::stop`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use forten_shared::auth::{ServiceAuth, ServiceAuthConfig};
use forten_shared::discovery::{
    DiscoveryClient, DiscoveryConfig, MemoryRegistryStore, Registration, Registry, RegistryConfig,
    RegistryStore, RegistryToken, TokenAuthorizer,
};
use forten_shared::{EventBus, EventPublisher, HealthCheck, Observability};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ServiceKind, Shared};
use crate::commands::CliError;
use crate::services::periodic::Periodic;
use crate::services::{access, analytics, auth, gateway, monitoring};
use crate::storage::Database;

/// The scopes every service asks for in the tokens it sends to its peers.
const PEER_SCOPES: [&str; 1] = ["internal:read"];

/// A running service instance.
#[derive(Debug)]
pub(crate) struct Node {
    kind: ServiceKind,
    url: String,
    obs: Observability,
    discovery: DiscoveryClient,
    registration: JoinHandle<()>,
    registered: watch::Receiver<bool>,
    stop_http: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    tasks: Vec<Task>,
    db: Option<Database>,
    registry: Option<Registry>,
    /// The credentials `forten up` prints once, when the auth-service generated an admin.
    pub(crate) generated_admin: Option<auth::GeneratedAdmin>,
}

/// A background task of a service, stopped after its HTTP server.
#[derive(Debug)]
enum Task {
    /// A periodic round (the camera watchdog, the outbox relay).
    Periodic(Periodic),
    /// The analytics writer and retention.
    Analytics(analytics::AnalyticsRuntime),
}

impl Task {
    async fn stop(self) {
        match self {
            Task::Periodic(p) => p.stop().await,
            Task::Analytics(a) => a.stop().await,
        }
    }
}

/// What a kind of service adds to the common parts.
struct Parts {
    router: Router,
    tasks: Vec<Task>,
    db: Option<Database>,
    registry: Option<Registry>,
    generated_admin: Option<auth::GeneratedAdmin>,
}

impl Node {
    /// Builds the service on `listener`, serves it, and registers it with the registry.
    pub(crate) async fn start(
        kind: ServiceKind,
        shared: &Shared,
        listener: TcpListener,
    ) -> Result<Self, CliError> {
        let name = kind.name();
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Failed(format!("{name}: {e}")))?;
        let url = shared.advertise_url(addr);
        let obs = Observability::new(name, super::VERSION);
        let bus = shared.bus.for_service(name);
        if shared.settings.rabbitmq_url.is_some() {
            obs.health()
                .register(HealthCheck::rabbitmq("rabbitmq", Arc::new(bus.clone())));
        }
        let service_auth = shared.service_auth(name)?;
        let parts = match kind {
            ServiceKind::ApiGateway => {
                gateway_parts(shared, &obs, &bus, &service_auth, addr).await?
            }
            ServiceKind::AuthService => auth_parts(shared, &bus).await?,
            ServiceKind::AccessService => access_parts(shared, &bus, &service_auth).await?,
            ServiceKind::MonitoringService => monitoring_parts(shared, &bus).await?,
            ServiceKind::AnalyticsService => analytics_parts(shared, &bus).await?,
        };
        if let Some(db) = &parts.db {
            let db = db.clone();
            obs.health()
                .register(HealthCheck::database("database", move || {
                    let db = db.clone();
                    async move { db.ping().await }
                }));
        }
        bus.pause_while_unhealthy(obs.health().subscribe_critical());
        obs.health().start();
        let app = obs.apply(parts.router);

        let (stop_http, mut stopped) = watch::channel(false);
        let server = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });

        let discovery = DiscoveryClient::new(
            DiscoveryConfig::new(shared.registry_url_for(kind, addr))
                .auth(Arc::new(RegistryToken::new(service_auth))),
        )
        .map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
        let registration =
            Registration::new(name, super::VERSION, addr.ip().to_string(), addr.port())
                .advertise_url(url.clone())
                .health_check_url(Some(format!("{url}{}", forten_shared::health::READY_PATH)))
                .metadata("instanceId", obs.health().report().instance_id.into());
        let (done, registered) = watch::channel(false);
        let registration = tokio::spawn(register_until_done(discovery.clone(), registration, done));
        Ok(Self {
            kind,
            url,
            obs,
            discovery,
            registration,
            registered,
            stop_http,
            server,
            tasks: parts.tasks,
            db: parts.db,
            registry: parts.registry,
            generated_admin: parts.generated_admin,
        })
    }

    /// The service.
    pub(crate) fn kind(&self) -> ServiceKind {
        self.kind
    }

    /// The URL it is reached at.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Its health monitor (ready when every critical check passed once).
    pub(crate) fn health(&self) -> &forten_shared::HealthMonitor {
        self.obs.health()
    }

    /// Waits until the instance is registered.
    pub(crate) async fn wait_registered(&self) {
        let mut registered = self.registered.clone();
        let _ = registered.wait_for(|done| *done).await;
    }

    /// Graceful stop: deregister → readiness 503 → wait `grace` (peers' discovery caches
    /// forget this instance) → stop accepting and drain in-flight HTTP requests (at most
    /// `drain`) → stop background tasks. The event bus and the database are closed by the
    /// caller once every node of the process has stopped (they may be shared).
    pub(crate) async fn stop(self, grace: Duration, drain: Duration) -> Option<Database> {
        let name = self.kind.name();
        self.registration.abort();
        self.discovery.shutdown().await;
        self.obs.health().start_draining();
        tracing::info!(service = name, "deregistered; draining");
        tokio::time::sleep(grace).await;
        let _ = self.stop_http.send(true);
        match tokio::time::timeout(drain, self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(service = name, error = %e, "server failed"),
            Ok(Err(e)) => tracing::warn!(service = name, error = %e, "server task failed"),
            Err(_) => tracing::warn!(
                service = name,
                "in-flight requests still running after {drain:?}"
            ),
        }
        for task in self.tasks {
            task.stop().await;
        }
        if let Some(registry) = &self.registry {
            registry.shutdown();
        }
        self.obs.health().stop();
        self.db
    }
}

/// Registers, retrying with a capped backoff while the registry is not reachable yet (services
/// may start before the gateway); the discovery client heartbeats from then on.
async fn register_until_done(
    discovery: DiscoveryClient,
    registration: Registration,
    done: watch::Sender<bool>,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        match discovery.register(registration.clone()).await {
            Ok(id) => {
                tracing::info!(service = %registration.name, instance = %id, "registered");
                let _ = done.send(true);
                return;
            }
            Err(e) => {
                tracing::warn!(service = %registration.name, error = %e, "cannot register yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn gateway_parts(
    shared: &Shared,
    obs: &Observability,
    bus: &EventBus,
    service_auth: &ServiceAuth,
    addr: SocketAddr,
) -> Result<Parts, CliError> {
    let store: Arc<dyn RegistryStore> = match &shared.settings.redis_url {
        Some(url) => Arc::new(
            forten_shared::discovery::RedisRegistryStore::connect(url, "forten:registry")
                .await
                .map_err(|e| CliError::Unavailable(format!("REDIS_URL: {e}")))?,
        ),
        None => Arc::new(MemoryRegistryStore::default()),
    };
    let registry =
        Registry::builder(RegistryConfig::default().service(ServiceKind::ApiGateway.name()))
            .store(store)
            .events(EventPublisher::new(bus.clone()))
            .authorizer(Arc::new(
                TokenAuthorizer::new(service_auth.clone()).with_users(shared.user_auth.clone()),
            ))
            .start()
            .map_err(|e| CliError::Usage(e.to_string()))?;
    // The gateway finds the services through its own registry; a short refresh so that an
    // instance that deregistered stops getting requests within a second.
    let discovery = DiscoveryClient::new(
        DiscoveryConfig::new(shared.registry_url_for(ServiceKind::ApiGateway, addr))
            .refresh_interval(Duration::from_secs(1))
            .auth(Arc::new(RegistryToken::new(service_auth.clone()))),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    for target in ServiceKind::ALL
        .into_iter()
        .filter(|k| *k != ServiceKind::ApiGateway)
    {
        let registry = registry.clone();
        let check = HealthCheck::new(target.name(), move || {
            let registry = registry.clone();
            async move {
                let instances = registry
                    .instances(target.name(), false)
                    .await
                    .map_err(|e| e.to_string())?;
                if instances.is_empty() {
                    Err(format!("no healthy instance of {}", target.name()))
                } else {
                    Ok(())
                }
            }
        })
        .critical(false)
        .interval(Duration::from_secs(5));
        obs.health().register(check);
    }
    let state = gateway::GatewayState::new(
        discovery,
        shared.user_auth.clone(),
        gateway::GatewayConfig::default(),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Parts {
        router: registry.router().merge(gateway::router(state)),
        tasks: Vec::new(),
        db: None,
        registry: Some(registry),
        generated_admin: None,
    })
}

async fn auth_parts(shared: &Shared, bus: &EventBus) -> Result<Parts, CliError> {
    let db = auth::open_database(&shared.database).await?;
    let config = auth::AuthServiceConfig {
        issuer: shared.issuer.clone(),
        ..auth::AuthServiceConfig::default()
    };
    let state = auth::AuthState::new(db.clone(), bus.clone(), shared.user_auth.clone(), config);
    let generated_admin = auth::bootstrap_admin(
        &state,
        shared.settings.admin_email.clone(),
        shared.settings.admin_password.clone(),
    )
    .await
    .map_err(|e| CliError::Failed(format!("bootstrap admin: {e}")))?;
    let relay = auth::OutboxRelay::start(state.clone());
    Ok(Parts {
        router: auth::router(state),
        tasks: vec![Task::Periodic(relay)],
        db: Some(db),
        registry: None,
        generated_admin,
    })
}

async fn access_parts(
    shared: &Shared,
    bus: &EventBus,
    service_auth: &ServiceAuth,
) -> Result<Parts, CliError> {
    let db = access::open_database(&shared.database).await?;
    let config = access::AccessConfig {
        default_policy: shared.settings.access_policy,
        ..access::AccessConfig::default()
    };
    let state = access::AccessState::new(db.clone(), bus.clone(), config);
    access::subscribe(&state, bus).await?;
    let internal = access::internal_router(state.clone()).layer(service_auth.layer(PEER_SCOPES));
    Ok(Parts {
        router: access::router(state).merge(internal),
        tasks: Vec::new(),
        db: Some(db),
        registry: None,
        generated_admin: None,
    })
}

async fn monitoring_parts(shared: &Shared, bus: &EventBus) -> Result<Parts, CliError> {
    let db = monitoring::open_database(&shared.database).await?;
    let state = monitoring::MonitoringState::new(
        db.clone(),
        bus.clone(),
        monitoring::MonitoringConfig::default(),
    );
    monitoring::subscribe(&state, bus).await?;
    let watchdog = monitoring::Watchdog::start(state.clone());
    Ok(Parts {
        router: monitoring::router(state),
        tasks: vec![Task::Periodic(watchdog)],
        db: Some(db),
        registry: None,
        generated_admin: None,
    })
}

async fn analytics_parts(shared: &Shared, bus: &EventBus) -> Result<Parts, CliError> {
    let db = analytics::open_database(&shared.database).await?;
    let state = analytics::AnalyticsState::new(db.clone(), analytics::AnalyticsConfig::default());
    let runtime = analytics::AnalyticsRuntime::start(state.clone());
    analytics::subscribe(&state, bus).await?;
    Ok(Parts {
        router: analytics::router(state),
        tasks: vec![Task::Analytics(runtime)],
        db: Some(db),
        registry: None,
        generated_admin: None,
    })
}

/// A service token provider for peers: shared-secret, the process's own issuer (`forten up`
/// in issuer mode), or the remote auth-service (`forten run` in issuer mode).
pub(super) fn build_service_auth(name: &str, shared: &Shared) -> Result<ServiceAuth, CliError> {
    let scopes = PEER_SCOPES.map(str::to_owned);
    let result = match (&shared.issuer, shared.settings.auth_mode) {
        (Some(issuer), _) => ServiceAuth::with_local_issuer(
            ServiceAuthConfig {
                service_name: name.to_owned(),
                ..ServiceAuthConfig::default()
            }
            .scopes(scopes),
            issuer.clone(),
        ),
        (None, forten_shared::auth::AuthMode::Issuer) => {
            let secret = shared.settings.service_secret.clone().ok_or_else(|| {
                CliError::Usage(format!(
                    "{}: required in issuer mode ({name} proves itself to the auth-service with it)",
                    super::settings::env::SERVICE_SECRET
                ))
            })?;
            ServiceAuth::new(
                ServiceAuthConfig::issuer(name, secret, shared.settings.issuer_url())
                    .scopes(scopes),
            )
        }
        (None, _) => ServiceAuth::new(
            ServiceAuthConfig::shared_secret(name, shared.jwt_secret.clone()).scopes(scopes),
        ),
    };
    result.map_err(|e| CliError::Usage(e.to_string()))
}
