//! Storage: both backends, migrations once, per-service tables, ping, bad configuration.

use crate::storage::{Backend as Engine, Database, DatabaseConfig, Migration, StorageError};
use crate::support::{Backend, TestDb};

const V1: Migration = Migration {
    version: 1,
    description: "items",
    statements: &["CREATE TABLE IF NOT EXISTS svc_items (id TEXT PRIMARY KEY, n BIGINT NOT NULL)"],
};
const V2: Migration = Migration {
    version: 2,
    description: "more items",
    statements: &["INSERT INTO svc_items (id, n) VALUES ('seed', 1)"],
};

async fn migrations_apply_once(backend: Backend) {
    let db = TestDb::new(backend);
    let first = Database::connect(&db.config, "svc", &[V1]).await.unwrap();
    assert_eq!(
        first.backend(),
        if backend == Backend::Sqlite {
            Engine::Sqlite
        } else {
            Engine::Postgres
        }
    );
    first.ping().await.unwrap();
    // Reopening applies only what is new; V2 would fail on a second run (duplicate key).
    let second = Database::connect(&db.config, "svc", &[V1, V2])
        .await
        .unwrap();
    let third = Database::connect(&db.config, "svc", &[V2, V1])
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM svc_items")
        .fetch_one(third.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM svc_schema_migrations")
        .fetch_one(second.pool())
        .await
        .unwrap();
    assert_eq!(versions, 2);
    for d in [first, second, third] {
        d.close().await;
    }
}

#[tokio::test]
async fn migrations_apply_once_sqlite() {
    migrations_apply_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn migrations_apply_once_postgres() {
    migrations_apply_once(Backend::Postgres).await;
}

#[tokio::test]
async fn concurrent_starts_migrate_once_postgres() {
    let db = TestDb::new(Backend::Postgres);
    let (a, b) = tokio::join!(
        Database::connect(&db.config, "svc", &[V1, V2]),
        Database::connect(&db.config, "svc", &[V1, V2]),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM svc_items")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn sqlite_files_per_service_in_wal_mode() {
    let db = TestDb::new(Backend::Sqlite);
    let a = Database::connect(&db.config, "alpha", &[]).await.unwrap();
    let b = Database::connect(&db.config, "beta", &[]).await.unwrap();
    assert!(db.config.data_dir.join("alpha.db").exists());
    assert!(db.config.data_dir.join("beta.db").exists());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(b.pool())
        .await
        .unwrap();
    assert_eq!(timeout, 5000);
}

#[tokio::test]
async fn a_shared_sqlite_url_keeps_services_apart() {
    let db = TestDb::new(Backend::Sqlite);
    std::fs::create_dir_all(&db.config.data_dir).unwrap();
    let file = db.config.data_dir.join("shared.db");
    let config = DatabaseConfig {
        url: Some(format!("sqlite://{}?mode=rwc", file.display())),
        ..db.config.clone()
    };
    let access = crate::services::access::open_database(&config)
        .await
        .unwrap();
    let monitoring = crate::services::monitoring::open_database(&config)
        .await
        .unwrap();
    for (pool, table) in [
        (access.pool(), "access_schema_migrations"),
        (monitoring.pool(), "monitoring_schema_migrations"),
    ] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(n, 1, "{table}");
    }
}

#[tokio::test]
async fn bad_configuration_is_one_clear_error() {
    let db = TestDb::new(Backend::Sqlite);
    let cases = [
        (Some("mysql://localhost/x"), "svc", "not supported"),
        (Some("not a url"), "svc", "DATABASE_URL"),
        (None, "Bad-Name", "service name"),
    ];
    for (url, service, expected) in cases {
        let config = DatabaseConfig {
            url: url.map(str::to_owned),
            ..db.config.clone()
        };
        let err = Database::connect(&config, service, &[]).await.unwrap_err();
        assert!(matches!(err, StorageError::Config(_)), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    let unreachable = DatabaseConfig {
        url: Some("postgres://postgres@127.0.0.1:1/test".to_owned()),
        acquire_timeout: std::time::Duration::from_secs(2),
        ..db.config.clone()
    };
    let err = Database::connect(&unreachable, "svc", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Query(_)), "{err}");
}
