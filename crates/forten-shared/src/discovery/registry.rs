//! The registry server (SPEC §6), hosted by api-gateway: routes, TTL eviction, active health
//! checks, events and metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::{
    Json, Router,
    extract::{FromRequest, Path, Query, State},
    middleware::from_fn_with_state,
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use chrono::Utc;
use http::StatusCode;
use serde::Deserialize;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::access::{Guard, guard};
use super::{
    AllowAll, Discovered, InstanceStatus, InvalidConfig, MemoryRegistryStore, RegisterResponse,
    Registration, RegistryAccess, RegistryAuthorizer, RegistryError, RegistryStore, ServiceEntry,
    ServiceInstance, ServiceList,
};
use crate::events::{EventPublisher, ServiceDeregistered, ServiceRegistered};
use crate::telemetry::{Metrics, metric_names};

/// Active health checks of registered instances.
///
/// ```
/// use std::time::Duration;
/// let hc = forten_shared::discovery::HealthCheckConfig::default().interval(Duration::from_secs(5));
/// assert_eq!(hc.unhealthy_threshold, 3);
/// ```
#[derive(Debug, Clone)]
pub struct HealthCheckConfig {
    /// How often each instance's `healthCheckUrl` is polled (default 10 s).
    pub interval: Duration,
    /// Timeout of one check (default 2 s).
    pub timeout: Duration,
    /// Consecutive failures that mark an instance unhealthy (default 3).
    pub unhealthy_threshold: u32,
    /// Consecutive successes that bring it back (default 2).
    pub healthy_threshold: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
        }
    }
}

impl HealthCheckConfig {
    /// Sets the polling interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(forten_shared::discovery::HealthCheckConfig::default().interval(Duration::from_secs(1)).interval, Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
    /// Sets the timeout of one check.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(forten_shared::discovery::HealthCheckConfig::default().timeout(Duration::from_secs(1)).timeout, Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Sets the failures-to-unhealthy and successes-to-healthy thresholds.
    ///
    /// ```
    /// let hc = forten_shared::discovery::HealthCheckConfig::default().thresholds(5, 1);
    /// assert_eq!((hc.unhealthy_threshold, hc.healthy_threshold), (5, 1));
    /// ```
    #[must_use]
    pub fn thresholds(mut self, unhealthy: u32, healthy: u32) -> Self {
        self.unhealthy_threshold = unhealthy;
        self.healthy_threshold = healthy;
        self
    }
}

/// Registry settings.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::discovery::RegistryConfig;
/// let cfg = RegistryConfig::default().ttl(Duration::from_secs(15));
/// assert!(cfg.validate().is_ok());
/// assert!(RegistryConfig::default().ttl(Duration::ZERO).validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The hosting service's name, the `service` label of the registry metrics.
    pub service: String,
    /// An instance that has not heartbeated for this long is evicted (default 30 s).
    pub ttl: Duration,
    /// How often expired instances are looked for (default 1 s).
    pub sweep_interval: Duration,
    /// Active health checks; `None` disables them.
    pub health_checks: Option<HealthCheckConfig>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            service: "api-gateway".to_owned(),
            ttl: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(1),
            health_checks: Some(HealthCheckConfig::default()),
        }
    }
}

impl RegistryConfig {
    /// Sets the metrics `service` label.
    ///
    /// ```
    /// assert_eq!(forten_shared::discovery::RegistryConfig::default().service("gw-2").service, "gw-2");
    /// ```
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = name.into();
        self
    }
    /// Sets the heartbeat TTL.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(forten_shared::discovery::RegistryConfig::default().ttl(Duration::from_secs(9)).ttl, Duration::from_secs(9));
    /// ```
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
    /// Sets the eviction sweep interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(forten_shared::discovery::RegistryConfig::default().sweep_interval(Duration::from_millis(200)).sweep_interval, Duration::from_millis(200));
    /// ```
    #[must_use]
    pub fn sweep_interval(mut self, d: Duration) -> Self {
        self.sweep_interval = d;
        self
    }
    /// Sets (or disables) active health checks.
    ///
    /// ```
    /// assert!(forten_shared::discovery::RegistryConfig::default().health_checks(None).health_checks.is_none());
    /// ```
    #[must_use]
    pub fn health_checks(mut self, hc: Option<HealthCheckConfig>) -> Self {
        self.health_checks = hc;
        self
    }

    /// Checks the settings (done again by [`Registry::start`]).
    ///
    /// ```
    /// assert!(forten_shared::discovery::RegistryConfig::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.ttl < Duration::from_secs(1) {
            return Err(InvalidConfig("registry ttl must be at least 1s".into()));
        }
        if self.sweep_interval.is_zero() {
            return Err(InvalidConfig(
                "registry sweep interval must be positive".into(),
            ));
        }
        if let Some(hc) = &self.health_checks {
            if hc.interval.is_zero() || hc.timeout.is_zero() {
                return Err(InvalidConfig(
                    "health check interval and timeout must be positive".into(),
                ));
            }
            if hc.unhealthy_threshold == 0 || hc.healthy_threshold == 0 {
                return Err(InvalidConfig(
                    "health check thresholds must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The registry: a store, a background sweeper (TTL eviction, health checks, metrics) and the
/// routes of SPEC §6 ([`Registry::router`]). Cheap to clone; the background tasks stop when
/// the last clone is dropped or on [`Registry::shutdown`].
///
/// ```
/// use forten_shared::discovery::{Registry, RegistryConfig};
/// use tower::ServiceExt as _;
///
/// # tokio_test::block_on(async {
/// let registry = Registry::builder(RegistryConfig::default()).start()?;
/// let app: axum::Router = registry.router();
/// let res = app.oneshot(http::Request::post("/registry/services")
///     .header("content-type", "application/json")
///     .body(axum::body::Body::from(r#"{"name":"auth-service","version":"1.0.0","host":"127.0.0.1","port":3001,"healthCheckUrl":null,"metadata":{}}"#))
///     .unwrap()).await.unwrap();
/// assert_eq!(res.status(), 201);
/// assert_eq!(registry.instances("auth-service", false).await?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Registry {
    shared: Arc<Shared>,
    _guard: Arc<DropGuard>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn RegistryStore>,
    config: RegistryConfig,
    events: Option<EventPublisher>,
    authorizer: Arc<dyn RegistryAuthorizer>,
    metrics: Metrics,
    http: reqwest::Client,
    /// Consecutive (failures, successes) per instance, local to this registry process.
    /// std mutex: updated between awaits only.
    health: Mutex<HashMap<String, (u32, u32)>>,
    /// Gauge series set last time, so that vanished ones are zeroed.
    gauges: Mutex<HashSet<(String, InstanceStatus)>>,
    cancel: CancellationToken,
}

/// Builds a [`Registry`].
///
/// ```
/// use std::sync::Arc;
/// use forten_shared::discovery::{AllowAll, MemoryRegistryStore, Registry, RegistryConfig};
/// # tokio_test::block_on(async {
/// let registry = Registry::builder(RegistryConfig::default())
///     .store(Arc::new(MemoryRegistryStore::default()))
///     .authorizer(Arc::new(AllowAll))
///     .start()?;
/// # drop(registry); Ok::<(), forten_shared::discovery::InvalidConfig>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct RegistryBuilder {
    config: RegistryConfig,
    store: Arc<dyn RegistryStore>,
    events: Option<EventPublisher>,
    authorizer: Arc<dyn RegistryAuthorizer>,
}

impl RegistryBuilder {
    /// Uses `store` (default: [`MemoryRegistryStore`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let store = std::sync::Arc::new(forten_shared::discovery::MemoryRegistryStore::default());
    /// let registry = Registry::builder(RegistryConfig::default()).store(store).start()?;
    /// # drop(registry);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn store(mut self, store: Arc<dyn RegistryStore>) -> Self {
        self.store = store;
        self
    }
    /// Publishes `service.registered` / `service.deregistered` through `publisher`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let bus = forten_shared::EventBus::in_process("api-gateway");
    /// let registry = Registry::builder(RegistryConfig::default())
    ///     .events(forten_shared::EventPublisher::new(bus)).start()?;
    /// # drop(registry);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn events(mut self, publisher: EventPublisher) -> Self {
        self.events = Some(publisher);
        self
    }
    /// Uses `authorizer` for the read and write route groups (default: [`AllowAll`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default())
    ///     .authorizer(std::sync::Arc::new(forten_shared::discovery::AllowAll)).start()?;
    /// # drop(registry);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn authorizer(mut self, authorizer: Arc<dyn RegistryAuthorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// Validates the configuration and starts the background sweeper (needs a tokio runtime).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default()).start()?;
    /// assert!(Registry::builder(RegistryConfig::default().ttl(std::time::Duration::ZERO)).start().is_err());
    /// # drop(registry);
    /// # Ok(()) }
    /// ```
    pub fn start(self) -> Result<Registry, InvalidConfig> {
        self.config.validate()?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| InvalidConfig("Registry::start needs a tokio runtime".into()))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| InvalidConfig(format!("http client: {e}")))?;
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            metrics: Metrics::new(self.config.service.clone()),
            store: self.store,
            config: self.config,
            events: self.events,
            authorizer: self.authorizer,
            http,
            health: Mutex::new(HashMap::new()),
            gauges: Mutex::new(HashSet::new()),
            cancel: cancel.clone(),
        });
        handle.spawn(sweep_loop(shared.clone()));
        if let Some(hc) = shared.config.health_checks.clone() {
            handle.spawn(health_loop(shared.clone(), hc));
        }
        Ok(Registry {
            shared,
            _guard: Arc::new(cancel.drop_guard()),
        })
    }
}

impl Registry {
    /// A builder with the memory store, no events and no auth.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// # drop(registry);
    /// # Ok(()) }
    /// ```
    pub fn builder(config: RegistryConfig) -> RegistryBuilder {
        RegistryBuilder {
            config,
            store: Arc::new(MemoryRegistryStore::default()),
            events: None,
            authorizer: Arc::new(AllowAll),
        }
    }

    /// The routes of SPEC §6, reads and writes each guarded by the authorizer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// let gateway: axum::Router = axum::Router::new().merge(registry.router());
    /// # drop(gateway);
    /// # Ok(()) }
    /// ```
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let write = Guard {
            authorizer: self.shared.authorizer.clone(),
            access: RegistryAccess::Write,
        };
        let read = Guard {
            authorizer: self.shared.authorizer.clone(),
            access: RegistryAccess::Read,
        };
        let writes = Router::new()
            .route("/registry/services", post(register))
            .route("/registry/services/{key}/heartbeat", put(heartbeat))
            .route("/registry/services/{key}", delete(deregister))
            .route_layer(from_fn_with_state(write, guard));
        let reads = Router::new()
            .route("/registry/services", get(list))
            .route("/registry/services/{key}", get(discover))
            .route_layer(from_fn_with_state(read, guard));
        writes.merge(reads).with_state(self.clone())
    }

    /// Registers an instance (what `POST /registry/services` does).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// let created = registry.register(forten_shared::discovery::Registration::new("a", "1", "h", 1)).await?;
    /// assert_eq!(created.ttl_seconds, 30);
    /// # Ok(()) }
    /// ```
    pub async fn register(&self, reg: Registration) -> Result<RegisterResponse, RegistryError> {
        if reg.name.trim().is_empty() {
            return Err(RegistryError::Invalid("name is empty".into()));
        }
        if reg.url.is_none() && reg.host.trim().is_empty() {
            return Err(RegistryError::Invalid("host is empty".into()));
        }
        let id = reg
            .id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let instance = ServiceInstance::from_registration(id.clone(), &reg, Utc::now());
        self.shared.store.put(instance.clone()).await?;
        self.shared.reset_health(&id);
        tracing::info!(service = %instance.name, instance = %id, url = %instance.url, "instance registered");
        if let Some(events) = self.shared.events.clone() {
            let data = ServiceRegistered {
                service_name: instance.name.clone(),
                instance_id: id.clone(),
                url: instance.url.clone(),
            };
            tokio::spawn(async move {
                if let Err(e) = events.publish_service_registered(data).await {
                    tracing::warn!(error = %e, "could not publish service.registered");
                }
            });
        }
        self.shared.update_gauges().await;
        Ok(RegisterResponse {
            id,
            ttl_seconds: self.shared.config.ttl.as_secs(),
        })
    }

    /// Records a heartbeat; [`RegistryError::UnknownInstance`] when unknown.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// let created = registry.register(forten_shared::discovery::Registration::new("a", "1", "h", 1)).await?;
    /// registry.heartbeat(&created.id).await?;
    /// assert!(registry.heartbeat("unknown").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn heartbeat(&self, id: &str) -> Result<RegisterResponse, RegistryError> {
        if self.shared.store.heartbeat(id, Utc::now()).await? {
            Ok(RegisterResponse {
                id: id.to_owned(),
                ttl_seconds: self.shared.config.ttl.as_secs(),
            })
        } else {
            Err(RegistryError::UnknownInstance(id.to_owned()))
        }
    }

    /// Deregisters an instance (idempotent).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// let created = registry.register(forten_shared::discovery::Registration::new("a", "1", "h", 1)).await?;
    /// registry.deregister(&created.id).await?;
    /// assert!(registry.services().await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn deregister(&self, id: &str) -> Result<(), RegistryError> {
        if let Some(inst) = self.shared.store.remove(id).await? {
            tracing::info!(service = %inst.name, instance = %id, "instance deregistered");
            self.shared.forget(&inst);
            self.shared.update_gauges().await;
        }
        Ok(())
    }

    /// Every live service with every instance, sorted by name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// let created = registry.register(forten_shared::discovery::Registration::new("a", "1", "h", 1)).await?;
    /// assert_eq!(registry.services().await?[0].name, "a");
    /// # Ok(()) }
    /// ```
    pub async fn services(&self) -> Result<Vec<ServiceEntry>, RegistryError> {
        let mut by_name: BTreeMap<String, Vec<ServiceInstance>> = BTreeMap::new();
        for inst in self.shared.live().await? {
            by_name.entry(inst.name.clone()).or_default().push(inst);
        }
        Ok(by_name
            .into_iter()
            .map(|(name, mut instances)| {
                instances.sort_by_key(|i| i.registered_at);
                ServiceEntry { name, instances }
            })
            .collect())
    }

    /// The instances of `name`: the healthy ones, or with `all` every one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// let created = registry.register(forten_shared::discovery::Registration::new("a", "1", "h", 1)).await?;
    /// assert_eq!(registry.instances("a", false).await?[0].id, created.id);
    /// # Ok(()) }
    /// ```
    pub async fn instances(
        &self,
        name: &str,
        all: bool,
    ) -> Result<Vec<ServiceInstance>, RegistryError> {
        let mut instances: Vec<ServiceInstance> = self
            .shared
            .live()
            .await?
            .into_iter()
            .filter(|i| i.name == name && (all || i.status == InstanceStatus::Healthy))
            .collect();
        instances.sort_by_key(|i| i.registered_at);
        Ok(instances)
    }

    /// Runs one eviction sweep now (the background task does this every `sweep_interval`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// let created = registry.register(forten_shared::discovery::Registration::new("a", "1", "h", 1)).await?;
    /// assert!(registry.evict_expired().await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn evict_expired(&self) -> Result<Vec<ServiceInstance>, RegistryError> {
        Ok(self.shared.evict().await?)
    }

    /// Stops the background tasks.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use forten_shared::discovery::{Registry, RegistryConfig};
    /// let registry = Registry::builder(RegistryConfig::default().health_checks(None)).start()?;
    /// registry.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }
}

impl Shared {
    fn ttl_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.ttl).unwrap_or(chrono::Duration::MAX)
    }

    /// Instances not yet past their TTL (an expired one is never handed out, even before the
    /// sweeper removes it).
    async fn live(&self) -> Result<Vec<ServiceInstance>, super::StoreError> {
        let cutoff = Utc::now() - self.ttl_chrono();
        Ok(self
            .store
            .list()
            .await?
            .into_iter()
            .filter(|i| i.last_heartbeat >= cutoff)
            .collect())
    }

    async fn evict(&self) -> Result<Vec<ServiceInstance>, super::StoreError> {
        let evicted = self
            .store
            .evict_expired(Utc::now() - self.ttl_chrono())
            .await?;
        for inst in &evicted {
            tracing::warn!(service = %inst.name, instance = %inst.id, "instance evicted: no heartbeat within the ttl");
            self.forget(inst);
        }
        if !evicted.is_empty() {
            self.update_gauges().await;
        }
        Ok(evicted)
    }

    fn reset_health(&self, id: &str) {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Drops local state and announces `service.deregistered`.
    fn forget(&self, inst: &ServiceInstance) {
        self.reset_health(&inst.id);
        if let Some(events) = self.events.clone() {
            let data = ServiceDeregistered {
                service_name: inst.name.clone(),
                instance_id: inst.id.clone(),
                url: inst.url.clone(),
            };
            tokio::spawn(async move {
                if let Err(e) = events.publish_service_deregistered(data).await {
                    tracing::warn!(error = %e, "could not publish service.deregistered");
                }
            });
        }
    }

    async fn update_gauges(&self) {
        let Ok(all) = self.live().await else { return };
        let mut counts: HashMap<(String, InstanceStatus), u64> = HashMap::new();
        for inst in &all {
            *counts.entry((inst.name.clone(), inst.status)).or_default() += 1;
        }
        let mut previous = self.gauges.lock().unwrap_or_else(PoisonError::into_inner);
        for key in previous.iter() {
            if !counts.contains_key(key) {
                self.metrics
                    .gauge(
                        metric_names::REGISTRY_INSTANCES,
                        &[("target", &key.0), ("status", key.1.as_str())],
                    )
                    .set(0.0);
            }
        }
        previous.clear();
        for (key, n) in counts {
            #[allow(clippy::cast_precision_loss)]
            self.metrics
                .gauge(
                    metric_names::REGISTRY_INSTANCES,
                    &[("target", &key.0), ("status", key.1.as_str())],
                )
                .set(n as f64);
            previous.insert(key);
        }
    }

    /// Polls one instance; `true` on a 2xx within the timeout.
    async fn check(&self, url: &str, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.http.get(url).timeout(timeout).send()).await,
            Ok(Ok(res)) if res.status().is_success()
        )
    }

    async fn run_health_checks(&self, hc: &HealthCheckConfig) {
        let Ok(instances) = self.live().await else {
            return;
        };
        let checks = instances.iter().filter_map(|inst| {
            let url = inst.health_check_url.as_deref()?;
            Some(async move { (inst, self.check(url, hc.timeout).await) })
        });
        let results = futures_util::future::join_all(checks).await;
        let mut changes = Vec::new();
        {
            let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
            for (inst, ok) in results {
                let counters = health.entry(inst.id.clone()).or_insert((0, 0));
                if ok {
                    *counters = (0, counters.1.saturating_add(1));
                    if inst.status == InstanceStatus::Unhealthy
                        && counters.1 >= hc.healthy_threshold
                    {
                        changes.push((inst, InstanceStatus::Healthy));
                    }
                } else {
                    *counters = (counters.0.saturating_add(1), 0);
                    if inst.status == InstanceStatus::Healthy
                        && counters.0 >= hc.unhealthy_threshold
                    {
                        changes.push((inst, InstanceStatus::Unhealthy));
                    }
                }
            }
        }
        for (inst, status) in &changes {
            tracing::warn!(service = %inst.name, instance = %inst.id, %status, "instance health changed");
            if let Err(e) = self.store.set_status(&inst.id, *status).await {
                tracing::warn!(error = %e, "could not record instance health");
            }
        }
        if !changes.is_empty() {
            self.update_gauges().await;
        }
    }
}

async fn sweep_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = shared.evict().await {
            tracing::warn!(error = %e, "registry eviction sweep failed");
        }
        shared.update_gauges().await;
    }
}

async fn health_loop(shared: Arc<Shared>, hc: HealthCheckConfig) {
    let mut tick = tokio::time::interval(hc.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        shared.run_health_checks(&hc).await;
    }
}

// === handlers ===

/// `Json` whose rejection is problem+json.
struct JsonBody<T>(T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rej) => Err(super::error::problem(rej.status(), &rej.body_text())),
        }
    }
}

async fn register(
    State(registry): State<Registry>,
    JsonBody(reg): JsonBody<Registration>,
) -> Result<impl IntoResponse, RegistryError> {
    let created = registry.register(reg).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn heartbeat(
    State(registry): State<Registry>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, RegistryError> {
    Ok(Json(registry.heartbeat(&id).await?))
}

async fn deregister(
    State(registry): State<Registry>,
    Path(id): Path<String>,
) -> Result<StatusCode, RegistryError> {
    registry.deregister(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(State(registry): State<Registry>) -> Result<Json<ServiceList>, RegistryError> {
    Ok(Json(ServiceList {
        services: registry.services().await?,
    }))
}

#[derive(Debug, Deserialize)]
struct DiscoverQuery {
    #[serde(default)]
    all: bool,
}

async fn discover(
    State(registry): State<Registry>,
    Path(name): Path<String>,
    Query(q): Query<DiscoverQuery>,
) -> Result<Json<Discovered>, RegistryError> {
    let instances = registry.instances(&name, q.all).await?;
    Ok(Json(Discovered {
        service: name,
        instances,
    }))
}
