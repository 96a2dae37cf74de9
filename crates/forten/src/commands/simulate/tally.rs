//! What the simulator counted, what the analytics-service reports, and the two side by side.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use forten_shared::EventType;
use serde::Serialize;
use serde_json::Value;

/// What the system confirmed to the simulator. Only certain outcomes count: a 200 decision
/// of an attempt is one `access.granted` or `access.denied`, a 201 user one `user.created`, a
/// 200 forced door one `door.forced`, a camera seen offline after the simulator silenced it
/// one `camera.offline`, the heartbeat that brought it back one `camera.online`, each of the
/// run's alerts seen on `GET /api/alerts` one `alert.triggered`, each 200 acknowledge or
/// resolve one `alert.acknowledged` or `alert.resolved`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Users created (201).
    pub(crate) users_created: i64,
    /// Attempts answered `granted`.
    pub(crate) granted: i64,
    /// Attempts answered `denied`.
    pub(crate) denied: i64,
    /// Forced doors reported (200).
    pub(crate) forced: i64,
    /// Outages seen offline.
    pub(crate) camera_offline: i64,
    /// Outages brought back online.
    pub(crate) camera_online: i64,
    /// The run's alerts seen (by id).
    pub(crate) alerts: BTreeSet<String>,
    /// Alerts this run acknowledged (by id).
    pub(crate) acknowledged: BTreeSet<String>,
    /// Alerts this run resolved (by id).
    pub(crate) resolved: BTreeSet<String>,
    /// Swipes decided otherwise than planned.
    pub(crate) unexpected_decisions: i64,
    /// Requests whose outcome is unknown (no answer, or a 5xx): each may have made an event
    /// the tally does not hold.
    pub(crate) ambiguous: i64,
    /// Requests refused with a clear answer (nothing happened), by `METHOD route status`.
    pub(crate) refused: BTreeMap<String, i64>,
    /// Things worth knowing about the run (an unplanned outage risk, a skipped action).
    pub(crate) notes: Vec<String>,
}

impl Tally {
    /// The simulator's count of each event type it drives (every other type is 0, except
    /// `service.*`, which the registry publishes whenever an instance comes or goes).
    pub(crate) fn by_type(&self) -> BTreeMap<&'static str, i64> {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        compared_types()
            .map(|t| {
                let n = match t {
                    EventType::UserCreated => self.users_created,
                    EventType::AccessGranted => self.granted,
                    EventType::AccessDenied => self.denied,
                    EventType::DoorForced => self.forced,
                    EventType::CameraOffline => self.camera_offline,
                    EventType::CameraOnline => self.camera_online,
                    EventType::AlertTriggered => count(self.alerts.len()),
                    EventType::AlertAcknowledged => count(self.acknowledged.len()),
                    EventType::AlertResolved => count(self.resolved.len()),
                    _ => 0,
                };
                (t.as_str(), n)
            })
            .collect()
    }
}

/// The catalogue types compared: all but `service.registered` / `service.deregistered`.
fn compared_types() -> impl Iterator<Item = EventType> {
    EventType::ALL.iter().copied().filter(|t| {
        !matches!(
            t,
            EventType::ServiceRegistered | EventType::ServiceDeregistered
        )
    })
}

/// What the analytics-service answered about the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Figures {
    /// `reports?groupBy=type` over the run, less the baseline (events of the range's first
    /// minute counted before the run began).
    pub(crate) by_type: BTreeMap<String, i64>,
    /// The baseline subtracted, per type.
    pub(crate) baseline: BTreeMap<String, i64>,
    /// `access-rates`, summed over the run's buildings.
    pub(crate) granted: i64,
    /// Idem, denied.
    pub(crate) denied: i64,
    /// `forced-doors`, summed over the run's buildings.
    pub(crate) forced: i64,
    /// `camera-availability`: outages of the run's cameras.
    pub(crate) outages: i64,
    /// `alerts`: alerts triggered in the run's range.
    pub(crate) alerts_triggered: i64,
    /// Of those, acknowledged.
    pub(crate) alerts_acknowledged: i64,
    /// Of those, resolved.
    pub(crate) alerts_resolved: i64,
}

/// Counts per `key` of a report's `groups`.
pub(crate) fn report_counts(report: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for g in report["groups"].as_array().into_iter().flatten() {
        if let (Some(k), Some(n)) = (g["key"].as_str(), g["count"].as_i64()) {
            *out.entry(k.to_owned()).or_default() += n;
        }
    }
    out
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Row {
    /// Where the analytics figure comes from.
    pub(crate) group: &'static str,
    /// The figure.
    pub(crate) name: String,
    /// The simulator's count.
    pub(crate) simulator: i64,
    /// The analytics-service's (absent when it could not be read).
    pub(crate) analytics: Option<i64>,
}

impl Row {
    /// Whether both sides agree.
    pub(crate) fn agrees(&self) -> bool {
        self.analytics == Some(self.simulator)
    }
}

/// The report groups.
pub(crate) const BY_TYPE: &str = "events by type (reports?groupBy=type)";
const ACCESS: &str = "access (access-rates, the run's buildings)";
const FORCED: &str = "forced doors (forced-doors, the run's buildings)";
const CAMERAS: &str = "camera outages (camera-availability, the run's cameras)";
const ALERTS: &str = "alerts (alerts, triggered in the range)";

/// The figures side by side. Types neither side saw are left out.
pub(crate) fn compare(tally: &Tally, figures: Option<&Figures>) -> Vec<Row> {
    let mut rows = Vec::new();
    let a = |f: fn(&Figures) -> i64| figures.map(f);
    for (t, n) in tally.by_type() {
        let theirs = figures.map(|f| f.by_type.get(t).copied().unwrap_or(0));
        if n != 0 || theirs.unwrap_or(0) != 0 {
            rows.push(Row {
                group: BY_TYPE,
                name: t.to_owned(),
                simulator: n,
                analytics: theirs,
            });
        }
    }
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    for (group, name, simulator, analytics) in [
        (ACCESS, "granted", tally.granted, a(|f| f.granted)),
        (ACCESS, "denied", tally.denied, a(|f| f.denied)),
        (FORCED, "door.forced", tally.forced, a(|f| f.forced)),
        (CAMERAS, "outages", tally.camera_offline, a(|f| f.outages)),
        (
            ALERTS,
            "triggered",
            count(tally.alerts.len()),
            a(|f| f.alerts_triggered),
        ),
        (
            ALERTS,
            "acknowledged",
            count(tally.acknowledged.len()),
            a(|f| f.alerts_acknowledged),
        ),
        (
            ALERTS,
            "resolved",
            count(tally.resolved.len()),
            a(|f| f.alerts_resolved),
        ),
    ] {
        rows.push(Row {
            group,
            name: name.to_owned(),
            simulator,
            analytics,
        });
    }
    rows
}

/// The rows that disagree, as `name (simulator N, analytics M)`.
pub(crate) fn differences(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| !r.agrees())
        .map(|r| {
            let theirs = r
                .analytics
                .map_or_else(|| "unavailable".to_owned(), |n| n.to_string());
            let what = if r.group == BY_TYPE {
                r.name.clone()
            } else {
                format!("{} {}", r.group.split(' ').next().unwrap_or(""), r.name)
            };
            format!("{what} (simulator {}, analytics {theirs})", r.simulator)
        })
        .collect()
}

/// RFC 3339 with milliseconds, `Z`.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The side-by-side table.
pub(crate) fn render_table(rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(18) + 2;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>9}  {:>9}",
        "figure", "simulator", "analytics"
    );
    let mut group = "";
    for r in rows {
        if r.group != group {
            group = r.group;
            let _ = writeln!(out, "{group}");
        }
        let theirs = r
            .analytics
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        let mark = if r.agrees() { "" } else { "  <- differs" };
        let _ = writeln!(
            out,
            "  {:<w$}  {:>9}  {:>9}{mark}",
            r.name,
            r.simulator,
            theirs,
            w = width - 2
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tally() -> Tally {
        Tally {
            users_created: 8,
            granted: 100,
            denied: 25,
            forced: 3,
            camera_offline: 2,
            camera_online: 2,
            alerts: ["a", "b", "c", "d"].map(str::to_owned).into(),
            acknowledged: ["a", "b"].map(str::to_owned).into(),
            resolved: ["a"].map(str::to_owned).into(),
            ..Tally::default()
        }
    }

    fn figures() -> Figures {
        let by_type = [
            ("user.created", 8),
            ("access.granted", 100),
            ("access.denied", 25),
            ("door.forced", 3),
            ("camera.offline", 2),
            ("camera.online", 2),
            ("alert.triggered", 4),
            ("alert.acknowledged", 2),
            ("alert.resolved", 1),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
        Figures {
            by_type,
            baseline: BTreeMap::new(),
            granted: 100,
            denied: 25,
            forced: 3,
            outages: 2,
            alerts_triggered: 4,
            alerts_acknowledged: 2,
            alerts_resolved: 1,
        }
    }

    #[test]
    fn equal_counts_agree() {
        let rows = compare(&tally(), Some(&figures()));
        assert!(rows.iter().all(Row::agrees), "{rows:?}");
        assert_eq!(rows.iter().filter(|r| r.group == BY_TYPE).count(), 9);
        assert!(differences(&rows).is_empty());
    }

    #[test]
    fn a_difference_is_named() {
        let mut f = figures();
        f.by_type.insert("access.denied".into(), 24);
        f.by_type.insert("user.deleted".into(), 1);
        f.outages = 3;
        let rows = compare(&tally(), Some(&f));
        let diff = differences(&rows);
        assert_eq!(
            diff,
            vec![
                "access.denied (simulator 25, analytics 24)",
                "user.deleted (simulator 0, analytics 1)",
                "camera outages (simulator 2, analytics 3)",
            ]
        );
        let table = render_table(&rows);
        assert!(table.contains("<- differs"), "{table}");
    }

    #[test]
    fn service_events_are_not_compared_and_missing_figures_disagree() {
        let mut f = figures();
        f.by_type.insert("service.registered".into(), 3);
        assert!(compare(&tally(), Some(&f)).iter().all(Row::agrees));
        let rows = compare(&tally(), None);
        assert!(rows.iter().all(|r| !r.agrees()));
        assert!(differences(&rows)[0].contains("analytics unavailable"));
    }

    #[test]
    fn report_groups_are_read_by_key() {
        let report = json!({"groups": [{"key": "access.granted", "count": 5},
            {"key": "door.forced", "count": 1}, {"key": 3}]});
        let counts = report_counts(&report);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts["access.granted"], 5);
    }
}
