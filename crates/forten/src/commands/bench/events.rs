//! `forten bench events`: publish with confirms and consume with acks, the event bus against
//! raw lapin doing the same work in the same run, alternating, medians of `--repeat` runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use forten_shared::events::{RabbitConfig, Subscribe, UserUpdated};
use forten_shared::{Event, EventBuilder, EventBus};
use futures_util::{StreamExt, TryStreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::time::Instant;

use super::{CliError, Report, Runs, Side, at_least_one, cpu_time, failed, percentile};
use crate::cli::BenchEventsArgs;

/// Publishes in flight at once, for both sides.
const WINDOW: usize = 512;
/// Prefetch for both consumers.
const PREFETCH: u16 = 64;

/// One side's figures in one run.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    publish_rate: f64,
    consume_rate: f64,
    publish_cpu_us: f64,
    consume_cpu_us: f64,
}

/// Measures `f` over `n` messages: (messages per second, CPU µs per message).
async fn measure<F: Future<Output = Result<(), CliError>>>(
    n: usize,
    f: F,
) -> Result<(f64, f64), CliError> {
    let (t0, c0) = (Instant::now(), cpu_time());
    f.await?;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), (cpu_time() - c0).as_secs_f64());
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let n = n as f64;
    Ok((n / wall.max(1e-9), cpu * 1e6 / n))
}

/// `n` events whose serialised size is about `size` bytes.
fn events(n: usize, size: usize) -> Vec<Event> {
    let make = |pad: usize| {
        EventBuilder::new(
            UserUpdated {
                user_id: "bench-user".into(),
                changes: serde_json::json!({ "note": "x".repeat(pad) }),
            },
            "bench",
        )
        .subject("bench-user")
        .build()
    };
    let base = make(0).to_vec().map(|v| v.len()).unwrap_or(0);
    let pad = size.saturating_sub(base);
    (0..n).map(|_| make(pad)).collect()
}

fn unique(side: &str) -> String {
    format!("bench.{side}.{}", uuid::Uuid::new_v4().simple())
}

/// The raw side's topology: a durable topic exchange and a durable queue bound to `#`, and a
/// confirm-mode channel to publish on.
async fn raw_topology(
    conn: &Connection,
    exchange: &str,
    queue: &str,
) -> Result<lapin::Channel, CliError> {
    let ch = conn.create_channel().await.map_err(failed)?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(failed)?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        exchange.into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await
    .map_err(failed)?;
    let qd = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), qd, FieldTable::default())
        .await
        .map_err(failed)?;
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(failed)?;
    Ok(ch)
}

async fn raw_run(url: &str, bodies: &[Vec<u8>]) -> Result<Figures, CliError> {
    let n = bodies.len();
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(failed)?;
    let (exchange, queue) = (unique("raw.x"), unique("raw.q"));
    let ch = raw_topology(&conn, &exchange, &queue).await?;
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/cloudevents+json".into());

    let (publish_rate, publish_cpu_us) = measure(n, async {
        futures_util::stream::iter(bodies.iter().map(Ok))
            .try_for_each_concurrent(WINDOW, |body| {
                let (ch, props, exchange) = (&ch, props.clone(), &exchange);
                async move {
                    let confirm = ch
                        .basic_publish(
                            exchange.as_str().into(),
                            "user.updated".into(),
                            BasicPublishOptions::default(),
                            body,
                            props,
                        )
                        .await
                        .map_err(failed)?
                        .await
                        .map_err(failed)?;
                    if confirm.is_ack() {
                        Ok(())
                    } else {
                        Err(CliError::Failed("publish nacked".into()))
                    }
                }
            })
            .await
    })
    .await?;

    let consumer_ch = conn.create_channel().await.map_err(failed)?;
    consumer_ch
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .map_err(failed)?;
    let (consume_rate, consume_cpu_us) = measure(n, async {
        let mut consumer = consumer_ch
            .basic_consume(
                queue.as_str().into(),
                "bench".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(failed)?;
        let mut got = 0;
        while got < n {
            match consumer.next().await {
                Some(Ok(d)) => {
                    d.acker
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(failed)?;
                    got += 1;
                }
                Some(Err(e)) => return Err(failed(e)),
                None => return Err(CliError::Failed("raw consumer ended early".into())),
            }
        }
        Ok(())
    })
    .await?;

    let _ = ch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = ch
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = conn.close(200, "bench done".into()).await;
    Ok(Figures {
        publish_rate,
        consume_rate,
        publish_cpu_us,
        consume_cpu_us,
    })
}

async fn bus_run(
    url: &str,
    connect_timeout: Duration,
    events: &[Event],
) -> Result<Figures, CliError> {
    let n = events.len();
    let (exchange, queue) = (unique("bus.x"), unique("bus.q"));
    let config = RabbitConfig::new(url)
        .exchange(exchange.clone())
        .connect_timeout(connect_timeout);
    let bus = EventBus::rabbitmq("bench", config).await?;
    let handled = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let (h, d) = (handled.clone(), done.clone());
    let sub = bus
        .subscribe(
            Subscribe::new(&queue).pattern("#").prefetch(PREFETCH),
            move |_e: Event| {
                if h.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    d.notify_one();
                }
                std::future::ready(())
            },
        )
        .await?;
    // hold consumption until everything is published, as the raw side does
    sub.pause();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (publish_rate, publish_cpu_us) =
        measure(n, async { Ok(bus.publish_all(events).await?) }).await?;
    let (consume_rate, consume_cpu_us) = measure(n, async {
        sub.resume();
        done.notified().await;
        Ok(())
    })
    .await?;

    bus.shutdown(Duration::from_secs(5)).await;
    cleanup_bus_topology(url, &exchange, &queue).await?;
    Ok(Figures {
        publish_rate,
        consume_rate,
        publish_cpu_us,
        consume_cpu_us,
    })
}

/// End-to-end latencies in ms: (p50, p99, p999).
fn summarize(mut lat: Vec<f64>) -> (f64, f64, f64) {
    lat.sort_by(f64::total_cmp);
    (
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        percentile(&lat, 99.9),
    )
}

/// Records, per message index, when it was sent and how long it took to arrive.
struct Clock {
    t0: Instant,
    sent_ns: Vec<AtomicU64>,
    latency_ns: Vec<AtomicU64>,
    received: AtomicUsize,
}

impl Clock {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            t0: Instant::now(),
            sent_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            latency_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicUsize::new(0),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn sent(&self, i: usize) {
        if let Some(slot) = self.sent_ns.get(i) {
            slot.store(self.now_ns(), Ordering::Relaxed);
        }
    }

    fn received(&self, i: usize) {
        let (Some(sent), Some(lat)) = (self.sent_ns.get(i), self.latency_ns.get(i)) else {
            return;
        };
        lat.store(
            self.now_ns().saturating_sub(sent.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.received.fetch_add(1, Ordering::AcqRel);
    }

    /// Waits for every message (bounded), then returns the latencies in ms.
    async fn finish(&self, limit: Duration) -> Result<Vec<f64>, CliError> {
        let deadline = Instant::now() + limit;
        while self.received.load(Ordering::Acquire) < self.sent_ns.len() {
            if Instant::now() > deadline {
                return Err(CliError::Failed(
                    "end-to-end run: not every message arrived".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        #[allow(clippy::cast_precision_loss)]
        Ok(self
            .latency_ns
            .iter()
            .map(|l| l.load(Ordering::Relaxed) as f64 / 1e6)
            .collect())
    }
}

/// Calls `send(i)` `n` times at `rate` per second, each in its own task (a slow confirm never
/// delays the next send).
async fn paced<F, Fut>(n: usize, rate: u32, send: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..n {
        tick.tick().await;
        tokio::spawn(send(i));
    }
}

async fn raw_e2e(
    url: &str,
    body: &[u8],
    n: usize,
    rate: u32,
    limit: Duration,
) -> Result<Vec<f64>, CliError> {
    let publisher = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(failed)?;
    let consumer_conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(failed)?;
    let (exchange, queue) = (unique("raw.e2e.x"), unique("raw.e2e.q"));
    let ch = raw_topology(&publisher, &exchange, &queue).await?;
    let clock = Clock::new(n);
    let cch = consumer_conn.create_channel().await.map_err(failed)?;
    cch.basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .map_err(failed)?;
    let mut consumer = cch
        .basic_consume(
            queue.as_str().into(),
            "bench-e2e".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(failed)?;
    let c = clock.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            if let Some(i) = d
                .properties
                .message_id()
                .as_ref()
                .and_then(|m| m.as_str().parse::<usize>().ok())
            {
                c.received(i);
            }
            let _ = d.acker.ack(BasicAckOptions::default()).await;
        }
    });
    let body: Arc<[u8]> = Arc::from(body);
    paced(n, rate, |i| {
        let (ch, clock, body, exchange) =
            (ch.clone(), clock.clone(), body.clone(), exchange.clone());
        async move {
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(i.to_string().into());
            clock.sent(i);
            if let Ok(confirm) = ch
                .basic_publish(
                    exchange.as_str().into(),
                    "user.updated".into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await
            {
                let _ = confirm.await;
            }
        }
    })
    .await;
    let lat = clock.finish(limit).await;
    reader.abort();
    let _ = ch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = ch
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = publisher.close(200, "bench done".into()).await;
    let _ = consumer_conn.close(200, "bench done".into()).await;
    lat
}

async fn bus_e2e(
    url: &str,
    timeout: Duration,
    template: &Event,
    n: usize,
    rate: u32,
    limit: Duration,
) -> Result<Vec<f64>, CliError> {
    let (exchange, queue) = (unique("bus.e2e.x"), unique("bus.e2e.q"));
    let config = RabbitConfig::new(url)
        .exchange(exchange.clone())
        .connect_timeout(timeout);
    let publisher = EventBus::rabbitmq("bench-publisher", config.clone()).await?;
    let consumer = EventBus::rabbitmq("bench-consumer", config).await?;
    let clock = Clock::new(n);
    let c = clock.clone();
    consumer
        .subscribe(
            Subscribe::new(&queue).pattern("#").prefetch(PREFETCH),
            move |e: Event| {
                if let Some(i) = e.subject.as_deref().and_then(|s| s.parse::<usize>().ok()) {
                    c.received(i);
                }
                std::future::ready(())
            },
        )
        .await?;
    let events: Arc<Vec<Event>> = Arc::new(
        (0..n)
            .map(|i| {
                let mut e = template.clone();
                e.id = uuid::Uuid::now_v7().to_string();
                e.subject = Some(i.to_string());
                e
            })
            .collect(),
    );
    paced(n, rate, |i| {
        let (bus, clock, events) = (publisher.clone(), clock.clone(), events.clone());
        async move {
            clock.sent(i);
            let _ = bus.publish(&events[i]).await;
        }
    })
    .await;
    let lat = clock.finish(limit).await;
    publisher.shutdown(Duration::from_secs(2)).await;
    consumer.shutdown(Duration::from_secs(2)).await;
    cleanup_bus_topology(url, &exchange, &queue).await?;
    lat
}

/// Deletes a bus run's queues and exchange.
async fn cleanup_bus_topology(url: &str, exchange: &str, queue: &str) -> Result<(), CliError> {
    let admin =
        EventBus::rabbitmq("bench-cleanup", RabbitConfig::new(url).exchange(exchange)).await?;
    let _ = admin.delete_queues(queue).await;
    admin.shutdown(Duration::from_secs(1)).await;
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(failed)?;
    if let Ok(ch) = conn.create_channel().await {
        let _ = ch
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "bench done".into()).await;
    Ok(())
}

pub(crate) async fn run(args: BenchEventsArgs) -> Result<(), CliError> {
    at_least_one(&[("--count", args.count), ("--repeat", args.repeat)])?;
    if args.rate == 0 {
        return Err(CliError::Usage("--rate must be at least 1".into()));
    }
    // fail fast, with one line, when the broker is not there
    let probe = tokio::time::timeout(
        args.broker.connect_timeout,
        Connection::connect(&args.broker.url, ConnectionProperties::default()),
    )
    .await;
    match probe {
        Ok(Ok(conn)) => {
            let _ = conn.close(200, "probe".into()).await;
        }
        Ok(Err(e)) => {
            return Err(CliError::Unavailable(format!(
                "cannot connect to RabbitMQ at {}: {e}",
                redact(&args.broker.url)
            )));
        }
        Err(_) => {
            return Err(CliError::Unavailable(format!(
                "cannot connect to RabbitMQ at {}: no connection within {:?}",
                redact(&args.broker.url),
                args.broker.connect_timeout
            )));
        }
    }
    let events = events(args.count, args.payload);
    let bodies: Vec<Vec<u8>> = events
        .iter()
        .map(Event::to_vec)
        .collect::<Result<_, _>>()
        .map_err(failed)?;
    let mut runs = Runs::<Figures>::default();
    let mut lat = Runs::<(f64, f64, f64)>::default();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let e2e_n = ((f64::from(args.rate) * args.duration.as_secs_f64()).round() as usize).max(1);
    let e2e_limit = args.duration + Duration::from_secs(60);
    let url = args.broker.url.as_str();
    let report = Report {
        json: args.json,
        baseline: "raw lapin",
    };
    let progress = report.progress(args.repeat * 4);
    for rep in 0..args.repeat {
        for side in Side::order(rep) {
            let run = format!("run {}/{}", rep + 1, args.repeat);
            let name = if side == Side::Forten {
                "forten"
            } else {
                "raw"
            };
            progress.set_message(format!("{run}: {name} throughput"));
            let figures = match side {
                Side::Baseline => raw_run(url, &bodies).await?,
                Side::Forten => bus_run(url, args.broker.connect_timeout, &events).await?,
            };
            runs.push(side, figures);
            progress.inc(1);
            progress.set_message(format!("{run}: {name} latency at {}/s", args.rate));
            let latencies = match side {
                Side::Baseline => raw_e2e(url, &bodies[0], e2e_n, args.rate, e2e_limit).await?,
                Side::Forten => {
                    bus_e2e(
                        url,
                        args.broker.connect_timeout,
                        &events[0],
                        e2e_n,
                        args.rate,
                        e2e_limit,
                    )
                    .await?
                }
            };
            lat.push(side, summarize(latencies));
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    let figures = [
        runs.figure("events.publish_confirmed", "msgs/s", |f| f.publish_rate),
        runs.figure("events.consume_ack", "msgs/s", |f| f.consume_rate),
        runs.figure("events.publish_cpu_per_msg", "us", |f| f.publish_cpu_us),
        runs.figure("events.consume_cpu_per_msg", "us", |f| f.consume_cpu_us),
        lat.figure("events.e2e_p50_ms", "ms", |l| l.0),
        lat.figure("events.e2e_p99_ms", "ms", |l| l.1),
        lat.figure("events.e2e_p999_ms", "ms", |l| l.2),
    ];
    report.print(
        &figures,
        &format!(
            "{} events of {} bytes, persistent, confirms on; median of {} runs each, alternating",
            args.count,
            bodies[0].len(),
            args.repeat
        ),
    );
    Ok(())
}

fn redact(url: &str) -> String {
    RabbitConfig::new(url).redacted_url()
}
