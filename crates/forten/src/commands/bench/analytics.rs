//! `forten bench analytics`: how fast the analytics-service ingests events from RabbitMQ (with
//! deduplication and storage: the subscription, the batch writer, one transaction per batch),
//! and how long its queries take over a store of `--stored` events spread over 7 days.
//!
//! The ingest figure is `--count` live events (event times within the last 10 minutes, 100
//! doors of 5 buildings; plus 1 % redelivered copies) published first, then consumed from the
//! durable queue until every delivery is acked, i.e. committed. The store is then filled with
//! events of the last 7 days (`analytics.store_batched`: direct batches of 5,000, no broker). The query
//! figures call the service's router in-process (handler, query and JSON; no socket) `--queries`
//! times each and report p50 and p99.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use chrono::Utc;
use forten_shared::events::{
    AccessDenied, AccessGranted, AccessMethod, DoorForced, DoorHeldOpen, RabbitConfig, Severity,
};
use forten_shared::{Event, EventBuilder, EventBus};
use tokio::time::Instant;
use tower::ServiceExt;

use super::{failed, percentile};
use crate::cli::BenchAnalyticsArgs;
use crate::commands::CliError;
use crate::commands::simulate::Rng;
use crate::services::analytics::{self, AnalyticsConfig, AnalyticsRuntime, AnalyticsState};
use crate::storage::{Database, DatabaseConfig};

const BUILDINGS: usize = 5;
const DOORS_PER_BUILDING: usize = 20;
const WEEK_MS: i64 = 7 * 86_400_000;
/// Ingested events happened within the last 10 minutes (live traffic); the store is filled
/// with events of the last 7 days.
const LIVE_MS: i64 = 600_000;
/// Events stored per transaction while filling the store.
const FILL_BATCH: usize = 5_000;

/// An access-control event at a random door, at a random time of the `spread_ms` before
/// `now_ms`: 75 % granted, 20 % denied, 3 % held open, 2 % forced.
fn event(rng: &mut Rng, now_ms: i64, spread_ms: i64) -> Event {
    let b = rng.below(BUILDINGS);
    let building = format!("building-{b}");
    let door = format!("door-{b}-{}", rng.below(DOORS_PER_BUILDING));
    let ago = i64::try_from(rng.below(usize::try_from(spread_ms).unwrap_or(1))).unwrap_or(0);
    let timestamp = chrono::DateTime::from_timestamp_millis(now_ms - ago).unwrap_or_default();
    let pick = rng.below(100);
    let source = "access-service";
    if pick < 75 {
        EventBuilder::new(
            AccessGranted {
                user_id: format!("user-{}", rng.below(1000)),
                door_id: door,
                building_id: building,
                access_method: AccessMethod::Card,
                timestamp,
            },
            source,
        )
        .build()
    } else if pick < 95 {
        EventBuilder::new(
            AccessDenied {
                user_id: None,
                door_id: door,
                building_id: building,
                access_method: AccessMethod::Pin,
                reason: "not_authorized".into(),
                timestamp,
            },
            source,
        )
        .build()
    } else if pick < 98 {
        EventBuilder::new(
            DoorHeldOpen {
                door_id: door,
                building_id: building,
                duration_seconds: 45,
                timestamp,
            },
            source,
        )
        .build()
    } else {
        EventBuilder::new(
            DoorForced {
                door_id: door,
                building_id: building,
                timestamp,
                severity: Severity::High,
            },
            source,
        )
        .build()
    }
}

/// The bench's own database, removed afterwards.
#[derive(Debug)]
struct BenchDb {
    config: DatabaseConfig,
    dir: Option<std::path::PathBuf>,
}

impl BenchDb {
    fn new(url: Option<&str>) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match url {
            Some(url) => Self {
                config: DatabaseConfig {
                    url: Some(url.to_owned()),
                    schema: Some(format!("bench_analytics_{id}")),
                    ..DatabaseConfig::default()
                },
                dir: None,
            },
            None => {
                let dir = std::env::temp_dir().join(format!("forten-bench-analytics-{id}"));
                Self {
                    config: DatabaseConfig {
                        data_dir: dir.clone(),
                        ..DatabaseConfig::default()
                    },
                    dir: Some(dir),
                }
            }
        }
    }

    async fn remove(&self, db: &Database) {
        if let Some(schema) = &self.config.schema {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(db.pool())
            .await;
        }
        db.close().await;
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn progress(json: bool, len: u64, msg: &str) -> indicatif::ProgressBar {
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(msg.to_owned());
    bar
}

/// Ingest from RabbitMQ: returns deliveries acked per second.
async fn ingest(
    args: &BenchAnalyticsArgs,
    state: &AnalyticsState,
    events: &[Event],
) -> Result<f64, CliError> {
    let exchange = format!("bench.analytics.{}", uuid::Uuid::new_v4().simple());
    let rabbit = || {
        RabbitConfig::new(&args.broker.url)
            .exchange(exchange.clone())
            .connect_timeout(args.broker.connect_timeout)
    };
    let consumer = EventBus::rabbitmq(analytics::SERVICE, rabbit()).await?;
    let publisher = EventBus::rabbitmq("bench-publisher", rabbit()).await?;
    let sub = analytics::subscribe(state, &consumer).await?;
    sub.pause();
    // 1 % redelivered copies (same ids), spread through the stream
    let mut all: Vec<Event> = Vec::with_capacity(events.len() + events.len() / 100 + 1);
    for (i, e) in events.iter().enumerate() {
        all.push(e.clone());
        if i % 100 == 50 {
            all.push(e.clone());
        }
    }
    let bar = progress(
        args.json,
        u64::try_from(all.len()).unwrap_or(0),
        "publishing",
    );
    for chunk in all.chunks(2_000) {
        publisher.publish_all(chunk).await?;
        bar.inc(u64::try_from(chunk.len()).unwrap_or(0));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let target = state.handled() + u64::try_from(all.len()).unwrap_or(0);
    bar.set_position(0);
    bar.set_message("ingesting from RabbitMQ");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    sub.resume();
    while state.handled() < target {
        if Instant::now() > deadline {
            return Err(CliError::Failed(
                "ingest: not every event was acked within 10 minutes".into(),
            ));
        }
        bar.set_position(state.handled());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    consumer.shutdown(Duration::from_secs(5)).await;
    let _ = publisher.delete_queues(&state.config().queue).await;
    publisher.shutdown(Duration::from_secs(2)).await;
    if let Ok(conn) =
        lapin::Connection::connect(&args.broker.url, lapin::ConnectionProperties::default()).await
    {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch
                .exchange_delete(
                    exchange.as_str().into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await;
        }
        let _ = conn.close(200, "bench done".into()).await;
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(all.len() as f64 / secs.max(1e-9))
}

/// Stores `n` more events directly (batches of [`FILL_BATCH`]); returns events per second.
async fn fill(
    state: &AnalyticsState,
    n: usize,
    rng: &mut Rng,
    json: bool,
) -> Result<f64, CliError> {
    let bar = progress(json, u64::try_from(n).unwrap_or(0), "filling the store");
    let now = Utc::now().timestamp_millis();
    let started = Instant::now();
    let mut left = n;
    while left > 0 {
        let take = left.min(FILL_BATCH);
        let batch: Vec<Event> = (0..take).map(|_| event(rng, now, WEEK_MS)).collect();
        state.record_all(&batch).await.map_err(failed)?;
        left -= take;
        bar.inc(u64::try_from(take).unwrap_or(0));
    }
    bar.finish_and_clear();
    #[allow(clippy::cast_precision_loss)]
    Ok(n as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// Calls `uri` on `router` `n` times: (p50, p99) in ms.
async fn time_route(router: &axum::Router, uri: &str, n: usize) -> Result<(f64, f64), CliError> {
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let req = Request::get(uri).body(Body::empty()).map_err(failed)?;
        let started = Instant::now();
        let resp = router.clone().oneshot(req).await.map_err(failed)?;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 64 * 1024 * 1024)
            .await
            .map_err(failed)?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            return Err(CliError::Failed(format!(
                "{uri} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok((percentile(&ms, 50.0), percentile(&ms, 99.0)))
}

pub(crate) async fn run(args: BenchAnalyticsArgs) -> Result<(), CliError> {
    if args.count == 0 || args.queries == 0 {
        return Err(CliError::Usage(
            "--count and --queries must be at least 1".into(),
        ));
    }
    let bench_db = BenchDb::new(args.database_url.as_deref());
    let db = analytics::open_database(&bench_db.config)
        .await
        .map_err(|e| CliError::Unavailable(format!("bench database: {e}")))?;
    let config = AnalyticsConfig {
        queue: format!("bench.analytics.{}", uuid::Uuid::new_v4().simple()),
        ..AnalyticsConfig::default()
    };
    let state = AnalyticsState::new(db.clone(), config);
    let runtime = AnalyticsRuntime::start(state.clone());
    let result = measure(&args, &state).await;
    runtime.stop().await;
    bench_db.remove(&db).await;
    let rows = result?;
    if args.json {
        for (name, unit, value) in &rows {
            println!(
                "{}",
                serde_json::json!({ "name": name, "value": value, "unit": unit })
            );
        }
    } else {
        println!("{:<36} {:>12}  unit", "figure", "value");
        for (name, unit, value) in &rows {
            println!("{name:<36} {value:>12.2}  {unit}");
        }
        let engine = if args.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        println!(
            "({} live events ingested from RabbitMQ + 1 % redelivered; {} stored over 7 days on {engine}; {} timed in-process calls per query)",
            args.count,
            args.stored.max(args.count),
            args.queries
        );
    }
    Ok(())
}

async fn measure(
    args: &BenchAnalyticsArgs,
    state: &AnalyticsState,
) -> Result<Vec<(&'static str, &'static str, f64)>, CliError> {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let now = Utc::now().timestamp_millis();
    let events: Vec<Event> = (0..args.count)
        .map(|_| event(&mut rng, now, LIVE_MS))
        .collect();
    let ingest_rate = ingest(args, state, &events).await?;
    drop(events);
    let fill_rate = match args.stored.saturating_sub(args.count) {
        0 => None,
        more => Some(fill(state, more, &mut rng, args.json).await?),
    };
    let router = analytics::router(state.clone());
    let to = Utc::now();
    let from = to - chrono::Duration::days(7);
    let (from, to) = (
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let n = args.queries;
    let bar = progress(args.json, 5, "timing queries");
    let metrics = time_route(&router, "/api/analytics/metrics", n).await?;
    bar.inc(1);
    let series = time_route(
        &router,
        &format!("/api/analytics/timeseries?type=access.granted&interval=1h&from={from}&to={to}"),
        n,
    )
    .await?;
    bar.inc(1);
    let door_minutes = time_route(
        &router,
        &format!(
            "/api/analytics/timeseries?type=access.granted&interval=1m&buildingId=building-1&doorId=door-1-1&from={from}&to={to}"
        ),
        n,
    )
    .await?;
    bar.inc(1);
    let report = time_route(
        &router,
        &format!("/api/analytics/reports?groupBy=door&from={from}&to={to}"),
        n,
    )
    .await?;
    bar.inc(1);
    let rates = time_route(
        &router,
        &format!("/api/analytics/access-rates?from={from}&to={to}"),
        n,
    )
    .await?;
    bar.finish_and_clear();
    let mut rows = vec![("analytics.ingest", "events/s", ingest_rate)];
    if let Some(rate) = fill_rate {
        rows.push(("analytics.store_batched", "events/s", rate));
    }
    rows.extend([
        ("analytics.metrics_p50_ms", "ms", metrics.0),
        ("analytics.metrics_p99_ms", "ms", metrics.1),
        ("analytics.timeseries_7d_ms", "ms", series.0),
        ("analytics.timeseries_7d_p99_ms", "ms", series.1),
        ("analytics.timeseries_7d_1m_door_ms", "ms", door_minutes.0),
        ("analytics.report_7d_by_door_ms", "ms", report.0),
        ("analytics.access_rates_7d_ms", "ms", rates.0),
    ]);
    Ok(rows)
}
