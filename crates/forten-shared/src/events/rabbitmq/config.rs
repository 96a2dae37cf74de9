//! Settings of the RabbitMQ transport.

use std::time::Duration;

/// Settings of the RabbitMQ transport.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::events::RabbitConfig;
/// let cfg = RabbitConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f")
///     .connect_timeout(Duration::from_secs(5));
/// assert_eq!(cfg.exchange, "forten.events");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RabbitConfig {
    /// AMQP URI, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f` (`RABBITMQ_URL`).
    pub url: String,
    /// The durable topic exchange events are published to.
    pub exchange: String,
    /// How long the first connection may take before [`EventBus::rabbitmq`](crate::EventBus::rabbitmq)
    /// gives up (attempts are repeated within it).
    pub connect_timeout: Duration,
    /// How long one publisher confirm may take before the publish is treated as lost and sent
    /// again on a fresh connection (lapin has been seen to never resolve a confirm after a
    /// broker restart).
    pub confirm_timeout: Duration,
    /// How long `publish` keeps trying (through reconnections) before it reports failure.
    pub publish_timeout: Duration,
    /// First reconnection delay; doubles on each failure.
    pub reconnect_initial: Duration,
    /// Ceiling of the reconnection delay.
    pub reconnect_max: Duration,
    /// AMQP heartbeat in seconds (detects stalled connections), unless the URL sets one.
    pub heartbeat: u16,
    /// Connection name shown in the broker's management tools (default: the service name).
    pub connection_name: Option<String>,
}

impl RabbitConfig {
    /// Defaults for the given URL: 10 s connect timeout, 10 s confirm timeout, 60 s publish
    /// timeout, reconnection from 100 ms to 5 s, 10 s heartbeat.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange: "forten.events".into(),
            connect_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(60),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            heartbeat: 10,
            connection_name: None,
        }
    }

    /// Sets the exchange.
    pub fn exchange(mut self, exchange: impl Into<String>) -> Self {
        self.exchange = exchange.into();
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets the confirm timeout.
    pub fn confirm_timeout(mut self, d: Duration) -> Self {
        self.confirm_timeout = d;
        self
    }

    /// Sets the publish timeout.
    pub fn publish_timeout(mut self, d: Duration) -> Self {
        self.publish_timeout = d;
        self
    }

    /// Sets the reconnection backoff bounds.
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_initial = initial;
        self.reconnect_max = max;
        self
    }

    /// Sets the heartbeat.
    pub fn heartbeat(mut self, secs: u16) -> Self {
        self.heartbeat = secs;
        self
    }

    /// Sets the connection name.
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }

    /// The URL with its password replaced by `***`, for messages.
    ///
    /// ```
    /// let c = forten_shared::events::RabbitConfig::new("amqp://guest:secret@h:5672/%2f");
    /// assert_eq!(c.redacted_url(), "amqp://guest:***@h:5672/%2f");
    /// ```
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

impl Default for RabbitConfig {
    fn default() -> Self {
        Self::new("amqp://guest:guest@127.0.0.1:5672/%2f")
    }
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}
