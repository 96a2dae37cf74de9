//! The health report served at `/health` (SPEC §5).

use serde::Serialize;

/// Overall status of a service.
///
/// ```
/// use forten_shared::health::HealthStatus;
/// assert_eq!(serde_json::to_string(&HealthStatus::Degraded).unwrap(), "\"degraded\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every check passes.
    Healthy,
    /// Only non-critical checks fail (still 200 on `/health`, still ready).
    Degraded,
    /// A critical check fails (503 on `/health`, not ready).
    Unhealthy,
}

/// Status of one check.
///
/// ```
/// use forten_shared::health::CheckStatus;
/// assert_eq!(serde_json::to_string(&CheckStatus::Unhealthy).unwrap(), "\"unhealthy\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The last run passed.
    Healthy,
    /// The last run failed or timed out, or the check has not run yet.
    Unhealthy,
}

/// One check in a [`HealthReport`].
///
/// ```
/// use forten_shared::health::{CheckReport, CheckStatus};
/// let c = CheckReport { name: "postgres".into(), status: CheckStatus::Healthy, critical: true, latency_ms: 1.2, message: None };
/// assert_eq!(serde_json::to_value(&c).unwrap()["latencyMs"], 1.2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Check name.
    pub name: String,
    /// Result of the last run.
    pub status: CheckStatus,
    /// Whether a failure makes the service unhealthy.
    pub critical: bool,
    /// Duration of the last run, in milliseconds.
    pub latency_ms: f64,
    /// Failure description (`null` when healthy).
    pub message: Option<String>,
}

/// The body of `GET /health`.
///
/// ```
/// use forten_shared::health::{HealthReport, HealthStatus};
/// let r = HealthReport { status: HealthStatus::Healthy, service: "auth-service".into(), version: "1.0.0".into(),
///     instance_id: "i-1".into(), uptime_seconds: 12, checks: vec![] };
/// let json = serde_json::to_value(&r).unwrap();
/// assert_eq!(json["instanceId"], "i-1");
/// assert_eq!(json["uptimeSeconds"], 12);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// Service name.
    pub service: String,
    /// Service version.
    pub version: String,
    /// Identifier of this instance (UUID v4 unless set).
    pub instance_id: String,
    /// Whole seconds since the monitor was created.
    pub uptime_seconds: u64,
    /// Every registered check, in registration order.
    pub checks: Vec<CheckReport>,
}
