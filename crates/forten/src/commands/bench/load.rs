//! A closed-loop load generator: `concurrency` tasks each send one request, wait for its
//! answer, and send the next, until the budget (a request count or a duration) is spent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CliError, Runs, Side, cpu_time, failed, percentile};

/// An axum app served on an ephemeral loopback port until dropped.
#[derive(Debug)]
pub(super) struct LoopbackServer {
    /// `http://127.0.0.1:PORT`.
    pub(super) url: String,
    /// The bound port.
    pub(super) port: u16,
    /// Stops the server when dropped.
    _stop: tokio_util::sync::DropGuard,
}

impl LoopbackServer {
    /// Binds `127.0.0.1:0` and serves `app` in a task.
    pub(super) async fn start(app: axum::Router) -> Result<Self, CliError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| CliError::Failed(format!("cannot bind a loopback port: {e}")))?;
        let port = listener.local_addr().map_err(failed)?.port();
        let stop = CancellationToken::new();
        let cancelled = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(cancelled)
                .await;
        });
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            _stop: stop.drop_guard(),
        })
    }
}

/// How long one run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Budget {
    /// This many requests in all.
    Count(usize),
    /// Requests until this much time has passed.
    Time(Duration),
}

impl Budget {
    /// `--count` when given, else `--duration`.
    pub(super) fn from_args(count: Option<usize>, duration: Duration) -> Result<Self, CliError> {
        match count {
            Some(0) => Err(CliError::Usage("--count must be at least 1".into())),
            Some(n) => Ok(Budget::Count(n)),
            None if duration.is_zero() => {
                Err(CliError::Usage("--duration must be more than 0".into()))
            }
            None => Ok(Budget::Time(duration)),
        }
    }

    /// A short budget of the same kind, to warm connections and caches up before measuring.
    pub(super) fn warm_up(self, concurrency: usize) -> Self {
        match self {
            Budget::Count(n) => Budget::Count(n.min(concurrency * 20).max(1)),
            Budget::Time(d) => Budget::Time(d.min(Duration::from_millis(300))),
        }
    }

    /// Describes the budget for the closing note.
    pub(super) fn describe(self) -> String {
        match self {
            Budget::Count(n) => format!("{n} requests"),
            Budget::Time(d) => format!("{}", humantime::format_duration(d)),
        }
    }
}

/// One side's figures in one run.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LoadRun {
    /// Completed requests per second of wall time.
    pub(super) throughput: f64,
    /// Median latency, ms.
    pub(super) p50_ms: f64,
    /// 99th percentile latency, ms.
    pub(super) p99_ms: f64,
    /// Process CPU time (user + system) per request, µs: client and server together.
    pub(super) cpu_us: f64,
}

/// Runs `call` from `concurrency` tasks until `budget` is spent; the first failure stops
/// every task and is returned.
pub(super) async fn closed_loop<F, Fut>(
    concurrency: usize,
    budget: Budget,
    call: F,
) -> Result<LoadRun, CliError>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), CliError>> + Send,
{
    let claimed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (t0, c0) = (Instant::now(), cpu_time());
    let deadline = match budget {
        Budget::Time(d) => Some(t0 + d),
        Budget::Count(_) => None,
    };
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (call, claimed, stop) = (call.clone(), claimed.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let more = match (budget, deadline) {
                        (Budget::Count(n), _) => claimed.fetch_add(1, Ordering::Relaxed) < n,
                        (_, Some(deadline)) => Instant::now() < deadline,
                        (_, None) => false,
                    };
                    if !more {
                        break;
                    }
                    let t = Instant::now();
                    if let Err(e) = call().await {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(latencies)) => all.extend(latencies),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(CliError::Failed(format!("load task failed: {e}")));
            }
        }
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), (cpu_time() - c0).as_secs_f64());
    if let Some(e) = first_error {
        return Err(e);
    }
    all.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let n = all.len() as f64;
    Ok(LoadRun {
        throughput: n / wall.max(1e-9),
        p50_ms: percentile(&all, 50.0),
        p99_ms: percentile(&all, 99.0),
        cpu_us: if n > 0.0 { cpu * 1e6 / n } else { 0.0 },
    })
}

/// Warms both sides up, then runs them alternately `repeat` times each under `budget`,
/// advancing `progress` once per run. `run(side, budget)` is one closed-loop run of a side.
pub(super) async fn alternate<F, Fut>(
    progress: &indicatif::ProgressBar,
    repeat: usize,
    concurrency: usize,
    budget: Budget,
    name: fn(Side) -> &'static str,
    mut run: F,
) -> Result<Runs<LoadRun>, CliError>
where
    F: FnMut(Side, Budget) -> Fut,
    Fut: Future<Output = Result<LoadRun, CliError>>,
{
    // warm both sides up: connections, discovery and token caches
    for side in Side::order(0) {
        progress.set_message(format!("warm-up: {}", name(side)));
        run(side, budget.warm_up(concurrency)).await?;
        progress.inc(1);
    }
    let mut runs = Runs::<LoadRun>::default();
    for rep in 0..repeat {
        for side in Side::order(rep) {
            progress.set_message(format!("run {}/{repeat}: {}", rep + 1, name(side)));
            runs.push(side, run(side, budget).await?);
            progress.inc(1);
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_wins_over_duration_and_zero_is_refused() {
        let d = Duration::from_secs(3);
        assert_eq!(Budget::from_args(Some(10), d).unwrap(), Budget::Count(10));
        assert_eq!(Budget::from_args(None, d).unwrap(), Budget::Time(d));
        assert_eq!(
            Budget::from_args(Some(0), d).unwrap_err().to_string(),
            "--count must be at least 1"
        );
        assert!(Budget::from_args(None, Duration::ZERO).is_err());
    }

    #[tokio::test]
    async fn a_count_budget_makes_exactly_that_many_calls() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let run = closed_loop(4, Budget::Count(37), move || {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 37);
        assert!(run.throughput > 0.0);
    }

    #[tokio::test]
    async fn a_failure_stops_the_run_and_is_returned() {
        let e = closed_loop(4, Budget::Count(1000), || async {
            Err(CliError::Failed("boom".into()))
        })
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "boom");
    }
}
