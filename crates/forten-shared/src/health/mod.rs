//! Health checks (the guide's "Health Checks"): a [`HealthMonitor`] runs registered
//! [`HealthCheck`]s in the background and serves the latest results at `/health`,
//! `/health/live` and `/health/ready` ([`routes`]), exactly as SPEC §5 describes.
//!
//! Health drives behaviour: readiness turns 503 as soon as draining starts, and
//! [`HealthMonitor::subscribe_critical`] tells the event bus when to pause consumers.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use forten_shared::{HealthCheck, HealthMonitor, health::routes};
//!
//! # tokio_test::block_on(async {
//! let monitor = HealthMonitor::new("auth-service", "1.0.0");
//! monitor
//!     .register(HealthCheck::database("postgres", || async { Ok::<_, String>(()) }))
//!     .register(HealthCheck::rabbitmq("rabbitmq", Arc::new(|| true)))
//!     .register(HealthCheck::http_service("access-service", "http://127.0.0.1:3002")
//!         .timeout(Duration::from_secs(2)));
//! monitor.start();
//! let app: axum::Router = routes(monitor.clone());
//! # drop(app);
//! # });
//! ```

mod check;
mod monitor;
mod report;
mod routes;

pub use self::{
    check::{
        CheckFuture, ConnectionState, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, HealthCheck, MIN_INTERVAL,
    },
    monitor::HealthMonitor,
    report::{CheckReport, CheckStatus, HealthReport, HealthStatus},
    routes::{HEALTH_PATH, LIVE_PATH, READY_PATH, routes},
};
