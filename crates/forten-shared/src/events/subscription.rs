//! Subscription settings.

use std::time::Duration;

use super::{BusError, TopicPattern};

/// A named durable subscription: its queue, the topic patterns bound to it, and how its
/// events are retried and processed.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::{EventType, events::Subscribe};
///
/// let sub = Subscribe::new("access-service.user.created")
///     .pattern(EventType::UserCreated)
///     .retries(3)
///     .retry_delay(Duration::from_secs(1));
/// assert_eq!(sub.queue, "access-service.user.created");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Subscribe {
    /// Durable queue name; the DLQ is `<queue>.dlq`.
    pub queue: String,
    /// Topic patterns bound to the queue (`user.created`, `access.*`, `#`).
    pub patterns: Vec<TopicPattern>,
    /// How many times a failed event is retried before it is dead-lettered (attempts = retries + 1).
    pub retries: u32,
    /// Delay before the first retry.
    pub retry_delay: Duration,
    /// Growth of the delay between retries (`1.0` = fixed delay).
    pub backoff_multiplier: f64,
    /// Ceiling of the retry delay.
    pub max_retry_delay: Duration,
    /// Deliveries the broker may hand over before they are acknowledged.
    pub prefetch: u16,
    /// Handlers running at once for this subscription.
    pub concurrency: usize,
    /// Declare the queue and its DLQ as quorum queues (clustered RabbitMQ).
    pub quorum: bool,
    /// Only events whose publisher identity verifies (and whom the publish policy allows for
    /// the type) reach the handler; the others go to the DLQ with the reason. Needs a bus with
    /// an authenticator ([`EventBus::authenticate_with`](crate::EventBus::authenticate_with)).
    pub require_publisher: bool,
}

impl Subscribe {
    /// A subscription on `queue` with the defaults: 3 retries, 1 s delay doubling up to 60 s,
    /// prefetch 64, 16 handlers at once, classic queues.
    pub fn new(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            patterns: Vec::new(),
            retries: 3,
            retry_delay: Duration::from_secs(1),
            backoff_multiplier: 2.0,
            max_retry_delay: Duration::from_secs(60),
            prefetch: 64,
            concurrency: 16,
            quorum: false,
            require_publisher: false,
        }
    }

    /// Adds a topic pattern (an [`EventType`](super::EventType) or a string).
    pub fn pattern(mut self, pattern: impl Into<TopicPattern>) -> Self {
        self.patterns.push(pattern.into());
        self
    }

    /// Sets the number of retries.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the first retry delay.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Sets the backoff multiplier (`1.0` for a fixed delay).
    pub fn backoff_multiplier(mut self, m: f64) -> Self {
        self.backoff_multiplier = m;
        self
    }

    /// Sets the maximum retry delay.
    pub fn max_retry_delay(mut self, d: Duration) -> Self {
        self.max_retry_delay = d;
        self
    }

    /// Sets the prefetch count.
    pub fn prefetch(mut self, n: u16) -> Self {
        self.prefetch = n;
        self
    }

    /// Sets how many handlers run at once.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Declares quorum queues.
    pub fn quorum(mut self, yes: bool) -> Self {
        self.quorum = yes;
        self
    }

    /// Requires a verified publisher identity on every event (see
    /// [`Subscribe::require_publisher`](Self::require_publisher)).
    ///
    /// ```
    /// let s = forten_shared::events::Subscribe::new("q").pattern("door.forced").require_publisher(true);
    /// assert!(s.require_publisher);
    /// ```
    pub fn require_publisher(mut self, yes: bool) -> Self {
        self.require_publisher = yes;
        self
    }

    /// The dead-letter queue's name.
    ///
    /// ```
    /// assert_eq!(forten_shared::events::Subscribe::new("q").dlq(), "q.dlq");
    /// ```
    pub fn dlq(&self) -> String {
        format!("{}.dlq", self.queue)
    }

    /// The delay before the retry that follows failed attempt number `attempt` (1-based).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = forten_shared::events::Subscribe::new("q").retry_delay(Duration::from_millis(100));
    /// assert_eq!(s.delay_for(1), Duration::from_millis(100));
    /// assert_eq!(s.delay_for(3), Duration::from_millis(400));
    /// ```
    pub fn delay_for(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.retry_delay.as_secs_f64() * self.backoff_multiplier.powi(exp);
        let capped = secs.min(self.max_retry_delay.as_secs_f64());
        Duration::try_from_secs_f64(capped).unwrap_or(self.max_retry_delay)
    }

    /// Checks the settings; called by `subscribe`.
    pub(crate) fn validate(&self) -> Result<(), BusError> {
        let bad = |reason: &str| {
            Err(BusError::InvalidSubscription(format!(
                "{}: {reason}",
                self.queue
            )))
        };
        if self.queue.is_empty() || self.queue.len() > 200 {
            return bad("queue name must be 1 to 200 characters");
        }
        if self.queue.starts_with("amq.") {
            return bad("queue names starting with amq. are reserved by RabbitMQ");
        }
        if self.patterns.is_empty() {
            return bad("at least one topic pattern is needed");
        }
        if self
            .patterns
            .iter()
            .any(|p| p.as_str().is_empty() || p.as_str().len() > 255)
        {
            return bad("topic patterns must be 1 to 255 characters");
        }
        if self.prefetch == 0 || self.concurrency == 0 {
            return bad("prefetch and concurrency must be at least 1");
        }
        if !(self.backoff_multiplier.is_finite() && self.backoff_multiplier >= 1.0) {
            return bad("backoff multiplier must be a finite number >= 1");
        }
        Ok(())
    }
}
