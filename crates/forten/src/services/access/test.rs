//! Unit tests of the decision rules and schedules.

use chrono::{TimeZone, Utc};

use super::decide;
use super::model::{AccessProfile, Decision, Door, ScheduleWindow, Weekday};

fn door(locked: bool) -> Door {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Door {
        id: "d1".into(),
        name: "Lobby".into(),
        building_id: "b1".into(),
        locked,
        created_at: t,
        updated_at: t,
    }
}

fn profile(
    all: bool,
    buildings: &[&str],
    doors: &[&str],
    schedule: Option<Vec<ScheduleWindow>>,
) -> AccessProfile {
    AccessProfile {
        user_id: "u1".into(),
        all_doors: all,
        building_ids: buildings.iter().map(|s| (*s).to_owned()).collect(),
        door_ids: doors.iter().map(|s| (*s).to_owned()).collect(),
        schedule,
        updated_at: Utc::now(),
    }
}

fn window(days: &[Weekday], start: &str, end: &str) -> ScheduleWindow {
    ScheduleWindow {
        days: days.to_vec(),
        start: start.into(),
        end: end.into(),
    }
}

#[test]
fn decisions_follow_profile_door_and_schedule() {
    // Friday 2026-11-27, 09:30 UTC.
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 9, 30, 0).unwrap();
    let office = Some(vec![window(
        &[Weekday::Mon, Weekday::Fri],
        "08:00",
        "18:00",
    )]);
    let night = Some(vec![window(&[Weekday::Fri], "22:00", "24:00")]);
    let cases = [
        (None, false, (Decision::Denied, "unknown_user")),
        (
            Some(profile(true, &[], &[], None)),
            true,
            (Decision::Denied, "door_locked"),
        ),
        (
            Some(profile(true, &[], &[], None)),
            false,
            (Decision::Granted, "authorized"),
        ),
        (
            Some(profile(false, &[], &[], None)),
            false,
            (Decision::Denied, "not_authorized"),
        ),
        (
            Some(profile(false, &["b2"], &["d2"], None)),
            false,
            (Decision::Denied, "not_authorized"),
        ),
        (
            Some(profile(false, &["b1"], &[], None)),
            false,
            (Decision::Granted, "authorized"),
        ),
        (
            Some(profile(false, &[], &["d1"], office.clone())),
            false,
            (Decision::Granted, "authorized"),
        ),
        (
            Some(profile(false, &[], &["d1"], night)),
            false,
            (Decision::Denied, "outside_schedule"),
        ),
        (
            Some(profile(true, &[], &[], Some(vec![]))),
            false,
            (Decision::Denied, "outside_schedule"),
        ),
    ];
    for (i, (p, locked, expected)) in cases.into_iter().enumerate() {
        assert_eq!(decide(p.as_ref(), &door(locked), at), expected, "case {i}");
    }
}

#[test]
fn windows_are_half_open_and_reach_midnight() {
    let w = window(&[Weekday::Fri], "08:00", "24:00");
    let fri = |h, m| Utc.with_ymd_and_hms(2026, 11, 27, h, m, 0).unwrap();
    assert!(!w.contains(fri(7, 59)));
    assert!(w.contains(fri(8, 0)));
    assert!(w.contains(fri(23, 59)));
    let sat = Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap();
    assert!(!w.contains(sat));
    let w = window(&[Weekday::Fri], "08:00", "09:00");
    assert!(!w.contains(fri(9, 0)));
}
