//! Load balancing over the instances of a service, with per-instance load (outstanding
//! requests) and outlier ejection.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::{InvalidConfig, ServiceInstance};

/// How an instance is chosen among the healthy ones.
///
/// ```
/// use forten_shared::discovery::BalanceStrategy;
/// assert_eq!(BalanceStrategy::default(), BalanceStrategy::RoundRobin);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BalanceStrategy {
    /// Each instance in turn (the default).
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// Least outstanding requests by the power of two choices: two instances at random, the
    /// less loaded one wins.
    LeastOutstanding,
}

/// Outlier detection: an instance failing `consecutive_failures` calls in a row is ejected
/// from balancing for `ejection_time` (doubling on each further ejection, up to
/// `max_ejection_time`). Never more than `max_ejection_percent` of the instances are ejected
/// at once; when every candidate is ejected, ejections are ignored (panic mode).
///
/// ```
/// use std::time::Duration;
/// use forten_shared::discovery::OutlierConfig;
/// let cfg = OutlierConfig::try_new(3, Duration::from_secs(10), Duration::from_secs(60), 50)?;
/// assert_eq!(cfg.consecutive_failures(), 3);
/// assert!(OutlierConfig::try_new(0, Duration::from_secs(1), Duration::from_secs(1), 50).is_err());
/// # Ok::<(), forten_shared::discovery::InvalidConfig>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierConfig {
    pub(crate) consecutive_failures: u32,
    pub(crate) ejection_time: Duration,
    pub(crate) max_ejection_time: Duration,
    pub(crate) max_ejection_percent: u8,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self::new_unchecked(3, Duration::from_secs(10), Duration::from_secs(120), 50)
    }
}

impl OutlierConfig {
    /// Validated settings.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cfg = forten_shared::discovery::OutlierConfig::try_new(5, Duration::from_secs(30), Duration::from_secs(300), 30)?;
    /// # drop(cfg); Ok::<(), forten_shared::discovery::InvalidConfig>(())
    /// ```
    pub fn try_new(
        consecutive_failures: u32,
        ejection_time: Duration,
        max_ejection_time: Duration,
        max_ejection_percent: u8,
    ) -> Result<Self, InvalidConfig> {
        if consecutive_failures == 0 {
            return Err(InvalidConfig(
                "outlier consecutive_failures must be at least 1".into(),
            ));
        }
        if ejection_time.is_zero() || max_ejection_time < ejection_time {
            return Err(InvalidConfig(
                "outlier ejection_time must be positive and at most max_ejection_time".into(),
            ));
        }
        if max_ejection_percent > 100 {
            return Err(InvalidConfig(
                "outlier max_ejection_percent must be at most 100".into(),
            ));
        }
        Ok(Self::new_unchecked(
            consecutive_failures,
            ejection_time,
            max_ejection_time,
            max_ejection_percent,
        ))
    }

    /// Settings without validation, for constants.
    ///
    /// ```
    /// use std::time::Duration;
    /// use forten_shared::discovery::OutlierConfig;
    /// const STRICT: OutlierConfig = OutlierConfig::new_unchecked(1, Duration::from_secs(5), Duration::from_secs(60), 50);
    /// assert_eq!(STRICT.consecutive_failures(), 1);
    /// ```
    pub const fn new_unchecked(
        consecutive_failures: u32,
        ejection_time: Duration,
        max_ejection_time: Duration,
        max_ejection_percent: u8,
    ) -> Self {
        Self {
            consecutive_failures,
            ejection_time,
            max_ejection_time,
            max_ejection_percent,
        }
    }

    /// Failures in a row that eject an instance.
    ///
    /// ```
    /// assert_eq!(forten_shared::discovery::OutlierConfig::default().consecutive_failures(), 3);
    /// ```
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

/// Load and failure record of one instance, shared by every caller in the process.
#[derive(Debug, Default)]
pub(crate) struct EndpointStats {
    pub(crate) outstanding: AtomicUsize,
    failures: AtomicU32,
    /// Set while an ejection may be in force, so that the common path (never ejected) reads
    /// one atomic instead of locking.
    ejected: AtomicBool,
    /// std mutex: a few instructions, never across an await.
    ejection: Mutex<Ejection>,
}

#[derive(Debug, Default)]
struct Ejection {
    until: Option<Instant>,
    times: u32,
}

impl EndpointStats {
    pub(crate) fn is_ejected(&self, now: Instant) -> bool {
        if !self.ejected.load(Ordering::Relaxed) {
            return false;
        }
        self.ejection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .until
            .is_some_and(|u| u > now)
    }

    pub(crate) fn record(&self, success: bool, cfg: &OutlierConfig) -> bool {
        if success {
            if self.failures.load(Ordering::Relaxed) != 0 {
                self.failures.store(0, Ordering::Relaxed);
            }
            if self.ejected.load(Ordering::Relaxed) {
                let mut ej = self.ejection.lock().unwrap_or_else(PoisonError::into_inner);
                if ej.until.is_some_and(|u| u <= Instant::now()) {
                    ej.until = None;
                    ej.times = ej.times.saturating_sub(1);
                    self.ejected.store(false, Ordering::Relaxed);
                }
            }
            return false;
        }
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures < cfg.consecutive_failures {
            return false;
        }
        self.failures.store(0, Ordering::Relaxed);
        let mut ej = self.ejection.lock().unwrap_or_else(PoisonError::into_inner);
        let factor = 1u32.checked_shl(ej.times.min(16)).unwrap_or(u32::MAX);
        let time = cfg
            .ejection_time
            .saturating_mul(factor)
            .min(cfg.max_ejection_time);
        ej.until = Some(Instant::now() + time);
        ej.times = ej.times.saturating_add(1);
        self.ejected.store(true, Ordering::Relaxed);
        true
    }
}

/// A chosen instance. It counts as one outstanding request on its instance until dropped;
/// report the outcome with [`Endpoint::record`] so that failing instances are ejected.
///
/// ```no_run
/// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
/// let endpoint = discovery.pick("access-service", &[]).await?;
/// println!("calling {}", endpoint.url());
/// endpoint.record(true);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Endpoint {
    pub(crate) instance: Arc<ServiceInstance>,
    pub(crate) stats: Arc<EndpointStats>,
    pub(crate) outlier: OutlierConfig,
}

impl Endpoint {
    pub(crate) fn new(
        instance: Arc<ServiceInstance>,
        stats: Arc<EndpointStats>,
        outlier: OutlierConfig,
    ) -> Self {
        stats.outstanding.fetch_add(1, Ordering::Relaxed);
        Self {
            instance,
            stats,
            outlier,
        }
    }

    /// The instance.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let endpoint = discovery.pick("access-service", &[]).await?;
    /// println!("{}", endpoint.instance().id);
    /// # Ok(()) }
    /// ```
    pub fn instance(&self) -> &ServiceInstance {
        &self.instance
    }

    /// The instance's base URL.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let endpoint = discovery.pick("access-service", &[]).await?;
    /// println!("{}", endpoint.url());
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &str {
        &self.instance.url
    }

    /// Records the outcome of the call; `true` when this failure ejected the instance.
    ///
    /// ```
    /// # async fn f(discovery: forten_shared::discovery::DiscoveryClient) -> Result<(), forten_shared::discovery::DiscoveryError> {
    /// let endpoint = discovery.pick("access-service", &[]).await?;
    /// let ejected = endpoint.record(false);
    /// # let _ = ejected; Ok(()) }
    /// ```
    pub fn record(&self, success: bool) -> bool {
        let ejected = self.stats.record(success, &self.outlier);
        if ejected {
            tracing::warn!(service = %self.instance.name, instance = %self.instance.id, url = %self.instance.url, "instance ejected from balancing after consecutive failures");
        }
        ejected
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stats.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Chooses an index among `candidates` (non-empty).
pub(crate) fn choose(
    strategy: BalanceStrategy,
    counter: &AtomicUsize,
    load: impl Fn(usize) -> usize,
    candidates: usize,
) -> usize {
    match strategy {
        BalanceStrategy::RoundRobin => counter.fetch_add(1, Ordering::Relaxed) % candidates,
        BalanceStrategy::Random => fastrand::usize(..candidates),
        BalanceStrategy::LeastOutstanding => {
            if candidates == 1 {
                return 0;
            }
            let a = fastrand::usize(..candidates);
            let mut b = fastrand::usize(..candidates - 1);
            if b >= a {
                b += 1;
            }
            if load(b) < load(a) { b } else { a }
        }
    }
}
