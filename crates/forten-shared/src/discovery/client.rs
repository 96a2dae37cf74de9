//! [`DiscoveryClient`]: the guide's `createServiceDiscoveryClient` — registration with
//! background heartbeats, cached discovery refreshed in the background, load balancing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use super::balance::{EndpointStats, choose};
use super::{
    BalanceStrategy, Discovered, DiscoveryError, Endpoint, InvalidConfig, OutlierConfig,
    RegisterResponse, Registration, ServiceEntry, ServiceInstance, ServiceList,
};
use crate::client::AuthHeaderProvider;

/// The registry's connection state changes (the guide's `registry:disconnected`).
///
/// ```
/// use forten_shared::discovery::RegistryEvent;
/// let e = RegistryEvent::Disconnected { error: "connection refused".into() };
/// assert!(matches!(e, RegistryEvent::Disconnected { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEvent {
    /// The registry stopped answering; discovery serves the last known instances.
    Disconnected {
        /// Why the last call failed.
        error: String,
    },
    /// The registry answers again.
    Reconnected,
    /// An instance registered again after the registry forgot it (404 on heartbeat).
    Reregistered {
        /// The service.
        service: String,
        /// The instance id.
        id: String,
    },
}

/// Discovery client settings.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::discovery::{BalanceStrategy, DiscoveryConfig};
/// let cfg = DiscoveryConfig::new("http://127.0.0.1:3000")
///     .heartbeat_interval(Duration::from_secs(5))
///     .strategy(BalanceStrategy::LeastOutstanding);
/// assert!(cfg.validate().is_ok());
/// assert!(DiscoveryConfig::new("not a url").validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Base URL of the registry (`REGISTRY_URL`, default `http://127.0.0.1:3000`).
    pub registry_url: String,
    /// Audience of the service token sent to the registry.
    pub registry_audience: String,
    /// Heartbeat period; also bounded to a third of the registry's TTL (default 10 s).
    pub heartbeat_interval: Duration,
    /// Cache refresh period (default 5 s).
    pub refresh_interval: Duration,
    /// Timeout of one registry call (default 3 s).
    pub request_timeout: Duration,
    /// Balancing strategy.
    pub strategy: BalanceStrategy,
    /// Outlier ejection.
    pub outlier: OutlierConfig,
    /// Sets `Authorization` on registry calls.
    pub auth: Option<Arc<dyn AuthHeaderProvider>>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self::new("http://127.0.0.1:3000")
    }
}

impl DiscoveryConfig {
    /// Defaults for the registry at `registry_url`.
    ///
    /// ```
    /// assert_eq!(forten_shared::discovery::DiscoveryConfig::new("http://gw:3000/").registry_url, "http://gw:3000");
    /// ```
    pub fn new(registry_url: impl Into<String>) -> Self {
        Self {
            registry_url: registry_url.into().trim_end_matches('/').to_owned(),
            registry_audience: "api-gateway".into(),
            heartbeat_interval: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(3),
            strategy: BalanceStrategy::RoundRobin,
            outlier: OutlierConfig::default(),
            auth: None,
        }
    }
    /// Sets the heartbeat period.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(forten_shared::discovery::DiscoveryConfig::default().heartbeat_interval(Duration::from_secs(2)).heartbeat_interval, Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat_interval = d;
        self
    }
    /// Sets the cache refresh period.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(forten_shared::discovery::DiscoveryConfig::default().refresh_interval(Duration::from_secs(2)).refresh_interval, Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn refresh_interval(mut self, d: Duration) -> Self {
        self.refresh_interval = d;
        self
    }
    /// Sets the timeout of registry calls.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(forten_shared::discovery::DiscoveryConfig::default().request_timeout(Duration::from_secs(2)).request_timeout, Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }
    /// Sets the balancing strategy.
    ///
    /// ```
    /// use forten_shared::discovery::BalanceStrategy;
    /// assert_eq!(forten_shared::discovery::DiscoveryConfig::default().strategy(BalanceStrategy::Random).strategy, BalanceStrategy::Random);
    /// ```
    #[must_use]
    pub fn strategy(mut self, s: BalanceStrategy) -> Self {
        self.strategy = s;
        self
    }
    /// Sets outlier ejection.
    ///
    /// ```
    /// let cfg = forten_shared::discovery::DiscoveryConfig::default().outlier(forten_shared::discovery::OutlierConfig::default());
    /// # drop(cfg);
    /// ```
    #[must_use]
    pub fn outlier(mut self, o: OutlierConfig) -> Self {
        self.outlier = o;
        self
    }
    /// Sends `provider`'s header to the registry.
    ///
    /// ```
    /// let token = forten_shared::client::StaticAuthHeader::bearer("jwt")?;
    /// let cfg = forten_shared::discovery::DiscoveryConfig::default().auth(std::sync::Arc::new(token));
    /// assert!(cfg.auth.is_some());
    /// # Ok::<(), http::header::InvalidHeaderValue>(())
    /// ```
    #[must_use]
    pub fn auth(mut self, provider: Arc<dyn AuthHeaderProvider>) -> Self {
        self.auth = Some(provider);
        self
    }

    /// Checks the settings (done again by [`DiscoveryClient::new`]).
    ///
    /// ```
    /// assert!(forten_shared::discovery::DiscoveryConfig::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let url = reqwest::Url::parse(&self.registry_url)
            .map_err(|e| InvalidConfig(format!("registry url {:?}: {e}", self.registry_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidConfig(format!(
                "registry url {:?}: scheme must be http or https",
                self.registry_url
            )));
        }
        if self.heartbeat_interval.is_zero()
            || self.refresh_interval.is_zero()
            || self.request_timeout.is_zero()
        {
            return Err(InvalidConfig(
                "discovery intervals and timeout must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// A service's instances, shared with every in-flight pick.
type Instances = Arc<[Arc<ServiceInstance>]>;

/// The instances of one service as last fetched, with their load records (looked up once
/// per refresh, so that a pick takes no lock but the cache's read lock and allocates nothing
/// but its candidate list).
#[derive(Debug, Clone)]
struct CachedService {
    instances: Instances,
    /// `stats[i]` belongs to `instances[i]`.
    stats: Arc<[Arc<EndpointStats>]>,
    /// Round-robin position.
    next: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Inner {
    config: DiscoveryConfig,
    http: reqwest::Client,
    /// std RwLock: read on every pick, written by the refresher; never held across an await.
    cache: RwLock<HashMap<String, CachedService>>,
    /// Load and failures by instance id.
    stats: Mutex<HashMap<String, Arc<EndpointStats>>>,
    /// Registered instances of this process: id → registration.
    registered: Mutex<HashMap<String, Registration>>,
    events: broadcast::Sender<RegistryEvent>,
    connected: AtomicBool,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// Registers this service, heartbeats in the background, discovers others from a cache kept
/// fresh in the background, and balances calls across their instances.
///
/// Cheap to clone. The background tasks stop when the last clone is dropped; call
/// [`DiscoveryClient::shutdown`] to deregister first.
///
/// ```no_run
/// use forten_shared::discovery::{DiscoveryClient, DiscoveryConfig, Registration};
///
/// # async fn demo() -> Result<(), forten_shared::discovery::DiscoveryError> {
/// let discovery = DiscoveryClient::new(DiscoveryConfig::new("http://api-gateway:3000"))?;
/// discovery.register(Registration::new("auth-service", "1.0.0", "auth-service", 3001)
///     .metadata("capabilities", serde_json::json!(["authentication", "user-management"]))).await?;
///
/// let instances = discovery.discover("access-service").await?;
/// let instance = discovery.get_service_instance("access-service").await?;
/// let url = discovery.get_service_url("access-service").await?;
/// # let _ = (instances, instance, url);
/// discovery.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DiscoveryClient {
    inner: Arc<Inner>,
    _guard: Arc<DropGuard>,
}

impl DiscoveryClient {
    /// Validates `config` and starts the cache refresher (needs a tokio runtime).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// assert!(discovery.is_connected());
    /// # Ok(()) }
    /// ```
    pub fn new(config: DiscoveryConfig) -> Result<Self, DiscoveryError> {
        config.validate()?;
        let handle =
            tokio::runtime::Handle::try_current().map_err(|_| DiscoveryError::NoRuntime)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| InvalidConfig(format!("http client: {e}")))?;
        let cancel = CancellationToken::new();
        let inner = Arc::new(Inner {
            config,
            http,
            cache: RwLock::new(HashMap::new()),
            stats: Mutex::new(HashMap::new()),
            registered: Mutex::new(HashMap::new()),
            events: broadcast::channel(64).0,
            connected: AtomicBool::new(true),
            cancel: cancel.clone(),
            tasks: TaskTracker::new(),
        });
        let refresher = inner.clone();
        drop(handle.spawn(inner.tasks.track_future(refresh_loop(refresher))));
        Ok(Self {
            inner,
            _guard: Arc::new(cancel.drop_guard()),
        })
    }

    /// The settings.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// assert_eq!(discovery.config().registry_url, "http://127.0.0.1:3000");
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &DiscoveryConfig {
        &self.inner.config
    }

    /// Registry connection events: `Disconnected`, then `Reconnected`, …
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// let mut events = discovery.subscribe();
    /// tokio::spawn(async move {
    ///     while let Ok(e) = events.recv().await { println!("registry: {e:?}"); }
    /// });
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        self.inner.events.subscribe()
    }

    /// Whether the last registry call succeeded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let discovery = forten_shared::discovery::DiscoveryClient::new(forten_shared::discovery::DiscoveryConfig::default())?;
    /// assert!(discovery.is_connected());
    /// # Ok(()) }
    /// ```
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Registers an instance and keeps it alive: heartbeats every `heartbeat_interval` (at
    /// most a third of the registry's TTL), registers again under the same id when the
    /// registry answers 404. Returns the instance id.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// use forten_shared::discovery::Registration;
    /// let id = discovery.register(Registration::new("auth-service", "1.0.0", "auth-service", 3001)).await?;
    /// # let _ = id;
    /// # Ok(()) }
    /// ```
    pub async fn register(&self, registration: Registration) -> Result<String, DiscoveryError> {
        let created = self.inner.post_registration(&registration).await?;
        let mut registration = registration;
        registration.id = Some(created.id.clone());
        self.inner
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(created.id.clone(), registration);
        let ttl = Duration::from_secs(created.ttl_seconds);
        let mut period = self.inner.config.heartbeat_interval;
        if !ttl.is_zero() {
            period = period.min(ttl / 3);
        }
        let inner = self.inner.clone();
        let id = created.id.clone();
        self.inner
            .tasks
            .spawn(async move { heartbeat_loop(inner, id, period).await });
        Ok(created.id)
    }

    /// Deregisters every instance this client registered and stops its background tasks.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// discovery.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        let ids: Vec<String> = self
            .inner
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            if let Err(e) = self.deregister(&id).await {
                tracing::warn!(instance = %id, error = %e, "could not deregister");
            }
        }
    }

    /// Deregisters one instance.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// discovery.deregister("0190c0de-…").await?;
    /// # Ok(()) }
    /// ```
    pub async fn deregister(&self, id: &str) -> Result<(), DiscoveryError> {
        self.inner
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        let url = format!("{}/registry/services/{id}", self.inner.config.registry_url);
        let res = self.inner.send(self.inner.http.delete(url)).await?;
        if res.status().is_success() || res.status() == http::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(status_error(res).await)
        }
    }

    /// The healthy instances of `name`, from the cache when the service was looked up before
    /// (the cache is refreshed in the background), else from the registry.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let instances = discovery.discover("access-service").await?;
    /// # let _ = instances;
    /// # Ok(()) }
    /// ```
    pub async fn discover(&self, name: &str) -> Result<Vec<ServiceInstance>, DiscoveryError> {
        Ok(self
            .cached(name)
            .await?
            .iter()
            .map(|i| ServiceInstance::clone(i))
            .collect())
    }

    /// One healthy instance of `name`, load balanced.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let instance = discovery.get_service_instance("access-service").await?;
    /// println!("{} at {}", instance.id, instance.url);
    /// # Ok(()) }
    /// ```
    pub async fn get_service_instance(
        &self,
        name: &str,
    ) -> Result<ServiceInstance, DiscoveryError> {
        Ok(self.pick(name, &[]).await?.instance().clone())
    }

    /// The base URL of one healthy instance of `name`, load balanced.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let url = discovery.get_service_url("access-service").await?;
    /// # let _ = url;
    /// # Ok(()) }
    /// ```
    pub async fn get_service_url(&self, name: &str) -> Result<String, DiscoveryError> {
        Ok(self.pick(name, &[]).await?.url().to_owned())
    }

    /// Chooses an instance of `name` for one call, avoiding the instance ids in `exclude`
    /// (those already tried) and ejected instances when others remain.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let first = discovery.pick("access-service", &[]).await?;
    /// let retry_elsewhere = discovery.pick("access-service", &[first.instance().id.as_str()]).await?;
    /// # let _ = retry_elsewhere;
    /// # Ok(()) }
    /// ```
    pub async fn pick(&self, name: &str, exclude: &[&str]) -> Result<Endpoint, DiscoveryError> {
        let snapshot = match self.snapshot(name) {
            Some(found) => found,
            None => {
                self.cached(name).await?;
                self.snapshot(name)
                    .ok_or_else(|| DiscoveryError::NoInstances(name.to_owned()))?
            }
        };
        let CachedService {
            instances,
            stats,
            next,
        } = snapshot;
        if instances.is_empty() {
            return Err(DiscoveryError::NoInstances(name.to_owned()));
        }
        let now = Instant::now();
        let n_ejected = stats.iter().filter(|s| s.is_ejected(now)).count();
        if exclude.is_empty() && n_ejected == 0 {
            // The common case: every instance is a candidate, nothing to allocate.
            let chosen = choose(
                self.inner.config.strategy,
                &next,
                |c| stats[c].outstanding.load(Ordering::Relaxed),
                instances.len(),
            );
            return Ok(Endpoint::new(
                instances[chosen].clone(),
                stats[chosen].clone(),
                self.inner.config.outlier,
            ));
        }
        let ejected: Vec<bool> = stats.iter().map(|s| s.is_ejected(now)).collect();
        // Honour ejections only while they stay within the percentage (panic mode otherwise).
        let honour = n_ejected * 100
            <= instances.len() * usize::from(self.inner.config.outlier_max_percent());
        let not_excluded = |i: usize| !exclude.contains(&instances[i].id.as_str());
        let mut candidates: Vec<usize> = (0..instances.len())
            .filter(|&i| not_excluded(i) && !(honour && ejected[i]))
            .collect();
        if candidates.is_empty() {
            candidates = (0..instances.len()).filter(|&i| not_excluded(i)).collect();
        }
        if candidates.is_empty() {
            candidates = (0..instances.len()).collect();
        }
        let idx = choose(
            self.inner.config.strategy,
            &next,
            |c| stats[candidates[c]].outstanding.load(Ordering::Relaxed),
            candidates.len(),
        );
        let chosen = candidates[idx];
        Ok(Endpoint::new(
            instances[chosen].clone(),
            stats[chosen].clone(),
            self.inner.config.outlier,
        ))
    }

    /// Every service with every instance, straight from the registry (`forten registry list`).
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// print!("{}", forten_shared::discovery::render_registry_table(&discovery.list_services().await?, chrono::Utc::now()));
    /// # Ok(()) }
    /// ```
    pub async fn list_services(&self) -> Result<Vec<ServiceEntry>, DiscoveryError> {
        let url = format!("{}/registry/services", self.inner.config.registry_url);
        let res = self.inner.send(self.inner.http.get(url)).await?;
        if !res.status().is_success() {
            return Err(status_error(res).await);
        }
        let list: ServiceList = res
            .json()
            .await
            .map_err(|e| DiscoveryError::Unreachable(e.to_string()))?;
        Ok(list.services)
    }

    /// Fetches `name` from the registry now and updates the cache.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let fresh = discovery.refresh("access-service").await?;
    /// # let _ = fresh;
    /// # Ok(()) }
    /// ```
    pub async fn refresh(&self, name: &str) -> Result<Vec<ServiceInstance>, DiscoveryError> {
        let fresh = self.inner.refresh(name).await?;
        Ok(fresh.iter().map(|i| ServiceInstance::clone(i)).collect())
    }

    fn snapshot(&self, name: &str) -> Option<CachedService> {
        let cache = self
            .inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        cache.get(name).cloned()
    }

    async fn cached(&self, name: &str) -> Result<Arc<[Arc<ServiceInstance>]>, DiscoveryError> {
        if let Some(found) = self.snapshot(name) {
            return Ok(found.instances);
        }
        self.inner.refresh(name).await
    }
}

impl DiscoveryConfig {
    fn outlier_max_percent(&self) -> u8 {
        self.outlier.max_ejection_percent
    }
}

impl Inner {
    async fn auth_header(&self) -> Result<Option<http::HeaderValue>, DiscoveryError> {
        match &self.config.auth {
            Some(p) => p
                .auth_header(&self.config.registry_audience)
                .await
                .map(Some)
                .map_err(|e| DiscoveryError::Auth(e.to_string())),
            None => Ok(None),
        }
    }

    /// Sends a registry call, tracking the connection state.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, DiscoveryError> {
        let mut req = req;
        if let Some(h) = self.auth_header().await? {
            req = req.header(http::header::AUTHORIZATION, h);
        }
        match crate::telemetry::send_traced(req).await {
            Ok(res) if res.status().is_server_error() => {
                self.set_connected(false, &format!("registry answered {}", res.status()));
                Ok(res)
            }
            Ok(res) => {
                self.set_connected(true, "");
                Ok(res)
            }
            Err(e) => {
                let msg = e.to_string();
                self.set_connected(false, &msg);
                Err(DiscoveryError::Unreachable(msg))
            }
        }
    }

    fn set_connected(&self, connected: bool, error: &str) {
        if self.connected.swap(connected, Ordering::Relaxed) != connected {
            let event = if connected {
                tracing::info!(registry = %self.config.registry_url, "registry reachable again");
                RegistryEvent::Reconnected
            } else {
                tracing::warn!(registry = %self.config.registry_url, %error, "lost connection to the service registry; serving cached instances");
                RegistryEvent::Disconnected {
                    error: error.to_owned(),
                }
            };
            let _ = self.events.send(event);
        }
    }

    async fn post_registration(
        &self,
        reg: &Registration,
    ) -> Result<RegisterResponse, DiscoveryError> {
        let url = format!("{}/registry/services", self.config.registry_url);
        let res = self.send(self.http.post(url).json(reg)).await?;
        if !res.status().is_success() {
            return Err(status_error(res).await);
        }
        res.json()
            .await
            .map_err(|e| DiscoveryError::Unreachable(e.to_string()))
    }

    async fn refresh(&self, name: &str) -> Result<Arc<[Arc<ServiceInstance>]>, DiscoveryError> {
        let url = format!("{}/registry/services/{name}", self.config.registry_url);
        let fetched = async {
            let res = self.send(self.http.get(url)).await?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            res.json::<Discovered>()
                .await
                .map_err(|e| DiscoveryError::Unreachable(e.to_string()))
        }
        .await;
        match fetched {
            Ok(found) => {
                let instances: Instances = found.instances.into_iter().map(Arc::new).collect();
                let stats: Arc<[Arc<EndpointStats>]> = {
                    let mut map = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
                    instances
                        .iter()
                        .map(|i| map.entry(i.id.clone()).or_default().clone())
                        .collect()
                };
                let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
                match cache.get_mut(name) {
                    Some(entry) => {
                        entry.instances = instances.clone();
                        entry.stats = stats;
                    }
                    None => {
                        cache.insert(
                            name.to_owned(),
                            CachedService {
                                instances: instances.clone(),
                                stats,
                                next: Arc::new(AtomicUsize::new(fastrand::usize(..1024))),
                            },
                        );
                    }
                }
                Ok(instances)
            }
            Err(e) => {
                let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
                match cache.get(name) {
                    Some(entry) => Ok(entry.instances.clone()),
                    None => Err(e),
                }
            }
        }
    }
}

async fn status_error(res: reqwest::Response) -> DiscoveryError {
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    DiscoveryError::Status { status, body }
}

async fn refresh_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.config.refresh_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = inner.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let names: Vec<String> = inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        // Concurrently: one slow answer must not delay every other service's refresh.
        let refreshes = names.iter().map(|name| {
            let inner = &inner;
            async move {
                if let Err(e) = inner.refresh(name).await {
                    tracing::debug!(service = %name, error = %e, "discovery refresh failed");
                }
            }
        });
        futures_util::future::join_all(refreshes).await;
        // Forget the load records of instances no longer listed (in-flight calls keep theirs).
        let live: std::collections::HashSet<String> = inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .flat_map(|c| c.instances.iter().map(|i| i.id.clone()))
            .collect();
        inner
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|id, _| live.contains(id));
    }
}

async fn heartbeat_loop(inner: Arc<Inner>, id: String, period: Duration) {
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = inner.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(reg) = inner
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
        else {
            return; // deregistered
        };
        let url = format!(
            "{}/registry/services/{id}/heartbeat",
            inner.config.registry_url
        );
        match inner.send(inner.http.put(url)).await {
            Ok(res) if res.status() == http::StatusCode::NOT_FOUND => {
                match inner.post_registration(&reg).await {
                    Ok(created) => {
                        tracing::info!(service = %reg.name, instance = %created.id, "registered again after the registry forgot this instance");
                        let _ = inner.events.send(RegistryEvent::Reregistered {
                            service: reg.name.clone(),
                            id: created.id,
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "could not register again"),
                }
            }
            Ok(res) if !res.status().is_success() => {
                tracing::warn!(status = %res.status(), "heartbeat refused");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
        }
    }
}
