//! The analytics-service's HTTP handlers and their OpenAPI description.
//!
//! Every route reads its query string itself ([`Params`]) so that each bad parameter — an
//! unknown name, a repeated one, a time that is not RFC 3339, a range that ends before it
//! starts, an unknown `interval`, `groupBy` or `type` — answers 400 problem+json whose `field`
//! names it.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use forten_shared::EventType;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AnalyticsState;
use super::figures;
use super::model::{
    AccessRate, AccessRates, AlertFigures, BuildingCount, CameraAvailability, Durations, ForcedDay,
    ForcedDoors, Grain, Group, Metrics, Point, Report, TimeSeries, TypeCount, Window,
};
use super::store::{self, Level};
use crate::services::api::{AppError, Problem, documented_router, json};
use crate::storage::{from_millis, now_millis};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "analytics-service",
        description = "Event counts, rates, time series, reports and derived figures"
    ),
    components(schemas(Problem))
)]
struct ApiDoc;

fn public_routes() -> OpenApiRouter<AnalyticsState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(metrics))
        .routes(routes!(timeseries))
        .routes(routes!(reports))
        .routes(routes!(access_rates))
        .routes(routes!(camera_availability))
        .routes(routes!(alerts))
        .routes(routes!(forced_doors))
}

/// The OpenAPI description.
pub(super) fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

/// The public routes with `/openapi.json` and problem+json fallbacks.
pub(super) fn public(state: AnalyticsState) -> Router {
    documented_router(public_routes(), state)
}

/// A route's query string, checked against the parameters it accepts.
#[derive(Debug)]
struct Params(Vec<(String, String)>);

impl Params {
    /// Reads the query string of `uri`; an unknown or repeated parameter is a 400 naming it.
    fn read(uri: &Uri, allowed: &[&str]) -> Result<Self, AppError> {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(AppError::from)?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            let shown: String = name.chars().take(64).collect();
            if !allowed.contains(&name.as_str()) {
                let expected = if allowed.is_empty() {
                    "this route takes no parameters".to_owned()
                } else {
                    format!("unknown parameter; expected {}", allowed.join(", "))
                };
                return Err(AppError::invalid_parameter(shown, expected));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(AppError::invalid_parameter(shown, "given more than once"));
            }
        }
        Ok(Self(pairs))
    }

    /// A parameter's value; empty counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// An RFC 3339 time, as Unix ms.
    fn time(&self, name: &str) -> Result<Option<i64>, AppError> {
        self.get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.timestamp_millis())
                    .map_err(|e| {
                        AppError::invalid_parameter(
                            name,
                            format!("must be an RFC 3339 time such as 2026-11-27T09:00:00Z ({e})"),
                        )
                    })
            })
            .transpose()
    }

    /// `from` and `to` (default: the `default_span_ms` up to now); `from` must come first.
    fn range(&self, default_span_ms: i64) -> Result<(i64, i64), AppError> {
        let to = self.time("to")?.unwrap_or_else(now_millis);
        let from = self.time("from")?.unwrap_or(to - default_span_ms);
        if from >= to {
            return Err(AppError::invalid_parameter("to", "must be after from"));
        }
        Ok((from, to))
    }

    /// An id parameter (`buildingId`, `doorId`): 1 to 128 printable ASCII characters.
    fn id(&self, name: &str) -> Result<Option<String>, AppError> {
        match self.get(name) {
            Some(v) if v.len() > 128 || !v.chars().all(|c| c.is_ascii_graphic()) => Err(
                AppError::invalid_parameter(name, "must be 1 to 128 printable ASCII characters"),
            ),
            v => Ok(v.map(str::to_owned)),
        }
    }

    /// The `type` parameter: a catalogue event type.
    fn event_type(&self) -> Result<Option<EventType>, AppError> {
        self.get("type")
            .map(|v| {
                v.parse::<EventType>().map_err(|_| {
                    let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                    AppError::invalid_parameter(
                        "type",
                        format!("unknown event type; one of {}", all.join(", ")),
                    )
                })
            })
            .transpose()
    }
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Most points a time series answers.
const MAX_POINTS: i64 = 50_000;
/// Most days a forced-doors answer covers.
const MAX_DAYS: i64 = 3_660;

fn time(ms: i64) -> DateTime<Utc> {
    from_millis(ms)
}

#[allow(clippy::cast_precision_loss)] // counts and spans far below 2^52
fn rate(count: i64, seconds: i64) -> f64 {
    count as f64 / seconds.max(1) as f64
}

/// Real-time event counts and rates per type over the last 1 minute, 5 minutes and 1 hour
/// (sliding windows by event time, to the second).
#[utoipa::path(get, path = "/api/analytics/metrics", tag = "analytics",
    responses((status = 200, body = Metrics), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn metrics(State(state): State<AnalyticsState>, uri: Uri) -> Result<Response, AppError> {
    Params::read(&uri, &[])?;
    let now = now_millis();
    let end_s = now.div_euclid(1000) + 1; // the current second counts
    let mut windows = Vec::with_capacity(3);
    for (name, seconds) in [("1m", 60), ("5m", 300), ("1h", 3600)] {
        let counts = store::window_counts(state.db.pool(), end_s - seconds, end_s).await?;
        let by_type: BTreeMap<String, TypeCount> = EventType::ALL
            .iter()
            .map(|t| {
                let count = counts.get(t.as_str()).copied().unwrap_or(0);
                (
                    t.as_str().to_owned(),
                    TypeCount {
                        count,
                        rate_per_second: rate(count, seconds),
                    },
                )
            })
            .collect();
        let total = counts.values().sum();
        windows.push(Window {
            window: name.to_owned(),
            seconds,
            total,
            rate_per_second: rate(total, seconds),
            by_type,
        });
    }
    Ok(json(
        StatusCode::OK,
        &Metrics {
            at: time(now),
            windows,
        },
    ))
}

/// Counts per bucket (`interval` 1m, 1h or 1d; default 1h) of one type (default: every type),
/// optionally of one building or one door, over `[from, to)` (default: the last 24 h). Every
/// bucket of the range is listed, empty ones included.
#[utoipa::path(get, path = "/api/analytics/timeseries", tag = "analytics",
    params(
        ("type" = Option<String>, Query, description = "event type, e.g. access.granted (default: every type)"),
        ("interval" = Option<String>, Query, description = "1m, 1h or 1d (default 1h)"),
        ("from" = Option<String>, Query, description = "RFC 3339 (default: 24 h before to)"),
        ("to" = Option<String>, Query, description = "RFC 3339 (default: now)"),
        ("buildingId" = Option<String>, Query, description = "only this building"),
        ("doorId" = Option<String>, Query, description = "only this door (with buildingId)"),
    ),
    responses((status = 200, body = TimeSeries), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn timeseries(State(state): State<AnalyticsState>, uri: Uri) -> Result<Response, AppError> {
    let p = Params::read(
        &uri,
        &["type", "interval", "from", "to", "buildingId", "doorId"],
    )?;
    let event_type = p.event_type()?;
    let grain = match p.get("interval") {
        None => Grain::Hour,
        Some(v) => Grain::parse(v)
            .ok_or_else(|| AppError::invalid_parameter("interval", "must be 1m, 1h or 1d"))?,
    };
    let (from, to) = p.range(DAY_MS)?;
    let building = p.id("buildingId")?;
    let door = p.id("doorId")?;
    if door.is_some() && building.is_none() {
        return Err(AppError::invalid_parameter(
            "buildingId",
            "is required with doorId",
        ));
    }
    let (b0, b1) = (grain.bucket(from), grain.bucket_ceil(to));
    if b1 - b0 > MAX_POINTS {
        return Err(AppError::invalid_parameter(
            "from",
            format!(
                "the range holds {} buckets of {}; at most {MAX_POINTS}: narrow it or use a longer interval",
                b1 - b0,
                grain.as_str()
            ),
        ));
    }
    let types: Vec<&str> = match event_type {
        Some(t) => vec![t.as_str()],
        None => EventType::ALL.iter().map(|t| t.as_str()).collect(),
    };
    let counts = store::series(
        state.db.pool(),
        grain,
        &types,
        building.as_deref().unwrap_or(""),
        door.as_deref().unwrap_or(""),
        b0,
        b1,
    )
    .await?;
    let points: Vec<Point> = (b0..b1)
        .map(|b| Point {
            time: time(b * grain.millis()),
            count: counts.get(&b).copied().unwrap_or(0),
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &TimeSeries {
            event_type: event_type.map(|t| t.as_str().to_owned()),
            interval: grain.as_str().to_owned(),
            from: time(b0 * grain.millis()),
            to: time(to),
            building_id: building,
            door_id: door,
            total: counts.values().sum(),
            points,
        },
    ))
}

/// The minute range `[floor(from), ceil(to))` of a time range.
fn minutes(from: i64, to: i64) -> (i64, i64) {
    (Grain::Minute.bucket(from), Grain::Minute.bucket_ceil(to))
}

/// Event counts over `[from, to)` (default: the last 24 h; whole minutes) grouped by `type`
/// (default), `building` or `door`, largest first.
#[utoipa::path(get, path = "/api/analytics/reports", tag = "analytics",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 (default: 24 h before to)"),
        ("to" = Option<String>, Query, description = "RFC 3339 (default: now)"),
        ("groupBy" = Option<String>, Query, description = "building, door or type (default type)"),
        ("buildingId" = Option<String>, Query, description = "only this building"),
    ),
    responses((status = 200, body = Report), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn reports(State(state): State<AnalyticsState>, uri: Uri) -> Result<Response, AppError> {
    let p = Params::read(&uri, &["from", "to", "groupBy", "buildingId"])?;
    let group_by = p.get("groupBy").unwrap_or("type");
    let level = match group_by {
        "type" => Level::Type,
        "building" => Level::Building,
        "door" => Level::Door,
        _ => {
            return Err(AppError::invalid_parameter(
                "groupBy",
                "must be building, door or type",
            ));
        }
    };
    let (from, to) = p.range(DAY_MS)?;
    let building = p.id("buildingId")?;
    // a building filter reads the building level (type groups of one building)
    let read = if building.is_some() && level == Level::Type {
        Level::Building
    } else {
        level
    };
    let (m0, m1) = minutes(from, to);
    let rows = store::totals(state.db.pool(), m0, m1, read, None, building.as_deref()).await?;
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for r in rows {
        let (key, building_id) = match level {
            Level::Type => (r.event_type.clone(), None),
            Level::Building => (r.building_id.clone(), None),
            Level::Door => (r.door_id.clone(), Some(r.building_id.clone())),
        };
        let g = groups
            .entry((key.clone(), r.building_id.clone()))
            .or_insert_with(|| Group {
                key,
                count: 0,
                building_id,
                by_type: BTreeMap::new(),
            });
        g.count += r.n;
        if level != Level::Type {
            *g.by_type.entry(r.event_type).or_default() += r.n;
        }
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    if level == Level::Type {
        // with a building filter, the building rows were read: merge them per type
        let mut merged: BTreeMap<String, Group> = BTreeMap::new();
        for g in groups {
            merged
                .entry(g.key.clone())
                .and_modify(|m| m.count += g.count)
                .or_insert(g);
        }
        groups = merged.into_values().collect();
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    Ok(json(
        StatusCode::OK,
        &Report {
            from: time(m0 * Grain::Minute.millis()),
            to: time(to),
            group_by: group_by.to_owned(),
            total: groups.iter().map(|g| g.count).sum(),
            groups,
        },
    ))
}

const ACCESS_TYPES: [&str; 2] = [
    EventType::AccessGranted.as_str(),
    EventType::AccessDenied.as_str(),
];

/// `(granted, denied)` per `(building, door)` of total rows.
fn tally(rows: &[store::Total]) -> BTreeMap<(String, String), (i64, i64)> {
    let mut by: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for r in rows {
        let slot = by
            .entry((r.building_id.clone(), r.door_id.clone()))
            .or_default();
        if r.event_type == ACCESS_TYPES[0] {
            slot.0 += r.n;
        } else {
            slot.1 += r.n;
        }
    }
    by
}

fn add(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    (a.0 + b.0, a.1 + b.1)
}

/// Access success rate — `granted / (granted + denied)` — overall, per building and per door,
/// over `[from, to)` (default: the last 24 h; whole minutes).
#[utoipa::path(get, path = "/api/analytics/access-rates", tag = "analytics",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 (default: 24 h before to)"),
        ("to" = Option<String>, Query, description = "RFC 3339 (default: now)"),
        ("buildingId" = Option<String>, Query, description = "only this building"),
    ),
    responses((status = 200, body = AccessRates), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn access_rates(State(state): State<AnalyticsState>, uri: Uri) -> Result<Response, AppError> {
    let p = Params::read(&uri, &["from", "to", "buildingId"])?;
    let (from, to) = p.range(DAY_MS)?;
    let building = p.id("buildingId")?;
    let (m0, m1) = minutes(from, to);
    let pool = state.db.pool();
    let b = building.as_deref();
    let types = Some(&ACCESS_TYPES[..]);
    let building_rows = store::totals(pool, m0, m1, Level::Building, types, b).await?;
    let door_rows = store::totals(pool, m0, m1, Level::Door, types, b).await?;
    let overall = match b {
        Some(_) => tally(&building_rows).into_values().fold((0, 0), add),
        None => tally(&store::totals(pool, m0, m1, Level::Type, types, None).await?)
            .into_values()
            .fold((0, 0), add),
    };
    let mut by = tally(&building_rows);
    by.extend(tally(&door_rows));
    let (mut buildings, mut doors) = (Vec::new(), Vec::new());
    for ((building_id, door_id), (granted, denied)) in by {
        if door_id.is_empty() {
            buildings.push(AccessRate::new(Some(building_id), None, granted, denied));
        } else {
            doors.push(AccessRate::new(
                Some(building_id),
                Some(door_id),
                granted,
                denied,
            ));
        }
    }
    Ok(json(
        StatusCode::OK,
        &AccessRates {
            from: time(m0 * Grain::Minute.millis()),
            to: time(to),
            overall: AccessRate::new(None, None, overall.0, overall.1),
            buildings,
            doors,
        },
    ))
}

/// Camera availability — the share of time online, from `camera.offline` (outage from its
/// `lastSeen`) and `camera.online` — per camera and per building over `[from, to)` (default:
/// the last 24 h; a range reaching past now ends now).
#[utoipa::path(get, path = "/api/analytics/camera-availability", tag = "analytics",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 (default: 24 h before to)"),
        ("to" = Option<String>, Query, description = "RFC 3339 (default: now)"),
        ("buildingId" = Option<String>, Query, description = "only this building"),
    ),
    responses((status = 200, body = CameraAvailability), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn camera_availability(
    State(state): State<AnalyticsState>,
    uri: Uri,
) -> Result<Response, AppError> {
    let p = Params::read(&uri, &["from", "to", "buildingId"])?;
    let (from, to) = p.range(DAY_MS)?;
    let building = p.id("buildingId")?;
    let end = to.min(now_millis()).max(from);
    let events = store::camera_events(state.db.pool(), end, building.as_deref()).await?;
    let (cameras, buildings) = figures::availability(&events, from, end);
    Ok(json(
        StatusCode::OK,
        &CameraAvailability {
            from: time(from),
            to: time(end),
            cameras,
            buildings,
        },
    ))
}

/// Alerts triggered in `[from, to)` (default: the last 24 h): how many were acknowledged and
/// resolved, and the time to acknowledge and to resolve (mean, p50, p95).
#[utoipa::path(get, path = "/api/analytics/alerts", tag = "analytics",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 (default: 24 h before to)"),
        ("to" = Option<String>, Query, description = "RFC 3339 (default: now)"),
    ),
    responses((status = 200, body = AlertFigures), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn alerts(State(state): State<AnalyticsState>, uri: Uri) -> Result<Response, AppError> {
    let p = Params::read(&uri, &["from", "to"])?;
    let (from, to) = p.range(DAY_MS)?;
    let times = store::alert_times(state.db.pool(), from, to).await?;
    let count = |f: fn(&store::AlertTimes) -> bool| {
        i64::try_from(times.iter().filter(|t| f(t)).count()).unwrap_or(i64::MAX)
    };
    let ack: Vec<i64> = times
        .iter()
        .filter_map(|t| t.acknowledged.map(|a| (a - t.triggered).max(0)))
        .collect();
    let res: Vec<i64> = times
        .iter()
        .filter_map(|t| t.resolved.map(|r| (r - t.triggered).max(0)))
        .collect();
    Ok(json(
        StatusCode::OK,
        &AlertFigures {
            from: time(from),
            to: time(to),
            triggered: count(|_| true),
            acknowledged: count(|t| t.acknowledged.is_some()),
            resolved: count(|t| t.resolved.is_some()),
            open: count(|t| t.acknowledged.is_none() && t.resolved.is_none()),
            time_to_acknowledge: Durations::of(ack),
            time_to_resolve: Durations::of(res),
        },
    ))
}

/// Forced doors per UTC day (and per building) over the days of `[from, to)` (default: the
/// last 7 days), every day listed.
#[utoipa::path(get, path = "/api/analytics/forced-doors", tag = "analytics",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 (default: 7 days before to)"),
        ("to" = Option<String>, Query, description = "RFC 3339 (default: now)"),
        ("buildingId" = Option<String>, Query, description = "only this building"),
    ),
    responses((status = 200, body = ForcedDoors), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn forced_doors(State(state): State<AnalyticsState>, uri: Uri) -> Result<Response, AppError> {
    let p = Params::read(&uri, &["from", "to", "buildingId"])?;
    let (from, to) = p.range(7 * DAY_MS)?;
    let building = p.id("buildingId")?;
    let (d0, d1) = (Grain::Day.bucket(from), Grain::Day.bucket_ceil(to));
    if d1 - d0 > MAX_DAYS {
        return Err(AppError::invalid_parameter(
            "from",
            format!("the range holds {} days; at most {MAX_DAYS}", d1 - d0),
        ));
    }
    let forced = [EventType::DoorForced.as_str()];
    let pool = state.db.pool();
    let buildings =
        store::per_bucket(pool, Grain::Day, &forced, d0, d1, building.as_deref()).await?;
    let totals = match &building {
        Some(_) => None,
        None => Some(store::series(pool, Grain::Day, &forced, "", "", d0, d1).await?),
    };
    let days: Vec<ForcedDay> = (d0..d1)
        .map(|d| {
            let mut per: Vec<BuildingCount> = buildings
                .iter()
                .filter(|(b, _, _)| *b == d)
                .map(|(_, building_id, count)| BuildingCount {
                    building_id: building_id.clone(),
                    count: *count,
                })
                .collect();
            per.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.building_id.cmp(&b.building_id))
            });
            let count = match &totals {
                Some(t) => t.get(&d).copied().unwrap_or(0),
                None => per.iter().map(|b| b.count).sum(),
            };
            ForcedDay {
                date: time(d * DAY_MS).format("%Y-%m-%d").to_string(),
                count,
                buildings: per,
            }
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &ForcedDoors {
            from: time(d0 * DAY_MS),
            to: time(to),
            total: days.iter().map(|d| d.count).sum(),
            days,
        },
    ))
}
