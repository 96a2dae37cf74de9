//! The retry policy: which failures are retried, how long to wait, and the budget that keeps
//! retries from multiplying a storm.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use crate::discovery::InvalidConfig;

/// Retry settings, with the guide's `maxRetries` and `initialDelay`.
///
/// Retried: a request that never reached the server (connection refused) whatever its
/// method; a timeout, a broken connection or a 502 / 503 / 504 only for idempotent methods
/// (`GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE`, or a request marked idempotent). Delays grow
/// exponentially from `initial_delay` with jitter, up to `max_delay`; a `Retry-After` on a
/// 503 (or 429) is honoured up to `max_retry_after`. The budget allows, on top of
/// `budget_min_per_sec`, retries for `budget_percent` of the recent requests.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::client::RetryPolicy;
/// let policy = RetryPolicy::default().max_retries(3).initial_delay(Duration::from_millis(100));
/// assert!(policy.validate().is_ok());
/// assert!(RetryPolicy::default().budget(0.2, 0, Duration::ZERO).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 3; 0 disables retries).
    pub max_retries: u32,
    /// First backoff delay (default 100 ms).
    pub initial_delay: Duration,
    /// Cap of one backoff delay (default 5 s).
    pub max_delay: Duration,
    /// Growth factor of the delay (default 2).
    pub multiplier: f64,
    /// Longest `Retry-After` honoured; a longer one is not retried (default 30 s).
    pub max_retry_after: Duration,
    /// Share of recent requests that may be retried (default 0.2).
    pub budget_percent: f32,
    /// Retries per second always allowed (default 10).
    pub budget_min_per_sec: u32,
    /// Window of the budget (default 10 s, between 1 and 60 s).
    pub budget_ttl: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            multiplier: 2.0,
            max_retry_after: Duration::from_secs(30),
            budget_percent: 0.2,
            budget_min_per_sec: 10,
            budget_ttl: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    ///
    /// ```
    /// assert_eq!(forten_shared::client::RetryPolicy::none().max_retries, 0);
    /// ```
    pub fn none() -> Self {
        Self::default().max_retries(0)
    }
    /// Sets the retries after the first attempt.
    ///
    /// ```
    /// assert_eq!(forten_shared::client::RetryPolicy::default().max_retries(5).max_retries, 5);
    /// ```
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Sets the first delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = forten_shared::client::RetryPolicy::default().initial_delay(Duration::from_secs(30));
    /// assert_eq!(p.initial_delay, Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }
    /// Sets the delay cap.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = forten_shared::client::RetryPolicy::default().max_delay(Duration::from_secs(30));
    /// assert_eq!(p.max_delay, Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }
    /// Sets the longest `Retry-After` honoured.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = forten_shared::client::RetryPolicy::default().max_retry_after(Duration::from_secs(30));
    /// assert_eq!(p.max_retry_after, Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }
    /// Sets the retry budget: `percent` of recent requests, plus `min_per_sec`, over `ttl`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = forten_shared::client::RetryPolicy::default().budget(0.1, 5, Duration::from_secs(10));
    /// assert!(p.validate().is_ok());
    /// ```
    #[must_use]
    pub fn budget(mut self, percent: f32, min_per_sec: u32, ttl: Duration) -> Self {
        self.budget_percent = percent;
        self.budget_min_per_sec = min_per_sec;
        self.budget_ttl = ttl;
        self
    }

    /// Checks the settings (the budget's bounds are tower's).
    ///
    /// ```
    /// assert!(forten_shared::client::RetryPolicy::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(InvalidConfig("retry multiplier must be at least 1".into()));
        }
        if self.max_delay < self.initial_delay {
            return Err(InvalidConfig(
                "retry max_delay must be at least initial_delay".into(),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&self.budget_ttl) {
            return Err(InvalidConfig(
                "retry budget ttl must be between 1s and 60s".into(),
            ));
        }
        if !(0.0..=1000.0).contains(&self.budget_percent) {
            return Err(InvalidConfig(
                "retry budget percent must be between 0 and 1000".into(),
            ));
        }
        if self.budget_min_per_sec >= i32::MAX as u32 {
            return Err(InvalidConfig("retry budget min_per_sec too large".into()));
        }
        Ok(())
    }

    /// The budget these settings describe.
    pub(crate) fn make_budget(&self) -> tower::retry::budget::TpsBudget {
        tower::retry::budget::TpsBudget::new(
            self.budget_ttl,
            self.budget_min_per_sec,
            self.budget_percent,
        )
    }

    /// The backoff before retry number `retry` (0-based), with "equal jitter": between half
    /// and all of the exponential delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = forten_shared::client::RetryPolicy::default().initial_delay(Duration::from_millis(100));
    /// let d = p.backoff(2);
    /// assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
    /// ```
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .multiplier
            .powi(i32::try_from(retry.min(64)).unwrap_or(64));
        let full = self.initial_delay.mul_f64(exp.min(1e6)).min(self.max_delay);
        full.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Whether `method` is idempotent (RFC 9110 §9.2.2).
///
/// ```
/// use forten_shared::client::is_idempotent;
/// assert!(is_idempotent(&http::Method::PUT));
/// assert!(!is_idempotent(&http::Method::POST));
/// ```
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Whether a response status may be retried (for an idempotent request).
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
    )
}

/// The delay a `Retry-After` header asks for (delta-seconds or an HTTP date).
///
/// ```
/// use forten_shared::client::retry_after;
/// let mut h = http::HeaderMap::new();
/// h.insert("retry-after", "2".parse().unwrap());
/// assert_eq!(retry_after(&h), Some(std::time::Duration::from_secs(2)));
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(left.to_std().unwrap_or(Duration::ZERO))
}
