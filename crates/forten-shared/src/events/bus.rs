//! [`EventBus`]: one API over RabbitMQ and an in-process transport.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::memory::MemoryBus;
use super::metrics::PublishMetrics;
#[cfg(feature = "rabbitmq")]
use super::rabbitmq::{RabbitBus, RabbitConfig};
use super::{Event, EventError, Handler, Subscribe, pipeline::Processor};
use crate::auth::EventAuthenticator;
use crate::telemetry::Metrics;

/// Errors of the event bus.
///
/// ```
/// use forten_shared::events::BusError;
/// assert_eq!(BusError::Closed.to_string(), "event bus is shut down");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The broker could not be reached in time.
    #[error("cannot connect to RabbitMQ at {url}: {reason}")]
    Connect {
        /// Broker URL with the password hidden.
        url: String,
        /// Last error seen.
        reason: String,
    },
    /// The broker URL is not a valid AMQP URI.
    #[error("invalid RabbitMQ URL: {0}")]
    InvalidUrl(String),
    /// A publish was not confirmed by the broker before the publish timeout.
    #[error("publish not confirmed within {0:?}")]
    PublishTimeout(Duration),
    /// The subscription settings are invalid.
    #[error("invalid subscription {0}")]
    InvalidSubscription(String),
    /// The event could not be serialised.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A broker operation failed.
    #[error("broker error: {0}")]
    Broker(String),
    /// The event could not be signed with this service's identity.
    #[error("cannot sign the event: {0}")]
    Unauthenticated(String),
    /// The bus was shut down.
    #[error("event bus is shut down")]
    Closed,
}

/// A change of the bus's connection, from [`EventBus::connection_events`] (the guide's
/// `rabbitmq.on('error', …)`).
///
/// ```
/// use forten_shared::events::ConnectionEvent;
/// let e = ConnectionEvent::Disconnected { reason: "socket closed".into() };
/// assert!(matches!(e, ConnectionEvent::Disconnected { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// First connection established.
    Connected,
    /// The connection was lost.
    Disconnected {
        /// What happened.
        reason: String,
    },
    /// A connection attempt or broker operation failed.
    Error {
        /// What happened.
        message: String,
    },
    /// Connected again after a loss; topology and subscriptions are restored.
    Reconnected,
}

/// A dead-lettered message, as listed by [`EventBus::dead_letters`].
///
/// ```
/// # use forten_shared::events::DeadLetter;
/// fn show(d: &DeadLetter) -> String { format!("{} after {} attempts: {}", d.routing_key, d.attempts, d.error) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The body, unchanged (usually a CloudEvent, or whatever invalid bytes arrived).
    pub body: Vec<u8>,
    /// `x-forten-error`.
    pub error: String,
    /// `x-forten-attempts`.
    pub attempts: u32,
    /// `x-forten-original-routing-key`.
    pub routing_key: String,
    /// `x-forten-first-failure`.
    pub first_failure: String,
    /// `x-forten-last-failure`.
    pub last_failure: String,
}

/// What holds a subscription back: its owner ([`SubscriptionHandle::pause`]) or the health of
/// the service ([`EventBus::pause_while_unhealthy`]). Consumers watch the combined flag.
#[derive(Debug)]
pub(crate) struct PauseSwitch {
    pub(crate) tx: watch::Sender<bool>,
    by_owner: AtomicBool,
    by_health: AtomicBool,
}

impl PauseSwitch {
    fn new(by_health: bool) -> Self {
        Self {
            tx: watch::Sender::new(by_health),
            by_owner: AtomicBool::new(false),
            by_health: AtomicBool::new(by_health),
        }
    }

    fn set(&self, flag: &AtomicBool, value: bool) {
        flag.store(value, Ordering::SeqCst);
        let paused = self.by_owner.load(Ordering::SeqCst) || self.by_health.load(Ordering::SeqCst);
        self.tx.send_replace(paused);
    }
}

/// A running subscription. Dropping the handle does not stop it; [`EventBus::shutdown`] does.
///
/// ```no_run
/// # async fn f(sub: forten_shared::events::SubscriptionHandle) {
/// sub.pause();   // stop taking messages; they wait in the queue
/// sub.resume();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SubscriptionHandle {
    pub(crate) queue: String,
    pub(crate) paused: Arc<PauseSwitch>,
}

impl SubscriptionHandle {
    /// The subscription's queue.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Stops taking new messages (in-flight handlers finish); they wait in the queue.
    pub fn pause(&self) {
        self.paused.set(&self.paused.by_owner, true);
    }

    /// Takes messages again (unless the service is unhealthy, see
    /// [`EventBus::pause_while_unhealthy`]).
    pub fn resume(&self) {
        self.paused.set(&self.paused.by_owner, false);
    }

    /// Whether it is paused, by its owner or by the service's health.
    pub fn is_paused(&self) -> bool {
        *self.paused.tx.borrow()
    }
}

/// The pause switches of a bus's subscriptions, for health-driven pausing.
#[derive(Debug, Default)]
struct Pauses {
    unhealthy: AtomicBool,
    switches: Mutex<Vec<Weak<PauseSwitch>>>,
}

impl Pauses {
    fn handle(&self, queue: String) -> SubscriptionHandle {
        let switch = Arc::new(PauseSwitch::new(self.unhealthy.load(Ordering::SeqCst)));
        let mut switches = self.switches.lock().unwrap_or_else(PoisonError::into_inner);
        switches.retain(|w| w.strong_count() > 0);
        switches.push(Arc::downgrade(&switch));
        SubscriptionHandle {
            queue,
            paused: switch,
        }
    }

    fn set_unhealthy(&self, unhealthy: bool) {
        self.unhealthy.store(unhealthy, Ordering::SeqCst);
        let switches = self.switches.lock().unwrap_or_else(PoisonError::into_inner);
        for s in switches.iter().filter_map(Weak::upgrade) {
            s.set(&s.by_health, unhealthy);
        }
    }
}

/// One message seen by [`EventBus::tail`]: the body as it travelled, and the event it holds
/// (or why it is not a valid event).
///
/// ```
/// # fn show(t: forten_shared::events::Tapped) {
/// match t.event {
///     Ok(e) => println!("{} {}", e.event_type(), e.id),
///     Err(err) => println!("invalid: {err}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Tapped {
    /// The raw body.
    pub body: bytes::Bytes,
    /// The parsed, validated event.
    pub event: Result<Event, EventError>,
}

/// The stream returned by [`EventBus::tail`].
#[derive(Debug)]
pub struct Tail {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
}

impl Tail {
    /// The next message; `None` when the bus is gone.
    pub async fn next(&mut self) -> Option<Tapped> {
        let body = self.rx.recv().await?;
        let event = Event::from_slice(&body);
        Some(Tapped { body, event })
    }
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per bus, behind an Arc
enum Transport {
    Memory(MemoryBus),
    #[cfg(feature = "rabbitmq")]
    Rabbit(RabbitBus),
}

/// The event bus: publish events and run durable subscriptions, over RabbitMQ or in-process,
/// with the same semantics (topic patterns, named queues, retries without blocking the queue,
/// DLQ, at-least-once delivery).
///
/// Cloning is cheap; clones share the connection.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::{EventBus, EventBuilder, EventType, events::{Subscribe, UserDeleted}};
///
/// # tokio_test::block_on(async {
/// let bus = EventBus::in_process("auth-service");
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// bus.subscribe(Subscribe::new("audit.users").pattern("user.*"), move |event: forten_shared::Event| {
///     let tx = tx.clone();
///     async move { let _ = tx.send(event.id); }
/// }).await?;
/// let event = EventBuilder::create(EventType::UserDeleted, UserDeleted { user_id: "1".into() }, "auth-service")?;
/// bus.publish(&event).await?;
/// assert_eq!(rx.recv().await, Some(event.id.clone()));
/// bus.shutdown(Duration::from_secs(1)).await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct EventBus {
    service: Arc<str>,
    transport: Arc<Transport>,
    pauses: Arc<Pauses>,
    metrics: Arc<PublishMetrics>,
    /// Signs what this bus publishes and verifies what its subscriptions require.
    authenticator: Option<Arc<EventAuthenticator>>,
}

impl EventBus {
    /// An in-process bus (no broker): for `forten up` without `RABBITMQ_URL`, and for tests.
    pub fn in_process(service: impl Into<String>) -> Self {
        let service: Arc<str> = service.into().into();
        let bus = Self::new(service.clone(), Transport::Memory(MemoryBus::new(service)));
        bus.metrics.bus_connected(true); // always, in-process
        bus
    }

    /// Connects to RabbitMQ, declares the `forten.events` exchange and starts the connection
    /// supervisor. Fails within `config.connect_timeout` when the broker cannot be reached.
    ///
    /// ```no_run
    /// use forten_shared::{EventBus, events::RabbitConfig};
    /// # async fn f() -> Result<(), forten_shared::events::BusError> {
    /// let bus = EventBus::rabbitmq("auth-service", RabbitConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f")).await?;
    /// assert!(bus.is_connected());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "rabbitmq")]
    pub async fn rabbitmq(
        service: impl Into<String>,
        config: RabbitConfig,
    ) -> Result<Self, BusError> {
        let service: Arc<str> = service.into().into();
        let bus = RabbitBus::connect(service.clone(), config).await?;
        Ok(Self::new(service, Transport::Rabbit(bus)))
    }

    fn new(service: Arc<str>, transport: Transport) -> Self {
        let metrics = Arc::new(PublishMetrics::new(Metrics::new(service.as_ref())));
        Self {
            service,
            transport: Arc::new(transport),
            pauses: Arc::default(),
            metrics,
            authenticator: None,
        }
    }

    /// Pauses every subscription of this bus (present and future) while `critical` is `false`
    /// — typically [`HealthMonitor::subscribe_critical`](crate::HealthMonitor::subscribe_critical):
    /// when a critical dependency of the handlers is down, messages wait in their queues
    /// instead of failing into the DLQ, and consumption resumes on recovery.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let bus = forten_shared::EventBus::in_process("svc");
    /// let (health, critical) = tokio::sync::watch::channel(true);
    /// bus.pause_while_unhealthy(critical);
    /// health.send_replace(false); // subscriptions pause
    /// # });
    /// ```
    pub fn pause_while_unhealthy(&self, mut critical: watch::Receiver<bool>) {
        let pauses = Arc::downgrade(&self.pauses);
        tokio::spawn(async move {
            loop {
                let healthy = *critical.borrow_and_update();
                match pauses.upgrade() {
                    Some(p) => p.set_unhealthy(!healthy),
                    None => return,
                }
                if critical.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// The same connection, publishing and consuming as another service: how `forten up` gives
    /// each of its services its own identity (`source`, metrics, spans) on one bus.
    ///
    /// ```
    /// let bus = forten_shared::EventBus::in_process("forten");
    /// let access = bus.for_service("access-service");
    /// assert_eq!(access.service(), "access-service");
    /// ```
    pub fn for_service(&self, service: impl Into<String>) -> Self {
        let service: Arc<str> = service.into().into();
        Self {
            metrics: Arc::new(PublishMetrics::new(Metrics::new(service.as_ref()))),
            service,
            transport: self.transport.clone(),
            pauses: Arc::default(),
            authenticator: None,
        }
    }

    /// Signs every published event with this service's identity and verifies the publishers
    /// of subscriptions that [`require_publisher`](Subscribe::require_publisher) (the events
    /// of a publisher the policy does not allow for a type go to the DLQ with the reason).
    ///
    /// ```no_run
    /// use forten_shared::auth::{EventAuthenticator, PublishPolicy, ServiceAuth, ServiceAuthConfig};
    /// # fn f(bus: forten_shared::EventBus) -> Result<(), forten_shared::auth::AuthError> {
    /// let auth = ServiceAuth::new(ServiceAuthConfig::shared_secret("access-service", "a-secret-of-at-least-32-bytes-long!!"))?;
    /// let bus = bus.authenticate_with(EventAuthenticator::new(&auth, PublishPolicy::forten())?);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn authenticate_with(mut self, authenticator: EventAuthenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// The service this bus publishes and consumes for.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Publishes one event; returns once the broker confirmed it (persisted). A publish that is
    /// not confirmed (connection lost, confirm timed out) is sent again until it is, or until
    /// the publish timeout.
    pub async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let signed;
        let event = match &self.authenticator {
            Some(auth) if auth.can_sign() => {
                let mut copy = event.clone();
                auth.sign(&mut copy)
                    .await
                    .map_err(|e| BusError::Unauthenticated(e.to_string()))?;
                signed = copy;
                &signed
            }
            _ => event,
        };
        let body = event.to_vec()?;
        let ty = event.event_type().as_str();
        match &*self.transport {
            Transport::Memory(m) => m.publish(ty, &body.into())?,
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.publish(event, &body).await?,
        }
        self.metrics.published(event.event_type());
        Ok(())
    }

    /// Publishes many events with their confirms pipelined (many in flight at once); returns
    /// once all are confirmed, or the first error.
    pub async fn publish_all(&self, events: &[Event]) -> Result<(), BusError> {
        use futures_util::TryStreamExt;
        futures_util::stream::iter(events.iter().map(Ok))
            .try_for_each_concurrent(512, |e| self.publish(e))
            .await
    }

    /// Starts a durable subscription: declares its queue (and `<queue>.dlq`), binds the
    /// patterns, and runs `handler` for each event, with the subscription's retries.
    pub async fn subscribe(
        &self,
        sub: Subscribe,
        handler: impl Handler,
    ) -> Result<SubscriptionHandle, BusError> {
        sub.validate()?;
        let verifier = match (sub.require_publisher, &self.authenticator) {
            (false, _) => None,
            (true, Some(a)) => Some(a.clone()),
            (true, None) => {
                return Err(BusError::InvalidSubscription(format!(
                    "{}: requires publisher identities but the bus has no authenticator",
                    sub.queue
                )));
            }
        };
        let handle = self.pauses.handle(sub.queue.clone());
        let processor = Arc::new(Processor::new(
            &self.service,
            sub,
            Arc::new(handler),
            verifier,
        ));
        match &*self.transport {
            Transport::Memory(m) => m.subscribe(processor, handle),
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.subscribe(processor, handle).await,
        }
    }

    /// Whether the bus is connected to its broker (always true in-process).
    pub fn is_connected(&self) -> bool {
        match &*self.transport {
            Transport::Memory(_) => true,
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.is_connected(),
        }
    }

    /// A stream of connection changes.
    pub fn connection_events(&self) -> broadcast::Receiver<ConnectionEvent> {
        match &*self.transport {
            Transport::Memory(m) => m.connection_events(),
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.connection_events(),
        }
    }

    /// A live view of the events matching `pattern` (`forten events tail`): copies taken
    /// without disturbing any subscription, lost when nobody reads them fast enough.
    ///
    /// ```
    /// use forten_shared::{EventBus, EventBuilder, events::UserDeleted};
    /// # tokio_test::block_on(async {
    /// let bus = EventBus::in_process("ops");
    /// let mut tail = bus.tail("user.*").await?;
    /// bus.publish(&EventBuilder::new(UserDeleted { user_id: "1".into() }, "ops").build()).await?;
    /// let seen = tail.next().await.unwrap();
    /// assert!(seen.event.is_ok());
    /// # Ok::<(), forten_shared::events::BusError>(())
    /// # }).unwrap();
    /// ```
    pub async fn tail(&self, pattern: &str) -> Result<Tail, BusError> {
        let rx = match &*self.transport {
            Transport::Memory(m) => m.tail(super::TopicPattern::new(pattern)),
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.tail(pattern).await?,
        };
        Ok(Tail { rx })
    }

    /// Lists up to `limit` messages of `<queue>.dlq` without removing them.
    pub async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        match &*self.transport {
            Transport::Memory(m) => Ok(m.dead_letters(queue, limit)),
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.dead_letters(queue, limit).await,
        }
    }

    /// Moves up to `limit` messages from `<queue>.dlq` back to `<queue>` (attempts reset);
    /// returns how many were moved.
    pub async fn replay_dead_letters(&self, queue: &str, limit: usize) -> Result<usize, BusError> {
        match &*self.transport {
            Transport::Memory(m) => Ok(m.replay_dead_letters(queue, limit)),
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.replay_dead_letters(queue, limit).await,
        }
    }

    /// Empties `<queue>.dlq`; returns how many messages were removed.
    pub async fn purge_dead_letters(&self, queue: &str) -> Result<usize, BusError> {
        match &*self.transport {
            Transport::Memory(m) => Ok(m.purge_dead_letters(queue)),
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.purge_dead_letters(queue).await,
        }
    }

    /// Deletes a subscription's queues (`<queue>`, `<queue>.dlq` and its retry queues), with
    /// their messages. For tests and decommissioning; the subscription must be stopped.
    pub async fn delete_queues(&self, queue: &str) -> Result<(), BusError> {
        match &*self.transport {
            Transport::Memory(m) => {
                m.delete_queues(queue);
                Ok(())
            }
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.delete_queues(queue).await,
        }
    }

    /// Graceful shutdown: stops consuming, lets in-flight handlers finish (and acknowledges
    /// them) until `deadline`, leaves what is unfinished unacknowledged for redelivery, and
    /// closes the connection. Publishing afterwards fails with [`BusError::Closed`].
    pub async fn shutdown(&self, deadline: Duration) {
        match &*self.transport {
            Transport::Memory(m) => m.shutdown(deadline).await,
            #[cfg(feature = "rabbitmq")]
            Transport::Rabbit(r) => r.shutdown(deadline).await,
        }
    }
}

impl crate::health::ConnectionState for EventBus {
    fn is_connected(&self) -> bool {
        EventBus::is_connected(self)
    }
}
