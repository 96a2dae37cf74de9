//! The access-service's resources and request bodies (camelCase on the wire).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::services::api::{AppError, Validate, check_id, check_text};

/// A building.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Building {
    /// Its id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// Postal address.
    pub(crate) address: String,
    /// When it was created.
    pub(crate) created_at: DateTime<Utc>,
    /// When it was last changed.
    pub(crate) updated_at: DateTime<Utc>,
}

/// Body of `POST /api/buildings` and `PUT /api/buildings/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BuildingInput {
    /// Display name, 1 to 200 characters.
    pub(crate) name: String,
    /// Postal address, 1 to 500 characters.
    pub(crate) address: String,
}

impl Validate for BuildingInput {
    fn validate(&self) -> Result<(), AppError> {
        check_text("name", &self.name, 200)?;
        check_text("address", &self.address, 500)
    }
}

/// A door of a building.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Door {
    /// Its id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// The building it belongs to.
    pub(crate) building_id: String,
    /// A locked door denies every attempt (`door_locked`).
    pub(crate) locked: bool,
    /// When it was created.
    pub(crate) created_at: DateTime<Utc>,
    /// When it was last changed.
    pub(crate) updated_at: DateTime<Utc>,
}

/// Body of `POST /api/doors` and `PUT /api/doors/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DoorInput {
    /// Display name, 1 to 200 characters.
    pub(crate) name: String,
    /// An existing building.
    pub(crate) building_id: String,
    /// Locked down (default `false`).
    #[serde(default)]
    pub(crate) locked: bool,
}

impl Validate for DoorInput {
    fn validate(&self) -> Result<(), AppError> {
        check_text("name", &self.name, 200)?;
        check_id("buildingId", &self.building_id)
    }
}

/// `?buildingId=` filter of `GET /api/doors`, with paging.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DoorQuery {
    /// Only the doors of this building.
    pub(crate) building_id: Option<String>,
    /// How many items at most (1 to 1000, default 100).
    pub(crate) limit: Option<i64>,
    /// How many to skip (default 0).
    pub(crate) offset: Option<i64>,
}

impl DoorQuery {
    /// Its paging part.
    pub(crate) fn page(&self) -> crate::services::api::Page {
        crate::services::api::Page {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

impl Validate for DoorQuery {
    fn validate(&self) -> Result<(), AppError> {
        if let Some(b) = &self.building_id {
            check_id("buildingId", b)?;
        }
        self.page().check()
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl From<chrono::Weekday> for Weekday {
    fn from(d: chrono::Weekday) -> Self {
        match d {
            chrono::Weekday::Mon => Self::Mon,
            chrono::Weekday::Tue => Self::Tue,
            chrono::Weekday::Wed => Self::Wed,
            chrono::Weekday::Thu => Self::Thu,
            chrono::Weekday::Fri => Self::Fri,
            chrono::Weekday::Sat => Self::Sat,
            chrono::Weekday::Sun => Self::Sun,
        }
    }
}

/// A window of time in which a profile grants access: on `days`, from `start` to `end`
/// (`HH:MM`, UTC, `end` after `start`; `24:00` is the end of the day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ScheduleWindow {
    /// The days it applies to.
    pub(crate) days: Vec<Weekday>,
    /// Start, `HH:MM` UTC, inclusive.
    #[schema(example = "08:00")]
    pub(crate) start: String,
    /// End, `HH:MM` UTC, exclusive.
    #[schema(example = "18:00")]
    pub(crate) end: String,
}

/// Minutes since midnight of `HH:MM` (00:00 to 24:00).
fn minutes(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= 24 * 60).then_some(total)
}

impl ScheduleWindow {
    fn check(&self, field: &str) -> Result<(), AppError> {
        let start = minutes(&self.start)
            .ok_or_else(|| AppError::invalid(format!("{field}.start"), "must be HH:MM"))?;
        let end = minutes(&self.end)
            .ok_or_else(|| AppError::invalid(format!("{field}.end"), "must be HH:MM"))?;
        if end <= start {
            return Err(AppError::invalid(
                format!("{field}.end"),
                "must be after start",
            ));
        }
        if self.days.len() > 7 {
            return Err(AppError::invalid(format!("{field}.days"), "at most 7 days"));
        }
        Ok(())
    }

    /// Whether `at` falls in this window.
    pub(crate) fn contains(&self, at: DateTime<Utc>) -> bool {
        let now = at.hour() * 60 + at.minute();
        let day = Weekday::from(at.weekday());
        match (minutes(&self.start), minutes(&self.end)) {
            (Some(start), Some(end)) => self.days.contains(&day) && start <= now && now < end,
            _ => false,
        }
    }
}

/// A user's access profile: which doors they may open, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessProfile {
    /// The user.
    pub(crate) user_id: String,
    /// Every door of every building (the `all` default policy).
    pub(crate) all_doors: bool,
    /// Every door of these buildings.
    pub(crate) building_ids: Vec<String>,
    /// These doors.
    pub(crate) door_ids: Vec<String>,
    /// When access is granted; `null` means any time.
    pub(crate) schedule: Option<Vec<ScheduleWindow>>,
    /// When it was last changed.
    pub(crate) updated_at: DateTime<Utc>,
}

/// Body of `PUT /api/access/profiles/{userId}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProfileInput {
    /// Existing buildings (at most 1000).
    #[serde(default)]
    pub(crate) building_ids: Vec<String>,
    /// Existing doors (at most 1000).
    #[serde(default)]
    pub(crate) door_ids: Vec<String>,
    /// Access windows (at most 100); `null` or absent means any time.
    #[serde(default)]
    pub(crate) schedule: Option<Vec<ScheduleWindow>>,
    /// Every door of every building (default `false`).
    #[serde(default)]
    pub(crate) all_doors: bool,
}

impl Validate for ProfileInput {
    fn validate(&self) -> Result<(), AppError> {
        for (field, ids) in [
            ("buildingIds", &self.building_ids),
            ("doorIds", &self.door_ids),
        ] {
            if ids.len() > 1000 {
                return Err(AppError::invalid(field, "at most 1000 ids"));
            }
            for (i, id) in ids.iter().enumerate() {
                check_id(&format!("{field}[{i}]"), id)?;
            }
        }
        if let Some(windows) = &self.schedule {
            if windows.len() > 100 {
                return Err(AppError::invalid("schedule", "at most 100 windows"));
            }
            for (i, w) in windows.iter().enumerate() {
                w.check(&format!("schedule[{i}]"))?;
            }
        }
        Ok(())
    }
}

/// How a door was asked to open (`card`, `pin`, `mobile`, `biometric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Method {
    /// Badge card.
    Card,
    /// PIN code.
    Pin,
    /// Phone.
    Mobile,
    /// Fingerprint, face.
    Biometric,
}

impl From<Method> for forten_shared::events::AccessMethod {
    fn from(m: Method) -> Self {
        use forten_shared::events::AccessMethod;
        match m {
            Method::Card => AccessMethod::Card,
            Method::Pin => AccessMethod::Pin,
            Method::Mobile => AccessMethod::Mobile,
            Method::Biometric => AccessMethod::Biometric,
        }
    }
}

/// Body of `POST /api/access/attempts`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AttemptInput {
    /// Who asks.
    pub(crate) user_id: String,
    /// Which door.
    pub(crate) door_id: String,
    /// How.
    pub(crate) access_method: Method,
}

impl Validate for AttemptInput {
    fn validate(&self) -> Result<(), AppError> {
        check_id("userId", &self.user_id)?;
        check_id("doorId", &self.door_id)
    }
}

/// The outcome of an access attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Decision {
    /// The door opens.
    Granted,
    /// It does not.
    Denied,
}

/// Answer of `POST /api/access/attempts` (200 whatever the decision).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttemptResult {
    /// Granted or denied.
    pub(crate) decision: Decision,
    /// `authorized`, or why it was denied: `unknown_user`, `door_locked`, `not_authorized`,
    /// `outside_schedule`.
    pub(crate) reason: String,
    /// Who asked.
    pub(crate) user_id: String,
    /// Which door.
    pub(crate) door_id: String,
    /// Its building.
    pub(crate) building_id: String,
    /// When it was decided.
    pub(crate) timestamp: DateTime<Utc>,
    /// The id of the `access.granted` / `access.denied` event published.
    pub(crate) event_id: String,
}

/// Answer of `POST /api/doors/{id}/forced`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ForcedResult {
    /// The door.
    pub(crate) door_id: String,
    /// Its building.
    pub(crate) building_id: String,
    /// Always `critical`.
    pub(crate) severity: String,
    /// When it was reported.
    pub(crate) timestamp: DateTime<Utc>,
    /// The id of the `door.forced` event published.
    pub(crate) event_id: String,
}

/// A list of buildings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct BuildingList {
    /// The buildings, oldest first.
    pub(crate) buildings: Vec<Building>,
}

/// A list of doors.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct DoorList {
    /// The doors, oldest first.
    pub(crate) doors: Vec<Door>,
}
