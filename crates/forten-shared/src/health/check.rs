//! Health checks: what to probe, how often, how long to wait, and whether it is critical.

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

/// The future a check runs: `Ok(())` healthy, `Err(message)` unhealthy.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type Probe = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// Anything that knows whether it is connected (the event bus implements it).
///
/// Closures `Fn() -> bool` implement it too.
///
/// ```
/// use forten_shared::health::ConnectionState;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// struct Bus(AtomicBool);
/// impl ConnectionState for Bus {
///     fn is_connected(&self) -> bool { self.0.load(Ordering::Relaxed) }
/// }
/// assert!(Bus(AtomicBool::new(true)).is_connected());
/// assert!((|| false).is_connected() == false);
/// ```
pub trait ConnectionState: Send + Sync {
    /// `true` while connected.
    fn is_connected(&self) -> bool;
}

impl<F> ConnectionState for F
where
    F: Fn() -> bool + Send + Sync,
{
    fn is_connected(&self) -> bool {
        self()
    }
}

/// Default time a check may take before it counts as failed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time between two runs of a check.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Shortest interval accepted (shorter ones are raised to it, so a check can never spin).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// One health check (the guide's `HealthChecks.*`).
///
/// A check has a name, a probe, a timeout (a probe still running then counts as failed), an
/// interval (it runs in the background, never per request) and a critical flag: a failing
/// critical check makes the service unhealthy and not ready; a failing non-critical one makes
/// it degraded.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::health::HealthCheck;
///
/// let check = HealthCheck::new("cache", || async { Ok::<_, std::io::Error>(()) })
///     .critical(false)
///     .timeout(Duration::from_secs(1))
///     .interval(Duration::from_secs(30));
/// assert_eq!(check.name(), "cache");
/// assert!(!check.is_critical());
/// ```
#[derive(Clone)]
pub struct HealthCheck {
    name: String,
    critical: bool,
    timeout: Duration,
    interval: Duration,
    probe: Probe,
}

impl fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .field("critical", &self.critical)
            .field("timeout", &self.timeout)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl HealthCheck {
    /// A custom check from an async closure; non-critical by default.
    ///
    /// ```
    /// let check = forten_shared::HealthCheck::new("disk", || async {
    ///     if 1 + 1 == 2 { Ok(()) } else { Err("disk full") }
    /// });
    /// # drop(check);
    /// ```
    pub fn new<F, Fut, E>(name: impl Into<String>, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let probe: Probe = Arc::new(move || {
            let fut = probe();
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        });
        Self {
            name: name.into(),
            critical: false,
            timeout: DEFAULT_TIMEOUT,
            interval: DEFAULT_INTERVAL,
            probe,
        }
    }

    /// A database check: `ping` must succeed; critical by default.
    ///
    /// ```
    /// let check = forten_shared::HealthCheck::database("postgres", || async {
    ///     Ok::<_, std::io::Error>(()) // e.g. sqlx::query("SELECT 1").execute(&pool).await.map(drop)
    /// });
    /// assert!(check.is_critical());
    /// ```
    pub fn database<F, Fut, E>(name: impl Into<String>, ping: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        Self::new(name, ping).critical(true)
    }

    /// A broker check: healthy while `source` is connected; critical by default.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let check = forten_shared::HealthCheck::rabbitmq("rabbitmq", Arc::new(|| true));
    /// assert!(check.is_critical());
    /// ```
    pub fn rabbitmq(name: impl Into<String>, source: Arc<dyn ConnectionState>) -> Self {
        Self::new(name, move || {
            let connected = source.is_connected();
            async move {
                if connected {
                    Ok(())
                } else {
                    Err("not connected")
                }
            }
        })
        .critical(true)
    }

    /// A dependency check: `GET <url>/health/ready` (or `url` itself when it has a path) must
    /// answer 2xx; non-critical by default (a down peer degrades this service, it does not make
    /// it unready, so failures do not cascade).
    ///
    /// ```
    /// let check = forten_shared::HealthCheck::http_service("access-service", "http://127.0.0.1:3002");
    /// assert!(!check.is_critical());
    /// ```
    pub fn http_service(name: impl Into<String>, url: impl Into<String>) -> Self {
        let url = url.into();
        let target = match reqwest::Url::parse(&url) {
            Ok(parsed) if parsed.path() == "/" || parsed.path().is_empty() => {
                format!("{}/health/ready", url.trim_end_matches('/'))
            }
            _ => url,
        };
        let client = reqwest::Client::new();
        Self::new(name, move || {
            let request = client.get(&target);
            async move {
                let res = request.send().await.map_err(|e| e.to_string())?;
                if res.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("answered {}", res.status()))
                }
            }
        })
    }

    /// Sets the critical flag.
    ///
    /// ```
    /// assert!(forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) }).critical(true).is_critical());
    /// ```
    #[must_use]
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// Sets the timeout of one run.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) }).timeout(Duration::from_millis(500));
    /// assert_eq!(c.timeout_duration(), Duration::from_millis(500));
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the interval between runs (at least [`MIN_INTERVAL`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) }).interval(Duration::ZERO);
    /// assert_eq!(c.interval_duration(), forten_shared::health::MIN_INTERVAL);
    /// ```
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(MIN_INTERVAL);
        self
    }

    /// The check's name.
    ///
    /// ```
    /// assert_eq!(forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) }).name(), "x");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a failure makes the service unhealthy and not ready.
    ///
    /// ```
    /// assert!(!forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) }).is_critical());
    /// ```
    pub fn is_critical(&self) -> bool {
        self.critical
    }

    /// The timeout of one run.
    ///
    /// ```
    /// let c = forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) });
    /// assert_eq!(c.timeout_duration(), forten_shared::health::DEFAULT_TIMEOUT);
    /// ```
    pub fn timeout_duration(&self) -> Duration {
        self.timeout
    }

    /// The interval between runs.
    ///
    /// ```
    /// let c = forten_shared::HealthCheck::new("x", || async { Ok::<_, String>(()) });
    /// assert_eq!(c.interval_duration(), forten_shared::health::DEFAULT_INTERVAL);
    /// ```
    pub fn interval_duration(&self) -> Duration {
        self.interval
    }

    /// Runs the probe once with the timeout.
    pub(crate) async fn run(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, (self.probe)()).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {} ms", self.timeout.as_millis())),
        }
    }
}
