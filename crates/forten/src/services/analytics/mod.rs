//! analytics-service (SPEC §8): consumes every event and answers with counts, rates, time
//! series, reports and derived figures.
//!
//! - [`subscribe`]: every event (`#`) on the durable queue `analytics-service.all`, many
//!   handlers at once; each hands its event to the batch writer ([`AnalyticsRuntime`]) and acks
//!   once the batch holding it is committed. Idempotent: the raw event's primary key is its id,
//!   and only newly stored events are counted, so a redelivered or replayed event never counts
//!   twice.
//! - What is kept (see `store`): the raw events (what `forten analytics rebuild` recomputes
//!   from), counts per type / building / door in 1-minute buckets rolled up to hours and days,
//!   per-second counts of the last two hours (the sliding windows), and the camera and alert
//!   lifecycles. Everything lands in its bucket by **event time** (the payload's `timestamp`,
//!   else the envelope's `time`), never by arrival, so late and out-of-order events count where
//!   they belong.
//! - [`router`]: `GET /api/analytics/metrics` (1 m / 5 m / 1 h), `/timeseries`, `/reports`,
//!   `/access-rates`, `/camera-availability`, `/alerts`, `/forced-doors`, `/openapi.json`.
//!   Query parameters are checked: a bad one answers 400 problem+json naming it.
//! - [`AnalyticsRuntime`]: the batch writer and the retention task, stopped on drop.
//!
//! ```ignore
//! let db = analytics::open_database(&database_config).await?;
//! let state = AnalyticsState::new(db, AnalyticsConfig::default());
//! let _runtime = AnalyticsRuntime::start(state.clone());   // batch writer + retention
//! analytics::subscribe(&state, &bus).await?;                // `#` on analytics-service.all
//! let app = obs.apply(analytics::router(state));
//! ```

mod figures;
mod model;
mod routes;
mod store;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use forten_shared::events::{BusError, HandlerError, Outcome, Subscribe, SubscriptionHandle};
use forten_shared::{Event, EventBus};
use tokio::sync::{mpsc, oneshot};

pub(crate) use self::model::Record;
pub(crate) use self::store::{MIGRATIONS, Rebuilt};
use self::writer::Job;
use crate::services::periodic::Periodic;
use crate::storage::{Database, DatabaseConfig, StorageError, now_millis};

/// The service's name (traces, health).
pub(crate) const SERVICE: &str = "analytics-service";
/// Its database name: the SQLite file, the PostgreSQL schema, the table prefix.
pub(crate) const DATABASE: &str = "analytics";
/// The subscription to every event.
pub(crate) const QUEUE: &str = "analytics-service.all";

const DAY: Duration = Duration::from_secs(86_400);

/// How long each kind of data is kept (`None`: forever). Per-second counts are always kept
/// two hours (the longest sliding window is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    /// Raw events and camera / alert lifecycles (what `rebuild` and the derived figures read).
    pub(crate) raw: Option<Duration>,
    /// 1-minute buckets.
    pub(crate) minutes: Option<Duration>,
    /// 1-hour buckets.
    pub(crate) hours: Option<Duration>,
    /// 1-day buckets.
    pub(crate) days: Option<Duration>,
}

impl Default for Retention {
    /// Raw events and minutes 90 days, hours 400 days, days forever.
    fn default() -> Self {
        Self {
            raw: Some(DAY * 90),
            minutes: Some(DAY * 90),
            hours: Some(DAY * 400),
            days: None,
        }
    }
}

/// The analytics-service's settings.
#[derive(Debug, Clone)]
pub(crate) struct AnalyticsConfig {
    /// The subscription's queue (several instances share it).
    pub(crate) queue: String,
    /// Deliveries the broker hands over before they are acked: enough to fill batches.
    pub(crate) prefetch: u16,
    /// Handlers waiting on the writer at once (each holds one delivery).
    pub(crate) concurrency: usize,
    /// Largest batch committed in one transaction.
    pub(crate) batch_size: usize,
    /// How long the writer waits for a batch to fill after its first event.
    pub(crate) batch_linger: Duration,
    /// What is kept how long.
    pub(crate) retention: Retention,
    /// How often retention runs.
    pub(crate) retention_interval: Duration,
}

impl Default for AnalyticsConfig {
    /// `analytics-service.all`, prefetch and concurrency 1000, batches of up to 500 events
    /// or 5 ms, [`Retention::default`] applied every 10 minutes.
    fn default() -> Self {
        Self {
            queue: QUEUE.to_owned(),
            prefetch: 1000,
            concurrency: 1000,
            batch_size: 500,
            batch_linger: Duration::from_millis(5),
            retention: Retention::default(),
            retention_interval: Duration::from_secs(600),
        }
    }
}

/// What the handlers share: the database, the settings, the batch writer's inbox. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub(crate) struct AnalyticsState {
    db: Database,
    config: Arc<AnalyticsConfig>,
    /// The running writer's inbox; `None` while no [`AnalyticsRuntime`] runs (events are then
    /// stored one transaction each). A std mutex: held only to clone the sender, never across
    /// an await.
    writer: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    /// Events the subscription acked (stored, or found stored before).
    handled: Arc<AtomicU64>,
}

impl AnalyticsState {
    /// The state over an opened database ([`open_database`]).
    pub(crate) fn new(db: Database, config: AnalyticsConfig) -> Self {
        Self {
            db,
            config: Arc::new(config),
            writer: Arc::default(),
            handled: Arc::default(),
        }
    }

    /// The database (for the health check).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// The settings.
    pub(crate) fn config(&self) -> &AnalyticsConfig {
        &self.config
    }

    /// Events the subscription has acked so far.
    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.writer.lock().ok().and_then(|w| w.clone())
    }

    /// Stores one event and counts it unless it was stored before; `Ok(true)` when new. Goes
    /// through the batch writer when one runs.
    pub(crate) async fn record(&self, event: &Event) -> Result<bool, RecordError> {
        let mut record = Record::from_event(event);
        if let Some(tx) = self.sender() {
            let (reply, answer) = oneshot::channel();
            match tx.send(Job { record, reply }).await {
                Ok(()) => {
                    return match answer.await {
                        Ok(Ok(new)) => Ok(new),
                        Ok(Err(e)) => Err(RecordError::Batch(e.to_string())),
                        Err(_) => Err(RecordError::WriterStopped),
                    };
                }
                // the writer is gone: store it here
                Err(mpsc::error::SendError(job)) => record = job.record,
            }
        }
        let new = self.store(std::slice::from_ref(&record)).await?;
        Ok(new.first() == Some(&true))
    }

    /// Stores many events in one transaction (tests, the bench, imports); returns how many
    /// were new.
    pub(crate) async fn record_all(&self, events: &[Event]) -> Result<usize, StorageError> {
        let records: Vec<Record> = events.iter().map(Record::from_event).collect();
        Ok(self
            .store(&records)
            .await?
            .into_iter()
            .filter(|n| *n)
            .count())
    }

    async fn store(&self, records: &[Record]) -> Result<Vec<bool>, StorageError> {
        Ok(store::write_batch(self.db.pool(), records, now_millis()).await?)
    }
}

/// Why an event could not be recorded (its handler retries it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The batch holding the event failed to commit.
    #[error("batch not stored: {0}")]
    Batch(String),
    /// The writer stopped before answering.
    #[error("the batch writer stopped before storing the event")]
    WriterStopped,
}

/// Opens (and migrates) the analytics-service's database.
pub(crate) async fn open_database(config: &DatabaseConfig) -> Result<Database, StorageError> {
    Database::connect(config, DATABASE, MIGRATIONS).await
}

/// The public API and `/openapi.json`.
pub(crate) fn router(state: AnalyticsState) -> Router {
    routes::public(state)
}

/// The generated OpenAPI description.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    routes::openapi()
}

/// Subscribes to every event on [`AnalyticsConfig::queue`] with the configured prefetch and
/// concurrency.
pub(crate) async fn subscribe(
    state: &AnalyticsState,
    bus: &EventBus,
) -> Result<SubscriptionHandle, BusError> {
    let sub = Subscribe::new(&state.config.queue)
        .pattern("#")
        .prefetch(state.config.prefetch)
        .concurrency(state.config.concurrency);
    let state = state.clone();
    bus.subscribe(sub, move |event: Event| {
        let state = state.clone();
        async move { on_event(&state, &event).await }
    })
    .await
}

/// Any event: stored and counted once.
pub(crate) async fn on_event(
    state: &AnalyticsState,
    event: &Event,
) -> Result<Outcome, HandlerError> {
    state.record(event).await.map_err(HandlerError::transient)?;
    state.handled.fetch_add(1, Ordering::Relaxed);
    Ok(Outcome::Ack)
}

/// Recomputes every aggregate from the stored raw events (`forten analytics rebuild`).
pub(crate) async fn rebuild(db: &Database) -> Result<Rebuilt, StorageError> {
    Ok(store::rebuild(db.pool(), now_millis()).await?)
}

/// Raw events stored.
pub(crate) async fn count_events(db: &Database) -> Result<i64, StorageError> {
    Ok(store::count_events(db.pool()).await?)
}

/// Deletes what is past `retention`; returns the rows deleted.
pub(crate) async fn apply_retention(
    db: &Database,
    retention: &Retention,
) -> Result<u64, StorageError> {
    let now = now_millis();
    let cut =
        |d: Option<Duration>| d.map(|d| now - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
    let cutoffs = store::Cutoffs {
        raw: cut(retention.raw),
        minutes: cut(retention.minutes),
        hours: cut(retention.hours),
        days: cut(retention.days),
    };
    Ok(store::purge(db.pool(), now, cutoffs).await?)
}

/// The background work of the service: the batch writer and the retention task. Stopped on
/// drop (the writer first commits what it holds).
#[derive(Debug)]
pub(crate) struct AnalyticsRuntime {
    slot: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    writer: Option<tokio::task::JoinHandle<()>>,
    retention: Option<Periodic>,
}

impl AnalyticsRuntime {
    /// Starts the writer (events recorded through `state` go through it from now on) and the
    /// retention task.
    pub(crate) fn start(state: AnalyticsState) -> Self {
        let config = state.config.clone();
        let (tx, rx) = mpsc::channel(config.batch_size.max(1) * 4);
        let writer = tokio::spawn(writer::run(
            state.db.pool().clone(),
            rx,
            config.batch_size,
            config.batch_linger,
        ));
        if let Ok(mut slot) = state.writer.lock() {
            *slot = Some(tx);
        }
        let db = state.db.clone();
        let retention = Periodic::start(
            config.retention_interval,
            "analytics retention",
            move || {
                let (db, retention) = (db.clone(), config.retention);
                async move { apply_retention(&db, &retention).await }
            },
        );
        Self {
            slot: state.writer,
            writer: Some(writer),
            retention: Some(retention),
        }
    }

    /// Stops taking events, commits those received, stops retention.
    pub(crate) async fn stop(mut self) {
        self.close();
        if let Some(w) = self.writer.take() {
            let _ = w.await;
        }
        if let Some(r) = self.retention.take() {
            r.stop().await;
        }
    }

    fn close(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = None;
        }
    }
}

impl Drop for AnalyticsRuntime {
    fn drop(&mut self) {
        // the writer ends by itself once the last sender (held by in-flight handlers) is gone
        self.close();
    }
}
