//! One subscription's consumer loop on RabbitMQ: consume with manual acks on its own channel,
//! run handlers concurrently, settle each delivery (ack, delayed retry, DLQ), and start over
//! on every new connection generation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::connection::{Live, Shared};
use crate::events::Subscribe;
use crate::events::bus::BusError;
use crate::events::pipeline::{
    Decision, DeliveryMeta, Failure, H_ATTEMPTS, H_ERROR, H_FIRST_FAILURE, H_LAST_FAILURE, H_QUEUE,
    H_ROUTING_KEY, Processor,
};

/// How long an unused retry queue lives after its last declaration.
const RETRY_QUEUE_IDLE: Duration = Duration::from_secs(600);

/// Queue arguments of a subscription's queue and DLQ.
fn queue_args(sub: &Subscribe) -> FieldTable {
    let mut args = FieldTable::default();
    if sub.quorum {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    args
}

/// Declares the subscription's queue, its DLQ and the bindings (idempotent).
pub(crate) async fn declare_topology(
    channel: &Channel,
    exchange: &str,
    sub: &Subscribe,
) -> Result<(), lapin::Error> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(sub.queue.as_str().into(), durable, queue_args(sub))
        .await?;
    channel
        .queue_declare(sub.dlq().into(), durable, queue_args(sub))
        .await?;
    for p in &sub.patterns {
        channel
            .queue_bind(
                sub.queue.as_str().into(),
                exchange.into(),
                p.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// The retry queue for `queue` and `delay`: messages wait there for the delay, then the
/// broker dead-letters them back to `queue` (TTL + dead-letter exchange), so a retry never
/// blocks the queue.
pub(crate) fn retry_queue_name(queue: &str, delay: Duration) -> String {
    format!("{queue}.retry.{}", delay.as_millis().max(1))
}

/// Retry queues declared by this process, with when they were last declared. One registry
/// per process, so that `delete_queues` on any bus finds the retry queues another bus of the
/// process declared.
#[derive(Debug, Default)]
pub(crate) struct RetryQueues(Mutex<HashMap<String, Instant>>);

pub(crate) static RETRY_QUEUES: std::sync::LazyLock<RetryQueues> =
    std::sync::LazyLock::new(RetryQueues::default);

impl RetryQueues {
    /// Names of the retry queues of `queue` this process has declared.
    pub(crate) fn of(&self, queue: &str) -> Vec<String> {
        let prefix = format!("{queue}.retry.");
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// Declares the retry queue unless this process did so recently (each declaration also
    /// renews its idle expiry).
    async fn ensure(
        &self,
        channel: &Channel,
        queue: &str,
        delay: Duration,
    ) -> Result<String, lapin::Error> {
        let name = retry_queue_name(queue, delay);
        let fresh = {
            let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            map.get(&name)
                .is_some_and(|t| t.elapsed() < RETRY_QUEUE_IDLE / 4)
        };
        if !fresh {
            let ttl = i64::try_from(delay.as_millis().max(1)).unwrap_or(i64::MAX);
            let idle = i64::try_from((delay + RETRY_QUEUE_IDLE).as_millis()).unwrap_or(i64::MAX);
            let mut args = FieldTable::default();
            args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
            args.insert("x-expires".into(), AMQPValue::LongLongInt(idle));
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString("".into()),
            );
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(queue.into()),
            );
            let durable = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .queue_declare(name.as_str().into(), durable, args)
                .await?;
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.clone(), Instant::now());
        }
        Ok(name)
    }
}

fn header_str(h: Option<&FieldTable>, key: &str) -> Option<String> {
    match h?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_u32(h: Option<&FieldTable>, key: &str) -> Option<u32> {
    match h?.inner().get(key)? {
        AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(*n),
        AMQPValue::ShortInt(n) => u32::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
        _ => None,
    }
}

/// Reads our failure headers off a delivery.
pub(crate) fn delivery_meta(props: &BasicProperties, routing_key: &str) -> DeliveryMeta {
    let h = props.headers().as_ref();
    DeliveryMeta {
        routing_key: header_str(h, H_ROUTING_KEY).unwrap_or_else(|| routing_key.to_owned()),
        attempts: header_u32(h, H_ATTEMPTS).unwrap_or(0),
        first_failure: header_str(h, H_FIRST_FAILURE),
    }
}

/// The properties of a retried or dead-lettered copy: the original ones, with our failure
/// headers set.
pub(crate) fn failure_props(
    original: &BasicProperties,
    failure: &Failure,
    queue: &str,
) -> BasicProperties {
    let mut headers = original.headers().clone().unwrap_or_default();
    let s = |v: &str| AMQPValue::LongString(v.into());
    headers.insert(H_ERROR.into(), s(&failure.error));
    headers.insert(
        H_ATTEMPTS.into(),
        AMQPValue::LongLongInt(i64::from(failure.attempts)),
    );
    headers.insert(H_ROUTING_KEY.into(), s(&failure.routing_key));
    headers.insert(H_FIRST_FAILURE.into(), s(&failure.first_failure));
    headers.insert(H_LAST_FAILURE.into(), s(&failure.last_failure));
    headers.insert(H_QUEUE.into(), s(queue));
    original.clone().with_delivery_mode(2).with_headers(headers)
}

/// Reads a dead letter's failure headers.
pub(crate) fn failure_of(props: &BasicProperties, routing_key: &str) -> Failure {
    let h = props.headers().as_ref();
    Failure {
        error: header_str(h, H_ERROR).unwrap_or_default(),
        attempts: header_u32(h, H_ATTEMPTS).unwrap_or(0),
        routing_key: header_str(h, H_ROUTING_KEY).unwrap_or_else(|| routing_key.to_owned()),
        first_failure: header_str(h, H_FIRST_FAILURE).unwrap_or_default(),
        last_failure: header_str(h, H_LAST_FAILURE).unwrap_or_default(),
    }
}

/// Why a consume session ended.
enum Stop {
    Shutdown,
    Paused,
    Lost(String),
}

pub(crate) struct ConsumerTask {
    pub(crate) shared: Arc<Shared>,
    pub(crate) processor: Arc<Processor>,
    /// Keeps the pause switch alive as long as the consumer, whatever becomes of the handle.
    pub(crate) _pause_switch: Arc<crate::events::bus::PauseSwitch>,
    pub(crate) paused: watch::Receiver<bool>,
}

impl ConsumerTask {
    pub(crate) async fn run(mut self) {
        let mut avoid = None;
        loop {
            tokio::select! {
                biased;
                () = self.shared.stop.cancelled() => return,
                r = self.paused.wait_for(|p| !p) => if r.is_err() { return },
            }
            let live = tokio::select! {
                biased;
                () = self.shared.stop.cancelled() => return,
                l = self.shared.live(avoid, None) => match l { Some(l) => l, None => return },
            };
            match self.session(&live).await {
                Stop::Shutdown => return,
                Stop::Paused => {}
                Stop::Lost(reason) => {
                    tracing::warn!(queue = %self.processor.sub.queue, %reason, "consumer lost its channel; resubscribing");
                    self.shared.mark_broken(live.generation, reason);
                    avoid = Some(live.generation);
                }
            }
        }
    }

    /// One consume session on one channel of one connection generation.
    async fn session(&mut self, live: &Live) -> Stop {
        let sub = &self.processor.sub;
        let setup = async {
            let channel = live.conn.create_channel().await?;
            channel
                .basic_qos(
                    sub.prefetch
                        .max(u16::try_from(sub.concurrency).unwrap_or(u16::MAX)),
                    BasicQosOptions::default(),
                )
                .await?;
            declare_topology(&channel, &self.shared.config.exchange, sub).await?;
            let tag = format!(
                "{}.{}.{}",
                self.shared.service,
                sub.queue,
                uuid::Uuid::new_v4().simple()
            );
            let consumer = channel
                .basic_consume(
                    sub.queue.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>((channel, tag, consumer))
        };
        // a broker operation on a connection that dies under it may never complete: bound it
        let setup = tokio::select! {
            r = tokio::time::timeout(self.shared.config.confirm_timeout, setup) => r,
            () = self.shared.generation_over(live.generation) => return Stop::Lost("connection replaced during setup".into()),
        };
        let (channel, tag, mut consumer) = match setup {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Stop::Lost(format!("cannot start consuming {}: {e}", sub.queue)),
            Err(_) => return Stop::Lost(format!("starting to consume {} timed out", sub.queue)),
        };
        let permits = Arc::new(Semaphore::new(self.processor.sub.concurrency));
        let handlers = TaskTracker::new();
        // lapin has been seen to leave a consumer stream open on a dead connection: watch the
        // generation as well, so a reconnection always restarts the session
        let over = self.shared.generation_over(live.generation);
        tokio::pin!(over);
        let stop = loop {
            let permit = tokio::select! {
                biased;
                () = self.shared.stop.cancelled() => break Stop::Shutdown,
                // all handlers busy must not hide a lost connection
                () = &mut over => break Stop::Lost("connection replaced".into()),
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break Stop::Shutdown },
            };
            tokio::select! {
                biased;
                () = self.shared.stop.cancelled() => break Stop::Shutdown,
                () = &mut over => break Stop::Lost("connection replaced".into()),
                r = self.paused.wait_for(|p| *p) => if r.is_ok() { break Stop::Paused } else { break Stop::Shutdown },
                d = consumer.next() => match d {
                    Some(Ok(delivery)) => {
                        let settle = Settle {
                            shared: self.shared.clone(),
                            processor: self.processor.clone(),
                            channel: channel.clone(),
                        };
                        let fut = handlers.track_future(async move {
                            settle.handle(delivery).await;
                            drop(permit);
                        });
                        self.shared.tracker.spawn(fut);
                    }
                    Some(Err(e)) => break Stop::Lost(e.to_string()),
                    None => break Stop::Lost("consumer was cancelled by the broker".into()),
                },
            }
        };
        handlers.close();
        match stop {
            Stop::Shutdown | Stop::Paused => {
                // no new deliveries; finish what is in flight (the shutdown deadline is
                // enforced by the bus, which aborts handlers past it)
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()),
                )
                .await;
                handlers.wait().await;
            }
            Stop::Lost(_) => {} // handlers on a dead channel cannot ack; the broker redelivers
        }
        // deliveries prefetched but never handled return to the queue with the channel
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            channel.close(200, "consumer stopped".into()),
        )
        .await;
        stop
    }
}

/// Settles one delivery.
struct Settle {
    shared: Arc<Shared>,
    processor: Arc<Processor>,
    channel: Channel,
}

impl Settle {
    async fn handle(self, delivery: Delivery) {
        let meta = delivery_meta(&delivery.properties, delivery.routing_key.as_str());
        let decision = tokio::select! {
            biased;
            () = self.shared.abort.cancelled() => return, // left unacknowledged: redelivered
            d = self.processor.process(&delivery.data, &meta) => d,
        };
        let queue = self.processor.sub.queue.as_str();
        let forwarded = match decision {
            Decision::Ack => Ok(()),
            Decision::Retry { delay, failure } => {
                let ensure = RETRY_QUEUES.ensure(&self.channel, queue, delay);
                match tokio::time::timeout(self.shared.config.confirm_timeout, ensure).await {
                    Err(_) => Err(BusError::Broker(
                        "declaring the retry queue timed out".into(),
                    )),
                    Ok(Err(e)) => Err(BusError::Broker(e.to_string())),
                    Ok(Ok(retry_queue)) => {
                        let props = failure_props(&delivery.properties, &failure, queue);
                        self.shared
                            .publish("", &retry_queue, &delivery.data, &props)
                            .await
                    }
                }
            }
            Decision::DeadLetter(failure) => {
                let props = failure_props(&delivery.properties, &failure, queue);
                self.shared
                    .publish("", &self.processor.sub.dlq(), &delivery.data, &props)
                    .await
            }
        };
        let settle = async {
            match forwarded {
                Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await,
                Err(e) => {
                    tracing::error!(queue, error = %e, "could not forward a failed event; requeueing it");
                    let requeue = BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    };
                    delivery.acker.nack(requeue).await
                }
            }
        };
        // an ack on a connection that died under it may never complete: bound it, the broker
        // redelivers whatever was not acknowledged
        let settled = tokio::time::timeout(self.shared.config.confirm_timeout, settle)
            .await
            .unwrap_or_else(|_| Ok(false));
        if let Err(e) = settled {
            // the channel is gone: the broker redelivers the message
            tracing::debug!(queue, error = %e, "could not settle a delivery");
        }
    }
}
