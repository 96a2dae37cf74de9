//! The RabbitMQ transport (lapin): topology of SPEC §4, persistent messages with pipelined
//! publisher confirms, manual acks, delayed retries through TTL queues, `<queue>.dlq`, and a
//! connection supervisor of our own.
//!
//! Topology, all durable:
//!
//! | name | kind | purpose |
//! | --- | --- | --- |
//! | `forten.events` | topic exchange | every event, routing key = event type |
//! | `<queue>` | queue | a subscription, bound by its patterns |
//! | `<queue>.retry.<ms>` | queue | failed events wait `<ms>` (TTL) then dead-letter back to `<queue>`; removed after 10 idle minutes |
//! | `<queue>.dlq` | queue | events that exhausted their retries, were rejected or were invalid, with `x-forten-*` headers |

mod config;
mod connection;
mod consumer;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lapin::BasicProperties;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use tokio::sync::broadcast;

pub use self::config::RabbitConfig;
use self::connection::Shared;
use self::consumer::{ConsumerTask, RETRY_QUEUES, declare_topology, failure_of};
use super::bus::{BusError, ConnectionEvent, DeadLetter, SubscriptionHandle};
use super::pipeline::{H_ATTEMPTS, H_ERROR, H_FIRST_FAILURE, H_LAST_FAILURE, H_QUEUE, Processor};
use super::{CONTENT_TYPE, Event};

#[derive(Debug)]
pub(crate) struct RabbitBus {
    shared: Arc<Shared>,
    /// Properties of every published event, built once.
    props: BasicProperties,
}

#[allow(clippy::needless_pass_by_value)] // shaped for `map_err`
fn broker(e: lapin::Error) -> BusError {
    BusError::Broker(e.to_string())
}

impl RabbitBus {
    pub(crate) async fn connect(service: Arc<str>, config: RabbitConfig) -> Result<Self, BusError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(CONTENT_TYPE.into())
            .with_app_id(service.as_ref().into());
        let shared = Shared::start(service, config).await?;
        Ok(Self { shared, props })
    }

    pub(crate) async fn publish(&self, event: &Event, body: &[u8]) -> Result<(), BusError> {
        let mut props = self.props.clone().with_message_id(event.id.as_str().into());
        // trace context also as AMQP headers, for tools that read only those
        if event.traceparent.is_some() || event.correlation_id.is_some() {
            let mut headers = FieldTable::default();
            if let Some(tp) = &event.traceparent {
                headers.insert(
                    "traceparent".into(),
                    lapin::types::AMQPValue::LongString(tp.as_str().into()),
                );
            }
            if let Some(c) = &event.correlation_id {
                headers.insert(
                    "x-correlation-id".into(),
                    lapin::types::AMQPValue::LongString(c.as_str().into()),
                );
            }
            props = props.with_headers(headers);
        }
        let routing_key = event.event_type().as_str();
        self.shared
            .publish(&self.shared.config.exchange, routing_key, body, &props)
            .await
    }

    pub(crate) async fn subscribe(
        &self,
        processor: Arc<Processor>,
        handle: SubscriptionHandle,
    ) -> Result<SubscriptionHandle, BusError> {
        if self.shared.stop.is_cancelled() {
            return Err(BusError::Closed);
        }
        // Declare once here so that a topology conflict (e.g. the queue exists with other
        // arguments) is reported to the caller instead of looping in the background.
        self.with_channel(|ch| {
            let sub = processor.sub.clone();
            let exchange = self.shared.config.exchange.clone();
            async move { declare_topology(&ch, &exchange, &sub).await.map_err(broker) }
        })
        .await?;
        let task = ConsumerTask {
            shared: self.shared.clone(),
            processor,
            _pause_switch: handle.paused.clone(),
            paused: handle.paused.tx.subscribe(),
        };
        self.shared.tracker.spawn(task.run());
        Ok(handle)
    }

    /// Runs `f` on a fresh channel of the current connection, then closes the channel (which
    /// also returns to their queue any messages `f` fetched and did not acknowledge).
    async fn with_channel<T, F, Fut>(&self, f: F) -> Result<T, BusError>
    where
        F: FnOnce(lapin::Channel) -> Fut,
        Fut: Future<Output = Result<T, BusError>>,
    {
        let deadline = tokio::time::Instant::now() + self.shared.config.connect_timeout;
        let live = self
            .shared
            .live(None, Some(deadline))
            .await
            .ok_or_else(|| BusError::Connect {
                url: self.shared.config.redacted_url(),
                reason: "not connected".into(),
            })?;
        let bound = self.shared.config.confirm_timeout;
        let timed_out = || BusError::Broker(format!("broker did not answer within {bound:?}"));
        let channel = tokio::time::timeout(bound, live.conn.create_channel())
            .await
            .map_err(|_| timed_out())?
            .map_err(broker)?;
        let result = f(channel.clone()).await;
        let _ =
            tokio::time::timeout(Duration::from_secs(2), channel.close(200, "done".into())).await;
        result
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    pub(crate) fn connection_events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.shared.connection_events()
    }

    pub(crate) async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let dlq = format!("{queue}.dlq");
        self.with_channel(|ch| async move {
            let mut out = Vec::new();
            while out.len() < limit {
                let Some(msg) = ch
                    .basic_get(dlq.as_str().into(), BasicGetOptions::default())
                    .await
                    .map_err(broker)?
                else {
                    break;
                };
                let f = failure_of(&msg.delivery.properties, msg.delivery.routing_key.as_str());
                out.push(DeadLetter {
                    body: msg.delivery.data.clone(),
                    error: f.error,
                    attempts: f.attempts,
                    routing_key: f.routing_key,
                    first_failure: f.first_failure,
                    last_failure: f.last_failure,
                });
            }
            // not acknowledged: closing the channel puts them back in order
            Ok(out)
        })
        .await
    }

    pub(crate) async fn replay_dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<usize, BusError> {
        let dlq = format!("{queue}.dlq");
        let shared = self.shared.clone();
        self.with_channel(|ch| async move {
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(broker)?;
            let mut n = 0;
            while n < limit {
                let Some(msg) = ch
                    .basic_get(dlq.as_str().into(), BasicGetOptions::default())
                    .await
                    .map_err(broker)?
                else {
                    break;
                };
                let props = &msg.delivery.properties;
                // back to the queue alone (not to every subscriber of its type), attempts reset
                let mut headers = props.headers().clone().unwrap_or_default();
                let kept: FieldTable = {
                    let mut t = FieldTable::default();
                    for (k, v) in headers.inner() {
                        if ![
                            H_ATTEMPTS,
                            H_ERROR,
                            H_FIRST_FAILURE,
                            H_LAST_FAILURE,
                            H_QUEUE,
                        ]
                        .contains(&k.as_str())
                        {
                            t.insert(k.clone(), v.clone());
                        }
                    }
                    t
                };
                headers = kept;
                let props = props.clone().with_headers(headers);
                shared
                    .publish("", queue, &msg.delivery.data, &props)
                    .await?;
                msg.delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(broker)?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    pub(crate) async fn purge_dead_letters(&self, queue: &str) -> Result<usize, BusError> {
        let dlq = format!("{queue}.dlq");
        self.with_channel(|ch| async move {
            let n = ch
                .queue_purge(dlq.as_str().into(), QueuePurgeOptions::default())
                .await
                .map_err(broker)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
        .await
    }

    pub(crate) async fn delete_queues(&self, queue: &str) -> Result<(), BusError> {
        let mut names = vec![queue.to_owned(), format!("{queue}.dlq")];
        names.extend(RETRY_QUEUES.of(queue));
        self.with_channel(|ch| async move {
            for name in names {
                ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .map_err(broker)?;
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn shutdown(&self, deadline: Duration) {
        self.shared.shutdown(deadline).await;
    }
}

impl RabbitBus {
    /// Streams copies of the events matching `pattern` through a temporary exclusive queue,
    /// re-created after every reconnection (events published during a gap are not seen).
    pub(crate) async fn tail(
        &self,
        pattern: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<Bytes>, BusError> {
        use futures_util::StreamExt;
        use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};

        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let shared = self.shared.clone();
        let pattern = pattern.to_owned();
        let open = {
            let shared = shared.clone();
            let pattern = pattern.clone();
            move |live: Arc<connection::Live>| {
                let (shared, pattern) = (shared.clone(), pattern.clone());
                async move {
                    let ch = live.conn.create_channel().await?;
                    let opts = QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..Default::default()
                    };
                    let q = ch
                        .queue_declare("".into(), opts, FieldTable::default())
                        .await?;
                    ch.queue_bind(
                        q.name().clone(),
                        shared.config.exchange.as_str().into(),
                        pattern.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                    let consume = BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    };
                    ch.basic_consume(
                        q.name().clone(),
                        "forten-tail".into(),
                        consume,
                        FieldTable::default(),
                    )
                    .await
                }
            }
        };
        // open the first one here so that errors reach the caller
        let live = shared
            .live(
                None,
                Some(tokio::time::Instant::now() + shared.config.connect_timeout),
            )
            .await;
        let live = live.ok_or_else(|| BusError::Connect {
            url: shared.config.redacted_url(),
            reason: "not connected".into(),
        })?;
        let mut consumer = open(live.clone()).await.map_err(broker)?;
        let mut generation = live.generation;
        tokio::spawn(async move {
            loop {
                loop {
                    let next = tokio::select! {
                        () = tx.closed() => return,
                        d = consumer.next() => d,
                    };
                    let Some(Ok(d)) = next else { break };
                    if tx.send(Bytes::from(d.data)).await.is_err() {
                        return;
                    }
                }
                // connection lost: wait for the next generation and tap again
                loop {
                    let next = tokio::select! {
                        () = tx.closed() => return,
                        l = shared.live(Some(generation), None) => l,
                    };
                    let Some(live) = next else { return };
                    generation = live.generation;
                    if let Ok(c) = open(live).await {
                        consumer = c;
                        break;
                    }
                    tokio::time::sleep(shared.config.reconnect_initial).await;
                }
            }
        });
        Ok(rx)
    }
}
