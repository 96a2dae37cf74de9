//! The in-process transport: the same topology and delivery semantics as RabbitMQ (topic
//! bindings, named queues shared by competing consumers, delayed retries that never block the
//! queue, a DLQ per queue), held in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::TopicPattern;
use super::bus::{BusError, ConnectionEvent, DeadLetter, PauseSwitch, SubscriptionHandle};
use super::pipeline::{Decision, DeliveryMeta, Failure, Processor};

#[derive(Debug, Clone)]
struct Msg {
    body: Bytes,
    meta: DeliveryMeta,
}

#[derive(Debug)]
struct Queue {
    patterns: Mutex<Vec<TopicPattern>>,
    tx: mpsc::UnboundedSender<Msg>,
    /// Competing consumers take turns on the receiver.
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Msg>>,
    dlq: Mutex<VecDeque<(Msg, Failure)>>,
    /// Messages handed to a handler and not yet settled: put back on shutdown.
    in_flight: Mutex<HashMap<u64, Msg>>,
}

impl Queue {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            patterns: Mutex::new(Vec::new()),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            dlq: Mutex::new(VecDeque::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    fn enqueue(&self, msg: Msg) {
        // The receiver lives as long as the queue, so the send cannot fail.
        let _ = self.tx.send(msg);
    }
}

/// Locks a std mutex, ignoring poisoning (the data stays consistent: every critical section
/// is a single container operation).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
pub(crate) struct MemoryBus {
    queues: Arc<Mutex<HashMap<String, Arc<Queue>>>>,
    events: broadcast::Sender<ConnectionEvent>,
    closed: AtomicBool,
    /// Stops consumers taking new messages.
    stop: CancellationToken,
    /// Abandons unfinished handlers (their messages are put back) and flushes delayed retries.
    abort: CancellationToken,
    tracker: TaskTracker,
    next_id: Arc<AtomicU64>,
    /// Live observers ([`EventBus::tail`](super::EventBus::tail)): best effort, never block a publish.
    taps: Mutex<Vec<(TopicPattern, mpsc::Sender<Bytes>)>>,
}

impl MemoryBus {
    pub(crate) fn new(_service: Arc<str>) -> Self {
        Self {
            queues: Arc::default(),
            events: broadcast::Sender::new(16),
            closed: AtomicBool::new(false),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_id: Arc::default(),
            taps: Mutex::default(),
        }
    }

    pub(crate) fn tail(&self, pattern: TopicPattern) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(1024);
        lock(&self.taps).push((pattern, tx));
        rx
    }

    pub(crate) fn publish(&self, routing_key: &str, body: &Bytes) -> Result<(), BusError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed);
        }
        let meta = DeliveryMeta {
            routing_key: routing_key.to_owned(),
            ..Default::default()
        };
        for q in lock(&self.queues).values() {
            if lock(&q.patterns).iter().any(|p| p.matches(routing_key)) {
                q.enqueue(Msg {
                    body: body.clone(),
                    meta: meta.clone(),
                });
            }
        }
        let mut taps = lock(&self.taps);
        taps.retain(|(_, tx)| !tx.is_closed());
        for (p, tx) in taps.iter() {
            if p.matches(routing_key) {
                let _ = tx.try_send(body.clone());
            }
        }
        Ok(())
    }

    fn queue(&self, name: &str) -> Arc<Queue> {
        lock(&self.queues)
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Queue::new()))
            .clone()
    }

    pub(crate) fn subscribe(
        &self,
        processor: Arc<Processor>,
        handle: SubscriptionHandle,
    ) -> Result<SubscriptionHandle, BusError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed);
        }
        let queue = self.queue(&processor.sub.queue);
        {
            let mut patterns = lock(&queue.patterns);
            for p in &processor.sub.patterns {
                if !patterns.contains(p) {
                    patterns.push(p.clone());
                }
            }
        }
        let consumer = Consumer {
            queue,
            processor,
            _pause_switch: handle.paused.clone(),
            paused: handle.paused.tx.subscribe(),
            stop: self.stop.clone(),
            abort: self.abort.clone(),
            tracker: self.tracker.clone(),
            next_id: self.next_id.clone(),
        };
        self.tracker.spawn(consumer.run());
        Ok(handle)
    }

    pub(crate) fn connection_events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.events.subscribe()
    }

    pub(crate) fn dead_letters(&self, queue: &str, limit: usize) -> Vec<DeadLetter> {
        let Some(q) = lock(&self.queues).get(queue).cloned() else {
            return Vec::new();
        };
        let dlq = lock(&q.dlq);
        dlq.iter()
            .take(limit)
            .map(|(m, f)| DeadLetter {
                body: m.body.to_vec(),
                error: f.error.clone(),
                attempts: f.attempts,
                routing_key: f.routing_key.clone(),
                first_failure: f.first_failure.clone(),
                last_failure: f.last_failure.clone(),
            })
            .collect()
    }

    pub(crate) fn replay_dead_letters(&self, queue: &str, limit: usize) -> usize {
        let Some(q) = lock(&self.queues).get(queue).cloned() else {
            return 0;
        };
        let mut n = 0;
        while n < limit {
            let Some((msg, failure)) = lock(&q.dlq).pop_front() else {
                break;
            };
            let meta = DeliveryMeta {
                routing_key: failure.routing_key,
                ..Default::default()
            };
            q.enqueue(Msg {
                body: msg.body,
                meta,
            });
            n += 1;
        }
        n
    }

    pub(crate) fn purge_dead_letters(&self, queue: &str) -> usize {
        let Some(q) = lock(&self.queues).get(queue).cloned() else {
            return 0;
        };
        let mut dlq = lock(&q.dlq);
        let n = dlq.len();
        dlq.clear();
        n
    }

    pub(crate) fn delete_queues(&self, queue: &str) {
        lock(&self.queues).remove(queue);
    }

    pub(crate) async fn shutdown(&self, deadline: Duration) {
        self.closed.store(true, Ordering::Release);
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "in-process bus: handlers still running at the shutdown deadline; their events are put back"
            );
        }
        self.abort.cancel();
        self.tracker.wait().await;
        for q in lock(&self.queues).values() {
            for (_, msg) in lock(&q.in_flight).drain() {
                q.enqueue(msg);
            }
        }
    }
}

struct Consumer {
    queue: Arc<Queue>,
    processor: Arc<Processor>,
    /// Keeps the pause switch alive as long as the consumer, whatever becomes of the handle.
    _pause_switch: Arc<PauseSwitch>,
    paused: tokio::sync::watch::Receiver<bool>,
    stop: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
    next_id: Arc<AtomicU64>,
}

impl Consumer {
    async fn run(mut self) {
        let permits = Arc::new(Semaphore::new(self.processor.sub.concurrency));
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                r = self.paused.wait_for(|p| !p) => if r.is_err() { return },
            }
            let permit = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            };
            let msg = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                _ = self.paused.changed() => continue,
                m = async { self.queue.rx.lock().await.recv().await } => match m { Some(m) => m, None => return },
            };
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            lock(&self.queue.in_flight).insert(id, msg.clone());
            let (queue, processor, abort) = (
                self.queue.clone(),
                self.processor.clone(),
                self.abort.clone(),
            );
            self.tracker.spawn(async move {
                let _permit = permit;
                let decision = tokio::select! {
                    biased;
                    () = abort.cancelled() => return, // stays in flight: put back by shutdown
                    d = processor.process(&msg.body, &msg.meta) => d,
                };
                lock(&queue.in_flight).remove(&id);
                settle(&queue, msg, decision, &abort);
            });
        }
    }
}

fn settle(queue: &Arc<Queue>, msg: Msg, decision: Decision, abort: &CancellationToken) {
    match decision {
        Decision::Ack => {}
        Decision::Retry { delay, failure } => {
            let meta = DeliveryMeta {
                routing_key: failure.routing_key,
                attempts: failure.attempts,
                first_failure: Some(failure.first_failure),
            };
            let retried = Msg {
                body: msg.body,
                meta,
            };
            let (queue, abort) = (queue.clone(), abort.clone());
            // The delay runs beside the queue, never in front of it.
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = abort.cancelled() => {}
                }
                queue.enqueue(retried);
            });
        }
        Decision::DeadLetter(failure) => lock(&queue.dlq).push_back((msg, failure)),
    }
}
