//! Derived figures computed from stored lifecycles: camera outages paired from
//! `camera.offline` / `camera.online`, clipped to a range.

use std::collections::BTreeMap;

use super::model::{BuildingAvailability, CameraFigure};
use super::store::CameraEvent;

/// A camera's outages as `[start, end)` intervals (Unix ms), merged, from its events sorted by
/// time. An outage runs from the offline event's `lastSeen` to the next online event; an
/// online event without an offline one before it reports its outage through its
/// `downtimeSeconds`; a camera still offline at the end is offline until `end`.
pub(crate) fn outages(events: &[CameraEvent], end: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut since: Option<i64> = None;
    for e in events {
        if e.online {
            match since.take() {
                Some(s) => out.push((s, e.at)),
                None if e.downtime_ms > 0 => out.push((e.at - e.downtime_ms, e.at)),
                None => {}
            }
        } else if since.is_none() {
            since = Some(e.at);
        }
    }
    if let Some(s) = since {
        out.push((s, end.max(s)));
    }
    out.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(out.len());
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

#[allow(clippy::cast_precision_loss)] // durations in ms, far below 2^52
fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[allow(clippy::cast_precision_loss)]
fn share(offline: i64, span: i64) -> Option<f64> {
    (span > 0).then(|| 1.0 - offline as f64 / span as f64)
}

/// Availability per camera and per building over `[from, end)`, from every camera event
/// before `end` sorted by camera then time.
pub(crate) fn availability(
    events: &[CameraEvent],
    from: i64,
    end: i64,
) -> (Vec<CameraFigure>, Vec<BuildingAvailability>) {
    let span = (end - from).max(0);
    let mut cameras = Vec::new();
    let mut buildings: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for group in events.chunk_by(|a, b| a.camera_id == b.camera_id) {
        let Some(last) = group.last() else { continue };
        let mut offline = 0;
        let mut count = 0;
        for (s, e) in outages(group, end) {
            let overlap = e.min(end) - s.max(from);
            if overlap > 0 {
                offline += overlap;
                count += 1;
            }
        }
        let b = buildings.entry(last.building_id.clone()).or_default();
        b.0 += 1;
        b.1 += offline;
        cameras.push(CameraFigure {
            camera_id: last.camera_id.clone(),
            building_id: last.building_id.clone(),
            availability: share(offline, span),
            offline_seconds: secs(offline),
            outages: count,
        });
    }
    let buildings = buildings
        .into_iter()
        .map(|(building_id, (n, offline))| BuildingAvailability {
            building_id,
            availability: share(offline, span * n),
            cameras: n,
            offline_seconds: secs(offline),
        })
        .collect();
    (cameras, buildings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(camera: &str, online: bool, at: i64, downtime_ms: i64) -> CameraEvent {
        CameraEvent {
            event_id: format!("{camera}-{at}"),
            camera_id: camera.into(),
            building_id: "b".into(),
            online,
            at,
            downtime_ms,
        }
    }

    #[test]
    fn pairs_offline_with_the_next_online() {
        let events = [
            ev("c", false, 10, 0),
            ev("c", false, 15, 0), // repeated offline: the outage began at 10
            ev("c", true, 30, 20),
            ev("c", true, 50, 5), // online alone: its downtime says 45..50
            ev("c", false, 90, 0),
        ];
        assert_eq!(outages(&events, 100), vec![(10, 30), (45, 50), (90, 100)]);
    }

    #[test]
    fn clips_to_the_range() {
        let events = [ev("c", false, 50, 0), ev("c", true, 150, 100)];
        let (cams, buildings) = availability(&events, 100, 200);
        assert_eq!(cams[0].availability, Some(0.5));
        assert_eq!(cams[0].outages, 1);
        assert_eq!(buildings[0].availability, Some(0.5));
        let (cams, _) = availability(&events, 200, 200);
        assert_eq!(cams[0].availability, None);
    }
}
