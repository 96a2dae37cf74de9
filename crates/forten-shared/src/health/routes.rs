//! `/health`, `/health/live`, `/health/ready` as axum routes.

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use serde_json::json;

use super::{HealthMonitor, HealthStatus};

/// The full health report: 200 when healthy or degraded, 503 when unhealthy.
pub const HEALTH_PATH: &str = "/health";
/// Liveness: 200 while the process serves (a container orchestrator's liveness probe).
pub const LIVE_PATH: &str = "/health/live";
/// Readiness: 200 when every critical check passes and the service is not draining, else 503
/// (a readiness probe; the registry's health check URL).
pub const READY_PATH: &str = "/health/ready";

/// The health routes of a service (the guide's `createHealthRoutes`):
///
/// - `GET /health` → the [`HealthReport`](super::HealthReport), 200 when healthy or degraded,
///   503 when unhealthy;
/// - `GET /health/live` → 200 while the process serves (never depends on dependencies);
/// - `GET /health/ready` → 200 when every critical check passes and the service is not
///   draining, else 503.
///
/// ```
/// use forten_shared::{HealthMonitor, health::routes};
/// use tower::ServiceExt as _;
///
/// # tokio_test::block_on(async {
/// let monitor = HealthMonitor::new("svc", "1.0.0");
/// let app = routes(monitor.clone());
/// let res = app.clone().oneshot(http::Request::get("/health/ready").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 200);
/// monitor.start_draining();
/// let res = app.oneshot(http::Request::get("/health/ready").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 503);
/// # });
/// ```
pub fn routes<S>(monitor: HealthMonitor) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(HEALTH_PATH, get(health))
        .route(LIVE_PATH, get(live))
        .route(READY_PATH, get(ready))
        .with_state(monitor)
}

async fn health(State(monitor): State<HealthMonitor>) -> impl IntoResponse {
    let report = monitor.report();
    let code = if report.status == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(report))
}

async fn live(State(monitor): State<HealthMonitor>) -> impl IntoResponse {
    (
        StatusCode::OK,
        Json(json!({"status": "alive", "service": monitor.service()})),
    )
}

async fn ready(State(monitor): State<HealthMonitor>) -> impl IntoResponse {
    if monitor.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": "draining"})),
        );
    }
    let report = monitor.report();
    if report.status == HealthStatus::Unhealthy {
        let failing: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.critical && c.status == super::CheckStatus::Unhealthy)
            .map(|c| c.name.as_str())
            .collect();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "not_ready", "reason": "critical_check_failed", "checks": failing}),
            ),
        );
    }
    (StatusCode::OK, Json(json!({"status": "ready"})))
}
