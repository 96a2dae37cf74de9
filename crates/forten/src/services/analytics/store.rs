//! The analytics-service's tables (`analytics_*`): the raw events, the time buckets, the
//! camera and alert lifecycles; the batch write, the queries, `rebuild` and retention.
//!
//! - `analytics_events`: one row per event id ([`Record`]); its primary key is the
//!   deduplication: a batch inserts with `ON CONFLICT (id) DO NOTHING … RETURNING id` and only
//!   the rows actually inserted go on to the aggregates.
//! - `analytics_minutes` / `_hours` / `_days`: counts per `(type, building, door, bucket)` at
//!   three levels — `("", "")` every event of the type, `(building, "")` the building's,
//!   `(building, door)` the door's — so that every series and report reads its rows directly.
//! - `analytics_seconds`: counts per `(type, second)` of the last two hours, for the sliding
//!   1 m / 5 m / 1 h windows.
//! - `analytics_camera_events`, `analytics_alert_events`: the `camera.*` and `alert.*`
//!   events, from which outages and alert timings are paired at query time (so that late and
//!   out-of-order events pair as well as ordered ones).
//!
//! Every statement of a batch runs in one transaction; keys are written in sorted order so that
//! two instances writing at once on PostgreSQL never deadlock.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use forten_shared::EventType;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Row};

use super::model::{Grain, Record};
use crate::storage::Migration;

/// The schema, in the dialect SQLite and PostgreSQL share.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "raw events, time buckets, camera and alert lifecycles",
    statements: &[
        "CREATE TABLE IF NOT EXISTS analytics_events (
            id TEXT PRIMARY KEY,
            event_type TEXT NOT NULL,
            at BIGINT NOT NULL,
            building_id TEXT NOT NULL,
            door_id TEXT NOT NULL,
            entity TEXT NOT NULL,
            value BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS analytics_events_at ON analytics_events (at)",
        "CREATE TABLE IF NOT EXISTS analytics_seconds (
            event_type TEXT NOT NULL,
            bucket BIGINT NOT NULL,
            n BIGINT NOT NULL,
            PRIMARY KEY (event_type, bucket))",
        "CREATE INDEX IF NOT EXISTS analytics_seconds_bucket ON analytics_seconds (bucket)",
        "CREATE TABLE IF NOT EXISTS analytics_minutes (
            event_type TEXT NOT NULL,
            building_id TEXT NOT NULL,
            door_id TEXT NOT NULL,
            bucket BIGINT NOT NULL,
            n BIGINT NOT NULL,
            PRIMARY KEY (event_type, building_id, door_id, bucket))",
        "CREATE INDEX IF NOT EXISTS analytics_minutes_bucket ON analytics_minutes (bucket)",
        "CREATE TABLE IF NOT EXISTS analytics_hours (
            event_type TEXT NOT NULL,
            building_id TEXT NOT NULL,
            door_id TEXT NOT NULL,
            bucket BIGINT NOT NULL,
            n BIGINT NOT NULL,
            PRIMARY KEY (event_type, building_id, door_id, bucket))",
        "CREATE INDEX IF NOT EXISTS analytics_hours_bucket ON analytics_hours (bucket)",
        "CREATE TABLE IF NOT EXISTS analytics_days (
            event_type TEXT NOT NULL,
            building_id TEXT NOT NULL,
            door_id TEXT NOT NULL,
            bucket BIGINT NOT NULL,
            n BIGINT NOT NULL,
            PRIMARY KEY (event_type, building_id, door_id, bucket))",
        "CREATE INDEX IF NOT EXISTS analytics_days_bucket ON analytics_days (bucket)",
        "CREATE TABLE IF NOT EXISTS analytics_camera_events (
            event_id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            building_id TEXT NOT NULL,
            online BIGINT NOT NULL,
            at BIGINT NOT NULL,
            downtime_ms BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS analytics_camera_events_at ON analytics_camera_events (at)",
        "CREATE TABLE IF NOT EXISTS analytics_alert_events (
            event_id TEXT PRIMARY KEY,
            alert_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS analytics_alert_events_kind ON analytics_alert_events (kind, at)",
        "CREATE INDEX IF NOT EXISTS analytics_alert_events_alert ON analytics_alert_events (alert_id)",
    ],
}];

/// How long the per-second counts are kept (the longest sliding window is 1 h).
pub(crate) const SECONDS_KEPT: i64 = 2 * 3600;

/// The aggregate tables `rebuild` recomputes.
const DERIVED_TABLES: [&str; 6] = [
    "analytics_seconds",
    "analytics_minutes",
    "analytics_hours",
    "analytics_days",
    "analytics_camera_events",
    "analytics_alert_events",
];

type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments>;

/// A row of a multi-row `INSERT`.
trait SqlRow {
    /// Its columns.
    const COLUMNS: usize;
    /// Binds its values in column order.
    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q>;
}

/// Row counts per statement: a few fixed sizes, so that each connection's prepared statements
/// are reused instead of one per batch length.
const CHUNKS: [usize; 5] = [100, 25, 5, 2, 1];

/// `head VALUES ($1, …), (…) tail` for `rows` rows of `cols` columns.
fn values_sql(head: &str, cols: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * cols * 6);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", r * cols + c + 1);
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// Runs `head VALUES … tail` over `rows` in chunks; returns the rows the statements returned
/// (for `RETURNING`).
async fn insert_rows<R: SqlRow>(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    rows: &[R],
    returning: bool,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut out = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let size = CHUNKS
            .iter()
            .copied()
            .find(|c| *c <= rest.len())
            .unwrap_or(1);
        let (chunk, tail_rows) = rest.split_at(size);
        rest = tail_rows;
        let sql = values_sql(head, R::COLUMNS, size, tail);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            q = row.bind(q);
        }
        if returning {
            out.extend(q.fetch_all(&mut *conn).await?);
        } else {
            q.execute(&mut *conn).await?;
        }
    }
    Ok(out)
}

impl SqlRow for Record {
    const COLUMNS: usize = 7;
    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(self.id.clone())
            .bind(self.event_type.as_str())
            .bind(self.at)
            .bind(self.building_id.clone())
            .bind(self.door_id.clone())
            .bind(self.entity.clone())
            .bind(self.value)
    }
}

/// A bucket count: `(type, building, door, bucket) → n`.
type BucketKey = (&'static str, String, String, i64);

struct BucketRow<'a>(&'a BucketKey, i64);

impl SqlRow for BucketRow<'_> {
    const COLUMNS: usize = 5;
    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        let (ty, building, door, bucket) = self.0;
        q.bind(*ty)
            .bind(building.clone())
            .bind(door.clone())
            .bind(*bucket)
            .bind(self.1)
    }
}

struct SecondRow((&'static str, i64), i64);

impl SqlRow for SecondRow {
    const COLUMNS: usize = 3;
    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(self.0.0).bind(self.0.1).bind(self.1)
    }
}

/// A `camera.offline` (outage start at its `lastSeen`) or `camera.online`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CameraEvent {
    /// The event.
    pub(crate) event_id: String,
    /// The camera.
    pub(crate) camera_id: String,
    /// Its building.
    pub(crate) building_id: String,
    /// `camera.online` (else offline).
    pub(crate) online: bool,
    /// Offline: when the outage began (`lastSeen`); online: when it ended.
    pub(crate) at: i64,
    /// Online: the downtime the event reports, in ms.
    pub(crate) downtime_ms: i64,
}

impl SqlRow for CameraEvent {
    const COLUMNS: usize = 6;
    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(self.event_id.clone())
            .bind(self.camera_id.clone())
            .bind(self.building_id.clone())
            .bind(i64::from(self.online))
            .bind(self.at)
            .bind(self.downtime_ms)
    }
}

#[derive(Debug)]
struct AlertEvent {
    event_id: String,
    alert_id: String,
    kind: &'static str,
    at: i64,
}

impl SqlRow for AlertEvent {
    const COLUMNS: usize = 4;
    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(self.event_id.clone())
            .bind(self.alert_id.clone())
            .bind(self.kind)
            .bind(self.at)
    }
}

/// What a set of new records adds to the aggregates, keys sorted.
#[derive(Debug, Default)]
struct Aggregates {
    seconds: BTreeMap<(&'static str, i64), i64>,
    buckets: [BTreeMap<BucketKey, i64>; 3],
    cameras: Vec<CameraEvent>,
    alerts: Vec<AlertEvent>,
}

impl Aggregates {
    /// Adds one new record; `seconds_from` is the oldest second still worth counting.
    fn add(&mut self, r: &Record, seconds_from: i64) {
        let ty = r.event_type.as_str();
        let second = r.at.div_euclid(1000);
        if second >= seconds_from {
            *self.seconds.entry((ty, second)).or_default() += 1;
        }
        for (g, map) in Grain::ALL.iter().zip(self.buckets.iter_mut()) {
            let b = g.bucket(r.at);
            *map.entry((ty, String::new(), String::new(), b))
                .or_default() += 1;
            if !r.building_id.is_empty() {
                *map.entry((ty, r.building_id.clone(), String::new(), b))
                    .or_default() += 1;
            }
            if !r.door_id.is_empty() {
                *map.entry((ty, r.building_id.clone(), r.door_id.clone(), b))
                    .or_default() += 1;
            }
        }
        match r.event_type {
            EventType::CameraOffline | EventType::CameraOnline => {
                let online = r.event_type == EventType::CameraOnline;
                self.cameras.push(CameraEvent {
                    event_id: r.id.clone(),
                    camera_id: r.entity.clone(),
                    building_id: r.building_id.clone(),
                    online,
                    at: if online { r.at } else { r.value },
                    downtime_ms: if online {
                        r.value.saturating_mul(1000)
                    } else {
                        0
                    },
                });
            }
            EventType::AlertTriggered | EventType::AlertAcknowledged | EventType::AlertResolved => {
                self.alerts.push(AlertEvent {
                    event_id: r.id.clone(),
                    alert_id: r.entity.clone(),
                    kind: alert_kind(r.event_type),
                    at: r.at,
                });
            }
            _ => {}
        }
    }

    /// Writes the counts (added to those stored) and the lifecycle rows.
    async fn write(mut self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let seconds: Vec<SecondRow> = std::mem::take(&mut self.seconds)
            .into_iter()
            .map(|(k, n)| SecondRow(k, n))
            .collect();
        insert_rows(
            conn,
            "INSERT INTO analytics_seconds (event_type, bucket, n)",
            "ON CONFLICT (event_type, bucket) DO UPDATE SET n = analytics_seconds.n + excluded.n",
            &seconds,
            false,
        )
        .await?;
        for (g, map) in Grain::ALL.iter().zip(self.buckets.iter()) {
            let table = g.table();
            let rows: Vec<BucketRow<'_>> = map.iter().map(|(k, n)| BucketRow(k, *n)).collect();
            insert_rows(
                conn,
                &format!("INSERT INTO {table} (event_type, building_id, door_id, bucket, n)"),
                &format!(
                    "ON CONFLICT (event_type, building_id, door_id, bucket) \
                     DO UPDATE SET n = {table}.n + excluded.n"
                ),
                &rows,
                false,
            )
            .await?;
        }
        self.cameras.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        insert_rows(
            conn,
            "INSERT INTO analytics_camera_events \
             (event_id, camera_id, building_id, online, at, downtime_ms)",
            "ON CONFLICT (event_id) DO NOTHING",
            &self.cameras,
            false,
        )
        .await?;
        self.alerts.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        insert_rows(
            conn,
            "INSERT INTO analytics_alert_events (event_id, alert_id, kind, at)",
            "ON CONFLICT (event_id) DO NOTHING",
            &self.alerts,
            false,
        )
        .await?;
        Ok(())
    }
}

/// `triggered`, `acknowledged` or `resolved`.
fn alert_kind(t: EventType) -> &'static str {
    match t {
        EventType::AlertAcknowledged => "acknowledged",
        EventType::AlertResolved => "resolved",
        _ => "triggered",
    }
}

/// The oldest second the per-second counts keep, at `now_ms`.
fn seconds_from(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000) - SECONDS_KEPT
}

/// Stores a batch in one transaction: the records not stored before (by id; duplicates within
/// the batch count once) and their share of every aggregate. Returns, per record, whether it
/// was new.
pub(crate) async fn write_batch(
    pool: &AnyPool,
    records: &[Record],
    now_ms: i64,
) -> Result<Vec<bool>, sqlx::Error> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    // one row per id, in id order (lock order on PostgreSQL)
    let mut unique: Vec<&Record> = records.iter().collect();
    unique.sort_by(|a, b| a.id.cmp(&b.id));
    unique.dedup_by(|a, b| a.id == b.id);
    let unique: Vec<Record> = unique.into_iter().cloned().collect();

    let mut tx = pool.begin().await?;
    let inserted: HashSet<String> = insert_rows(
        &mut tx,
        "INSERT INTO analytics_events (id, event_type, at, building_id, door_id, entity, value)",
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        &unique,
        true,
    )
    .await?
    .iter()
    .map(|row| row.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    let mut agg = Aggregates::default();
    let from = seconds_from(now_ms);
    for r in unique.iter().filter(|r| inserted.contains(&r.id)) {
        agg.add(r, from);
    }
    agg.write(&mut tx).await?;
    tx.commit().await?;

    // the first copy of a new id is new; its duplicates in the batch are not
    let mut seen = HashSet::new();
    Ok(records
        .iter()
        .map(|r| inserted.contains(&r.id) && seen.insert(r.id.as_str()))
        .collect())
}

/// What `rebuild` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Rebuilt {
    /// Raw events read.
    pub(crate) events: u64,
    /// Raw events whose type is not in the catalogue (skipped).
    pub(crate) skipped: u64,
}

fn record(row: &AnyRow) -> Result<Option<Record>, sqlx::Error> {
    let ty: String = row.try_get("event_type")?;
    let Ok(event_type) = ty.parse::<EventType>() else {
        return Ok(None);
    };
    Ok(Some(Record {
        id: row.try_get("id")?,
        event_type,
        at: row.try_get("at")?,
        building_id: row.try_get("building_id")?,
        door_id: row.try_get("door_id")?,
        entity: row.try_get("entity")?,
        value: row.try_get("value")?,
    }))
}

/// Raw events read per round of `rebuild`.
const REBUILD_PAGE: i64 = 20_000;

/// Recomputes every aggregate from the raw events, in one transaction (readers see the old
/// figures until it commits).
pub(crate) async fn rebuild(pool: &AnyPool, now_ms: i64) -> Result<Rebuilt, sqlx::Error> {
    let mut tx = pool.begin().await?;
    for table in DERIVED_TABLES {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
    }
    let from = seconds_from(now_ms);
    let mut done = Rebuilt::default();
    let mut after = String::new();
    loop {
        let rows = sqlx::query(
            "SELECT id, event_type, at, building_id, door_id, entity, value \
             FROM analytics_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.clone())
        .bind(REBUILD_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id")?;
        let mut agg = Aggregates::default();
        for row in &rows {
            done.events += 1;
            match record(row)? {
                Some(r) => agg.add(&r, from),
                None => done.skipped += 1,
            }
        }
        agg.write(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// How long each kind of data is kept; `None` keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cutoffs {
    /// Raw events and the camera and alert lifecycles older than this (Unix ms) go.
    pub(crate) raw: Option<i64>,
    /// Minute buckets starting before this go.
    pub(crate) minutes: Option<i64>,
    /// Hour buckets starting before this go.
    pub(crate) hours: Option<i64>,
    /// Day buckets starting before this go.
    pub(crate) days: Option<i64>,
}

/// Deletes what is past retention (and per-second counts past two hours); returns the rows
/// deleted.
pub(crate) async fn purge(pool: &AnyPool, now_ms: i64, cut: Cutoffs) -> Result<u64, sqlx::Error> {
    let mut deleted = sqlx::query("DELETE FROM analytics_seconds WHERE bucket < $1")
        .bind(seconds_from(now_ms))
        .execute(pool)
        .await?
        .rows_affected();
    if let Some(raw) = cut.raw {
        for table in [
            "analytics_events",
            "analytics_camera_events",
            "analytics_alert_events",
        ] {
            deleted += sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE at < $1")))
                .bind(raw)
                .execute(pool)
                .await?
                .rows_affected();
        }
    }
    for (grain, cut) in [
        (Grain::Minute, cut.minutes),
        (Grain::Hour, cut.hours),
        (Grain::Day, cut.days),
    ] {
        if let Some(ms) = cut {
            deleted += sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {} WHERE bucket < $1",
                grain.table()
            )))
            .bind(grain.bucket(ms))
            .execute(pool)
            .await?
            .rows_affected();
        }
    }
    Ok(deleted)
}

/// Events per type whose second lies in `[from_s, to_s)`: per-second counts for the partial
/// minutes at the ends, minute counts between (read by primary key, one range per type).
pub(crate) async fn window_counts(
    pool: &AnyPool,
    from_s: i64,
    to_s: i64,
) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let m0 = from_s.div_euclid(60) + i64::from(from_s.rem_euclid(60) != 0);
    let m1 = to_s.div_euclid(60);
    let rows = if m0 < m1 {
        let sql = format!(
            "SELECT event_type, CAST(SUM(n) AS BIGINT) AS n FROM ( \
               SELECT event_type, n FROM analytics_seconds \
                 WHERE (bucket >= $1 AND bucket < $2) OR (bucket >= $3 AND bucket < $4) \
               UNION ALL \
               SELECT event_type, n FROM analytics_minutes \
                 WHERE event_type IN ({}) AND building_id = '' AND door_id = '' \
                 AND bucket >= $5 AND bucket < $6 \
             ) w GROUP BY event_type",
            placeholders(7, EventType::ALL.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(from_s)
            .bind(m0 * 60)
            .bind(m1 * 60)
            .bind(to_s)
            .bind(m0)
            .bind(m1);
        for t in EventType::ALL {
            q = q.bind(t.as_str());
        }
        q.fetch_all(pool).await?
    } else {
        sqlx::query(
            "SELECT event_type, CAST(SUM(n) AS BIGINT) AS n FROM analytics_seconds \
             WHERE bucket >= $1 AND bucket < $2 GROUP BY event_type",
        )
        .bind(from_s)
        .bind(to_s)
        .fetch_all(pool)
        .await?
    };
    rows.iter()
        .map(|r| Ok((r.try_get("event_type")?, r.try_get("n")?)))
        .collect()
}

/// `$k, $k+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts per bucket of `grain` in `[b0, b1)` for the given types (summed) at one level:
/// `("", "")` every event, `(building, "")` a building's, `(building, door)` a door's.
pub(crate) async fn series(
    pool: &AnyPool,
    grain: Grain,
    types: &[&str],
    building: &str,
    door: &str,
    b0: i64,
    b1: i64,
) -> Result<BTreeMap<i64, i64>, sqlx::Error> {
    let sql = format!(
        "SELECT bucket, CAST(SUM(n) AS BIGINT) AS n FROM {} \
         WHERE event_type IN ({}) AND building_id = $1 AND door_id = $2 \
         AND bucket >= $3 AND bucket < $4 GROUP BY bucket",
        grain.table(),
        placeholders(5, types.len())
    );
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(building.to_owned())
        .bind(door.to_owned())
        .bind(b0)
        .bind(b1);
    for t in types {
        q = q.bind(*t);
    }
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("bucket")?, r.try_get("n")?)))
        .collect()
}

/// Counts per bucket of `grain` in `[b0, b1)` and per building (the building level) of the
/// given types, optionally of one building: `(bucket, building, n)`.
pub(crate) async fn per_bucket(
    pool: &AnyPool,
    grain: Grain,
    types: &[&str],
    b0: i64,
    b1: i64,
    building: Option<&str>,
) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT bucket, building_id, CAST(SUM(n) AS BIGINT) AS n FROM {} \
         WHERE building_id <> '' AND door_id = '' AND ($1 = '' OR building_id = $1) \
         AND bucket >= $2 AND bucket < $3 AND event_type IN ({}) \
         GROUP BY bucket, building_id ORDER BY bucket, building_id",
        grain.table(),
        placeholders(4, types.len())
    );
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(building.unwrap_or("").to_owned())
        .bind(b0)
        .bind(b1);
    for t in types {
        q = q.bind(*t);
    }
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("bucket")?,
                r.try_get("building_id")?,
                r.try_get("n")?,
            ))
        })
        .collect()
}

/// Which level of the bucket tables a range query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Per type.
    Type,
    /// Per type and building.
    Building,
    /// Per type, building and door.
    Door,
}

impl Level {
    fn condition(self) -> &'static str {
        match self {
            Self::Type => "building_id = '' AND door_id = ''",
            Self::Building => "building_id <> '' AND door_id = ''",
            Self::Door => "door_id <> ''",
        }
    }
}

/// The minute range `[m0, m1)` as the fewest whole buckets: minutes at the ends, hours, days
/// in the middle.
pub(crate) fn segments(m0: i64, m1: i64) -> Vec<(Grain, i64, i64)> {
    let mut out = Vec::new();
    if m0 >= m1 {
        return out;
    }
    let h0 = m0.div_euclid(60) + i64::from(m0.rem_euclid(60) != 0);
    let h1 = m1.div_euclid(60);
    if h0 >= h1 {
        out.push((Grain::Minute, m0, m1));
        return out;
    }
    if m0 < h0 * 60 {
        out.push((Grain::Minute, m0, h0 * 60));
    }
    let d0 = h0.div_euclid(24) + i64::from(h0.rem_euclid(24) != 0);
    let d1 = h1.div_euclid(24);
    if d0 >= d1 {
        out.push((Grain::Hour, h0, h1));
    } else {
        if h0 < d0 * 24 {
            out.push((Grain::Hour, h0, d0 * 24));
        }
        out.push((Grain::Day, d0, d1));
        if d1 * 24 < h1 {
            out.push((Grain::Hour, d1 * 24, h1));
        }
    }
    if h1 * 60 < m1 {
        out.push((Grain::Minute, h1 * 60, m1));
    }
    out
}

/// One row of a range total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Total {
    /// The type.
    pub(crate) event_type: String,
    /// The building (`""` at the type level).
    pub(crate) building_id: String,
    /// The door (`""` above the door level).
    pub(crate) door_id: String,
    /// Events.
    pub(crate) n: i64,
}

/// Counts over the minutes `[m0, m1)` at `level`, optionally of some types and one building.
///
/// Reads by the bucket indexes: the type filter is written `event_type || '' IN (…)` so that
/// no planner prefers the primary key (every bucket of the type) for it.
pub(crate) async fn totals(
    pool: &AnyPool,
    m0: i64,
    m1: i64,
    level: Level,
    types: Option<&[&str]>,
    building: Option<&str>,
) -> Result<Vec<Total>, sqlx::Error> {
    let segs = segments(m0, m1);
    if segs.is_empty() {
        return Ok(Vec::new());
    }
    let mut next = 1;
    let mut filters = String::from(level.condition());
    if let Some(types) = types {
        let _ = write!(
            filters,
            " AND (event_type || '') IN ({})",
            placeholders(next, types.len())
        );
        next += types.len();
    }
    if building.is_some() {
        let _ = write!(filters, " AND building_id = ${next}");
        next += 1;
    }
    let parts: Vec<String> = segs
        .iter()
        .enumerate()
        .map(|(i, (g, _, _))| {
            format!(
                "SELECT event_type, building_id, door_id, n FROM {} \
                 WHERE {filters} AND bucket >= ${} AND bucket < ${}",
                g.table(),
                next + 2 * i,
                next + 2 * i + 1
            )
        })
        .collect();
    let sql = format!(
        "SELECT event_type, building_id, door_id, CAST(SUM(n) AS BIGINT) AS n FROM ({}) r \
         GROUP BY event_type, building_id, door_id",
        parts.join(" UNION ALL ")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for t in types.unwrap_or_default() {
        q = q.bind(*t);
    }
    if let Some(b) = building {
        q = q.bind(b.to_owned());
    }
    for (_, b0, b1) in &segs {
        q = q.bind(*b0).bind(*b1);
    }
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Total {
                event_type: r.try_get("event_type")?,
                building_id: r.try_get("building_id")?,
                door_id: r.try_get("door_id")?,
                n: r.try_get("n")?,
            })
        })
        .collect()
}

/// Every camera event before `to_ms` (optionally of one building), by camera then time.
pub(crate) async fn camera_events(
    pool: &AnyPool,
    to_ms: i64,
    building: Option<&str>,
) -> Result<Vec<CameraEvent>, sqlx::Error> {
    sqlx::query(
        "SELECT event_id, camera_id, building_id, online, at, downtime_ms \
         FROM analytics_camera_events WHERE at < $1 AND ($2 = '' OR building_id = $2) \
         ORDER BY camera_id, at, online, event_id",
    )
    .bind(to_ms)
    .bind(building.unwrap_or("").to_owned())
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(CameraEvent {
            event_id: r.try_get("event_id")?,
            camera_id: r.try_get("camera_id")?,
            building_id: r.try_get("building_id")?,
            online: r.try_get::<i64, _>("online")? != 0,
            at: r.try_get("at")?,
            downtime_ms: r.try_get("downtime_ms")?,
        })
    })
    .collect()
}

/// An alert triggered in a range: when it was triggered, first acknowledged, first resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlertTimes {
    /// `alert.triggered`.
    pub(crate) triggered: i64,
    /// The first `alert.acknowledged`.
    pub(crate) acknowledged: Option<i64>,
    /// The first `alert.resolved`.
    pub(crate) resolved: Option<i64>,
}

/// The alerts triggered in `[from_ms, to_ms)` with their first acknowledgement and resolution.
pub(crate) async fn alert_times(
    pool: &AnyPool,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<AlertTimes>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT alert_id, kind, MIN(at) AS at FROM analytics_alert_events \
         WHERE alert_id IN (SELECT alert_id FROM analytics_alert_events \
           WHERE kind = 'triggered' AND at >= $1 AND at < $2) \
         GROUP BY alert_id, kind",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(pool)
    .await?;
    let mut by_alert: BTreeMap<String, [Option<i64>; 3]> = BTreeMap::new();
    for r in &rows {
        let kind: String = r.try_get("kind")?;
        let slot = match kind.as_str() {
            "triggered" => 0,
            "acknowledged" => 1,
            _ => 2,
        };
        by_alert.entry(r.try_get("alert_id")?).or_default()[slot] = Some(r.try_get("at")?);
    }
    Ok(by_alert
        .into_values()
        .filter_map(|[t, a, r]| {
            t.map(|triggered| AlertTimes {
                triggered,
                acknowledged: a,
                resolved: r,
            })
        })
        .collect())
}

/// Raw events stored (for `rebuild` reports and the bench).
pub(crate) async fn count_events(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM analytics_events")
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_sql_numbers_placeholders() {
        assert_eq!(
            values_sql("INSERT INTO t (a, b)", 2, 2, "ON CONFLICT DO NOTHING"),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn segments_use_the_coarsest_buckets() {
        use Grain::{Day, Hour, Minute};
        assert!(segments(5, 5).is_empty());
        assert_eq!(segments(5, 50), vec![(Minute, 5, 50)]);
        // 00:30 → 02:15: minutes, one hour, minutes
        assert_eq!(
            segments(30, 135),
            vec![(Minute, 30, 60), (Hour, 1, 2), (Minute, 120, 135)]
        );
        // day 0 12:00 → day 3 01:30
        let m0 = 12 * 60;
        let m1 = 3 * 1440 + 90;
        assert_eq!(
            segments(m0, m1),
            vec![
                (Hour, 12, 24),
                (Day, 1, 3),
                (Hour, 72, 73),
                (Minute, 73 * 60, m1)
            ]
        );
        // every minute is covered exactly once
        for (m0, m1) in [(0, 1440 * 9), (17, 1440 * 2 + 3), (-100, 100), (59, 61)] {
            let mut covered = 0;
            for (g, b0, b1) in segments(m0, m1) {
                covered += (b1 - b0) * g.millis() / 60_000;
            }
            assert_eq!(covered, m1 - m0, "{m0}..{m1}");
        }
    }
}
