//! A background task that runs one round every interval, owned by a drop guard (the camera
//! watchdog, the outbox relay).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs a round every `interval` until [`stop`](Self::stop)ped or dropped.
#[derive(Debug)]
pub(crate) struct Periodic {
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Periodic {
    /// Starts calling `round` every `interval` (a slow round delays the next one rather than
    /// stacking them); a failed round is logged as `what` and the next one runs as planned.
    pub(crate) fn start<F, Fut, T, E>(interval: Duration, what: &'static str, mut round: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send,
        E: std::fmt::Display,
    {
        let token = CancellationToken::new();
        let stop = token.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = round().await {
                    tracing::warn!(error = %e, "{what} round failed; trying again next round");
                }
            }
        });
        Self {
            token,
            task: Some(task),
        }
    }

    /// Stops the task and waits for its round in progress to end.
    pub(crate) async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
