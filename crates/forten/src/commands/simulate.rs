//! `forten simulate`: drives realistic, seeded traffic through the gateway, then prints the
//! simulator's own tally beside the analytics-service's figures and exits 0 exactly when they
//! agree.
//!
//! 1. **Plan** ([`plan`]): from `--seed`, the users (some restricted to a few doors) and a
//!    Poisson stream of actions at `--rate` for `--duration`: badge swipes (a `--deny-share`
//!    of them meant to be denied — unknown badges, or users at doors outside their profile),
//!    forced doors, camera outages, alert acknowledgements and resolutions.
//! 2. **Baseline**: the analytics report of the run's first minute before anything happens
//!    (reports count whole minutes; events of that minute from before the run are not the
//!    run's).
//! 3. **Setup** ([`world`]): buildings, doors, cameras (heartbeating from their creation on,
//!    short timeout), users, access profiles — through the gateway as an admin.
//! 4. **Run** ([`engine`]): each action at its time, each confirmed outcome counted
//!    ([`tally::Tally`] says what counts); a progress bar on a terminal.
//! 5. **Settle**: the cameras are deleted (none falls silent after the run), then the
//!    analytics figures are polled until they match the tally, or stop changing for a while,
//!    or `--settle-timeout` passes; the table (or `--json`) follows, and the exit code: 0 when
//!    every figure agrees, 1 naming those that differ. An unreachable gateway or analytics
//!    service is one line and exit 69; a bad flag value one line and exit 64.

mod engine;
mod gateway;
mod plan;
mod tally;
mod world;

pub(crate) use self::plan::Rng;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::engine::{Beater, Engine, snapshot};
use self::gateway::{CallError, Gateway};
use self::plan::{ActionKind, Plan, PlanConfig};
use self::tally::{Figures, Row, Tally, compare, differences, report_counts, rfc3339};
use super::CliError;
use crate::cli::SimulateArgs;

/// The checked settings of a run.
#[derive(Debug, Clone)]
struct Settings {
    gateway: String,
    email: String,
    password: String,
    plan: PlanConfig,
    settle_timeout: Duration,
    json: bool,
}

fn usage(flag: &str, message: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("--{flag}: {message}"))
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    flag: &str,
    value: &str,
    min: T,
    max: T,
) -> Result<T, CliError> {
    let n: T = value
        .trim()
        .parse()
        .map_err(|_| usage(flag, format!("{value:?} is not a number")))?;
    if n < min || n > max {
        return Err(usage(flag, format!("must be between {min} and {max}")));
    }
    Ok(n)
}

fn duration(flag: &str, value: &str, min: Duration, max: Duration) -> Result<Duration, CliError> {
    let d = humantime::parse_duration(value.trim()).map_err(|e| {
        usage(
            flag,
            format!("{value:?} is not a duration such as 20s ({e})"),
        )
    })?;
    if d < min || d > max {
        return Err(usage(
            flag,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

impl Settings {
    fn from_args(args: &SimulateArgs) -> Result<Self, CliError> {
        let gateway = args.gateway.trim().trim_end_matches('/').to_owned();
        if !(gateway.starts_with("http://") || gateway.starts_with("https://")) {
            return Err(usage(
                "gateway",
                format!("{gateway:?} is not an http:// or https:// URL"),
            ));
        }
        let password = args
            .admin_password
            .clone()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                CliError::Usage(
                    "--admin-password / FORTEN_ADMIN_PASSWORD: the admin's password is required"
                        .to_owned(),
                )
            })?;
        let rate: f64 = number("rate", &args.rate, 0.01, 10_000.0)?;
        let deny_share: f64 = number("deny-share", &args.deny_share, 0.0, 1.0)?;
        let timeout = duration(
            "heartbeat-timeout",
            &args.heartbeat_timeout,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        )?;
        let seed = match &args.seed {
            Some(s) => number("seed", s, 0, u64::MAX)?,
            None => uuid::Uuid::new_v4().as_u64_pair().0,
        };
        Ok(Self {
            gateway,
            email: args.admin_email.trim().to_owned(),
            password,
            plan: PlanConfig {
                seed,
                rate,
                duration: duration(
                    "duration",
                    &args.duration,
                    Duration::from_millis(1),
                    Duration::from_secs(7 * 86_400),
                )?,
                buildings: number("buildings", &args.buildings, 1, 100)?,
                doors_per_building: number("doors", &args.doors, 1, 50)?,
                cameras_per_building: number("cameras", &args.cameras, 0, 20)?,
                users: number("users", &args.users, 0, 200)?,
                deny_share,
                // whole seconds, as the monitoring-service takes them
                heartbeat_timeout: Duration::from_secs(timeout.as_secs_f64().ceil() as u64),
            },
            settle_timeout: duration(
                "settle-timeout",
                &args.settle_timeout,
                Duration::ZERO,
                Duration::from_secs(3600),
            )?,
            json: args.json,
        })
    }
}

/// Actions in flight at once (outages aside: they last seconds and are few).
const MAX_IN_FLIGHT: usize = 64;
/// How long the figures must stay unchanged, while disagreeing, before the settle gives up.
const QUIET: Duration = Duration::from_secs(5);

pub(crate) async fn run(args: SimulateArgs) -> Result<(), CliError> {
    let settings = Settings::from_args(&args)?;
    let plan = plan::generate(&settings.plan);
    let gateway = Gateway::login(
        &settings.gateway,
        &settings.email,
        &settings.password,
        Duration::from_secs(20),
    )
    .await?;
    let progress = if settings.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(plan.actions.len() as u64)
    };
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} {bar:30} {pos}/{len} actions  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let say = |msg: String| {
        if progress.is_hidden() {
            eprintln!("{msg}");
        } else {
            progress.println(msg);
        }
    };
    let cfg = &plan.config;
    let c = plan.counts();
    say(format!(
        "simulate: seed {} — {} actions over {} at {}/s: {} swipes ({} meant to be denied), {} forced doors, {} camera outages, {} acknowledgements, {} resolutions",
        cfg.seed,
        plan.actions.len(),
        humantime::format_duration(cfg.duration),
        cfg.rate,
        c.swipes,
        c.denials,
        c.forced,
        c.outages,
        c.acknowledgements,
        c.resolutions
    ));

    // the run's range starts now; what the analytics-service already counts of its first
    // minute is not the run's
    let from = Utc::now();
    let baseline = baseline(&gateway, from).await?;

    let tally = Arc::new(Mutex::new(Tally::default()));
    let beater = Beater::new(gateway.clone(), tally.clone(), cfg.heartbeat_timeout);
    let stop_beats = CancellationToken::new();
    let beats = {
        let (beater, stop) = (beater.clone(), stop_beats.clone());
        let interval = (cfg.heartbeat_timeout / 4).max(Duration::from_millis(100));
        tokio::spawn(async move { beater.run(interval, stop).await })
    };
    let tag = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
    say(format!(
        "simulate: setup of {} buildings, {} doors, {} cameras (heartbeat timeout {}s), {} users through {}",
        cfg.buildings,
        cfg.buildings * cfg.doors_per_building,
        cfg.buildings * cfg.cameras_per_building,
        cfg.heartbeat_timeout.as_secs(),
        plan.users.len(),
        gateway.base()
    ));
    let created = world::create(&gateway, &plan, &tag, &beater, || {
        engine::count(&tally, |t| t.users_created += 1);
    })
    .await;
    let world = match created {
        Ok(w) => Arc::new(w),
        Err(e) => {
            stop_beats.cancel();
            let _ = beats.await;
            return Err(CliError::Failed(e.to_string()));
        }
    };
    let engine = Engine {
        gateway: gateway.clone(),
        world,
        tally: tally.clone(),
        heartbeat_timeout: cfg.heartbeat_timeout,
    };

    say(format!(
        "simulate: running for {}",
        humantime::format_duration(cfg.duration)
    ));
    progress.reset_elapsed();
    drive(&engine, &plan, &progress).await;
    stop_beats.cancel();
    let _ = beats.await;
    engine.delete_cameras().await;
    progress.finish_and_clear();

    say(format!(
        "simulate: settling (figures checked until they agree or stop changing, up to {})",
        humantime::format_duration(settings.settle_timeout)
    ));
    let (figures, to, waited) = settle(&engine, from, &baseline, settings.settle_timeout).await;
    let tally = snapshot(&tally);
    let rows = compare(&tally, figures.as_ref().ok());
    let diffs = differences(&rows);
    print_result(
        &settings,
        &plan,
        &tally,
        &rows,
        &figures,
        (from, to),
        waited,
        &diffs,
    );
    if diffs.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "the simulator's tally and the analytics-service's figures disagree: {}",
        diffs.join(", ")
    );
    if let Err(e) = &figures {
        message.push_str(&format!(" (the figures could not be read: {e})"));
    }
    if tally.ambiguous > 0 {
        message.push_str(&format!(
            "; {} requests had no certain outcome",
            tally.ambiguous
        ));
    }
    Err(CliError::Failed(message))
}

/// Starts each action at its time; returns once all have ended.
async fn drive(engine: &Engine, plan: &Plan, progress: &ProgressBar) {
    let start = Instant::now();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let show = |engine: &Engine| {
        let t = snapshot(&engine.tally);
        progress.set_message(format!(
            "granted {}  denied {}  forced {}  outages {}  alerts {} (ack {}, resolved {})",
            t.granted,
            t.denied,
            t.forced,
            t.camera_offline,
            t.alerts.len(),
            t.acknowledged.len(),
            t.resolved.len()
        ));
    };
    for action in &plan.actions {
        tokio::time::sleep_until(start + action.at).await;
        let permit = if matches!(action.kind, ActionKind::CameraOutage { .. }) {
            None
        } else {
            permits.clone().acquire_owned().await.ok()
        };
        let (task_engine, action, bar) = (engine.clone(), action.clone(), progress.clone());
        tasks.spawn(async move {
            task_engine.act(&action).await;
            bar.inc(1);
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
        show(engine);
    }
    while tasks.join_next().await.is_some() {
        show(engine);
    }
}

/// `reports?groupBy=type` counts over `[from, to)`.
async fn report(
    gateway: &Gateway,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<BTreeMap<String, i64>, CallError> {
    let path = format!(
        "/api/analytics/reports?groupBy=type&from={}&to={}",
        rfc3339(from),
        rfc3339(to)
    );
    Ok(report_counts(&gateway.get(&path).await?))
}

/// What the analytics-service counts of the minute `from` falls in, before the run: read
/// until two reads agree (events of just before the run may still be arriving).
async fn baseline(
    gateway: &Gateway,
    from: DateTime<Utc>,
) -> Result<BTreeMap<String, i64>, CliError> {
    let to = from + chrono::Duration::milliseconds(1);
    let read = || async {
        report(gateway, from, to).await.map_err(|e| {
            CliError::Unavailable(format!(
                "cannot read the analytics-service's figures through {}: {e}",
                gateway.base()
            ))
        })
    };
    let mut last = read().await?;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = read().await?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

/// The analytics figures of the run over `[from, to)`.
async fn figures(
    engine: &Engine,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    baseline: &BTreeMap<String, i64>,
) -> Result<Figures, CallError> {
    let world = &engine.world;
    let range = format!("from={}&to={}", rfc3339(from), rfc3339(to));
    let gw = &engine.gateway;
    let ours = |v: &Value, field: &str| {
        v[field]
            .as_str()
            .is_some_and(|id| world.buildings.iter().any(|b| b == id))
    };
    let mut f = Figures {
        baseline: baseline.clone(),
        ..Figures::default()
    };
    let mut by_type = report(gw, from, to).await?;
    for (t, n) in baseline {
        *by_type.entry(t.clone()).or_default() -= n;
    }
    by_type.retain(|_, n| *n != 0);
    f.by_type = by_type;

    let rates = gw
        .get(&format!("/api/analytics/access-rates?{range}"))
        .await?;
    for b in rates["buildings"].as_array().into_iter().flatten() {
        if ours(b, "buildingId") {
            f.granted += b["granted"].as_i64().unwrap_or(0);
            f.denied += b["denied"].as_i64().unwrap_or(0);
        }
    }
    let forced = gw
        .get(&format!("/api/analytics/forced-doors?{range}"))
        .await?;
    for day in forced["days"].as_array().into_iter().flatten() {
        for b in day["buildings"].as_array().into_iter().flatten() {
            if ours(b, "buildingId") {
                f.forced += b["count"].as_i64().unwrap_or(0);
            }
        }
    }
    let cameras = gw
        .get(&format!("/api/analytics/camera-availability?{range}"))
        .await?;
    for c in cameras["cameras"].as_array().into_iter().flatten() {
        let id = c["cameraId"].as_str().unwrap_or_default();
        if world.all_cameras().any(|ours| ours.id == id) {
            f.outages += c["outages"].as_i64().unwrap_or(0);
        }
    }
    let alerts = gw.get(&format!("/api/analytics/alerts?{range}")).await?;
    f.alerts_triggered = alerts["triggered"].as_i64().unwrap_or(0);
    f.alerts_acknowledged = alerts["acknowledged"].as_i64().unwrap_or(0);
    f.alerts_resolved = alerts["resolved"].as_i64().unwrap_or(0);
    Ok(f)
}

/// Polls until the figures agree with the tally, or both stay unchanged for [`QUIET`], or
/// `limit` passes. Returns the last figures, the range's end and the time waited.
async fn settle(
    engine: &Engine,
    from: DateTime<Utc>,
    baseline: &BTreeMap<String, i64>,
    limit: Duration,
) -> (Result<Figures, CallError>, DateTime<Utc>, Duration) {
    let started = Instant::now();
    let deadline = started + limit;
    let mut last: Option<(Tally, Figures)> = None;
    let mut since = Instant::now();
    loop {
        // the alerts the monitoring-service raised: the tally's alert.triggered
        let _ = engine.alerts(None).await;
        // events are stamped by the services on this machine's clock: a second of margin
        let to = Utc::now() + chrono::Duration::seconds(1);
        let figures = figures(engine, from, to, baseline).await;
        let tally = snapshot(&engine.tally);
        let done = match &figures {
            Ok(f) => {
                let rows = compare(&tally, Some(f));
                if rows.iter().all(Row::agrees) {
                    true
                } else {
                    let now = (tally.clone(), f.clone());
                    if last.as_ref() != Some(&now) {
                        last = Some(now);
                        since = Instant::now();
                    }
                    since.elapsed() >= QUIET
                }
            }
            // unreadable figures are not "unchanged": a restarting service comes back
            Err(_) => {
                last = None;
                since = Instant::now();
                false
            }
        };
        if done || Instant::now() >= deadline {
            return (figures, to, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints the table (or the JSON document) on stdout.
#[allow(clippy::too_many_arguments)]
fn print_result(
    settings: &Settings,
    plan: &Plan,
    tally: &Tally,
    rows: &[Row],
    figures: &Result<Figures, CallError>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    waited: Duration,
    diffs: &[String],
) {
    let cfg = &plan.config;
    let baseline: BTreeMap<String, i64> = figures
        .as_ref()
        .map(|f| f.baseline.clone())
        .unwrap_or_default();
    if settings.json {
        let c = plan.counts();
        let doc = json!({
            "seed": cfg.seed,
            "gateway": settings.gateway,
            "rate": cfg.rate,
            "durationSeconds": cfg.duration.as_secs_f64(),
            "buildings": cfg.buildings,
            "from": rfc3339(from),
            "to": rfc3339(to),
            "plan": {"actions": plan.actions.len(), "swipes": c.swipes, "denials": c.denials,
                     "forced": c.forced, "outages": c.outages,
                     "acknowledgements": c.acknowledgements, "resolutions": c.resolutions},
            "agree": diffs.is_empty(),
            "figures": rows,
            "differences": diffs,
            "baseline": baseline,
            "settledSeconds": waited.as_secs_f64(),
            "unexpectedDecisions": tally.unexpected_decisions,
            "ambiguous": tally.ambiguous,
            "refused": tally.refused,
            "notes": tally.notes,
            "error": figures.as_ref().err().map(ToString::to_string),
        });
        println!("{doc}");
        return;
    }
    println!(
        "forten simulate: seed {}, {} at {}/s, {} buildings — {} to {}",
        cfg.seed,
        humantime::format_duration(cfg.duration),
        cfg.rate,
        cfg.buildings,
        rfc3339(from),
        rfc3339(to)
    );
    println!();
    print!("{}", tally::render_table(rows));
    println!();
    let base: i64 = baseline.values().sum();
    if base > 0 {
        println!(
            "baseline: {base} events of the range's first minute came before the run and are not counted"
        );
    }
    if tally.unexpected_decisions > 0 {
        println!(
            "{} swipes were decided otherwise than planned (counted as decided)",
            tally.unexpected_decisions
        );
    }
    for (route, n) in &tally.refused {
        println!("{n} × {route} (refused; nothing happened)");
    }
    if tally.ambiguous > 0 {
        println!("{} requests had no certain outcome", tally.ambiguous);
    }
    for note in &tally.notes {
        println!("note: {note}");
    }
    if let Err(e) = figures {
        println!("the analytics figures could not be read: {e}");
    }
    if diffs.is_empty() {
        println!(
            "agree: all {} figures match (settled in {:.1}s)",
            rows.len(),
            waited.as_secs_f64()
        );
    } else {
        println!(
            "DISAGREE: {} of {} figures differ after {:.1}s",
            diffs.len(),
            rows.len(),
            waited.as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn settings(extra: &[&str]) -> Result<Settings, CliError> {
        let mut args = vec!["forten", "simulate", "--admin-password", "pw"];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args).map(|c| c.command) {
            Ok(Command::Simulate(a)) => Settings::from_args(&a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_the_plan_config() {
        let s = settings(&[
            "--seed",
            "7",
            "--duration",
            "20s",
            "--rate",
            "5",
            "--deny-share",
            "0.5",
            "--heartbeat-timeout",
            "1500ms",
            "--gateway",
            "http://127.0.0.1:4000/",
        ])
        .unwrap();
        assert_eq!(s.plan.seed, 7);
        assert_eq!(s.plan.duration, Duration::from_secs(20));
        assert_eq!(
            s.plan.heartbeat_timeout,
            Duration::from_secs(2),
            "rounded up"
        );
        assert_eq!(s.gateway, "http://127.0.0.1:4000");
        assert!((s.plan.rate - 5.0).abs() < f64::EPSILON);
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_flag() {
        for (flag, value) in [
            ("--rate", "0"),
            ("--rate", "fast"),
            ("--deny-share", "1.5"),
            ("--duration", "soon"),
            ("--buildings", "0"),
            ("--doors", "-1"),
            ("--seed", "-3"),
            ("--heartbeat-timeout", "0s"),
            ("--gateway", "127.0.0.1:3000"),
        ] {
            match settings(&[flag, value]) {
                Err(CliError::Usage(m)) => assert!(m.starts_with(flag), "{m}"),
                other => panic!("{flag} {value}: {other:?}"),
            }
        }
        let no_password = Cli::try_parse_from(["forten", "simulate", "--admin-password", ""]);
        match no_password.map(|c| c.command) {
            Ok(Command::Simulate(a)) => {
                assert!(matches!(Settings::from_args(&a), Err(CliError::Usage(_))));
            }
            other => panic!("{other:?}"),
        }
    }
}
