//! `forten analytics rebuild`: recomputes the analytics-service's aggregates from its stored raw
//! events, on the database the service uses (`DATABASE_URL`, else `FORTEN_DATA_DIR`).

use tokio::time::Instant;

use super::CliError;
use crate::cli::AnalyticsDbArgs;
use crate::services::analytics;
use crate::storage::{DatabaseConfig, StorageError};

/// The database settings of `args`, as the services build them.
pub(crate) fn database_config(args: &AnalyticsDbArgs) -> DatabaseConfig {
    DatabaseConfig {
        url: args.database_url.clone(),
        data_dir: args.data_dir.clone(),
        ..DatabaseConfig::default()
    }
}

fn storage(e: StorageError) -> CliError {
    match e {
        StorageError::Config(_) | StorageError::DataDir { .. } => CliError::Usage(e.to_string()),
        StorageError::Query(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
            CliError::Unavailable(e.to_string())
        }
        other => CliError::Failed(other.to_string()),
    }
}

pub(crate) async fn rebuild(args: AnalyticsDbArgs) -> Result<(), CliError> {
    if args.database_url.is_none() {
        // never create an empty database to "rebuild"
        let file = args.data_dir.join(format!("{}.db", analytics::DATABASE));
        if !file.exists() {
            return Err(CliError::Usage(format!(
                "no analytics database at {} (set FORTEN_DATA_DIR or DATABASE_URL)",
                file.display()
            )));
        }
    }
    let db = analytics::open_database(&database_config(&args))
        .await
        .map_err(storage)?;
    let started = Instant::now();
    let done = analytics::rebuild(&db).await.map_err(storage)?;
    db.close().await;
    println!(
        "rebuilt the analytics aggregates from {} stored events in {:.1} s{}",
        done.events,
        started.elapsed().as_secs_f64(),
        if done.skipped > 0 {
            format!(" ({} of an unknown type skipped)", done.skipped)
        } else {
            String::new()
        }
    );
    Ok(())
}
