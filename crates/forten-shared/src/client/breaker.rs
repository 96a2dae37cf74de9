//! The circuit breaker (the guide's "Circuit Breaker Pattern"), modelled on linkerd's
//! consecutive-failures breaker: CLOSED counts consecutive failures; at `failure_threshold`
//! it opens and calls fail fast; after `reset_timeout` it lets a bounded number of probes
//! through (HALF_OPEN); `success_threshold` successful probes close it, one failed probe
//! opens it again.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::discovery::InvalidConfig;
use crate::telemetry::{Metrics, metric_names};

/// Breaker settings, with the guide's names.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::client::CircuitBreakerConfig;
/// let cfg = CircuitBreakerConfig::default()
///     .failure_threshold(5)
///     .success_threshold(2)
///     .timeout(Duration::from_secs(10))
///     .reset_timeout(Duration::from_secs(60));
/// assert!(cfg.validate().is_ok());
/// assert!(CircuitBreakerConfig::default().failure_threshold(0).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakerConfig {
    /// Consecutive failures that open the circuit (default 5).
    pub failure_threshold: u32,
    /// Successful half-open probes that close it (default 2).
    pub success_threshold: u32,
    /// Timeout of one request attempt (default 10 s).
    pub timeout: Duration,
    /// Time open before probing (default 60 s).
    pub reset_timeout: Duration,
    /// Probes allowed in flight while half-open (default 1).
    pub half_open_max_probes: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            success_threshold: 2,
            timeout: Duration::from_secs(10),
            reset_timeout: Duration::from_secs(60),
            half_open_max_probes: 1,
        }
    }
}

impl CircuitBreakerConfig {
    /// Sets the failures that open the circuit.
    ///
    /// ```
    /// let c = forten_shared::client::CircuitBreakerConfig::default().failure_threshold(3);
    /// assert_eq!(c.failure_threshold, 3);
    /// ```
    #[must_use]
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n;
        self
    }
    /// Sets the successes that close it.
    ///
    /// ```
    /// let c = forten_shared::client::CircuitBreakerConfig::default().success_threshold(4);
    /// assert_eq!(c.success_threshold, 4);
    /// ```
    #[must_use]
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.success_threshold = n;
        self
    }
    /// Sets the per-attempt request timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = forten_shared::client::CircuitBreakerConfig::default().timeout(Duration::from_secs(3));
    /// assert_eq!(c.timeout, Duration::from_secs(3));
    /// ```
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Sets the time open before probing.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = forten_shared::client::CircuitBreakerConfig::default().reset_timeout(Duration::from_secs(3));
    /// assert_eq!(c.reset_timeout, Duration::from_secs(3));
    /// ```
    #[must_use]
    pub fn reset_timeout(mut self, d: Duration) -> Self {
        self.reset_timeout = d;
        self
    }
    /// Sets the probes allowed in flight while half-open.
    ///
    /// ```
    /// let c = forten_shared::client::CircuitBreakerConfig::default().half_open_max_probes(2);
    /// assert_eq!(c.half_open_max_probes, 2);
    /// ```
    #[must_use]
    pub fn half_open_max_probes(mut self, n: u32) -> Self {
        self.half_open_max_probes = n;
        self
    }

    /// Checks the settings.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = forten_shared::client::CircuitBreakerConfig::default().reset_timeout(Duration::ZERO);
    /// assert!(c.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.failure_threshold == 0
            || self.success_threshold == 0
            || self.half_open_max_probes == 0
        {
            return Err(InvalidConfig(
                "circuit breaker thresholds and probes must be at least 1".into(),
            ));
        }
        if self.timeout.is_zero() || self.reset_timeout.is_zero() {
            return Err(InvalidConfig(
                "circuit breaker timeout and reset_timeout must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Where the circuit stands.
///
/// ```
/// use forten_shared::client::CircuitState;
/// assert_eq!(CircuitState::Open.to_string(), "OPEN");
/// assert_eq!(CircuitState::HalfOpen.gauge_value(), 1.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls flow.
    Closed,
    /// A few probes flow.
    HalfOpen,
    /// Calls fail fast.
    Open,
}

impl CircuitState {
    /// The guide's name: `CLOSED`, `HALF_OPEN`, `OPEN`.
    ///
    /// ```
    /// assert_eq!(forten_shared::client::CircuitState::HalfOpen.as_str(), "HALF_OPEN");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::HalfOpen => "HALF_OPEN",
            Self::Open => "OPEN",
        }
    }

    /// The `circuit_breaker_state` gauge value: 0 closed, 1 half-open, 2 open.
    ///
    /// ```
    /// assert_eq!(forten_shared::client::CircuitState::Open.gauge_value(), 2.0);
    /// ```
    pub fn gauge_value(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change (the guide's `circuit:state_changed`).
///
/// ```
/// use forten_shared::client::{CircuitEvent, CircuitState};
/// let e = CircuitEvent { target: "access-service".into(), from: CircuitState::Closed, to: CircuitState::Open };
/// assert_eq!(e.to, CircuitState::Open);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitEvent {
    /// The target service.
    pub target: String,
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
}

/// The breaker refused the call: its `Display` is the guide's `Circuit breaker is OPEN`.
///
/// ```
/// assert_eq!(forten_shared::client::CircuitOpen.to_string(), "Circuit breaker is OPEN");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Circuit breaker is OPEN")]
pub struct CircuitOpen;

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

impl State {
    fn public(&self) -> CircuitState {
        match self {
            Self::Closed { .. } => CircuitState::Closed,
            Self::Open { .. } => CircuitState::Open,
            Self::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

#[derive(Debug)]
struct Inner {
    target: String,
    config: CircuitBreakerConfig,
    /// std mutex: transitions are a few instructions, and events are sent under it so that
    /// subscribers see them in the order they happened.
    state: Mutex<(State, u64)>,
    events: broadcast::Sender<CircuitEvent>,
    gauge: Option<metrics::Gauge>,
}

/// A circuit breaker for one target. Cheap to clone (shared state).
///
/// ```
/// use std::time::Duration;
/// use forten_shared::client::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
///
/// # tokio_test::block_on(async {
/// let breaker = CircuitBreaker::new("svc", CircuitBreakerConfig::default().failure_threshold(2), None)?;
/// breaker.acquire()?.record(false);
/// breaker.acquire()?.record(false);
/// assert_eq!(breaker.state(), CircuitState::Open);
/// assert_eq!(breaker.acquire().unwrap_err().to_string(), "Circuit breaker is OPEN");
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

/// Permission to make one call. Report its outcome with [`Permit::record`]; dropping it
/// unreported (a cancelled call) counts as neither success nor failure.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = forten_shared::client::CircuitBreaker::new("svc", Default::default(), None)?;
/// let permit = breaker.acquire()?;
/// permit.record(true);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "report the outcome with record()"]
pub struct Permit {
    breaker: Arc<Inner>,
    generation: u64,
    probe: bool,
    done: bool,
}

impl CircuitBreaker {
    /// A closed breaker for `target`; `metrics` receives `circuit_breaker_state{target}`.
    ///
    /// ```
    /// let metrics = forten_shared::telemetry::Metrics::new("breaker-doc");
    /// let breaker = forten_shared::client::CircuitBreaker::new("access-service", Default::default(), Some(&metrics))?;
    /// assert!(metrics.render().contains("circuit_breaker_state{service=\"breaker-doc\",target=\"access-service\"} 0"));
    /// # drop(breaker); Ok::<(), forten_shared::discovery::InvalidConfig>(())
    /// ```
    pub fn new(
        target: impl Into<String>,
        config: CircuitBreakerConfig,
        metrics: Option<&Metrics>,
    ) -> Result<Self, InvalidConfig> {
        config.validate()?;
        let target = target.into();
        let gauge =
            metrics.map(|m| m.gauge(metric_names::CIRCUIT_BREAKER_STATE, &[("target", &target)]));
        if let Some(g) = &gauge {
            g.set(CircuitState::Closed.gauge_value());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                config,
                state: Mutex::new((State::Closed { failures: 0 }, 0)),
                events: broadcast::channel(64).0,
                gauge,
            }),
        })
    }

    /// The settings.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = forten_shared::client::CircuitBreaker::new("svc", Default::default(), None)?;
    /// assert_eq!(breaker.config().failure_threshold, 5);
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.inner.config
    }

    /// The current state (an open circuit past its `reset_timeout` reads as half-open).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = forten_shared::client::CircuitBreaker::new("svc", Default::default(), None)?;
    /// assert_eq!(breaker.state(), forten_shared::client::CircuitState::Closed);
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> CircuitState {
        let guard = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match guard.0 {
            State::Open { until } if Instant::now() >= until => CircuitState::HalfOpen,
            ref s => s.public(),
        }
    }

    /// State changes, in order.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = forten_shared::client::CircuitBreaker::new("svc", forten_shared::client::CircuitBreakerConfig::default().failure_threshold(1), None)?;
    /// let mut events = breaker.subscribe();
    /// breaker.acquire()?.record(false);
    /// assert_eq!(events.recv().await?.to, forten_shared::client::CircuitState::Open);
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> broadcast::Receiver<CircuitEvent> {
        self.inner.events.subscribe()
    }

    /// Asks to make a call: refused with [`CircuitOpen`] while open, or while half-open with
    /// every probe slot taken.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = forten_shared::client::CircuitBreaker::new("svc", Default::default(), None)?;
    /// match breaker.acquire() {
    ///     Ok(permit) => permit.record(true), // made the call, it succeeded
    ///     Err(open) => println!("{open}"),   // Circuit breaker is OPEN
    /// }
    /// # Ok(()) }
    /// ```
    pub fn acquire(&self) -> Result<Permit, CircuitOpen> {
        let mut guard = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (state, generation) = &mut *guard;
        let probe = match state {
            State::Closed { .. } => false,
            State::Open { until } => {
                if Instant::now() < *until {
                    return Err(CircuitOpen);
                }
                self.inner.transition(
                    state,
                    generation,
                    State::HalfOpen {
                        in_flight: 1,
                        successes: 0,
                    },
                );
                true
            }
            State::HalfOpen { in_flight, .. } => {
                if *in_flight >= self.inner.config.half_open_max_probes {
                    return Err(CircuitOpen);
                }
                *in_flight += 1;
                true
            }
        };
        Ok(Permit {
            breaker: self.inner.clone(),
            generation: *generation,
            probe,
            done: false,
        })
    }
}

impl Inner {
    fn transition(&self, state: &mut State, generation: &mut u64, next: State) {
        let from = state.public();
        let to = next.public();
        *state = next;
        *generation += 1;
        if from != to {
            tracing::info!(target_service = %self.target, %from, %to, "circuit breaker state changed");
            if let Some(g) = &self.gauge {
                g.set(to.gauge_value());
            }
            let _ = self.events.send(CircuitEvent {
                target: self.target.clone(),
                from,
                to,
            });
        }
    }

    fn open(&self, state: &mut State, generation: &mut u64) {
        let until = Instant::now() + self.config.reset_timeout;
        self.transition(state, generation, State::Open { until });
    }
}

impl Permit {
    /// Reports the call's outcome.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = forten_shared::client::CircuitBreaker::new("svc", Default::default(), None)?;
    /// breaker.acquire()?.record(false);
    /// # Ok(()) }
    /// ```
    pub fn record(mut self, success: bool) {
        self.done = true;
        let inner = self.breaker.clone();
        let mut guard = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, generation) = &mut *guard;
        if *generation != self.generation {
            // The circuit moved on since this call started: a late answer of an older
            // period says nothing about the current one.
            return;
        }
        match state {
            State::Closed { failures } => {
                if success {
                    *failures = 0;
                } else {
                    *failures += 1;
                    if *failures >= inner.config.failure_threshold {
                        inner.open(state, generation);
                    }
                }
            }
            State::HalfOpen {
                in_flight,
                successes,
            } if self.probe => {
                *in_flight = in_flight.saturating_sub(1);
                if success {
                    *successes += 1;
                    if *successes >= inner.config.success_threshold {
                        inner.transition(state, generation, State::Closed { failures: 0 });
                    }
                } else {
                    inner.open(state, generation);
                }
            }
            _ => {}
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.done || !self.probe {
            return;
        }
        let mut guard = self
            .breaker
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (state, generation) = &mut *guard;
        if *generation == self.generation
            && let State::HalfOpen { in_flight, .. } = state
        {
            *in_flight = in_flight.saturating_sub(1);
        }
    }
}
