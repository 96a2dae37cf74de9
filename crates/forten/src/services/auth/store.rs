//! The auth-service's table (`auth_users`) and its queries.

use forten_shared::Event;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use super::model::{StoredUser, User, UserRole};
use crate::storage::{Migration, from_millis, now_millis};

/// The schema, in the dialect SQLite and PostgreSQL share.
///
/// `email` is stored normalised (trimmed, lowercase), so its unique index makes addresses
/// unique case-insensitively, and is what decides a concurrent duplicate (409) or a
/// concurrent bootstrap by several instances (one wins).
///
/// `auth_outbox` holds the `user.*` events written in the same transaction as the change they
/// announce, until they are published (see [`OutboxRelay`](super::OutboxRelay)).
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users",
        statements: &[
            "CREATE TABLE IF NOT EXISTS auth_users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            role TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE UNIQUE INDEX IF NOT EXISTS auth_users_email ON auth_users (email)",
            "CREATE INDEX IF NOT EXISTS auth_users_role ON auth_users (role)",
        ],
    },
    Migration {
        version: 2,
        description: "event outbox",
        statements: &[
            "CREATE TABLE IF NOT EXISTS auth_outbox (
            id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            created_at BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS auth_outbox_created ON auth_outbox (created_at)",
        ],
    },
];

fn stored(row: &AnyRow) -> Result<StoredUser, sqlx::Error> {
    let role: String = row.try_get("role")?;
    let role = UserRole::parse(&role).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown role {role:?} in auth_users").into())
    })?;
    Ok(StoredUser {
        user: User {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            role,
            created_at: from_millis(row.try_get("created_at")?),
            updated_at: from_millis(row.try_get("updated_at")?),
        },
        password_hash: row.try_get("password_hash")?,
    })
}

/// The fields of a new user (`email` already normalised, `password_hash` argon2).
#[derive(Clone)]
pub(crate) struct NewUser<'a> {
    /// Normalised e-mail.
    pub(crate) email: &'a str,
    /// argon2id PHC string.
    pub(crate) password_hash: &'a str,
    /// Given name.
    pub(crate) first_name: &'a str,
    /// Family name.
    pub(crate) last_name: &'a str,
    /// Role.
    pub(crate) role: UserRole,
}

impl std::fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Inserts a user; `None` when the e-mail is taken (checked by the unique index, so that two
/// concurrent requests cannot both succeed).
pub(crate) async fn insert_user(
    conn: &mut AnyConnection,
    new: &NewUser<'_>,
) -> Result<Option<User>, sqlx::Error> {
    let (id, now) = (uuid::Uuid::now_v7().to_string(), now_millis());
    let done = sqlx::query(
        "INSERT INTO auth_users \
         (id, email, password_hash, first_name, last_name, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (email) DO NOTHING",
    )
    .bind(&id)
    .bind(new.email)
    .bind(new.password_hash)
    .bind(new.first_name)
    .bind(new.last_name)
    .bind(new.role.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(User {
        id,
        email: new.email.to_owned(),
        first_name: new.first_name.to_owned(),
        last_name: new.last_name.to_owned(),
        role: new.role,
        created_at: from_millis(now),
        updated_at: from_millis(now),
    }))
}

/// One user by id.
pub(crate) async fn get_user(pool: &AnyPool, id: &str) -> Result<Option<StoredUser>, sqlx::Error> {
    sqlx::query("SELECT * FROM auth_users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}

/// One user by (normalised) e-mail.
pub(crate) async fn get_by_email(
    pool: &AnyPool,
    email: &str,
) -> Result<Option<StoredUser>, sqlx::Error> {
    sqlx::query("SELECT * FROM auth_users WHERE email = $1")
        .bind(email)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}

/// Lists users, oldest first.
pub(crate) async fn list_users(
    pool: &AnyPool,
    limit: i64,
    offset: i64,
) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query("SELECT * FROM auth_users ORDER BY created_at, id LIMIT $1 OFFSET $2")
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| stored(row).map(|s| s.user))
        .collect()
}

/// Writes every field of `user` (and the hash) back; `false` when it no longer exists.
pub(crate) async fn update_user(
    conn: &mut AnyConnection,
    user: &User,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE auth_users SET email = $2, password_hash = $3, first_name = $4, last_name = $5, \
         role = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(password_hash)
    .bind(&user.first_name)
    .bind(&user.last_name)
    .bind(user.role.as_str())
    .bind(user.updated_at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a user; `false` when it does not exist.
pub(crate) async fn delete_user(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM auth_users WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// How many admins exist (the bootstrap, and the guard against removing the last one).
pub(crate) async fn count_admins(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM auth_users WHERE role = 'admin'")
        .fetch_one(pool)
        .await
}

/// Queues `event` in the outbox (in the caller's transaction).
pub(crate) async fn enqueue(conn: &mut AnyConnection, event: &Event) -> Result<(), sqlx::Error> {
    let json = event
        .to_vec()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
        .and_then(|b| String::from_utf8(b).map_err(|e| sqlx::Error::Encode(Box::new(e))))?;
    sqlx::query("INSERT INTO auth_outbox (id, event, created_at) VALUES ($1, $2, $3)")
        .bind(&event.id)
        .bind(json)
        .bind(now_millis())
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a published event from the outbox.
pub(crate) async fn dequeue(pool: &AnyPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM auth_outbox WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The oldest queued events written before `before` (Unix ms): (id, event JSON).
pub(crate) async fn pending(
    pool: &AnyPool,
    before: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query(
        "SELECT id, event FROM auth_outbox WHERE created_at <= $1 ORDER BY created_at, id LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| Ok((row.try_get("id")?, row.try_get("event")?)))
    .collect()
}

/// How many events wait in the outbox (tests, metrics).
pub(crate) async fn count_pending(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM auth_outbox")
        .fetch_one(pool)
        .await
}
