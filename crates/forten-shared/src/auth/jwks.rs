//! Client side of issuer mode: the JWKS fetched from the issuer and cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use tokio::time::Instant;

use super::AuthError;
use super::claims::JwkSet;

/// The issuer's public keys, fetched from `GET /.well-known/jwks.json` and cached.
///
/// Verification reads the cache only (no network on the hot path). A token whose `kid` is not
/// cached triggers one refresh (single-flight, at most one per `min_refresh_interval`), which is
/// how a key rotation reaches verifiers. A refresh replaces the whole set, so retired keys go.
///
/// ```
/// use forten_shared::auth::JwksCache;
/// use std::time::Duration;
/// let cache = JwksCache::new("http://127.0.0.1:3001/.well-known/jwks.json", Duration::from_secs(5))?;
/// assert!(cache.key("nope").is_none());
/// # Ok::<(), forten_shared::auth::AuthError>(())
/// ```
#[derive(Debug, Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    client: reqwest::Client,
    /// std `RwLock`: read on every verification, written only by a refresh, never held across
    /// an await.
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    /// Single-flight guard for refreshes; holds when the last one finished.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    min_refresh_interval: Duration,
}

impl JwksCache {
    /// A cache of the JWKS at `url`, refreshed at most once per `min_refresh_interval` on
    /// unknown key ids. Builds its own rustls HTTP client with a 5 s timeout.
    pub fn new(url: impl Into<String>, min_refresh_interval: Duration) -> Result<Self, AuthError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|e| AuthError::Config(format!("http client: {e}")))?;
        Ok(Self::with_client(url, min_refresh_interval, client))
    }

    /// Same, with a given HTTP client.
    pub fn with_client(
        url: impl Into<String>,
        min_refresh_interval: Duration,
        client: reqwest::Client,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.into(),
                client,
                keys: RwLock::new(HashMap::new()),
                last_refresh: tokio::sync::Mutex::new(None),
                min_refresh_interval,
            }),
        }
    }

    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The cached key for `kid`.
    pub fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fetches the JWKS now and replaces the cache; returns the number of usable keys.
    pub async fn refresh(&self) -> Result<usize, AuthError> {
        let mut last = self.inner.last_refresh.lock().await;
        let n = self.fetch().await?;
        *last = Some(Instant::now());
        Ok(n)
    }

    /// Refreshes because `kid` was not found, unless another task just did (then re-checks).
    /// Returns whether `kid` is known afterwards.
    pub(crate) async fn refresh_for(&self, kid: &str) -> bool {
        let mut last = self.inner.last_refresh.lock().await;
        if self.key(kid).is_some() {
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < self.inner.min_refresh_interval) {
            return false;
        }
        let fetched = self.fetch().await;
        *last = Some(Instant::now());
        if let Err(e) = fetched {
            tracing::warn!(error = %e, url = %self.inner.url, "jwks refresh failed");
            return false;
        }
        self.key(kid).is_some()
    }

    async fn fetch(&self) -> Result<usize, AuthError> {
        let resp = self
            .inner
            .client
            .get(&self.inner.url)
            .send()
            .await
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(AuthError::Jwks(format!(
                "{} answered {}",
                self.inner.url,
                resp.status()
            )));
        }
        let set: JwkSet = resp
            .json()
            .await
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in set.keys.iter().filter(|k| k.is_ed25519()) {
            let (Some(kid), Ok(key)) = (&jwk.kid, DecodingKey::from_ed_components(&jwk.x)) else {
                continue;
            };
            keys.insert(kid.clone(), Arc::new(key));
        }
        let n = keys.len();
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        Ok(n)
    }
}
