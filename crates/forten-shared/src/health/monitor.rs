//! The health monitor: runs checks in the background and keeps their latest results.

use std::{
    future::Future,
    sync::{
        Arc, OnceLock, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{CheckReport, CheckStatus, HealthCheck, HealthReport, HealthStatus};
use crate::telemetry::{Metrics, metric_names};

/// Latest result of one check.
#[derive(Debug, Clone)]
struct Outcome {
    ok: bool,
    latency: Duration,
    message: Option<String>,
}

/// A registered check and its latest result.
#[derive(Debug)]
struct Slot {
    check: HealthCheck,
    /// `None` until the first run completes. A `std` lock: held only to copy a few fields.
    outcome: RwLock<Option<Outcome>>,
    /// How many times the probe ran (tests and diagnostics).
    runs: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    service: String,
    version: String,
    instance_id: String,
    started: tokio::time::Instant,
    draining: AtomicBool,
    slots: RwLock<Vec<Arc<Slot>>>,
    /// `true` while every critical check passes (a check not run yet counts as passing, so a
    /// monitor that is never started never pauses anyone).
    critical_tx: watch::Sender<bool>,
    /// Bumped after every check run, so waiters can re-evaluate.
    generation: watch::Sender<u64>,
    /// Where `health_check_status{service,check}` goes, once set.
    metrics: OnceLock<Metrics>,
}

/// Owns the background tasks: they stop when the last [`HealthMonitor`] clone is dropped.
#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    started: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A service's health (the guide's `createHealthMonitor`): registered checks run in the
/// background, each on its own interval with its own timeout, and the endpoints serve the latest
/// results, so a burst of probes never reaches a database.
///
/// Cheap to clone; the background tasks stop when the last clone is dropped (or on
/// [`stop`](Self::stop)).
///
/// ```
/// use forten_shared::{HealthCheck, HealthMonitor, health::HealthStatus};
///
/// # tokio_test::block_on(async {
/// let monitor = HealthMonitor::new("auth-service", "1.0.0");
/// monitor.register(HealthCheck::database("postgres", || async { Ok::<_, String>(()) }));
/// monitor.check_now().await;
/// assert_eq!(monitor.report().status, HealthStatus::Healthy);
/// assert!(monitor.is_ready());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct HealthMonitor {
    inner: Arc<Inner>,
}

impl HealthMonitor {
    /// A monitor for `service` at `version`, with a fresh instance id.
    ///
    /// ```
    /// let m = forten_shared::HealthMonitor::new("svc", "1.0.0");
    /// assert_eq!(m.report().service, "svc");
    /// ```
    pub fn new(service: impl Into<String>, version: impl Into<String>) -> Self {
        Self::with_instance_id(service, version, uuid::Uuid::new_v4().to_string())
    }

    /// Like [`new`](Self::new) with a given instance id (the registry's, for example).
    ///
    /// ```
    /// let m = forten_shared::HealthMonitor::with_instance_id("svc", "1", "i-7");
    /// assert_eq!(m.report().instance_id, "i-7");
    /// ```
    pub fn with_instance_id(
        service: impl Into<String>,
        version: impl Into<String>,
        instance_id: impl Into<String>,
    ) -> Self {
        let shared = Arc::new(Shared {
            service: service.into(),
            version: version.into(),
            instance_id: instance_id.into(),
            started: tokio::time::Instant::now(),
            draining: AtomicBool::new(false),
            slots: RwLock::new(Vec::new()),
            critical_tx: watch::channel(true).0,
            generation: watch::channel(0).0,
            metrics: OnceLock::new(),
        });
        Self {
            inner: Arc::new(Inner {
                shared,
                cancel: CancellationToken::new(),
                started: AtomicBool::new(false),
            }),
        }
    }

    /// The service name.
    ///
    /// ```
    /// assert_eq!(forten_shared::HealthMonitor::new("svc", "1").service(), "svc");
    /// ```
    pub fn service(&self) -> &str {
        &self.inner.shared.service
    }

    /// Publishes every check result as the gauge `health_check_status{service,check}` (1 passing,
    /// 0 failing) through `metrics` (set once; later calls are ignored).
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// let metrics = forten_shared::Metrics::new("health-doc-svc");
    /// m.export_metrics(metrics.clone());
    /// m.register(forten_shared::HealthCheck::new("db", || async { Ok::<_, String>(()) }));
    /// m.check_now().await;
    /// assert!(metrics.render().contains("health_check_status{service=\"health-doc-svc\",check=\"db\"} 1"));
    /// # });
    /// ```
    pub fn export_metrics(&self, metrics: Metrics) {
        let _ = self.inner.shared.metrics.set(metrics);
    }

    /// Adds a check. If the monitor is already running, the check starts right away.
    ///
    /// ```
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// m.register(forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) }));
    /// assert_eq!(m.report().checks.len(), 1);
    /// ```
    pub fn register(&self, check: HealthCheck) -> &Self {
        let slot = Arc::new(Slot {
            check,
            outcome: RwLock::new(None),
            runs: AtomicU64::new(0),
        });
        self.inner
            .shared
            .slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(slot.clone());
        if self.inner.started.load(Ordering::Acquire) {
            self.spawn(slot);
        }
        self
    }

    /// Starts the background runner (idempotent). Must be called inside a tokio runtime.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// m.start();
    /// m.stop();
    /// # });
    /// ```
    pub fn start(&self) {
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        for slot in self.slots() {
            self.spawn(slot);
        }
    }

    /// Stops the background runner.
    ///
    /// ```
    /// forten_shared::HealthMonitor::new("svc", "1").stop();
    /// ```
    pub fn stop(&self) {
        self.inner.cancel.cancel();
    }

    fn spawn(&self, slot: Arc<Slot>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(check = %slot.check.name(), "health check not started: no tokio runtime");
            return;
        };
        let shared = self.inner.shared.clone();
        let cancel = self.inner.cancel.clone();
        handle.spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = run_slot(&shared, &slot) => {}
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(slot.check.interval_duration()) => {}
                }
            }
        });
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.inner
            .shared
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs every check once now (concurrently) and records the results. For operators and
    /// tests; the endpoints never call it.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// m.register(forten_shared::HealthCheck::new("x", || async { Err::<(), _>("down") }));
    /// m.check_now().await;
    /// assert_eq!(m.report().checks[0].message.as_deref(), Some("down"));
    /// # });
    /// ```
    pub async fn check_now(&self) {
        let shared = &self.inner.shared;
        let runs = self
            .slots()
            .into_iter()
            .map(|slot| async move { run_slot(shared, &slot).await });
        futures_util::future::join_all(runs).await;
    }

    /// Waits until every registered check has completed at least one run.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// m.register(forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) }));
    /// m.start();
    /// m.wait_until_checked().await;
    /// assert_eq!(m.runs("x"), Some(1));
    /// # });
    /// ```
    pub async fn wait_until_checked(&self) {
        let mut rx = self.inner.shared.generation.subscribe();
        loop {
            if self
                .slots()
                .iter()
                .all(|s| s.runs.load(Ordering::Acquire) > 0)
            {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// How many times the named check has run, if it is registered.
    ///
    /// ```
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// assert_eq!(m.runs("nope"), None);
    /// ```
    pub fn runs(&self, name: &str) -> Option<u64> {
        self.slots()
            .iter()
            .find(|s| s.check.name() == name)
            .map(|s| s.runs.load(Ordering::Acquire))
    }

    /// The latest report (what `/health` serves).
    ///
    /// ```
    /// let r = forten_shared::HealthMonitor::new("svc", "1.2.3").report();
    /// assert_eq!(r.version, "1.2.3");
    /// ```
    pub fn report(&self) -> HealthReport {
        let shared = &self.inner.shared;
        let checks: Vec<CheckReport> = self
            .slots()
            .iter()
            .map(|slot| {
                let outcome = slot
                    .outcome
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                match outcome {
                    Some(o) => CheckReport {
                        name: slot.check.name().to_owned(),
                        status: if o.ok {
                            CheckStatus::Healthy
                        } else {
                            CheckStatus::Unhealthy
                        },
                        critical: slot.check.is_critical(),
                        latency_ms: (o.latency.as_secs_f64() * 1_000_000.0).round() / 1000.0,
                        message: o.message,
                    },
                    None => CheckReport {
                        name: slot.check.name().to_owned(),
                        status: CheckStatus::Unhealthy,
                        critical: slot.check.is_critical(),
                        latency_ms: 0.0,
                        message: Some("not checked yet".into()),
                    },
                }
            })
            .collect();
        let status = if checks
            .iter()
            .any(|c| c.critical && c.status == CheckStatus::Unhealthy)
        {
            HealthStatus::Unhealthy
        } else if checks.iter().any(|c| c.status == CheckStatus::Unhealthy) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        HealthReport {
            status,
            service: shared.service.clone(),
            version: shared.version.clone(),
            instance_id: shared.instance_id.clone(),
            uptime_seconds: shared.started.elapsed().as_secs(),
            checks,
        }
    }

    /// Whether the service should receive traffic: not draining and every critical check
    /// passed its last run (a critical check that has not run yet counts as failing here).
    ///
    /// ```
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// assert!(m.is_ready());
    /// m.start_draining();
    /// assert!(!m.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.report().status != HealthStatus::Unhealthy
    }

    /// Marks the service as draining: readiness answers 503 from now on, while the listener is
    /// still open and in-flight requests complete. Call it first thing on shutdown.
    ///
    /// ```
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// m.start_draining();
    /// assert!(m.is_draining());
    /// ```
    pub fn start_draining(&self) {
        self.inner.shared.draining.store(true, Ordering::Release);
    }

    /// Whether [`start_draining`](Self::start_draining) was called.
    ///
    /// ```
    /// assert!(!forten_shared::HealthMonitor::new("svc", "1").is_draining());
    /// ```
    pub fn is_draining(&self) -> bool {
        self.inner.shared.draining.load(Ordering::Acquire)
    }

    /// A shutdown future for `axum::serve(..).with_graceful_shutdown(..)`: waits for `signal`,
    /// starts draining (readiness 503), waits `grace` so load balancers notice, then resolves
    /// (the listener closes and in-flight requests finish).
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// m.drain_on(async {}, std::time::Duration::ZERO).await;
    /// assert!(m.is_draining());
    /// # });
    /// ```
    pub fn drain_on(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            signal.await;
            this.start_draining();
            tracing::info!(service = %this.service(), "draining: readiness now 503");
            tokio::time::sleep(grace).await;
        }
    }

    /// A watch of "every critical check passes" (`true`) — the event bus pauses this service's
    /// consumers while it is `false` and resumes them when it turns `true` again. Checks that
    /// have not run yet count as passing here.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let m = forten_shared::HealthMonitor::new("svc", "1");
    /// m.register(forten_shared::HealthCheck::database("db", || async { Err::<(), _>("down") }));
    /// let rx = m.subscribe_critical();
    /// assert!(*rx.borrow());
    /// m.check_now().await;
    /// assert!(!*rx.borrow());
    /// # });
    /// ```
    pub fn subscribe_critical(&self) -> watch::Receiver<bool> {
        self.inner.shared.critical_tx.subscribe()
    }
}

async fn run_slot(shared: &Shared, slot: &Slot) {
    let start = tokio::time::Instant::now();
    let result = slot.check.run().await;
    let latency = start.elapsed();
    if let Err(message) = &result {
        tracing::warn!(check = %slot.check.name(), critical = slot.check.is_critical(), %message, "health check failed");
    }
    if let Some(metrics) = shared.metrics.get() {
        metrics
            .gauge(
                metric_names::HEALTH_CHECK_STATUS,
                &[("check", slot.check.name())],
            )
            .set(if result.is_ok() { 1.0 } else { 0.0 });
    }
    let outcome = Outcome {
        ok: result.is_ok(),
        latency,
        message: result.err(),
    };
    *slot.outcome.write().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    slot.runs.fetch_add(1, Ordering::AcqRel);
    let critical_ok = shared
        .slots
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .all(|s| {
            !s.check.is_critical()
                || s.outcome
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .is_none_or(|o| o.ok)
        });
    shared.critical_tx.send_if_modified(|v| {
        let changed = *v != critical_ok;
        *v = critical_ok;
        changed
    });
    shared.generation.send_modify(|g| *g += 1);
}
