//! The connection supervisor: owns the AMQP connection's lifecycle instead of trusting lapin's
//! own recovery. It connects with capped backoff, declares the exchange, opens the confirm-mode
//! publishing channel, watches for loss (connection errors, failed channels, confirms that time
//! out), and on loss tears everything down and builds a new generation. Publishers and
//! consumers wait for the next generation and carry on: consumers resubscribe, publishes that
//! were not confirmed are sent again.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::RabbitConfig;
use crate::events::bus::{BusError, ConnectionEvent};
use crate::telemetry::Metrics;

/// One connection generation: the connection and its publishing channel.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) generation: u64,
    pub(crate) conn: Connection,
    publish: lapin::Channel,
}

/// State shared by the supervisor, the publishers and the consumers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RabbitConfig,
    pub(crate) service: Arc<str>,
    uri: AMQPUri,
    /// The current generation; `None` while disconnected.
    live: watch::Sender<Option<Arc<Live>>>,
    /// Generations reported broken by their users.
    broken: mpsc::UnboundedSender<(u64, String)>,
    events: broadcast::Sender<ConnectionEvent>,
    /// Consumers stop taking messages.
    pub(crate) stop: CancellationToken,
    /// In-flight handlers give up (their messages stay unacknowledged).
    pub(crate) abort: CancellationToken,
    /// The supervisor closes the connection; publishing fails.
    closed: CancellationToken,
    /// Consumer loops and their handlers.
    pub(crate) tracker: TaskTracker,
    /// `event_bus_connected`.
    metrics: Metrics,
}

impl Shared {
    /// Connects (retrying within `connect_timeout`) and starts the supervisor.
    pub(crate) async fn start(
        service: Arc<str>,
        config: RabbitConfig,
    ) -> Result<Arc<Self>, BusError> {
        let mut uri = AMQPUri::from_str(&config.url)
            .map_err(|e| BusError::InvalidUrl(format!("{}: {e}", config.redacted_url())))?;
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(config.heartbeat);
        }
        let (broken, broken_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Self {
            service: service.clone(),
            uri,
            live: watch::Sender::new(None),
            broken,
            events: broadcast::Sender::new(64),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            closed: CancellationToken::new(),
            tracker: TaskTracker::new(),
            metrics: Metrics::new(service.as_ref()),
            config,
        });
        let deadline = Instant::now() + shared.config.connect_timeout;
        let mut delay = shared.config.reconnect_initial;
        let first = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = tokio::time::timeout(remaining, shared.connect_once(1)).await;
            match attempt {
                Ok(Ok(live)) => break live,
                Ok(Err(e)) if Instant::now() + delay < deadline => {
                    tracing::debug!(error = %e, "RabbitMQ connect attempt failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(shared.config.reconnect_max);
                }
                Ok(Err(e)) => {
                    return Err(BusError::Connect {
                        url: shared.config.redacted_url(),
                        reason: e,
                    });
                }
                Err(_) => {
                    return Err(BusError::Connect {
                        url: shared.config.redacted_url(),
                        reason: format!("no connection within {:?}", shared.config.connect_timeout),
                    });
                }
            }
        };
        shared.metrics.bus_connected(true);
        let _ = shared.events.send(ConnectionEvent::Connected);
        let first = Arc::new(first);
        shared.live.send_replace(Some(first.clone()));
        tokio::spawn(shared.clone().supervise(first, broken_rx));
        Ok(shared)
    }

    async fn connect_once(&self, generation: u64) -> Result<Live, String> {
        let name = self
            .config
            .connection_name
            .clone()
            .unwrap_or_else(|| self.service.to_string());
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let conn = Connection::connect_uri(self.uri.clone(), props)
            .await
            .map_err(|e| e.to_string())?;
        let setup = async {
            let publish = conn.create_channel().await?;
            publish
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            publish
                .exchange_declare(
                    self.config.exchange.as_str().into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>(publish)
        };
        match setup.await {
            Ok(publish) => Ok(Live {
                generation,
                conn,
                publish,
            }),
            Err(e) => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    conn.close(320, "setup failed".into()),
                )
                .await;
                Err(e.to_string())
            }
        }
    }

    async fn supervise(
        self: Arc<Self>,
        mut live: Arc<Live>,
        mut broken: mpsc::UnboundedReceiver<(u64, String)>,
    ) {
        loop {
            self.live.send_replace(Some(live.clone()));
            let Some(reason) = self.wait_for_loss(&live, &mut broken).await else {
                self.live.send_replace(None);
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    live.conn.close(200, "shutdown".into()),
                )
                .await;
                return;
            };
            self.live.send_replace(None);
            self.metrics.bus_connected(false);
            tracing::warn!(%reason, "RabbitMQ connection lost; reconnecting");
            let _ = self.events.send(ConnectionEvent::Disconnected { reason });
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                live.conn.close(320, "reconnecting".into()),
            )
            .await;
            let generation = live.generation + 1;
            let mut delay = self.config.reconnect_initial;
            live = loop {
                let attempt = tokio::select! {
                    () = self.closed.cancelled() => return,
                    r = tokio::time::timeout(self.config.connect_timeout, self.connect_once(generation)) => r,
                };
                let message = match attempt {
                    Ok(Ok(l)) => break Arc::new(l),
                    Ok(Err(m)) => m,
                    Err(_) => format!("connect timed out after {:?}", self.config.connect_timeout),
                };
                tracing::debug!(%message, ?delay, "RabbitMQ reconnect attempt failed");
                let _ = self.events.send(ConnectionEvent::Error { message });
                let jitter = delay.mul_f64(fastrand::f64() * 0.2);
                tokio::select! {
                    () = self.closed.cancelled() => return,
                    () = tokio::time::sleep(delay + jitter) => {}
                }
                delay = (delay * 2).min(self.config.reconnect_max);
            };
            self.metrics.bus_connected(true);
            tracing::info!(generation, "RabbitMQ reconnected");
            let _ = self.events.send(ConnectionEvent::Reconnected);
        }
    }

    /// Waits until the generation is lost (returns why) or the bus closes (returns `None`).
    async fn wait_for_loss(
        &self,
        live: &Live,
        broken: &mut mpsc::UnboundedReceiver<(u64, String)>,
    ) -> Option<String> {
        let mut events = live.conn.events_listener();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                () = self.closed.cancelled() => return None,
                ev = events.next() => match ev {
                    Some(lapin::Event::Error(e)) => return Some(e.to_string()),
                    Some(_) => {}
                    None => return Some("connection events ended".into()),
                },
                b = broken.recv() => match b {
                    Some((generation, reason)) if generation == live.generation => return Some(reason),
                    Some(_) => {} // about an older generation
                    None => return None,
                },
                _ = tick.tick() => {
                    if !live.conn.status().connected() || !live.publish.status().connected() {
                        return Some("connection no longer open".into());
                    }
                }
            }
        }
    }

    /// Reports a generation as broken (a channel failed, a confirm timed out).
    pub(crate) fn mark_broken(&self, generation: u64, reason: impl Into<String>) {
        let _ = self.broken.send((generation, reason.into()));
    }

    /// Waits for a live generation other than `avoid`; `None` when closed or past `deadline`.
    pub(crate) async fn live(
        &self,
        avoid: Option<u64>,
        deadline: Option<Instant>,
    ) -> Option<Arc<Live>> {
        // fast path (every publish): the current generation, without timers or subscriptions
        if !self.closed.is_cancelled()
            && let Some(l) = self.live.borrow().as_ref()
            && Some(l.generation) != avoid
        {
            return Some(l.clone());
        }
        let mut rx = self.live.subscribe();
        let wait = async {
            let r = rx
                .wait_for(|l| l.as_ref().is_some_and(|l| Some(l.generation) != avoid))
                .await;
            r.ok().and_then(|l| l.clone())
        };
        tokio::select! {
            () = self.closed.cancelled() => None,
            l = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, wait).await.ok().flatten(),
                    None => wait.await,
                }
            } => l,
        }
    }

    /// Resolves once `generation` is no longer the live one (lost or replaced), whether or not
    /// the channels of that generation noticed.
    pub(crate) async fn generation_over(&self, generation: u64) {
        let mut rx = self.live.subscribe();
        let _ = rx
            .wait_for(|l| l.as_ref().is_none_or(|l| l.generation != generation))
            .await;
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.live
            .borrow()
            .as_ref()
            .is_some_and(|l| l.conn.status().connected())
    }

    pub(crate) fn connection_events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.events.subscribe()
    }

    /// Publishes and waits for the broker's confirm, sending again on a new connection
    /// generation whenever a publish fails or its confirm does not arrive in time.
    pub(crate) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: &BasicProperties,
    ) -> Result<(), BusError> {
        let timeout = self.config.publish_timeout;
        let deadline = Instant::now() + timeout;
        let mut avoid = None;
        loop {
            if self.closed.is_cancelled() {
                return Err(BusError::Closed);
            }
            let Some(live) = self.live(avoid, Some(deadline)).await else {
                return Err(if self.closed.is_cancelled() {
                    BusError::Closed
                } else {
                    BusError::PublishTimeout(timeout)
                });
            };
            let confirm = async {
                live.publish
                    .basic_publish(
                        exchange.into(),
                        routing_key.into(),
                        BasicPublishOptions::default(),
                        body,
                        props.clone(),
                    )
                    .await?
                    .await
            };
            let wait = self
                .config
                .confirm_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            match tokio::time::timeout(wait, confirm).await {
                Ok(Ok(c)) if c.is_ack() => return Ok(()),
                Ok(Ok(_)) => {
                    // the broker refused it (nack): its own trouble, try again shortly
                    tracing::warn!(routing_key, "publish nacked by the broker; sending again");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Err(e)) => {
                    self.mark_broken(live.generation, format!("publish failed: {e}"));
                    avoid = Some(live.generation);
                }
                Err(_) => {
                    self.mark_broken(live.generation, "publisher confirm timed out");
                    avoid = Some(live.generation);
                }
            }
            if Instant::now() >= deadline {
                return Err(BusError::PublishTimeout(timeout));
            }
        }
    }

    /// Stops consumers, waits for in-flight handlers until `deadline`, then closes.
    pub(crate) async fn shutdown(&self, deadline: Duration) {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "handlers still running at the shutdown deadline; their messages stay unacknowledged for redelivery"
            );
            self.abort.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), self.tracker.wait()).await;
        }
        self.closed.cancel();
        // wait for the supervisor to close the connection
        let mut rx = self.live.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(3), rx.wait_for(Option::is_none)).await;
    }
}
