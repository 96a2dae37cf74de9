//! monitoring-service (SPEC §8): cameras and their heartbeat watchdog, alerts and their rules.
//!
//! - [`router`]: `/api/cameras` (CRUD), `POST /api/cameras/{id}/heartbeat`, `/api/alerts`
//!   (`?status=`), `POST /api/alerts/{id}/acknowledge`, `POST /api/alerts/{id}/resolve`,
//!   `/openapi.json`.
//! - [`Watchdog`]: a background task that publishes `camera.offline` for each camera silent
//!   past its heartbeat timeout; the heartbeat that brings it back publishes `camera.online`
//!   with `downtimeSeconds` (from its last heartbeat before the outage to the new one).
//! - [`subscribe`]: the alert rules. `door.forced` (queue `monitoring-service.door.forced`)
//!   raises a `door_forced` alert with the event's severity; `access.denied` (queue
//!   `monitoring-service.access.denied`) raises a `access_denied_burst` alert (high) when one
//!   door sees [`MonitoringConfig::denied_burst_threshold`] denials within
//!   [`MonitoringConfig::denied_burst_window`] (event time), at most one per door and window
//!   period. Each alert publishes `alert.triggered`.
//!
//! Redelivery never duplicates: alerts carry a unique key of their cause (the `door.forced`
//! event id, the door and window period of a burst), denials are counted once per event id,
//! and an alert whose `alert.triggered` could not be published is published by the retry.

mod model;
mod routes;
mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use forten_shared::events::{
    AccessDenied, AlertTriggered, BusError, CameraOffline, DoorForced, HandlerError, Outcome,
    SubscriptionHandle,
};
use forten_shared::{Event, EventBus, EventPublisher, EventType};

use self::model::Alert;
pub(crate) use self::store::MIGRATIONS;
use self::store::NewAlert;
use crate::services::periodic::Periodic;
use crate::services::subscribe_to;
use crate::storage::{Database, DatabaseConfig, StorageError, from_millis, now_millis};

/// The service's name (events' `source`, traces, health).
pub(crate) const SERVICE: &str = "monitoring-service";
/// Its database name: the SQLite file, the PostgreSQL schema, the table prefix.
pub(crate) const DATABASE: &str = "monitoring";
/// The subscription of the `door.forced` rule.
pub(crate) const DOOR_FORCED_QUEUE: &str = "monitoring-service.door.forced";
/// The subscription of the `access.denied` burst rule.
pub(crate) const ACCESS_DENIED_QUEUE: &str = "monitoring-service.access.denied";

/// The monitoring-service's settings.
#[derive(Debug, Clone)]
pub(crate) struct MonitoringConfig {
    /// How often the watchdog looks for silent cameras.
    pub(crate) watchdog_interval: Duration,
    /// Heartbeat timeout of cameras created without one.
    pub(crate) default_heartbeat_timeout: Duration,
    /// Denials at one door within [`denied_burst_window`](Self::denied_burst_window) that
    /// raise an alert.
    pub(crate) denied_burst_threshold: u32,
    /// The window of the burst rule.
    pub(crate) denied_burst_window: Duration,
    /// The `door.forced` subscription's queue (several instances share it).
    pub(crate) door_forced_queue: String,
    /// The `access.denied` subscription's queue.
    pub(crate) access_denied_queue: String,
}

impl Default for MonitoringConfig {
    /// Watchdog every second, 60 s heartbeat timeout, 5 denials within 60 s, the SPEC's
    /// queue names.
    fn default() -> Self {
        Self {
            watchdog_interval: Duration::from_secs(1),
            default_heartbeat_timeout: Duration::from_secs(60),
            denied_burst_threshold: 5,
            denied_burst_window: Duration::from_secs(60),
            door_forced_queue: DOOR_FORCED_QUEUE.to_owned(),
            access_denied_queue: ACCESS_DENIED_QUEUE.to_owned(),
        }
    }
}

/// What the handlers share: the database, the event publisher and the settings. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub(crate) struct MonitoringState {
    db: Database,
    publisher: EventPublisher,
    config: Arc<MonitoringConfig>,
}

impl MonitoringState {
    /// The state over an opened database ([`open_database`]) and the service's bus.
    pub(crate) fn new(db: Database, bus: EventBus, config: MonitoringConfig) -> Self {
        Self {
            db,
            publisher: EventPublisher::new(bus),
            config: Arc::new(config),
        }
    }

    /// The database (for the health check).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// The settings.
    pub(crate) fn config(&self) -> &MonitoringConfig {
        &self.config
    }
}

/// Opens (and migrates) the monitoring-service's database.
pub(crate) async fn open_database(config: &DatabaseConfig) -> Result<Database, StorageError> {
    Database::connect(config, DATABASE, MIGRATIONS).await
}

/// The public API and `/openapi.json`.
pub(crate) fn router(state: MonitoringState) -> Router {
    routes::public(state)
}

/// The generated OpenAPI description.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    routes::openapi()
}

/// Starts the alert rules' subscriptions on `bus`.
pub(crate) async fn subscribe(
    state: &MonitoringState,
    bus: &EventBus,
) -> Result<Vec<SubscriptionHandle>, BusError> {
    let forced = subscribe_to(
        bus,
        &state.config.door_forced_queue,
        EventType::DoorForced,
        state,
        |s, e| async move { on_door_forced(&s, &e).await },
    )
    .await?;
    let denied = subscribe_to(
        bus,
        &state.config.access_denied_queue,
        EventType::AccessDenied,
        state,
        |s, e| async move { on_access_denied(&s, &e).await },
    )
    .await?;
    Ok(vec![forced, denied])
}

/// How long a claim to publish an alert's `alert.triggered` lasts if its holder dies.
const PUBLISH_LEASE_MS: i64 = 60_000;

/// Stores an alert (once per dedup key) and publishes its `alert.triggered` unless it was
/// published or another delivery of the same cause is publishing it right now.
async fn raise(state: &MonitoringState, new: &NewAlert) -> Result<Alert, HandlerError> {
    let pool = state.db.pool();
    let (alert, pending) = store::raise_alert(pool, new)
        .await
        .map_err(HandlerError::transient)?;
    if !pending {
        return Ok(alert);
    }
    let claimed = store::claim_publish(pool, &alert.id, now_millis(), PUBLISH_LEASE_MS)
        .await
        .map_err(HandlerError::transient)?;
    if !claimed {
        return Ok(alert);
    }
    let published = state
        .publisher
        .publish_alert_triggered(AlertTriggered {
            alert_id: alert.id.clone(),
            alert_type: alert.alert_type.clone(),
            severity: alert.severity.into(),
            source: alert.source.clone(),
            description: alert.description.clone(),
            timestamp: alert.created_at,
        })
        .await;
    if let Err(e) = published {
        let _ = store::release_publish(pool, &alert.id).await;
        return Err(HandlerError::transient(e));
    }
    store::mark_published(pool, &alert.id)
        .await
        .map_err(HandlerError::transient)?;
    Ok(alert)
}

/// `door.forced` → a `door_forced` alert.
pub(crate) async fn on_door_forced(
    state: &MonitoringState,
    event: &Event,
) -> Result<Outcome, HandlerError> {
    let Some(d) = event.data_as::<DoorForced>() else {
        return Ok(Outcome::reject("not a door.forced payload"));
    };
    raise(
        state,
        &NewAlert {
            alert_type: "door_forced",
            severity: d.severity.into(),
            source: d.door_id.clone(),
            building_id: Some(d.building_id.clone()),
            description: format!(
                "door {} in building {} was forced open",
                d.door_id, d.building_id
            ),
            dedup_key: format!("door.forced:{}", event.id),
        },
    )
    .await?;
    Ok(Outcome::Ack)
}

/// `access.denied` → counted; a burst at one door → an `access_denied_burst` alert.
pub(crate) async fn on_access_denied(
    state: &MonitoringState,
    event: &Event,
) -> Result<Outcome, HandlerError> {
    let Some(d) = event.data_as::<AccessDenied>() else {
        return Ok(Outcome::reject("not an access.denied payload"));
    };
    let window_ms = i64::try_from(state.config.denied_burst_window.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let at = d.timestamp.timestamp_millis();
    let count = store::record_denial(
        state.db.pool(),
        &event.id,
        &d.door_id,
        &d.building_id,
        at,
        window_ms,
    )
    .await
    .map_err(HandlerError::transient)?;
    let threshold = i64::from(state.config.denied_burst_threshold.max(1));
    if count >= threshold {
        let period = at.div_euclid(window_ms);
        raise(
            state,
            &NewAlert {
                alert_type: "access_denied_burst",
                severity: model::AlertSeverity::High,
                source: d.door_id.clone(),
                building_id: Some(d.building_id.clone()),
                description: format!(
                    "{count} access attempts denied at door {} within {} s",
                    d.door_id,
                    state.config.denied_burst_window.as_secs()
                ),
                dedup_key: format!("access_denied_burst:{}:{period}", d.door_id),
            },
        )
        .await?;
    }
    Ok(Outcome::Ack)
}

/// The camera watchdog: runs every interval until stopped or dropped.
#[derive(Debug)]
pub(crate) struct Watchdog;

impl Watchdog {
    /// Starts it.
    pub(crate) fn start(state: MonitoringState) -> Periodic {
        Periodic::start(
            state.config.watchdog_interval,
            "camera watchdog",
            move || {
                let state = state.clone();
                async move { check_cameras(&state).await }
            },
        )
    }
}

/// Why a watchdog round failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchdogError {
    /// The database.
    #[error("database: {0}")]
    Storage(#[from] sqlx::Error),
    /// The bus.
    #[error("event bus: {0}")]
    Bus(#[from] BusError),
}

/// One watchdog round: marks each overdue camera offline and publishes `camera.offline`
/// (undone when the publish fails, so that the next round tries again). Returns how many
/// cameras went offline.
pub(crate) async fn check_cameras(state: &MonitoringState) -> Result<usize, WatchdogError> {
    let pool = state.db.pool();
    let now = now_millis();
    let mut offline = 0;
    for camera in store::overdue_cameras(pool, now).await? {
        if !store::mark_offline(pool, &camera, now).await? {
            continue; // a heartbeat came in meanwhile
        }
        let silent = (now - store::seen_at(&camera)) / 1000;
        let published = state
            .publisher
            .publish_camera_offline(CameraOffline {
                camera_id: camera.id.clone(),
                building_id: camera.building_id.clone(),
                last_seen: from_millis(store::seen_at(&camera)),
                reason: format!(
                    "no heartbeat for {silent} s (timeout {} s)",
                    camera.heartbeat_timeout_seconds
                ),
            })
            .await;
        if let Err(e) = published {
            store::revert_offline(pool, &camera, now).await?;
            return Err(e.into());
        }
        offline += 1;
    }
    Ok(offline)
}

/// The current time, for handlers.
fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}
