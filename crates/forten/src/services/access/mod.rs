//! access-service (SPEC §8): buildings, doors, per-user access profiles and access attempts.
//!
//! - [`router`]: `/api/buildings`, `/api/doors`, `/api/doors/{id}/forced`,
//!   `/api/access/profiles/{userId}`, `/api/access/attempts`, `/openapi.json`.
//! - [`internal_router`]: `/internal/doors`, for other services; the caller wraps it in
//!   `ServiceAuthLayer` with the `internal:read` scope before merging it.
//! - [`subscribe`]: `user.created` on `access-service.user.created` creates the user's profile
//!   as [`DefaultPolicy`] says (idempotently: a redelivery never duplicates or overwrites it);
//!   `user.deleted` on `access-service.user.deleted` removes it.
//!
//! A decision: an unknown user (no profile) is denied `unknown_user`; a locked door
//! `door_locked`; a door outside the profile's doors and buildings `not_authorized`; a time
//! outside its schedule `outside_schedule`; else granted `authorized`. Each attempt publishes
//! `access.granted` or `access.denied`.

mod model;
mod routes;
mod store;

use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use forten_shared::events::{
    BusError, HandlerError, Outcome, SubscriptionHandle, UserCreated, UserDeleted,
};
use forten_shared::{Event, EventBus, EventPublisher, EventType};

pub(crate) use self::model::{AccessProfile, Decision, Door};
pub(crate) use self::store::MIGRATIONS;
use crate::services::subscribe_to;
use crate::storage::{Database, DatabaseConfig, StorageError};

/// The service's name (events' `source`, traces, health).
pub(crate) const SERVICE: &str = "access-service";
/// Its database name: the SQLite file, the PostgreSQL schema, the table prefix.
pub(crate) const DATABASE: &str = "access";
/// The subscription creating profiles for new users.
pub(crate) const USER_CREATED_QUEUE: &str = "access-service.user.created";
/// The subscription removing the profiles of deleted users.
pub(crate) const USER_DELETED_QUEUE: &str = "access-service.user.deleted";
/// The environment variable choosing [`DefaultPolicy`].
pub(crate) const DEFAULT_POLICY_ENV: &str = "ACCESS_DEFAULT_POLICY";

/// The profile a new user gets (`ACCESS_DEFAULT_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DefaultPolicy {
    /// Every door, any time.
    #[default]
    All,
    /// No door until an operator grants some.
    None,
}

/// `ACCESS_DEFAULT_POLICY` is neither `all` nor `none`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{DEFAULT_POLICY_ENV} must be `all` or `none`, not {0:?}")]
pub(crate) struct InvalidPolicy(String);

impl FromStr for DefaultPolicy {
    type Err = InvalidPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Self::All),
            "none" => Ok(Self::None),
            _ => Err(InvalidPolicy(s.to_owned())),
        }
    }
}

/// The access-service's settings.
#[derive(Debug, Clone)]
pub(crate) struct AccessConfig {
    /// The profile a new user gets.
    pub(crate) default_policy: DefaultPolicy,
    /// The `user.created` subscription's queue (several instances share it).
    pub(crate) user_created_queue: String,
    /// The `user.deleted` subscription's queue.
    pub(crate) user_deleted_queue: String,
}

impl Default for AccessConfig {
    /// Policy `all`, the SPEC's queue names.
    fn default() -> Self {
        Self {
            default_policy: DefaultPolicy::All,
            user_created_queue: USER_CREATED_QUEUE.to_owned(),
            user_deleted_queue: USER_DELETED_QUEUE.to_owned(),
        }
    }
}

/// What the handlers share: the database and the event publisher. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AccessState {
    db: Database,
    publisher: EventPublisher,
    config: Arc<AccessConfig>,
}

impl AccessState {
    /// The state over an opened database ([`open_database`]) and the service's bus.
    pub(crate) fn new(db: Database, bus: EventBus, config: AccessConfig) -> Self {
        Self {
            db,
            publisher: EventPublisher::new(bus),
            config: Arc::new(config),
        }
    }

    /// The database (for the health check: `HealthCheck::database(name, move || db.ping())`).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// The settings.
    pub(crate) fn config(&self) -> &AccessConfig {
        &self.config
    }
}

/// Opens (and migrates) the access-service's database.
pub(crate) async fn open_database(config: &DatabaseConfig) -> Result<Database, StorageError> {
    Database::connect(config, DATABASE, MIGRATIONS).await
}

/// The public API and `/openapi.json` (which documents the internal routes too).
pub(crate) fn router(state: AccessState) -> Router {
    routes::public(state)
}

/// `/internal/doors`: wrap it in `ServiceAuthLayer` (`internal:read`) before merging.
pub(crate) fn internal_router(state: AccessState) -> Router {
    routes::internal(state)
}

/// The generated OpenAPI description.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    routes::openapi()
}

/// Starts the service's subscriptions on `bus`.
pub(crate) async fn subscribe(
    state: &AccessState,
    bus: &EventBus,
) -> Result<Vec<SubscriptionHandle>, BusError> {
    let created = subscribe_to(
        bus,
        &state.config.user_created_queue,
        EventType::UserCreated,
        state,
        |s, e| async move { on_user_created(&s, &e).await },
    )
    .await?;
    let deleted = subscribe_to(
        bus,
        &state.config.user_deleted_queue,
        EventType::UserDeleted,
        state,
        |s, e| async move { on_user_deleted(&s, &e).await },
    )
    .await?;
    Ok(vec![created, deleted])
}

/// `user.created`: inserts the default profile unless the user already has one.
pub(crate) async fn on_user_created(
    state: &AccessState,
    event: &Event,
) -> Result<Outcome, HandlerError> {
    let Some(user) = event.data_as::<UserCreated>() else {
        return Ok(Outcome::reject("not a user.created payload"));
    };
    if user.user_id.is_empty() {
        return Ok(Outcome::reject("empty userId"));
    }
    let fields = store::ProfileFields {
        all_doors: state.config.default_policy == DefaultPolicy::All,
        building_ids: &[],
        door_ids: &[],
        schedule: None,
    };
    let inserted = store::insert_profile(state.db.pool(), &user.user_id, &fields)
        .await
        .map_err(HandlerError::transient)?;
    tracing::debug!(user_id = %user.user_id, inserted, "access profile for new user");
    Ok(Outcome::Ack)
}

/// `user.deleted`: removes the user's profile (a repeat finds nothing to remove).
pub(crate) async fn on_user_deleted(
    state: &AccessState,
    event: &Event,
) -> Result<Outcome, HandlerError> {
    let Some(user) = event.data_as::<UserDeleted>() else {
        return Ok(Outcome::reject("not a user.deleted payload"));
    };
    store::delete_profile(state.db.pool(), &user.user_id)
        .await
        .map_err(HandlerError::transient)?;
    Ok(Outcome::Ack)
}

/// Decides an attempt on `door` by `profile` at `at`: (`decision`, `reason`).
pub(crate) fn decide(
    profile: Option<&AccessProfile>,
    door: &Door,
    at: chrono::DateTime<chrono::Utc>,
) -> (Decision, &'static str) {
    let Some(profile) = profile else {
        return (Decision::Denied, "unknown_user");
    };
    if door.locked {
        return (Decision::Denied, "door_locked");
    }
    let allowed = profile.all_doors
        || profile.door_ids.iter().any(|d| d == &door.id)
        || profile.building_ids.iter().any(|b| b == &door.building_id);
    if !allowed {
        return (Decision::Denied, "not_authorized");
    }
    if let Some(windows) = &profile.schedule
        && !windows.iter().any(|w| w.contains(at))
    {
        return (Decision::Denied, "outside_schedule");
    }
    (Decision::Granted, "authorized")
}

#[cfg(test)]
mod test;
