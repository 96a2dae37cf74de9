//! The access-service's tables (`access_*`) and their queries.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::model::{AccessProfile, Building, Door, ScheduleWindow};
use crate::storage::{Migration, from_millis, now_millis};

/// The schema, in the dialect SQLite and PostgreSQL share.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "buildings, doors, access profiles",
    statements: &[
        "CREATE TABLE IF NOT EXISTS access_buildings (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            address TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS access_doors (
            id TEXT PRIMARY KEY,
            building_id TEXT NOT NULL REFERENCES access_buildings (id),
            name TEXT NOT NULL,
            locked BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS access_doors_building ON access_doors (building_id)",
        "CREATE TABLE IF NOT EXISTS access_profiles (
            user_id TEXT PRIMARY KEY,
            all_doors BIGINT NOT NULL,
            building_ids TEXT NOT NULL,
            door_ids TEXT NOT NULL,
            schedule TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
    ],
}];

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn building(row: &AnyRow) -> Result<Building, sqlx::Error> {
    Ok(Building {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        address: row.try_get("address")?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

fn door(row: &AnyRow) -> Result<Door, sqlx::Error> {
    Ok(Door {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        building_id: row.try_get("building_id")?,
        locked: row.try_get::<i64, _>("locked")? != 0,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn encode_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

fn profile(row: &AnyRow) -> Result<AccessProfile, sqlx::Error> {
    let schedule: Option<String> = row.try_get("schedule")?;
    Ok(AccessProfile {
        user_id: row.try_get("user_id")?,
        all_doors: row.try_get::<i64, _>("all_doors")? != 0,
        building_ids: decode_json(&row.try_get::<String, _>("building_ids")?)?,
        door_ids: decode_json(&row.try_get::<String, _>("door_ids")?)?,
        schedule: schedule.as_deref().map(decode_json).transpose()?,
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

/// Inserts a building.
pub(crate) async fn create_building(
    pool: &AnyPool,
    name: &str,
    address: &str,
) -> Result<Building, sqlx::Error> {
    let (id, now) = (new_id(), now_millis());
    sqlx::query(
        "INSERT INTO access_buildings (id, name, address, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(&id)
    .bind(name)
    .bind(address)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(Building {
        id,
        name: name.to_owned(),
        address: address.to_owned(),
        created_at: from_millis(now),
        updated_at: from_millis(now),
    })
}

/// Lists buildings, oldest first.
pub(crate) async fn list_buildings(
    pool: &AnyPool,
    limit: i64,
    offset: i64,
) -> Result<Vec<Building>, sqlx::Error> {
    sqlx::query("SELECT * FROM access_buildings ORDER BY created_at, id LIMIT $1 OFFSET $2")
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?
        .iter()
        .map(building)
        .collect()
}

/// One building.
pub(crate) async fn get_building(
    pool: &AnyPool,
    id: &str,
) -> Result<Option<Building>, sqlx::Error> {
    sqlx::query("SELECT * FROM access_buildings WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(building)
        .transpose()
}

/// Replaces a building's fields; `None` when it does not exist.
pub(crate) async fn update_building(
    pool: &AnyPool,
    id: &str,
    name: &str,
    address: &str,
) -> Result<Option<Building>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_buildings SET name = $2, address = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(address)
    .bind(now_millis())
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    get_building(pool, id).await
}

/// Deletes a building; `false` when it does not exist.
pub(crate) async fn delete_building(pool: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM access_buildings WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// How many doors a building has.
pub(crate) async fn count_doors(pool: &AnyPool, building_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM access_doors WHERE building_id = $1")
        .bind(building_id)
        .fetch_one(pool)
        .await
}

/// Inserts a door.
pub(crate) async fn create_door(
    pool: &AnyPool,
    name: &str,
    building_id: &str,
    locked: bool,
) -> Result<Door, sqlx::Error> {
    let (id, now) = (new_id(), now_millis());
    sqlx::query(
        "INSERT INTO access_doors (id, building_id, name, locked, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&id)
    .bind(building_id)
    .bind(name)
    .bind(i64::from(locked))
    .bind(now)
    .execute(pool)
    .await?;
    Ok(Door {
        id,
        name: name.to_owned(),
        building_id: building_id.to_owned(),
        locked,
        created_at: from_millis(now),
        updated_at: from_millis(now),
    })
}

/// Lists doors (of one building, or all), oldest first.
pub(crate) async fn list_doors(
    pool: &AnyPool,
    building_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Door>, sqlx::Error> {
    let rows = match building_id {
        Some(b) => {
            sqlx::query(
                "SELECT * FROM access_doors WHERE building_id = $1 \
                 ORDER BY created_at, id LIMIT $2 OFFSET $3",
            )
            .bind(b)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query("SELECT * FROM access_doors ORDER BY created_at, id LIMIT $1 OFFSET $2")
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(door).collect()
}

/// One door.
pub(crate) async fn get_door(pool: &AnyPool, id: &str) -> Result<Option<Door>, sqlx::Error> {
    sqlx::query("SELECT * FROM access_doors WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(door)
        .transpose()
}

/// Replaces a door's fields; `None` when it does not exist.
pub(crate) async fn update_door(
    pool: &AnyPool,
    id: &str,
    name: &str,
    building_id: &str,
    locked: bool,
) -> Result<Option<Door>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_doors SET name = $2, building_id = $3, locked = $4, updated_at = $5 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(building_id)
    .bind(i64::from(locked))
    .bind(now_millis())
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    get_door(pool, id).await
}

/// Deletes a door; `false` when it does not exist.
pub(crate) async fn delete_door(pool: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM access_doors WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The ids among `ids` that are not existing rows of `table` (`access_buildings` or
/// `access_doors`), with their position.
pub(crate) async fn missing_ids(
    pool: &AnyPool,
    table: Table,
    ids: &[String],
) -> Result<Option<usize>, sqlx::Error> {
    let sql = match table {
        Table::Buildings => "SELECT COUNT(*) FROM access_buildings WHERE id = $1",
        Table::Doors => "SELECT COUNT(*) FROM access_doors WHERE id = $1",
    };
    for (i, id) in ids.iter().enumerate() {
        let n: i64 = sqlx::query_scalar(sql).bind(id).fetch_one(pool).await?;
        if n == 0 {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Tables whose ids a profile refers to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    /// `access_buildings`.
    Buildings,
    /// `access_doors`.
    Doors,
}

/// A user's profile.
pub(crate) async fn get_profile(
    pool: &AnyPool,
    user_id: &str,
) -> Result<Option<AccessProfile>, sqlx::Error> {
    sqlx::query("SELECT * FROM access_profiles WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(profile)
        .transpose()
}

/// The fields of a profile to store.
#[derive(Debug, Clone)]
pub(crate) struct ProfileFields<'a> {
    /// Every door.
    pub(crate) all_doors: bool,
    /// Buildings.
    pub(crate) building_ids: &'a [String],
    /// Doors.
    pub(crate) door_ids: &'a [String],
    /// Windows.
    pub(crate) schedule: Option<&'a [ScheduleWindow]>,
}

/// Creates or replaces a user's profile; `true` when it was created.
pub(crate) async fn put_profile(
    pool: &AnyPool,
    user_id: &str,
    fields: &ProfileFields<'_>,
) -> Result<bool, sqlx::Error> {
    let schedule = fields.schedule.map(encode_json).transpose()?;
    // Update, else insert; a concurrent insert or delete between the two makes us go round
    // again (a few times at most in practice).
    loop {
        let updated = sqlx::query(
            "UPDATE access_profiles SET all_doors = $2, building_ids = $3, door_ids = $4, \
             schedule = $5, updated_at = $6 WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(i64::from(fields.all_doors))
        .bind(encode_json(&fields.building_ids)?)
        .bind(encode_json(&fields.door_ids)?)
        .bind(schedule.clone())
        .bind(now_millis())
        .execute(pool)
        .await?;
        if updated.rows_affected() > 0 {
            return Ok(false);
        }
        if insert_profile(pool, user_id, fields).await? {
            return Ok(true);
        }
    }
}

/// Inserts a profile unless the user has one; `true` when inserted. Idempotent: a redelivered
/// `user.created` never duplicates or overwrites a profile.
pub(crate) async fn insert_profile(
    pool: &AnyPool,
    user_id: &str,
    fields: &ProfileFields<'_>,
) -> Result<bool, sqlx::Error> {
    let now = now_millis();
    let schedule = fields.schedule.map(encode_json).transpose()?;
    let done = sqlx::query(
        "INSERT INTO access_profiles \
         (user_id, all_doors, building_ids, door_ids, schedule, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(i64::from(fields.all_doors))
    .bind(encode_json(&fields.building_ids)?)
    .bind(encode_json(&fields.door_ids)?)
    .bind(schedule)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a user's profile; `false` when there was none.
pub(crate) async fn delete_profile(pool: &AnyPool, user_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM access_profiles WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// How many profiles exist (tests, metrics).
pub(crate) async fn count_profiles(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM access_profiles")
        .fetch_one(pool)
        .await
}
