//! Where the registry keeps its instances: the [`RegistryStore`] trait, the in-memory default
//! and (feature `redis`) a Redis store shared by several gateways.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::{InstanceStatus, ServiceInstance};

/// A store failure (Redis unreachable, corrupt entry).
///
/// ```
/// let e = forten_shared::discovery::StoreError("boom".into());
/// assert_eq!(e.to_string(), "registry store: boom");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("registry store: {0}")]
pub struct StoreError(pub String);

/// Storage of registered instances. Implementations must be safe to share between several
/// registries (Redis) or at least between the tasks of one (memory).
///
/// Times are wall-clock (`chrono`) because several gateways compare them.
///
/// ```
/// use forten_shared::discovery::{MemoryRegistryStore, Registration, RegistryStore, ServiceInstance};
///
/// # tokio_test::block_on(async {
/// let store = MemoryRegistryStore::default();
/// let now = chrono::Utc::now();
/// store.put(ServiceInstance::from_registration("i-1".into(), &Registration::new("a", "1", "h", 1), now)).await?;
/// assert!(store.heartbeat("i-1", now).await?);
/// assert!(!store.heartbeat("nope", now).await?);
/// assert_eq!(store.list().await?.len(), 1);
/// # Ok::<(), forten_shared::discovery::StoreError>(()) }).unwrap();
/// ```
pub trait RegistryStore: Send + Sync + std::fmt::Debug + 'static {
    /// Inserts or replaces an instance (its `last_heartbeat` counts as a heartbeat).
    fn put(&self, instance: ServiceInstance) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Records a heartbeat; `false` when the instance is unknown.
    fn heartbeat<'a>(
        &'a self,
        id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Removes an instance, returning it when it existed.
    fn remove<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServiceInstance>, StoreError>>;
    /// Every instance.
    fn list(&self) -> BoxFuture<'_, Result<Vec<ServiceInstance>, StoreError>>;
    /// Sets an instance's health; `false` when unknown.
    fn set_status<'a>(
        &'a self,
        id: &'a str,
        status: InstanceStatus,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Removes and returns the instances whose last heartbeat is before `before`.
    fn evict_expired(
        &self,
        before: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ServiceInstance>, StoreError>>;
}

/// The default store: a map in this process.
///
/// ```
/// let store = forten_shared::discovery::MemoryRegistryStore::default();
/// # let _ = store;
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistryStore {
    /// std mutex: never held across an await, critical sections are map operations.
    inner: Arc<Mutex<HashMap<String, ServiceInstance>>>,
}

impl MemoryRegistryStore {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, ServiceInstance>) -> R) -> R {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut map)
    }
}

impl RegistryStore for MemoryRegistryStore {
    fn put(&self, instance: ServiceInstance) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(|m| m.insert(instance.id.clone(), instance));
        Box::pin(async { Ok(()) })
    }

    fn heartbeat<'a>(
        &'a self,
        id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let found = self.with(|m| match m.get_mut(id) {
            Some(inst) => {
                inst.last_heartbeat = at;
                true
            }
            None => false,
        });
        Box::pin(async move { Ok(found) })
    }

    fn remove<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServiceInstance>, StoreError>> {
        let removed = self.with(|m| m.remove(id));
        Box::pin(async move { Ok(removed) })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ServiceInstance>, StoreError>> {
        let all = self.with(|m| m.values().cloned().collect());
        Box::pin(async move { Ok(all) })
    }

    fn set_status<'a>(
        &'a self,
        id: &'a str,
        status: InstanceStatus,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let found = self.with(|m| match m.get_mut(id) {
            Some(inst) => {
                inst.status = status;
                true
            }
            None => false,
        });
        Box::pin(async move { Ok(found) })
    }

    fn evict_expired(
        &self,
        before: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ServiceInstance>, StoreError>> {
        let evicted = self.with(|m| {
            let ids: Vec<String> = m
                .values()
                .filter(|i| i.last_heartbeat < before)
                .map(|i| i.id.clone())
                .collect();
            ids.iter().filter_map(|id| m.remove(id)).collect()
        });
        Box::pin(async move { Ok(evicted) })
    }
}

/// A store in Redis so that several gateways share one registry (`REDIS_URL`).
///
/// Layout under `prefix`: hash `instances` (id → instance JSON), sorted set `heartbeats`
/// (id scored by last heartbeat, ms since the epoch) and hash `status` (id → health). The
/// heartbeat lives apart from the JSON so that a heartbeat is one atomic script, not a
/// read-modify-write race between gateways.
///
/// ```no_run
/// # async fn f() -> Result<(), forten_shared::discovery::StoreError> {
/// let store = forten_shared::discovery::RedisRegistryStore::connect("redis://127.0.0.1:6379", "forten:registry:").await?;
/// # let _ = store; Ok(()) }
/// ```
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisRegistryStore {
    conn: redis::aio::ConnectionManager,
    instances: String,
    heartbeats: String,
    status: String,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisRegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRegistryStore")
            .field("instances", &self.instances)
            .finish_non_exhaustive()
    }
}

/// Instances, heartbeats and health, as read by one pipeline.
#[cfg(feature = "redis")]
type ListReply = (
    HashMap<String, String>,
    Vec<(String, i64)>,
    HashMap<String, String>,
);

#[cfg(feature = "redis")]
#[allow(clippy::needless_pass_by_value)] // used as `map_err(redis_err)`
fn redis_err(e: redis::RedisError) -> StoreError {
    StoreError(e.to_string())
}

#[cfg(feature = "redis")]
impl RedisRegistryStore {
    /// Connects (giving up after 10 s); keys are `prefix` + `instances|heartbeats|status`.
    ///
    /// ```
    /// # async fn f() -> Result<(), forten_shared::discovery::StoreError> {
    /// use std::sync::Arc;
    /// use forten_shared::discovery::{RedisRegistryStore, Registry, RegistryConfig};
    /// let store = RedisRegistryStore::connect("redis://127.0.0.1:6379", "forten:registry:").await?;
    /// let registry = Registry::builder(RegistryConfig::default()).store(Arc::new(store)).start();
    /// # drop(registry); Ok(()) }
    /// ```
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.get_connection_manager(),
        )
        .await
        .map_err(|_| StoreError(format!("no connection to {url} within 10s")))?
        .map_err(redis_err)?;
        Ok(Self {
            conn,
            instances: format!("{prefix}instances"),
            heartbeats: format!("{prefix}heartbeats"),
            status: format!("{prefix}status"),
        })
    }

    fn decode(
        &self,
        raw: HashMap<String, String>,
        beats: Vec<(String, i64)>,
        status: &HashMap<String, String>,
    ) -> Vec<ServiceInstance> {
        let beats: HashMap<String, i64> = beats.into_iter().collect();
        raw.into_iter()
            .filter_map(|(id, json)| {
                let mut inst: ServiceInstance = match serde_json::from_str(&json) {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::warn!(%id, error = %e, "skipping corrupt registry entry");
                        return None;
                    }
                };
                if let Some(ms) = beats.get(&id)
                    && let Some(t) = DateTime::<Utc>::from_timestamp_millis(*ms)
                {
                    inst.last_heartbeat = t;
                }
                inst.status = match status.get(&id).map(String::as_str) {
                    Some("unhealthy") => InstanceStatus::Unhealthy,
                    _ => InstanceStatus::Healthy,
                };
                Some(inst)
            })
            .collect()
    }
}

#[cfg(feature = "redis")]
impl RegistryStore for RedisRegistryStore {
    fn put(&self, instance: ServiceInstance) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let json = serde_json::to_string(&instance).map_err(|e| StoreError(e.to_string()))?;
            let mut conn = self.conn.clone();
            redis::pipe()
                .atomic()
                .hset(&self.instances, &instance.id, json)
                .ignore()
                .zadd(
                    &self.heartbeats,
                    &instance.id,
                    instance.last_heartbeat.timestamp_millis(),
                )
                .ignore()
                .hset(&self.status, &instance.id, instance.status.as_str())
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(redis_err)
        })
    }

    fn heartbeat<'a>(
        &'a self,
        id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let found: i64 = redis::cmd("EVAL")
                .arg("if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1]) return 1 else return 0 end")
                .arg(2)
                .arg(&self.instances)
                .arg(&self.heartbeats)
                .arg(id)
                .arg(at.timestamp_millis())
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            Ok(found == 1)
        })
    }

    fn remove<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServiceInstance>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (json, _, _, _): (Option<String>, i64, i64, i64) = redis::pipe()
                .atomic()
                .hget(&self.instances, id)
                .hdel(&self.instances, id)
                .zrem(&self.heartbeats, id)
                .hdel(&self.status, id)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ServiceInstance>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (raw, beats, status): ListReply = redis::pipe()
                .hgetall(&self.instances)
                .zrange_withscores(&self.heartbeats, 0, -1)
                .hgetall(&self.status)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            Ok(self.decode(raw, beats, &status))
        })
    }

    fn set_status<'a>(
        &'a self,
        id: &'a str,
        status: InstanceStatus,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let found: i64 = redis::cmd("EVAL")
                .arg("if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) return 1 else return 0 end")
                .arg(2)
                .arg(&self.instances)
                .arg(&self.status)
                .arg(id)
                .arg(status.as_str())
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            Ok(found == 1)
        })
    }

    fn evict_expired(
        &self,
        before: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ServiceInstance>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&self.heartbeats)
                .arg("-inf")
                .arg(format!("({}", before.timestamp_millis()))
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            let mut evicted = Vec::new();
            for id in ids {
                // Re-check under a script: a heartbeat may have landed since the range read,
                // and another gateway may be evicting the same instance.
                let json: Option<String> = redis::cmd("EVAL")
                    .arg("local s = redis.call('ZSCORE', KEYS[2], ARGV[1]) if s and tonumber(s) < tonumber(ARGV[2]) then local j = redis.call('HGET', KEYS[1], ARGV[1]) redis.call('HDEL', KEYS[1], ARGV[1]) redis.call('ZREM', KEYS[2], ARGV[1]) redis.call('HDEL', KEYS[3], ARGV[1]) return j else return false end")
                    .arg(3)
                    .arg(&self.instances)
                    .arg(&self.heartbeats)
                    .arg(&self.status)
                    .arg(&id)
                    .arg(before.timestamp_millis())
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err)?;
                if let Some(inst) = json.and_then(|j| serde_json::from_str(&j).ok()) {
                    evicted.push(inst);
                }
            }
            Ok(evicted)
        })
    }
}
