//! `forten bench events`: publish with confirms and consume with acks, the event bus against
//! raw lapin doing the same work in the same run, alternating, medians of `--repeat` runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

use super::CliError;
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

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
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

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

fn unique(side: &str) -> String {
    format!("bench.{side}.{}", uuid::Uuid::new_v4().simple())
}

async fn raw_run(url: &str, bodies: &[Vec<u8>]) -> Result<Figures, CliError> {
    let n = bodies.len();
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(failed)?;
    let (exchange, queue) = (unique("raw.x"), unique("raw.q"));
    let ch = conn.create_channel().await.map_err(failed)?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(failed)?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        exchange.as_str().into(),
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
    ch.queue_declare(queue.as_str().into(), qd, FieldTable::default())
        .await
        .map_err(failed)?;
    ch.queue_bind(
        queue.as_str().into(),
        exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(failed)?;
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
    let admin = EventBus::rabbitmq(
        "bench-cleanup",
        RabbitConfig::new(url).exchange(exchange.clone()),
    )
    .await?;
    let _ = admin.delete_queues(&queue).await;
    admin.shutdown(Duration::from_secs(1)).await;
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(failed)?;
    if let Ok(ch) = conn.create_channel().await {
        let _ = ch
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "bench done".into()).await;
    Ok(Figures {
        publish_rate,
        consume_rate,
        publish_cpu_us,
        consume_cpu_us,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub(crate) async fn run(args: BenchEventsArgs) -> Result<(), CliError> {
    if args.count == 0 || args.repeat == 0 {
        return Err(CliError::Usage(
            "--count and --repeat must be at least 1".into(),
        ));
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
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for rep in 0..args.repeat {
        if !args.json {
            eprintln!(
                "run {}/{}: {} events of {} bytes …",
                rep + 1,
                args.repeat,
                args.count,
                bodies[0].len()
            );
        }
        if rep % 2 == 0 {
            raw.push(raw_run(&args.broker.url, &bodies).await?);
            ours.push(bus_run(&args.broker.url, args.broker.connect_timeout, &events).await?);
        } else {
            ours.push(bus_run(&args.broker.url, args.broker.connect_timeout, &events).await?);
            raw.push(raw_run(&args.broker.url, &bodies).await?);
        }
    }
    let pick = |runs: &[Figures], f: fn(&Figures) -> f64| median(runs.iter().map(f).collect());
    let rows = [
        (
            "events.publish_confirmed",
            "msgs/s",
            pick(&ours, |f| f.publish_rate),
            pick(&raw, |f| f.publish_rate),
        ),
        (
            "events.consume_ack",
            "msgs/s",
            pick(&ours, |f| f.consume_rate),
            pick(&raw, |f| f.consume_rate),
        ),
        (
            "events.publish_cpu_per_msg",
            "us",
            pick(&ours, |f| f.publish_cpu_us),
            pick(&raw, |f| f.publish_cpu_us),
        ),
        (
            "events.consume_cpu_per_msg",
            "us",
            pick(&ours, |f| f.consume_cpu_us),
            pick(&raw, |f| f.consume_cpu_us),
        ),
    ];
    if args.json {
        for (name, unit, value, baseline) in rows {
            let ratio = if baseline > 0.0 {
                value / baseline
            } else {
                0.0
            };
            println!(
                "{}",
                serde_json::json!({ "name": name, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio })
            );
        }
    } else {
        println!(
            "{:<30} {:>12} {:>12} {:>7}  unit",
            "figure", "forten", "raw lapin", "ratio"
        );
        for (name, unit, value, baseline) in rows {
            let ratio = if baseline > 0.0 {
                value / baseline
            } else {
                0.0
            };
            println!("{name:<30} {value:>12.1} {baseline:>12.1} {ratio:>7.3}  {unit}");
        }
        println!(
            "({} events of {} bytes, persistent, confirms on; median of {} runs each, alternating)",
            args.count,
            bodies[0].len(),
            args.repeat
        );
    }
    Ok(())
}

fn redact(url: &str) -> String {
    RabbitConfig::new(url).redacted_url()
}
