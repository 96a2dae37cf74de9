//! `forten bench …`: the built-in benchmarks. Each scenario runs the toolkit path and a raw
//! baseline in the same run, alternating when it repeats, and reports medians.
//!
//! This module holds the harness the scenarios share: [`Figure`] and its table / JSON output,
//! [`median`] and [`percentile`], process CPU time, the alternating order of the sides, the
//! progress bar, and a closed-loop HTTP load generator ([`load`]).

mod analytics;
mod auth;
mod events;
mod gateway;
mod http;
mod load;

use std::time::Duration;

pub(crate) use self::analytics::run as analytics;
pub(crate) use self::auth::run as auth;
pub(crate) use self::events::run as events;
pub(crate) use self::gateway::run as gateway;
pub(crate) use self::http::run as http;

use super::CliError;

/// One reported figure: the toolkit's value and, where there is one, the baseline's.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Figure {
    /// Dotted name, e.g. `http.throughput`.
    name: &'static str,
    /// Unit, e.g. `req/s`, `ms`, `us`.
    unit: &'static str,
    /// The toolkit's value.
    value: f64,
    /// The raw path's value in the same run.
    baseline: Option<f64>,
}

impl Figure {
    /// A figure compared with a baseline.
    pub(super) fn compared(
        name: &'static str,
        unit: &'static str,
        value: f64,
        baseline: f64,
    ) -> Self {
        Self {
            name,
            unit,
            value,
            baseline: Some(baseline),
        }
    }

    /// A figure without a baseline (`baseline` and `ratio` print as `null`).
    pub(super) fn alone(name: &'static str, unit: &'static str, value: f64) -> Self {
        Self {
            name,
            unit,
            value,
            baseline: None,
        }
    }

    /// `value / baseline`, when there is a non-zero baseline.
    fn ratio(&self) -> Option<f64> {
        self.baseline.filter(|b| *b > 0.0).map(|b| self.value / b)
    }

    /// The JSON object of the figure (`baseline` and `ratio` are `null` without a baseline).
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio(),
        })
    }
}

/// How a scenario's figures are printed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Report<'a> {
    /// One JSON object per line instead of a table.
    pub(super) json: bool,
    /// Column title of the baseline (`raw lapin`, `reqwest`, …).
    pub(super) baseline: &'a str,
}

impl Report<'_> {
    /// Prints `figures` (a table with a closing `note`, or JSON lines without it).
    pub(super) fn print(&self, figures: &[Figure], note: &str) {
        if self.json {
            for f in figures {
                println!("{}", f.to_json());
            }
            return;
        }
        println!(
            "{:<30} {:>12} {:>12} {:>7}  unit",
            "figure", "forten", self.baseline, "ratio"
        );
        for f in figures {
            let baseline = f
                .baseline
                .map_or_else(|| "-".to_owned(), |b| format!("{b:.1}"));
            let ratio = f
                .ratio()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"));
            let (name, value, unit) = (f.name, f.value, f.unit);
            println!("{name:<30} {value:>12.1} {baseline:>12} {ratio:>7}  {unit}");
        }
        println!("({note})");
    }

    /// A progress bar of `steps` steps, hidden for JSON output.
    pub(super) fn progress(&self, steps: usize) -> indicatif::ProgressBar {
        if self.json {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(u64::try_from(steps).unwrap_or(u64::MAX));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    }
}

/// The two sides of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// The toolkit's path.
    Forten,
    /// The raw client's path.
    Baseline,
}

impl Side {
    /// The order of repetition `rep`: the baseline first on even repetitions, so that neither
    /// side always runs on a warmer (or more loaded) machine.
    pub(super) fn order(rep: usize) -> [Side; 2] {
        if rep.is_multiple_of(2) {
            [Side::Baseline, Side::Forten]
        } else {
            [Side::Forten, Side::Baseline]
        }
    }
}

/// Both sides' results of every repetition.
#[derive(Debug)]
pub(super) struct Runs<T> {
    /// The toolkit's, one per repetition.
    pub(super) forten: Vec<T>,
    /// The baseline's, one per repetition.
    pub(super) baseline: Vec<T>,
}

impl<T> Default for Runs<T> {
    fn default() -> Self {
        Self {
            forten: Vec::new(),
            baseline: Vec::new(),
        }
    }
}

impl<T> Runs<T> {
    /// Records one side's result.
    pub(super) fn push(&mut self, side: Side, run: T) {
        match side {
            Side::Forten => self.forten.push(run),
            Side::Baseline => self.baseline.push(run),
        }
    }

    /// A figure from the medians of `pick` over each side's runs.
    pub(super) fn figure(
        &self,
        name: &'static str,
        unit: &'static str,
        pick: impl Fn(&T) -> f64,
    ) -> Figure {
        Figure::compared(
            name,
            unit,
            median(self.forten.iter().map(&pick).collect()),
            median(self.baseline.iter().map(&pick).collect()),
        )
    }
}

/// `--count`, `--repeat` and the like must be at least 1.
pub(super) fn at_least_one(pairs: &[(&str, usize)]) -> Result<(), CliError> {
    match pairs.iter().find(|(_, v)| *v == 0) {
        Some((flag, _)) => Err(CliError::Usage(format!("{flag} must be at least 1"))),
        None => Ok(()),
    }
}

/// User + system CPU time of this process.
pub(super) fn cpu_time() -> Duration {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// The median of `v` (0 when empty).
pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Percentile `p` (0–100) of sorted `v`, nearest rank (0 when empty).
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Any error as a plain failure of the run.
pub(super) fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(vec![4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < f64::EPSILON);
        assert!(median(Vec::new()).abs() < f64::EPSILON);
    }

    #[test]
    fn percentile_picks_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&v, 50.0) - 51.0).abs() < f64::EPSILON);
        assert!((percentile(&v, 99.0) - 99.0).abs() < f64::EPSILON);
        assert!((percentile(&v, 100.0) - 100.0).abs() < f64::EPSILON);
        assert!(percentile(&[], 99.0).abs() < f64::EPSILON);
    }

    #[test]
    fn sides_alternate() {
        assert_eq!(Side::order(0), [Side::Baseline, Side::Forten]);
        assert_eq!(Side::order(1), [Side::Forten, Side::Baseline]);
    }

    #[test]
    fn json_has_null_baseline_and_ratio_when_there_is_none() {
        let f = Figure::alone("auth.x", "tokens/s", 2.0);
        let j = f.to_json();
        assert!(j["baseline"].is_null() && j["ratio"].is_null());
        let j = Figure::compared("http.throughput", "req/s", 3.0, 4.0).to_json();
        assert_eq!(j["ratio"], 0.75);
        assert_eq!(j["baseline"], 4.0);
    }

    #[test]
    fn zero_counts_are_usage_errors() {
        assert!(at_least_one(&[("--count", 1), ("--repeat", 2)]).is_ok());
        let e = at_least_one(&[("--count", 1), ("--repeat", 0)]).unwrap_err();
        assert_eq!(e.exit_code(), 64);
        assert_eq!(e.to_string(), "--repeat must be at least 1");
    }
}
