//! The batch writer: event handlers hand their [`Record`] over a channel and wait; one task
//! commits what has gathered (up to `batch_size` records, or whatever came within
//! `batch_linger` of the first) in one transaction, then answers each handler — which acks its
//! delivery only then. One transaction per batch instead of one per event is what lets the
//! service keep up with the broker; at-least-once delivery is untouched, and a redelivery
//! counts zero times because the raw event's primary key is its id.

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::model::Record;
use super::store;
use crate::storage::now_millis;

/// One record waiting to be stored, and where to say how it went.
#[derive(Debug)]
pub(crate) struct Job {
    /// The record.
    pub(crate) record: Record,
    /// `Ok(new)` once committed (`false`: stored before), else the database error.
    pub(crate) reply: oneshot::Sender<Result<bool, Arc<str>>>,
}

/// Runs until every sender is gone, committing batches; the jobs received are always
/// answered (a failed commit answers each with the error, and its handler retries).
pub(crate) async fn run(
    pool: AnyPool,
    mut rx: mpsc::Receiver<Job>,
    batch_size: usize,
    linger: Duration,
) {
    let batch_size = batch_size.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(batch_size);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = Instant::now() + linger;
        while batch.len() < batch_size {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => batch.push(job),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        commit(&pool, &mut batch).await;
    }
}

/// Writes `batch` and answers (and empties) it. When the batch fails as a whole, each record
/// is tried on its own, so that one record the database refuses fails alone instead of taking
/// its batch-mates to the dead-letter queue with it.
async fn commit(pool: &AnyPool, batch: &mut Vec<Job>) {
    let records: Vec<Record> = batch.iter().map(|j| j.record.clone()).collect();
    match store::write_batch(pool, &records, now_millis()).await {
        Ok(new) => {
            for (job, new) in batch.drain(..).zip(new) {
                let _ = job.reply.send(Ok(new));
            }
        }
        Err(e) if batch.len() > 1 => {
            tracing::warn!(error = %e, events = batch.len(), "analytics batch not stored; storing its events one by one");
            for job in batch.drain(..) {
                let one = store::write_batch(pool, std::slice::from_ref(&job.record), now_millis())
                    .await
                    .map(|new| new.first() == Some(&true))
                    .map_err(|e| Arc::from(e.to_string()));
                let _ = job.reply.send(one);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "analytics event not stored; it will be retried");
            let msg: Arc<str> = e.to_string().into();
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(msg.clone()));
            }
        }
    }
}
