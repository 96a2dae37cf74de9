//! What the analytics-service stores of an event ([`Record`]), its time buckets ([`Grain`]),
//! and the answers of its routes (camelCase on the wire).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use forten_shared::events::{
    AccessDenied, AccessGranted, AlertAcknowledged, AlertResolved, AlertTriggered, CameraOffline,
    CameraOnline, DoorForced, DoorHeldOpen, EventData,
};
use forten_shared::{Event, EventType};
use serde::Serialize;
use utoipa::ToSchema;

/// The part of an event the service keeps: enough to recompute every aggregate
/// (`forten analytics rebuild`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The event's id: the primary key that makes a redelivery count zero times.
    pub(crate) id: String,
    /// Its type.
    pub(crate) event_type: EventType,
    /// Event time, Unix ms: the payload's `timestamp` where it has one, else the envelope's
    /// `time` (never the arrival time).
    pub(crate) at: i64,
    /// The building (`""` when the event has none).
    pub(crate) building_id: String,
    /// The door (`""` when the event has none).
    pub(crate) door_id: String,
    /// The entity of a lifecycle: the camera of `camera.*`, the alert of `alert.*`, the user of
    /// `user.*`, the service of `service.*` (`""` otherwise).
    pub(crate) entity: String,
    /// A number some types carry: `camera.offline` its `lastSeen` (Unix ms, when the outage
    /// began), `camera.online` its `downtimeSeconds`, `door.held_open` its `durationSeconds`.
    pub(crate) value: i64,
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Record {
    /// What is kept of `event`.
    pub(crate) fn from_event(event: &Event) -> Self {
        let mut r = Self {
            id: event.id.clone(),
            event_type: event.event_type(),
            at: event.time.timestamp_millis(),
            building_id: String::new(),
            door_id: String::new(),
            entity: String::new(),
            value: 0,
        };
        let place = |r: &mut Self, building: &str, door: &str, at: &DateTime<Utc>| {
            r.building_id = building.to_owned();
            r.door_id = door.to_owned();
            r.at = at.timestamp_millis();
        };
        match &event.data {
            EventData::AccessGranted(AccessGranted {
                building_id,
                door_id,
                timestamp,
                ..
            })
            | EventData::AccessDenied(AccessDenied {
                building_id,
                door_id,
                timestamp,
                ..
            })
            | EventData::DoorForced(DoorForced {
                building_id,
                door_id,
                timestamp,
                ..
            }) => place(&mut r, building_id, door_id, timestamp),
            EventData::DoorHeldOpen(DoorHeldOpen {
                building_id,
                door_id,
                timestamp,
                duration_seconds,
            }) => {
                place(&mut r, building_id, door_id, timestamp);
                r.value = secs(*duration_seconds);
            }
            EventData::CameraOffline(CameraOffline {
                camera_id,
                building_id,
                last_seen,
                ..
            }) => {
                // counted when it was detected (the envelope time); the outage began at lastSeen
                r.building_id.clone_from(building_id);
                r.entity.clone_from(camera_id);
                r.value = last_seen.timestamp_millis();
            }
            EventData::CameraOnline(CameraOnline {
                camera_id,
                building_id,
                timestamp,
                downtime_seconds,
            }) => {
                place(&mut r, building_id, "", timestamp);
                r.entity.clone_from(camera_id);
                r.value = secs(*downtime_seconds);
            }
            EventData::AlertTriggered(AlertTriggered {
                alert_id,
                timestamp,
                ..
            })
            | EventData::AlertAcknowledged(AlertAcknowledged {
                alert_id,
                timestamp,
                ..
            })
            | EventData::AlertResolved(AlertResolved {
                alert_id,
                timestamp,
                ..
            }) => {
                r.entity.clone_from(alert_id);
                r.at = timestamp.timestamp_millis();
            }
            EventData::UserCreated(p) => r.entity.clone_from(&p.user_id),
            EventData::UserUpdated(p) => r.entity.clone_from(&p.user_id),
            EventData::UserDeleted(p) => r.entity.clone_from(&p.user_id),
            EventData::ServiceRegistered(p) => r.entity.clone_from(&p.service_name),
            EventData::ServiceDeregistered(p) => r.entity.clone_from(&p.service_name),
        }
        // PostgreSQL text cannot hold NUL
        for s in [&mut r.id, &mut r.building_id, &mut r.door_id, &mut r.entity] {
            if s.contains('\0') {
                *s = s.replace('\0', "\u{fffd}");
            }
        }
        r
    }
}

/// A bucket size of the time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Grain {
    /// 1-minute buckets.
    Minute,
    /// 1-hour buckets (rolled up from the same events).
    Hour,
    /// 1-day buckets (UTC days).
    Day,
}

impl Grain {
    /// Every grain, finest first.
    pub(crate) const ALL: [Grain; 3] = [Grain::Minute, Grain::Hour, Grain::Day];

    /// The bucket length in ms.
    pub(crate) const fn millis(self) -> i64 {
        match self {
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    /// Its table.
    pub(crate) const fn table(self) -> &'static str {
        match self {
            Self::Minute => "analytics_minutes",
            Self::Hour => "analytics_hours",
            Self::Day => "analytics_days",
        }
    }

    /// The `interval` query value (`1m`, `1h`, `1d`).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "1m",
            Self::Hour => "1h",
            Self::Day => "1d",
        }
    }

    /// From an `interval` query value: `1m`/`minute`, `1h`/`hour`, `1d`/`day`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "1m" | "minute" => Some(Self::Minute),
            "1h" | "hour" => Some(Self::Hour),
            "1d" | "day" => Some(Self::Day),
            _ => None,
        }
    }

    /// The bucket holding the instant `ms`.
    pub(crate) const fn bucket(self, ms: i64) -> i64 {
        ms.div_euclid(self.millis())
    }

    /// The first bucket starting at or after `ms`.
    pub(crate) const fn bucket_ceil(self, ms: i64) -> i64 {
        let b = ms.div_euclid(self.millis());
        if b * self.millis() == ms { b } else { b + 1 }
    }
}

/// Event counts of one sliding window.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Window {
    /// `1m`, `5m` or `1h`.
    pub(crate) window: String,
    /// Its length.
    pub(crate) seconds: i64,
    /// Events in it, every type.
    pub(crate) total: i64,
    /// `total / seconds`.
    pub(crate) rate_per_second: f64,
    /// Per catalogue type (every type, zeros included).
    pub(crate) by_type: BTreeMap<String, TypeCount>,
}

/// One type's count in a window.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TypeCount {
    /// Events.
    pub(crate) count: i64,
    /// Events per second.
    pub(crate) rate_per_second: f64,
}

/// `GET /api/analytics/metrics`: real-time counts and rates.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Metrics {
    /// The instant the windows end at (their last whole second is included).
    pub(crate) at: DateTime<Utc>,
    /// The last 1 minute, 5 minutes, 1 hour, by event time.
    pub(crate) windows: Vec<Window>,
}

/// A time-series point.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Point {
    /// The bucket's start.
    pub(crate) time: DateTime<Utc>,
    /// Events in the bucket.
    pub(crate) count: i64,
}

/// `GET /api/analytics/timeseries`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TimeSeries {
    /// The type counted (absent: every type).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) event_type: Option<String>,
    /// `1m`, `1h` or `1d`.
    pub(crate) interval: String,
    /// Start of the first bucket.
    pub(crate) from: DateTime<Utc>,
    /// End of the range asked for.
    pub(crate) to: DateTime<Utc>,
    /// Only this building.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) building_id: Option<String>,
    /// Only this door.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) door_id: Option<String>,
    /// Sum of the points.
    pub(crate) total: i64,
    /// Every bucket of the range, empty ones included, oldest first.
    pub(crate) points: Vec<Point>,
}

/// One group of a report.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Group {
    /// The type, building id or door id.
    pub(crate) key: String,
    /// Events in the group.
    pub(crate) count: i64,
    /// The door's building (`groupBy=door`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) building_id: Option<String>,
    /// Per type (`groupBy=building|door`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) by_type: BTreeMap<String, i64>,
}

/// `GET /api/analytics/reports`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    /// Start of the range (rounded down to the minute).
    pub(crate) from: DateTime<Utc>,
    /// End of the range.
    pub(crate) to: DateTime<Utc>,
    /// `building`, `door` or `type`.
    pub(crate) group_by: String,
    /// Events in every group.
    pub(crate) total: i64,
    /// Largest first.
    pub(crate) groups: Vec<Group>,
}

/// Access attempts and their success rate.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessRate {
    /// The building (absent for the overall figure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) building_id: Option<String>,
    /// The door (door figures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) door_id: Option<String>,
    /// `access.granted` events.
    pub(crate) granted: i64,
    /// `access.denied` events.
    pub(crate) denied: i64,
    /// `granted / (granted + denied)`; null without attempts.
    pub(crate) success_rate: Option<f64>,
}

impl AccessRate {
    /// The figure of `granted` and `denied`.
    pub(crate) fn new(
        building_id: Option<String>,
        door_id: Option<String>,
        granted: i64,
        denied: i64,
    ) -> Self {
        let attempts = granted + denied;
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let success_rate = (attempts > 0).then(|| granted as f64 / attempts as f64);
        Self {
            building_id,
            door_id,
            granted,
            denied,
            success_rate,
        }
    }
}

/// `GET /api/analytics/access-rates`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessRates {
    /// Start of the range (rounded down to the minute).
    pub(crate) from: DateTime<Utc>,
    /// End of the range.
    pub(crate) to: DateTime<Utc>,
    /// Every attempt of the range.
    pub(crate) overall: AccessRate,
    /// Per building.
    pub(crate) buildings: Vec<AccessRate>,
    /// Per door.
    pub(crate) doors: Vec<AccessRate>,
}

/// A camera's availability over a range.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CameraFigure {
    /// The camera.
    pub(crate) camera_id: String,
    /// Its building.
    pub(crate) building_id: String,
    /// Share of the range it was online (0 to 1); null when the range lies ahead.
    pub(crate) availability: Option<f64>,
    /// Time offline within the range.
    pub(crate) offline_seconds: f64,
    /// Outages overlapping the range.
    pub(crate) outages: i64,
}

/// A building's camera availability.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BuildingAvailability {
    /// The building.
    pub(crate) building_id: String,
    /// Online time of its cameras over their observed time (0 to 1); null when the range
    /// lies ahead.
    pub(crate) availability: Option<f64>,
    /// Its cameras (those with events up to the range's end).
    pub(crate) cameras: i64,
    /// Offline time of all of them within the range.
    pub(crate) offline_seconds: f64,
}

/// `GET /api/analytics/camera-availability`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CameraAvailability {
    /// Start of the range.
    pub(crate) from: DateTime<Utc>,
    /// End of the range (the present, when it lies ahead).
    pub(crate) to: DateTime<Utc>,
    /// Per camera.
    pub(crate) cameras: Vec<CameraFigure>,
    /// Per building.
    pub(crate) buildings: Vec<BuildingAvailability>,
}

/// Summary of durations.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Durations {
    /// How many.
    pub(crate) count: i64,
    /// Mean; null when none.
    pub(crate) mean_seconds: Option<f64>,
    /// Median (nearest rank); null when none.
    pub(crate) p50_seconds: Option<f64>,
    /// 95th percentile (nearest rank); null when none.
    pub(crate) p95_seconds: Option<f64>,
}

impl Durations {
    /// Summarises durations in ms.
    pub(crate) fn of(mut ms: Vec<i64>) -> Self {
        ms.sort_unstable();
        #[allow(clippy::cast_precision_loss)]
        let secs = |v: i64| v as f64 / 1000.0;
        let count = i64::try_from(ms.len()).unwrap_or(i64::MAX);
        let mean = (!ms.is_empty()).then(|| {
            #[allow(clippy::cast_precision_loss)]
            let n = ms.len() as f64;
            ms.iter().map(|v| secs(*v)).sum::<f64>() / n
        });
        Self {
            count,
            mean_seconds: mean,
            p50_seconds: nearest_rank(&ms, 50).map(secs),
            p95_seconds: nearest_rank(&ms, 95).map(secs),
        }
    }
}

/// Percentile `p` (1 to 100) of sorted values by the nearest-rank method: the value at rank
/// `ceil(p / 100 × n)`.
pub(crate) fn nearest_rank(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// `GET /api/analytics/alerts`: alerts triggered in the range.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AlertFigures {
    /// Start of the range.
    pub(crate) from: DateTime<Utc>,
    /// End of the range.
    pub(crate) to: DateTime<Utc>,
    /// Alerts triggered in the range.
    pub(crate) triggered: i64,
    /// Of those, acknowledged (so far).
    pub(crate) acknowledged: i64,
    /// Of those, resolved (so far).
    pub(crate) resolved: i64,
    /// Of those, neither acknowledged nor resolved.
    pub(crate) open: i64,
    /// From `alert.triggered` to `alert.acknowledged`.
    pub(crate) time_to_acknowledge: Durations,
    /// From `alert.triggered` to `alert.resolved`.
    pub(crate) time_to_resolve: Durations,
}

/// A building's forced doors on a day.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BuildingCount {
    /// The building.
    pub(crate) building_id: String,
    /// `door.forced` events.
    pub(crate) count: i64,
}

/// Forced doors on one UTC day.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ForcedDay {
    /// The day, `YYYY-MM-DD` (UTC).
    pub(crate) date: String,
    /// `door.forced` events.
    pub(crate) count: i64,
    /// Per building, most first.
    pub(crate) buildings: Vec<BuildingCount>,
}

/// `GET /api/analytics/forced-doors`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ForcedDoors {
    /// Start of the first day.
    pub(crate) from: DateTime<Utc>,
    /// End of the range.
    pub(crate) to: DateTime<Utc>,
    /// Every forced door of those days.
    pub(crate) total: i64,
    /// Every day of the range, empty ones included.
    pub(crate) days: Vec<ForcedDay>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_down_and_up() {
        assert_eq!(Grain::Minute.bucket(59_999), 0);
        assert_eq!(Grain::Minute.bucket(60_000), 1);
        assert_eq!(Grain::Minute.bucket(-1), -1);
        assert_eq!(Grain::Hour.bucket_ceil(3_600_000), 1);
        assert_eq!(Grain::Hour.bucket_ceil(3_600_001), 2);
        assert_eq!(Grain::parse("hour"), Some(Grain::Hour));
        assert_eq!(Grain::parse("5m"), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 95), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3], 50), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3], 95), Some(3));
        assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
        let d = Durations::of(vec![600_000, 60_000, 120_000]);
        assert_eq!(d.count, 3);
        assert_eq!(d.mean_seconds, Some(260.0));
        assert_eq!(d.p50_seconds, Some(120.0));
        assert_eq!(d.p95_seconds, Some(600.0));
    }

    #[test]
    fn records_take_the_event_time() {
        use forten_shared::EventBuilder;
        use forten_shared::events::{AccessMethod, CameraOffline};
        let t = DateTime::from_timestamp_millis(1_000_000).unwrap_or_default();
        let e = EventBuilder::new(
            AccessGranted {
                user_id: "u".into(),
                door_id: "d".into(),
                building_id: "b".into(),
                access_method: AccessMethod::Card,
                timestamp: t,
            },
            "x",
        )
        .build();
        let r = Record::from_event(&e);
        assert_eq!(
            (r.at, r.building_id.as_str(), r.door_id.as_str()),
            (1_000_000, "b", "d")
        );
        let e = EventBuilder::new(
            CameraOffline {
                camera_id: "c".into(),
                building_id: "b".into(),
                last_seen: t,
                reason: "r".into(),
            },
            "x",
        )
        .time(DateTime::from_timestamp_millis(2_000_000).unwrap_or_default())
        .build();
        let r = Record::from_event(&e);
        assert_eq!(
            (r.at, r.value, r.entity.as_str()),
            (2_000_000, 1_000_000, "c")
        );
    }
}
