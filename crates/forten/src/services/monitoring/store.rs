//! The monitoring-service's tables (`monitoring_*`) and their queries.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::model::{Alert, AlertSeverity, AlertStatus, Camera, CameraStatus};
use crate::storage::{Migration, from_millis, now_millis};

/// The schema, in the dialect SQLite and PostgreSQL share.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "cameras, alerts, recent access denials",
    statements: &[
        "CREATE TABLE IF NOT EXISTS monitoring_cameras (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            building_id TEXT NOT NULL,
            location TEXT,
            heartbeat_timeout_secs BIGINT NOT NULL,
            status TEXT NOT NULL,
            last_seen BIGINT,
            offline_since BIGINT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS monitoring_alerts (
            id TEXT PRIMARY KEY,
            alert_type TEXT NOT NULL,
            severity TEXT NOT NULL,
            source TEXT NOT NULL,
            building_id TEXT,
            description TEXT NOT NULL,
            status TEXT NOT NULL,
            dedup_key TEXT UNIQUE,
            published BIGINT NOT NULL DEFAULT 0,
            publish_claimed_at BIGINT,
            created_at BIGINT NOT NULL,
            acknowledged_at BIGINT,
            acknowledged_by TEXT,
            resolved_at BIGINT,
            resolved_by TEXT)",
        "CREATE INDEX IF NOT EXISTS monitoring_alerts_status ON monitoring_alerts (status, created_at)",
        "CREATE TABLE IF NOT EXISTS monitoring_denials (
            event_id TEXT PRIMARY KEY,
            door_id TEXT NOT NULL,
            building_id TEXT NOT NULL,
            at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS monitoring_denials_door ON monitoring_denials (door_id, at)",
    ],
}];

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn camera(row: &AnyRow) -> Result<Camera, sqlx::Error> {
    Ok(Camera {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        building_id: row.try_get("building_id")?,
        location: row.try_get("location")?,
        heartbeat_timeout_seconds: row.try_get("heartbeat_timeout_secs")?,
        status: CameraStatus::parse(&row.try_get::<String, _>("status")?),
        last_seen: row.try_get::<Option<i64>, _>("last_seen")?.map(from_millis),
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

fn alert(row: &AnyRow) -> Result<Alert, sqlx::Error> {
    Ok(Alert {
        id: row.try_get("id")?,
        alert_type: row.try_get("alert_type")?,
        severity: AlertSeverity::parse(&row.try_get::<String, _>("severity")?),
        source: row.try_get("source")?,
        building_id: row.try_get("building_id")?,
        description: row.try_get("description")?,
        status: AlertStatus::parse(&row.try_get::<String, _>("status")?),
        created_at: from_millis(row.try_get("created_at")?),
        acknowledged_at: row
            .try_get::<Option<i64>, _>("acknowledged_at")?
            .map(from_millis),
        acknowledged_by: row.try_get("acknowledged_by")?,
        resolved_at: row
            .try_get::<Option<i64>, _>("resolved_at")?
            .map(from_millis),
        resolved_by: row.try_get("resolved_by")?,
    })
}

/// The fields of a camera to store.
#[derive(Debug, Clone)]
pub(crate) struct CameraFields<'a> {
    /// Name.
    pub(crate) name: &'a str,
    /// Building.
    pub(crate) building_id: &'a str,
    /// Location.
    pub(crate) location: Option<&'a str>,
    /// Timeout in seconds.
    pub(crate) heartbeat_timeout_secs: i64,
}

/// Inserts a camera (pending until its first heartbeat).
pub(crate) async fn create_camera(
    pool: &AnyPool,
    f: &CameraFields<'_>,
) -> Result<Camera, sqlx::Error> {
    let (id, now) = (new_id(), now_millis());
    sqlx::query(
        "INSERT INTO monitoring_cameras (id, name, building_id, location, \
         heartbeat_timeout_secs, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
    )
    .bind(&id)
    .bind(f.name)
    .bind(f.building_id)
    .bind(f.location.map(str::to_owned))
    .bind(f.heartbeat_timeout_secs)
    .bind(now)
    .execute(pool)
    .await?;
    get_camera(pool, &id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// Lists cameras, oldest first.
pub(crate) async fn list_cameras(
    pool: &AnyPool,
    building_id: Option<&str>,
    status: Option<CameraStatus>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Camera>, sqlx::Error> {
    sqlx::query(
        "SELECT * FROM monitoring_cameras \
         WHERE ($1 = '' OR building_id = $1) AND ($2 = '' OR status = $2) \
         ORDER BY created_at, id LIMIT $3 OFFSET $4",
    )
    .bind(building_id.unwrap_or(""))
    .bind(status.map(CameraStatus::as_str).unwrap_or(""))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?
    .iter()
    .map(camera)
    .collect()
}

/// One camera.
pub(crate) async fn get_camera(pool: &AnyPool, id: &str) -> Result<Option<Camera>, sqlx::Error> {
    sqlx::query("SELECT * FROM monitoring_cameras WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(camera)
        .transpose()
}

/// Replaces a camera's fields; `None` when it does not exist.
pub(crate) async fn update_camera(
    pool: &AnyPool,
    id: &str,
    f: &CameraFields<'_>,
) -> Result<Option<Camera>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE monitoring_cameras SET name = $2, building_id = $3, location = $4, \
         heartbeat_timeout_secs = $5, updated_at = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(f.name)
    .bind(f.building_id)
    .bind(f.location.map(str::to_owned))
    .bind(f.heartbeat_timeout_secs)
    .bind(now_millis())
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    get_camera(pool, id).await
}

/// Deletes a camera; `false` when it does not exist.
pub(crate) async fn delete_camera(pool: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM monitoring_cameras WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// When a camera was last heard of: its last heartbeat, or its registration.
pub(crate) fn seen_at(camera: &Camera) -> i64 {
    camera
        .last_seen
        .unwrap_or(camera.created_at)
        .timestamp_millis()
}

/// Records a heartbeat at `now`. When the camera was offline (and nobody else brought it
/// back meanwhile) returns the time it was last seen before, so that the caller publishes
/// `camera.online`.
pub(crate) async fn heartbeat(
    pool: &AnyPool,
    camera: &Camera,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    if camera.status == CameraStatus::Offline {
        let prev = seen_at(camera);
        let back = sqlx::query(
            "UPDATE monitoring_cameras SET status = 'online', last_seen = $2, \
             offline_since = NULL, updated_at = $2 \
             WHERE id = $1 AND status = 'offline' AND COALESCE(last_seen, created_at) = $3",
        )
        .bind(&camera.id)
        .bind(now)
        .bind(prev)
        .execute(pool)
        .await?;
        if back.rows_affected() == 1 {
            return Ok(Some(prev));
        }
    }
    sqlx::query(
        "UPDATE monitoring_cameras SET status = 'online', last_seen = $2, offline_since = NULL, \
         updated_at = $2 WHERE id = $1",
    )
    .bind(&camera.id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(None)
}

/// Puts a camera back offline after a `camera.online` that could not be published (the
/// camera's next heartbeat tries again).
pub(crate) async fn revert_online(
    pool: &AnyPool,
    id: &str,
    now: i64,
    prev_seen: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE monitoring_cameras SET status = 'offline', last_seen = $3, offline_since = $2 \
         WHERE id = $1 AND status = 'online' AND last_seen = $2",
    )
    .bind(id)
    .bind(now)
    .bind(prev_seen)
    .execute(pool)
    .await?;
    Ok(())
}

/// Cameras silent past their timeout at `now` and not yet offline.
pub(crate) async fn overdue_cameras(pool: &AnyPool, now: i64) -> Result<Vec<Camera>, sqlx::Error> {
    sqlx::query(
        "SELECT * FROM monitoring_cameras WHERE status <> 'offline' \
         AND COALESCE(last_seen, created_at) + heartbeat_timeout_secs * 1000 < $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await?
    .iter()
    .map(camera)
    .collect()
}

/// Marks a camera offline unless a heartbeat arrived meanwhile; `true` when this call did it.
pub(crate) async fn mark_offline(
    pool: &AnyPool,
    camera: &Camera,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE monitoring_cameras SET status = 'offline', offline_since = $2, updated_at = $2 \
         WHERE id = $1 AND status = $3 AND COALESCE(last_seen, created_at) = $4",
    )
    .bind(&camera.id)
    .bind(now)
    .bind(camera.status.as_str())
    .bind(seen_at(camera))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Undoes [`mark_offline`] when `camera.offline` could not be published (the next watchdog
/// round tries again).
pub(crate) async fn revert_offline(
    pool: &AnyPool,
    camera: &Camera,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE monitoring_cameras SET status = $3, offline_since = NULL \
         WHERE id = $1 AND status = 'offline' AND offline_since = $2",
    )
    .bind(&camera.id)
    .bind(now)
    .bind(camera.status.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// A new alert.
#[derive(Debug, Clone)]
pub(crate) struct NewAlert {
    /// Kind.
    pub(crate) alert_type: &'static str,
    /// How bad.
    pub(crate) severity: AlertSeverity,
    /// What raised it.
    pub(crate) source: String,
    /// The building.
    pub(crate) building_id: Option<String>,
    /// For a human.
    pub(crate) description: String,
    /// Unique per cause: a redelivered event finds its alert instead of raising another.
    pub(crate) dedup_key: String,
}

/// Inserts an alert unless one with its dedup key exists; returns the alert of that key and
/// whether its `alert.triggered` still has to be published.
pub(crate) async fn raise_alert(
    pool: &AnyPool,
    new: &NewAlert,
) -> Result<(Alert, bool), sqlx::Error> {
    sqlx::query(
        "INSERT INTO monitoring_alerts (id, alert_type, severity, source, building_id, \
         description, status, dedup_key, published, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, 0, $8) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(new_id())
    .bind(new.alert_type)
    .bind(new.severity.as_str())
    .bind(&new.source)
    .bind(new.building_id.clone())
    .bind(&new.description)
    .bind(&new.dedup_key)
    .bind(now_millis())
    .execute(pool)
    .await?;
    let row = sqlx::query("SELECT * FROM monitoring_alerts WHERE dedup_key = $1")
        .bind(&new.dedup_key)
        .fetch_one(pool)
        .await?;
    let published: i64 = row.try_get("published")?;
    Ok((alert(&row)?, published == 0))
}

/// Claims the publication of an alert's `alert.triggered` for `lease_ms`: `true` when this
/// caller should publish (nobody published it and nobody holds a live claim). Two deliveries of
/// one cause handled at once thus publish once; a claim whose holder died expires.
pub(crate) async fn claim_publish(
    pool: &AnyPool,
    id: &str,
    now: i64,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE monitoring_alerts SET publish_claimed_at = $2 WHERE id = $1 AND published = 0 \
         AND (publish_claimed_at IS NULL OR publish_claimed_at < $3)",
    )
    .bind(id)
    .bind(now)
    .bind(now.saturating_sub(lease_ms))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives up a claim after a failed publish, so that a retry publishes.
pub(crate) async fn release_publish(pool: &AnyPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE monitoring_alerts SET publish_claimed_at = NULL WHERE id = $1 AND published = 0",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that an alert's `alert.triggered` was published.
pub(crate) async fn mark_published(pool: &AnyPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE monitoring_alerts SET published = 1 WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// One alert.
pub(crate) async fn get_alert(pool: &AnyPool, id: &str) -> Result<Option<Alert>, sqlx::Error> {
    sqlx::query("SELECT * FROM monitoring_alerts WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(alert)
        .transpose()
}

/// Lists alerts, newest first.
pub(crate) async fn list_alerts(
    pool: &AnyPool,
    status: Option<AlertStatus>,
    severity: Option<AlertSeverity>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Alert>, sqlx::Error> {
    sqlx::query(
        "SELECT * FROM monitoring_alerts \
         WHERE ($1 = '' OR status = $1) AND ($2 = '' OR severity = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
    )
    .bind(status.map(AlertStatus::as_str).unwrap_or(""))
    .bind(severity.map(AlertSeverity::as_str).unwrap_or(""))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?
    .iter()
    .map(alert)
    .collect()
}

/// Moves an open alert to acknowledged; `false` when it was not open.
pub(crate) async fn acknowledge(
    pool: &AnyPool,
    id: &str,
    by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE monitoring_alerts SET status = 'acknowledged', acknowledged_at = $2, \
         acknowledged_by = $3 WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(now)
    .bind(by)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Undoes [`acknowledge`] when `alert.acknowledged` could not be published.
pub(crate) async fn revert_acknowledge(
    pool: &AnyPool,
    id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE monitoring_alerts SET status = 'open', acknowledged_at = NULL, \
         acknowledged_by = NULL WHERE id = $1 AND status = 'acknowledged' AND acknowledged_at = $2",
    )
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Moves an alert in state `from` to resolved; `false` when it was not in that state.
pub(crate) async fn resolve(
    pool: &AnyPool,
    id: &str,
    from: AlertStatus,
    by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE monitoring_alerts SET status = 'resolved', resolved_at = $2, resolved_by = $3 \
         WHERE id = $1 AND status = $4",
    )
    .bind(id)
    .bind(now)
    .bind(by)
    .bind(from.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Undoes [`resolve`] when `alert.resolved` could not be published.
pub(crate) async fn revert_resolve(
    pool: &AnyPool,
    id: &str,
    to: AlertStatus,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE monitoring_alerts SET status = $3, resolved_at = NULL, resolved_by = NULL \
         WHERE id = $1 AND status = 'resolved' AND resolved_at = $2",
    )
    .bind(id)
    .bind(now)
    .bind(to.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Records one `access.denied` (once per event id) and returns how many denials the door had
/// in `(at - window, at]`. Denials older than ten windows are pruned.
pub(crate) async fn record_denial(
    pool: &AnyPool,
    event_id: &str,
    door_id: &str,
    building_id: &str,
    at: i64,
    window_ms: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO monitoring_denials (event_id, door_id, building_id, at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(door_id)
    .bind(building_id)
    .bind(at)
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM monitoring_denials WHERE door_id = $1 AND at < $2")
        .bind(door_id)
        .bind(at.saturating_sub(window_ms.saturating_mul(10)))
        .execute(pool)
        .await?;
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM monitoring_denials WHERE door_id = $1 AND at > $2 AND at <= $3",
    )
    .bind(door_id)
    .bind(at.saturating_sub(window_ms))
    .bind(at)
    .fetch_one(pool)
    .await
}
