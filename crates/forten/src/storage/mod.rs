//! Storage: one code path for the embedded SQLite default and PostgreSQL.
//!
//! Each service opens its own [`Database`] with its own name (`access`, `monitoring`, …) and
//! owns its tables; no service reads another's:
//!
//! - **SQLite** (default, no `DATABASE_URL`): one file per service under the data directory
//!   (`FORTEN_DATA_DIR/<service>.db`), WAL journal, a busy timeout so that concurrent writers
//!   wait instead of failing. A `sqlite://…` URL puts every service in that one file; the table
//!   prefix keeps them apart.
//! - **PostgreSQL** (`DATABASE_URL=postgres://…`): one schema per service (`access`,
//!   `monitoring`), selected through the connection's `search_path`.
//!
//! Tables are always named `<service>_<table>` and the applied migrations of a service are
//! recorded in its own `<service>_schema_migrations` table, so the two layouts above (and a
//! shared file or schema) behave the same. Migrations run at [`Database::connect`], under a
//! PostgreSQL advisory lock so that several instances starting at once apply them once.
//!
//! Queries go through [`sqlx::AnyPool`] with runtime (not compile-time checked) SQL written
//! in the dialect both databases share: `$1` placeholders (SQLite reads them as positional
//! parameters), `TEXT` and `BIGINT` columns (timestamps are Unix milliseconds), and
//! `INSERT … ON CONFLICT … DO NOTHING`.
//!
//! ```ignore
//! let db = Database::connect(&DatabaseConfig::default(), "access", MIGRATIONS).await?;
//! db.ping().await?;
//! ```

// `backend()` and a few helpers serve the integration tests, which compile these sources.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, AssertSqlSafe};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StorageError {
    /// The database URL or settings are unusable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A migration failed.
    #[error("migration {version} ({description}) failed: {source}")]
    Migration {
        /// Its version.
        version: i64,
        /// Its description.
        description: &'static str,
        /// The database error.
        source: sqlx::Error,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// Which database engine a [`Database`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Where and how a service stores its data.
#[derive(Debug, Clone)]
pub(crate) struct DatabaseConfig {
    /// `DATABASE_URL`: `postgres://…` or `sqlite://…`; `None` means one SQLite file per service
    /// under [`data_dir`](Self::data_dir).
    pub(crate) url: Option<String>,
    /// `FORTEN_DATA_DIR`: where the embedded SQLite files live (created when missing).
    pub(crate) data_dir: PathBuf,
    /// PostgreSQL schema of the service's tables; `None` means the service's name. Tests set a
    /// unique one so that they run in parallel on one database.
    pub(crate) schema: Option<String>,
    /// Largest pool size. SQLite has one writer at a time anyway; a few readers beside it.
    pub(crate) max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub(crate) acquire_timeout: Duration,
    /// How long an SQLite writer waits for the lock held by another writer.
    pub(crate) busy_timeout: Duration,
}

impl Default for DatabaseConfig {
    /// SQLite under `./forten-data`, 8 connections, 5 s acquire and busy timeouts.
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("./forten-data"),
            schema: None,
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// One schema change of a service: statements run in order, in one transaction, once.
///
/// Statements use the dialect SQLite and PostgreSQL share (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Increasing version number, unique within the service.
    pub(crate) version: i64,
    /// What it does.
    pub(crate) description: &'static str,
    /// The statements.
    pub(crate) statements: &'static [&'static str],
}

/// A service's database: a connection pool on its own file or schema, migrated.
///
/// Cloning is cheap; clones share the pool.
#[derive(Debug, Clone)]
pub(crate) struct Database {
    pool: AnyPool,
    backend: Backend,
    service: String,
}

/// Checks that a name is usable as an SQL identifier or file name (`[a-z0-9_]`, starts with a
/// letter or `_`, at most 48 characters).
fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl Database {
    /// Opens `service`'s database as `config` says and applies `migrations` not yet applied.
    ///
    /// `service` names the file (SQLite), the schema (PostgreSQL, unless `config.schema`) and
    /// prefixes the migrations table; it must be lowercase letters, digits and `_`.
    pub(crate) async fn connect(
        config: &DatabaseConfig,
        service: &str,
        migrations: &[Migration],
    ) -> Result<Self, StorageError> {
        if !valid_identifier(service) {
            return Err(StorageError::Config(format!(
                "service name {service:?} must be lowercase letters, digits and _"
            )));
        }
        sqlx::any::install_default_drivers();
        let url = match &config.url {
            Some(url) => url.clone(),
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(|source| {
                    StorageError::DataDir {
                        path: config.data_dir.clone(),
                        source,
                    }
                })?;
                let file = config.data_dir.join(format!("{service}.db"));
                format!("sqlite://{}?mode=rwc", file.display())
            }
        };
        // A given SQLite file is created when missing, like the default one.
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url
        };
        let mut options: AnyConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StorageError::Config(format!("DATABASE_URL: {e}")))?;
        let backend = match options.database_url.scheme() {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            other => {
                return Err(StorageError::Config(format!(
                    "DATABASE_URL scheme {other:?} is not supported (postgres:// or sqlite://)"
                )));
            }
        };
        let schema = config.schema.clone().unwrap_or_else(|| service.to_owned());
        if backend == Backend::Postgres {
            if !valid_identifier(&schema) {
                return Err(StorageError::Config(format!(
                    "schema name {schema:?} must be lowercase letters, digits and _"
                )));
            }
            options
                .database_url
                .query_pairs_mut()
                .append_pair("options[search_path]", &schema);
        }
        let busy_ms = config.busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer; the busy timeout makes a second
                        // writer wait for the lock instead of failing with SQLITE_BUSY.
                        sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA busy_timeout = {busy_ms}")))
                            .execute(&mut *conn)
                            .await?;
                        sqlx::raw_sql("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::raw_sql("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let db = Self {
            pool,
            backend,
            service: service.to_owned(),
        };
        db.migrate(&schema, migrations).await?;
        Ok(db)
    }

    /// The connection pool, for queries.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this is.
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// The database health check's probe (`HealthCheck::database(name, move || db.ping())`).
    pub(crate) async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Applies the migrations not yet recorded in `<service>_schema_migrations`.
    async fn migrate(&self, schema: &str, migrations: &[Migration]) -> Result<(), StorageError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            // Several instances may start at once: one applies, the others wait and find the
            // work done. The lock is per schema and released at the end (or on disconnect).
            sqlx::raw_sql(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&mut *conn)
            .await
            .or_else(ignore_duplicate)?;
            sqlx::query("SELECT pg_advisory_lock(hashtext($1)::bigint)")
                .bind(format!("forten.migrate.{schema}"))
                .execute(&mut *conn)
                .await?;
        }
        let result = self.apply(&mut conn, migrations).await;
        if self.backend == Backend::Postgres {
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1)::bigint)")
                .bind(format!("forten.migrate.{schema}"))
                .execute(&mut *conn)
                .await;
        }
        result
    }

    async fn apply(
        &self,
        conn: &mut sqlx::AnyConnection,
        migrations: &[Migration],
    ) -> Result<(), StorageError> {
        let table = format!("{}_schema_migrations", self.service);
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {table} (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )))
        .execute(&mut *conn)
        .await?;
        let applied: Vec<i64> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {table}")))
                .fetch_all(&mut *conn)
                .await?;
        let mut pending: Vec<&Migration> = migrations
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .collect();
        pending.sort_by_key(|m| m.version);
        for m in pending {
            let fail = |source| StorageError::Migration {
                version: m.version,
                description: m.description,
                source,
            };
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(fail)?;
            for statement in m.statements {
                sqlx::raw_sql(*statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
            }
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {table} (version, description, applied_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (version) DO NOTHING"
            )))
            .bind(m.version)
            .bind(m.description)
            .bind(now_millis())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
        }
        Ok(())
    }
}

/// `CREATE SCHEMA IF NOT EXISTS` can still race with another instance's (unique violation).
fn ignore_duplicate(e: sqlx::Error) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Ok(sqlx::any::AnyQueryResult::default())
        }
        _ => Err(e),
    }
}

/// The current time as Unix milliseconds (how timestamps are stored).
pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A stored Unix-milliseconds timestamp as a UTC time.
pub(crate) fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Whether an error is a uniqueness or foreign-key violation (a conflict with existing data).
pub(crate) fn is_constraint_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(
            db.kind(),
            sqlx::error::ErrorKind::UniqueViolation | sqlx::error::ErrorKind::ForeignKeyViolation
        ),
        _ => false,
    }
}
