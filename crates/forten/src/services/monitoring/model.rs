//! The monitoring-service's resources and request bodies (camelCase on the wire).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::services::api::{AppError, Page, Validate, check_id, check_text};

/// Where a camera stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CameraStatus {
    /// Registered, no heartbeat yet.
    Pending,
    /// Heartbeats arrive in time.
    Online,
    /// Silent past its heartbeat timeout.
    Offline,
}

impl CameraStatus {
    /// As stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }

    /// From storage (unknown text reads as `pending`).
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "online" => Self::Online,
            "offline" => Self::Offline,
            _ => Self::Pending,
        }
    }
}

/// A camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Camera {
    /// Its id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// The building it watches (an access-service building id).
    pub(crate) building_id: String,
    /// Where in the building.
    pub(crate) location: Option<String>,
    /// Silence after which it is offline.
    pub(crate) heartbeat_timeout_seconds: i64,
    /// Pending, online or offline.
    pub(crate) status: CameraStatus,
    /// Its last heartbeat.
    pub(crate) last_seen: Option<DateTime<Utc>>,
    /// When it was created.
    pub(crate) created_at: DateTime<Utc>,
    /// When it was last changed.
    pub(crate) updated_at: DateTime<Utc>,
}

/// Body of `POST /api/cameras` and `PUT /api/cameras/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CameraInput {
    /// Display name, 1 to 200 characters.
    pub(crate) name: String,
    /// The building it watches.
    pub(crate) building_id: String,
    /// Where in the building (at most 200 characters).
    #[serde(default)]
    pub(crate) location: Option<String>,
    /// Silence after which it is offline: 1 to 86400 s (default: the service's setting).
    #[serde(default)]
    pub(crate) heartbeat_timeout_seconds: Option<i64>,
}

impl Validate for CameraInput {
    fn validate(&self) -> Result<(), AppError> {
        check_text("name", &self.name, 200)?;
        check_id("buildingId", &self.building_id)?;
        if let Some(l) = &self.location {
            check_text("location", l, 200)?;
        }
        if let Some(t) = self.heartbeat_timeout_seconds
            && !(1..=86_400).contains(&t)
        {
            return Err(AppError::invalid(
                "heartbeatTimeoutSeconds",
                "must be between 1 and 86400",
            ));
        }
        Ok(())
    }
}

/// Filters of `GET /api/cameras`, with paging.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CameraQuery {
    /// Only the cameras of this building.
    pub(crate) building_id: Option<String>,
    /// Only cameras in this state.
    pub(crate) status: Option<CameraStatus>,
    /// How many items at most (1 to 1000, default 100).
    pub(crate) limit: Option<i64>,
    /// How many to skip (default 0).
    pub(crate) offset: Option<i64>,
}

impl CameraQuery {
    /// Its paging part.
    pub(crate) fn page(&self) -> Page {
        Page {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

impl Validate for CameraQuery {
    fn validate(&self) -> Result<(), AppError> {
        if let Some(b) = &self.building_id {
            check_id("buildingId", b)?;
        }
        self.page().check()
    }
}

/// A list of cameras.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct CameraList {
    /// The cameras, oldest first.
    pub(crate) cameras: Vec<Camera>,
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AlertStatus {
    /// Raised, nobody on it yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Done.
    Resolved,
}

impl AlertStatus {
    /// As stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// From storage (unknown text reads as `open`).
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            _ => Self::Open,
        }
    }
}

/// Severity of an alert (`low`, `medium`, `high`, `critical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AlertSeverity {
    /// Informational.
    Low,
    /// Worth a look.
    Medium,
    /// Needs attention.
    High,
    /// Needs attention now.
    Critical,
}

impl From<forten_shared::events::Severity> for AlertSeverity {
    fn from(s: forten_shared::events::Severity) -> Self {
        use forten_shared::events::Severity;
        match s {
            Severity::Low => Self::Low,
            Severity::Medium => Self::Medium,
            Severity::High => Self::High,
            Severity::Critical => Self::Critical,
        }
    }
}

impl From<AlertSeverity> for forten_shared::events::Severity {
    fn from(s: AlertSeverity) -> Self {
        use forten_shared::events::Severity;
        match s {
            AlertSeverity::Low => Severity::Low,
            AlertSeverity::Medium => Severity::Medium,
            AlertSeverity::High => Severity::High,
            AlertSeverity::Critical => Severity::Critical,
        }
    }
}

impl AlertSeverity {
    /// As stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// From storage (unknown text reads as `high`).
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "low" => Self::Low,
            "medium" => Self::Medium,
            "critical" => Self::Critical,
            _ => Self::High,
        }
    }
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Alert {
    /// Its id.
    pub(crate) id: String,
    /// Kind: `door_forced`, `access_denied_burst`.
    #[serde(rename = "type")]
    pub(crate) alert_type: String,
    /// How bad.
    pub(crate) severity: AlertSeverity,
    /// What raised it (a door id).
    pub(crate) source: String,
    /// The building concerned.
    pub(crate) building_id: Option<String>,
    /// For a human.
    pub(crate) description: String,
    /// Open, acknowledged or resolved.
    pub(crate) status: AlertStatus,
    /// When it was raised.
    pub(crate) created_at: DateTime<Utc>,
    /// When it was acknowledged.
    pub(crate) acknowledged_at: Option<DateTime<Utc>>,
    /// By whom.
    pub(crate) acknowledged_by: Option<String>,
    /// When it was resolved.
    pub(crate) resolved_at: Option<DateTime<Utc>>,
    /// By whom.
    pub(crate) resolved_by: Option<String>,
}

/// Filters of `GET /api/alerts`, with paging.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertQuery {
    /// Only alerts in this state.
    pub(crate) status: Option<AlertStatus>,
    /// Only alerts of this severity.
    pub(crate) severity: Option<AlertSeverity>,
    /// How many items at most (1 to 1000, default 100).
    pub(crate) limit: Option<i64>,
    /// How many to skip (default 0).
    pub(crate) offset: Option<i64>,
}

impl AlertQuery {
    /// Its paging part.
    pub(crate) fn page(&self) -> Page {
        Page {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

impl Validate for AlertQuery {
    fn validate(&self) -> Result<(), AppError> {
        self.page().check()
    }
}

/// A list of alerts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct AlertList {
    /// The alerts, newest first.
    pub(crate) alerts: Vec<Alert>,
}

/// Optional body of `POST /api/alerts/{id}/acknowledge` and `…/resolve`: who does it
/// (default: the `x-user-id` header the gateway sets, else `operator`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AlertAction {
    /// Who acknowledges (for `acknowledge`).
    #[serde(default)]
    pub(crate) acknowledged_by: Option<String>,
    /// Who resolves (for `resolve`).
    #[serde(default)]
    pub(crate) resolved_by: Option<String>,
}

impl Validate for AlertAction {
    fn validate(&self) -> Result<(), AppError> {
        if let Some(by) = &self.acknowledged_by {
            check_text("acknowledgedBy", by, 200)?;
        }
        if let Some(by) = &self.resolved_by {
            check_text("resolvedBy", by, 200)?;
        }
        Ok(())
    }
}
