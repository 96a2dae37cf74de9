//! Idempotent handling: [`Deduplicate`] runs a handler at most once per event id (per
//! subscription), with a bounded in-memory store by default and a Redis store for several
//! consumer instances.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Event, Handler, HandlerError, Outcome};

/// Errors of a dedup store.
///
/// ```
/// let e = forten_shared::events::DedupError("connection refused".into());
/// assert_eq!(e.to_string(), "dedup store unavailable: connection refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dedup store unavailable: {0}")]
pub struct DedupError(pub String);

/// The state of a key after [`DedupStore::claim`].
///
/// ```
/// assert_ne!(forten_shared::events::Claim::Acquired, forten_shared::events::Claim::Done);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours now: handle the event, then [`complete`](DedupStore::complete) or
    /// [`release`](DedupStore::release).
    Acquired,
    /// Someone is handling it right now (the claim expires after its lease).
    InProgress,
    /// Already handled.
    Done,
}

/// Where processed event ids are kept.
///
/// ```
/// use std::time::Duration;
/// use forten_shared::events::{Claim, DedupStore, MemoryDedupStore};
/// # tokio_test::block_on(async {
/// let store = MemoryDedupStore::new(1000, Duration::from_secs(3600));
/// assert_eq!(store.claim("q:1", Duration::from_secs(30)).await?, Claim::Acquired);
/// store.complete("q:1").await?;
/// assert_eq!(store.claim("q:1", Duration::from_secs(30)).await?, Claim::Done);
/// # Ok::<(), forten_shared::events::DedupError>(())
/// # }).unwrap();
/// ```
pub trait DedupStore: Send + Sync + 'static {
    /// Claims `key` for `lease` unless it is done or claimed.
    fn claim<'a>(
        &'a self,
        key: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, DedupError>>;
    /// Marks `key` done.
    fn complete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), DedupError>>;
    /// Gives up a claim, so that a redelivery may handle the event.
    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), DedupError>>;
}

#[derive(Debug)]
enum State {
    Claimed(Instant),
    Done(Instant),
}

#[derive(Debug, Default)]
struct MemoryInner {
    map: HashMap<String, State>,
    /// Keys in completion order, for eviction.
    order: VecDeque<String>,
}

/// An in-memory store holding at most `capacity` completed ids, each for at most `ttl`.
///
/// ```
/// let store = forten_shared::events::MemoryDedupStore::default();
/// # let _ = store;
/// ```
#[derive(Debug)]
pub struct MemoryDedupStore {
    capacity: usize,
    ttl: Duration,
    inner: Mutex<MemoryInner>,
}

impl MemoryDedupStore {
    /// A store keeping up to `capacity` ids for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            ttl,
            inner: Mutex::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryInner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Default for MemoryDedupStore {
    /// 100,000 ids for 24 hours.
    fn default() -> Self {
        Self::new(100_000, Duration::from_secs(24 * 3600))
    }
}

impl DedupStore for MemoryDedupStore {
    fn claim<'a>(
        &'a self,
        key: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, DedupError>> {
        let now = Instant::now();
        let claim = self.with(|inner| match inner.map.get(key) {
            Some(State::Done(until)) if *until > now => Claim::Done,
            Some(State::Claimed(until)) if *until > now => Claim::InProgress,
            _ => {
                inner
                    .map
                    .insert(key.to_owned(), State::Claimed(now + lease));
                Claim::Acquired
            }
        });
        Box::pin(async move { Ok(claim) })
    }

    fn complete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), DedupError>> {
        let until = Instant::now() + self.ttl;
        self.with(|inner| {
            inner.map.insert(key.to_owned(), State::Done(until));
            inner.order.push_back(key.to_owned());
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front()
                    && matches!(inner.map.get(&old), Some(State::Done(_)))
                {
                    inner.map.remove(&old);
                }
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), DedupError>> {
        self.with(|inner| {
            if matches!(inner.map.get(key), Some(State::Claimed(_))) {
                inner.map.remove(key);
            }
        });
        Box::pin(async { Ok(()) })
    }
}

/// A store in Redis, shared by several consumer instances: `SET key p NX PX lease` to claim,
/// `SET key d PX ttl` when done.
///
/// ```no_run
/// # async fn f() -> Result<(), forten_shared::events::DedupError> {
/// let store = forten_shared::events::RedisDedupStore::connect("redis://127.0.0.1:6379", "forten:dedup:").await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisDedupStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    ttl: Duration,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisDedupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDedupStore")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish()
    }
}

#[cfg(feature = "redis")]
impl RedisDedupStore {
    /// Connects to Redis (`REDIS_URL`); keys are `prefix` + subscription + event id, kept 24 h.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, DedupError> {
        let err = |e: redis::RedisError| DedupError(e.to_string());
        let client = redis::Client::open(url).map_err(err)?;
        let conn = tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager())
            .await
            .map_err(|_| DedupError(format!("no connection to {url} within 10s")))?
            .map_err(err)?;
        Ok(Self {
            conn,
            prefix: prefix.into(),
            ttl: Duration::from_secs(24 * 3600),
        })
    }

    /// Sets how long completed ids are kept.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[cfg(feature = "redis")]
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(feature = "redis")]
impl DedupStore for RedisDedupStore {
    fn claim<'a>(
        &'a self,
        key: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, DedupError>> {
        Box::pin(async move {
            let err = |e: redis::RedisError| DedupError(e.to_string());
            let mut conn = self.conn.clone();
            let key = self.key(key);
            loop {
                let set: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg("p")
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(lease))
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                if set.is_some() {
                    return Ok(Claim::Acquired);
                }
                let state: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                match state.as_deref() {
                    Some("d") => return Ok(Claim::Done),
                    Some(_) => return Ok(Claim::InProgress),
                    None => {} // expired in between: claim again
                }
            }
        })
    }

    fn complete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), DedupError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            redis::cmd("SET")
                .arg(self.key(key))
                .arg("d")
                .arg("PX")
                .arg(millis(self.ttl))
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| DedupError(e.to_string()))
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), DedupError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            // delete only a claim, never a completion
            redis::cmd("EVAL")
                .arg("if redis.call('GET', KEYS[1]) == 'p' then return redis.call('DEL', KEYS[1]) else return 0 end")
                .arg(1)
                .arg(self.key(key))
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
                .map_err(|e| DedupError(e.to_string()))
        })
    }
}

/// Wraps a handler so that each event id is handled once per `scope` (use the subscription's
/// queue name): a redelivered or re-published duplicate is acknowledged without running the
/// handler (outcome `dropped`), and a duplicate arriving while the first is still being
/// handled waits for it.
///
/// ```
/// use std::sync::Arc;
/// use forten_shared::{Event, events::{Deduplicate, MemoryDedupStore, Subscribe}};
///
/// let handler = Deduplicate::new("access-service.user.created", Arc::new(MemoryDedupStore::default()),
///     |event: Event| async move { println!("{}", event.id); });
/// # let _ = handler;
/// ```
pub struct Deduplicate<H> {
    scope: String,
    store: Arc<dyn DedupStore>,
    handler: Arc<H>,
    lease: Duration,
}

impl<H> std::fmt::Debug for Deduplicate<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deduplicate")
            .field("scope", &self.scope)
            .field("lease", &self.lease)
            .finish()
    }
}

impl<H: Handler> Deduplicate<H> {
    /// Dedups `handler` on event id within `scope`, in `store`. A claim lasts 60 s (the
    /// longest a handler is expected to run); see [`Deduplicate::lease`].
    pub fn new(scope: impl Into<String>, store: Arc<dyn DedupStore>, handler: H) -> Self {
        Self {
            scope: scope.into(),
            store,
            handler: Arc::new(handler),
            lease: Duration::from_secs(60),
        }
    }

    /// Sets how long a claim lasts if its holder dies without completing.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }
}

impl<H: Handler> Handler for Deduplicate<H> {
    fn handle(&self, event: Event) -> BoxFuture<'static, Result<Outcome, HandlerError>> {
        let key = format!("{}:{}", self.scope, event.id);
        let (store, handler, lease) = (self.store.clone(), self.handler.clone(), self.lease);
        Box::pin(async move {
            let transient = |e: DedupError| HandlerError::transient(e);
            loop {
                match store.claim(&key, lease).await.map_err(transient)? {
                    Claim::Done => return Ok(Outcome::Drop),
                    Claim::InProgress => tokio::time::sleep(Duration::from_millis(50)).await,
                    Claim::Acquired => break,
                }
            }
            let result = handler.handle(event).await;
            match &result {
                Ok(Outcome::Ack | Outcome::Drop) => {
                    if let Err(e) = store.complete(&key).await {
                        tracing::warn!(%key, error = %e, "could not record a handled event; a redelivery may run it again");
                    }
                }
                _ => {
                    if let Err(e) = store.release(&key).await {
                        tracing::warn!(%key, error = %e, "could not release a dedup claim; it expires with its lease");
                    }
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventBuilder;
    use crate::events::UserDeleted;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn memory_store_is_bounded() {
        let store = MemoryDedupStore::new(2, Duration::from_secs(60));
        for k in ["a", "b", "c"] {
            assert_eq!(
                store.claim(k, Duration::from_secs(1)).await.unwrap(),
                Claim::Acquired
            );
            store.complete(k).await.unwrap();
        }
        assert_eq!(store.with(|i| i.map.len()), 2);
        assert_eq!(
            store.claim("a", Duration::from_secs(1)).await.unwrap(),
            Claim::Acquired
        );
        assert_eq!(
            store.claim("c", Duration::from_secs(1)).await.unwrap(),
            Claim::Done
        );
    }

    #[tokio::test(start_paused = true)]
    async fn claims_expire_and_release() {
        let store = MemoryDedupStore::default();
        assert_eq!(
            store.claim("k", Duration::from_secs(5)).await.unwrap(),
            Claim::Acquired
        );
        assert_eq!(
            store.claim("k", Duration::from_secs(5)).await.unwrap(),
            Claim::InProgress
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(
            store.claim("k", Duration::from_secs(5)).await.unwrap(),
            Claim::Acquired
        );
        store.release("k").await.unwrap();
        assert_eq!(
            store.claim("k", Duration::from_secs(5)).await.unwrap(),
            Claim::Acquired
        );
    }

    #[tokio::test]
    async fn runs_once_per_id_and_again_after_failure() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let h = Deduplicate::new(
            "q",
            Arc::new(MemoryDedupStore::default()),
            move |_e: Event| {
                let n = r.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Err(HandlerError::transient("first fails"))
                    } else {
                        Ok(())
                    }
                }
            },
        );
        let e = EventBuilder::new(
            UserDeleted {
                user_id: "u".into(),
            },
            "s",
        )
        .build();
        assert!(h.handle(e.clone()).await.is_err());
        assert_eq!(h.handle(e.clone()).await.unwrap(), Outcome::Ack);
        assert_eq!(h.handle(e).await.unwrap(), Outcome::Drop);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
