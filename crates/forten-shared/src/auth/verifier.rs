//! Token verification shared by the layer and the event authenticator.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::TokenError;
use super::claims::{ISSUER, ServiceClaims, b64url_decode, now_secs};
use super::issuer::TokenIssuer;
use super::jwks::JwksCache;

/// Verifies service tokens: signature with the mode's only algorithm (HS256 in shared-secret
/// mode, EdDSA in issuer mode — `none` and algorithm confusion are rejected), `iss` = `forten`,
/// `aud`, `exp`/`nbf`/`iat` with a small leeway. Synchronous: keys are local or cached.
///
/// ```
/// use forten_shared::auth::{ServiceClaims, TokenError, TokenVerifier};
/// forten_shared::auth::install_crypto_provider();
/// let secret = b"0123456789abcdef0123456789abcdef";
/// let claims = ServiceClaims::new("access-service", "monitoring-service", &["internal:read".into()], 60);
/// let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims,
///     &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap();
/// let verifier = TokenVerifier::shared_secret(secret);
/// assert_eq!(verifier.verify(&token, "monitoring-service")?.sub, "access-service");
/// assert_eq!(verifier.verify(&token, "auth-service"), Err(TokenError::WrongAudience));
/// # Ok::<(), TokenError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: KeySource,
    leeway: u64,
    /// Tokens already verified, until they expire: a caller reuses its token for minutes, so a
    /// protected hot path pays one map lookup instead of a signature check. std `RwLock`, never
    /// held across an await; bounded by [`VERIFIED_CACHE_MAX`].
    verified: RwLock<HashMap<String, Arc<ServiceClaims>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("keys", &self.keys)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// Bound on the verified-token cache.
const VERIFIED_CACHE_MAX: usize = 4096;

#[derive(Clone)]
enum KeySource {
    Shared(DecodingKey),
    Jwks(JwksCache),
    Local(Arc<TokenIssuer>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Shared(_) => f.write_str("Shared([redacted])"),
            KeySource::Jwks(c) => f.debug_tuple("Jwks").field(&c.url()).finish(),
            KeySource::Local(_) => f.write_str("Local"),
        }
    }
}

/// Default clock-skew leeway.
pub(crate) const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

impl TokenVerifier {
    fn from_source(keys: KeySource) -> Self {
        super::install_crypto_provider();
        Self::with(keys, DEFAULT_LEEWAY.as_secs())
    }

    fn with(keys: KeySource, leeway: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys,
                leeway,
                verified: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Shared-secret mode: HS256 with `JWT_SECRET`.
    pub fn shared_secret(secret: &[u8]) -> Self {
        Self::from_source(KeySource::Shared(DecodingKey::from_secret(secret)))
    }

    /// Issuer mode, remote: EdDSA with the keys of a [`JwksCache`].
    pub fn jwks(cache: JwksCache) -> Self {
        Self::from_source(KeySource::Jwks(cache))
    }

    /// Issuer mode inside the issuer's own process: EdDSA with its keys.
    pub fn local(issuer: Arc<TokenIssuer>) -> Self {
        Self::from_source(KeySource::Local(issuer))
    }

    /// Sets the clock-skew leeway for `exp`, `nbf` and `iat` (default 5 s).
    ///
    /// ```
    /// # use forten_shared::auth::TokenVerifier;
    /// let v = TokenVerifier::shared_secret(b"k").with_leeway(std::time::Duration::from_secs(2));
    /// # let _ = v;
    /// ```
    pub fn with_leeway(self, leeway: Duration) -> Self {
        Self::with(self.inner.keys.clone(), leeway.as_secs())
    }

    fn algorithm(&self) -> Algorithm {
        match self.inner.keys {
            KeySource::Shared(_) => Algorithm::HS256,
            _ => Algorithm::EdDSA,
        }
    }

    /// Verifies `token` for `audience`, using cached keys only. A token verified before is
    /// answered from a cache (audience and expiry re-checked).
    pub fn verify(&self, token: &str, audience: &str) -> Result<ServiceClaims, TokenError> {
        let hit = self
            .inner
            .verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned();
        if let Some(claims) = hit {
            if claims.exp + self.inner.leeway < now_secs() {
                return Err(TokenError::Expired);
            }
            if claims.aud != audience {
                return Err(TokenError::WrongAudience);
            }
            return Ok(ServiceClaims::clone(&claims));
        }
        let claims = self.verify_uncached(token, audience)?;
        let now = now_secs();
        let mut cache = self
            .inner
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= VERIFIED_CACHE_MAX {
            let leeway = self.inner.leeway;
            cache.retain(|_, c| c.exp + leeway >= now);
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), Arc::new(claims.clone()));
        Ok(claims)
    }

    /// Full verification: header, algorithm, key, signature, claims.
    fn verify_uncached(&self, token: &str, audience: &str) -> Result<ServiceClaims, TokenError> {
        let alg = self.algorithm();
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_error(token, alg))?;
        if header.alg != alg {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let key: Arc<DecodingKey>;
        let key_ref: &DecodingKey = match &self.inner.keys {
            KeySource::Shared(k) => k,
            KeySource::Jwks(cache) => {
                let kid = header.kid.as_deref().ok_or(TokenError::UnknownKid)?;
                key = cache.key(kid).ok_or(TokenError::UnknownKid)?;
                &key
            }
            KeySource::Local(issuer) => {
                let kid = header.kid.as_deref().ok_or(TokenError::UnknownKid)?;
                key = issuer.decoding_key(kid).ok_or(TokenError::UnknownKid)?;
                &key
            }
        };
        let mut validation = Validation::new(alg);
        validation.leeway = self.inner.leeway;
        validation.validate_nbf = true;
        validation.set_audience(&[audience]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<ServiceClaims>(token, key_ref, &validation)
            .map_err(|e| TokenError::from_jwt(&e))?;
        let claims = data.claims;
        if claims.iat > now_secs() + self.inner.leeway {
            return Err(TokenError::NotYetValid);
        }
        if claims.sub.is_empty() || claims.jti.is_empty() {
            return Err(TokenError::InvalidClaims("empty sub or jti".into()));
        }
        Ok(claims)
    }

    /// Like [`verify`](Self::verify), but on an unknown `kid` refreshes the JWKS once (issuer
    /// mode) and tries again: how verifiers follow a key rotation.
    pub async fn verify_refreshing(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<ServiceClaims, TokenError> {
        match self.verify(token, audience) {
            Err(TokenError::UnknownKid) => {
                let KeySource::Jwks(cache) = &self.inner.keys else {
                    return Err(TokenError::UnknownKid);
                };
                let kid = jsonwebtoken::decode_header(token)
                    .ok()
                    .and_then(|h| h.kid)
                    .ok_or(TokenError::UnknownKid)?;
                if cache.refresh_for(&kid).await {
                    self.verify(token, audience)
                } else {
                    Err(TokenError::UnknownKid)
                }
            }
            other => other,
        }
    }

    /// In issuer mode with a JWKS, refreshes the keys now (e.g. at start-up).
    pub async fn refresh(&self) -> Result<(), super::AuthError> {
        if let KeySource::Jwks(cache) = &self.inner.keys {
            cache.refresh().await?;
        }
        Ok(())
    }
}

/// Classifies a header that `jsonwebtoken` could not parse: an `alg` outside its enum (`none`)
/// is an algorithm rejection, anything else malformed.
fn header_error(token: &str, _alg: Algorithm) -> TokenError {
    let alg = token
        .split('.')
        .next()
        .and_then(b64url_decode)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| v.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(_) => TokenError::AlgorithmNotAllowed,
        None => TokenError::Malformed,
    }
}
