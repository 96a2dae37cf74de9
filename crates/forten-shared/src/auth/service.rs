//! [`ServiceAuth`]: a service's identity — the tokens it presents and the verifier it checks
//! callers with (the guide's `createServiceAuth`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::HeaderValue;
use jsonwebtoken::{EncodingKey, Header};
use tokio::time::Instant;

use super::claims::{Confirmation, EVENTS_AUDIENCE, PUBLISH_SCOPE, PublicJwk, ServiceClaims};
use super::issuer::{
    JWKS_PATH, SERVICE_TOKEN_PATH, ServiceTokenRequest, ServiceTokenResponse, TokenIssuer,
};
use super::jwks::JwksCache;
use super::verifier::{DEFAULT_LEEWAY, TokenVerifier};
use super::{AuthError, ServiceAuthLayer, ServiceIdentity, TokenError};

/// Environment variable choosing the mode (SPEC §3).
pub const SERVICE_AUTH_MODE_ENV: &str = "SERVICE_AUTH_MODE";

/// Minimum length of `JWT_SECRET` in shared-secret mode (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// How service tokens are signed (SPEC §7, `SERVICE_AUTH_MODE`).
///
/// ```
/// use forten_shared::auth::AuthMode;
/// assert_eq!("issuer".parse::<AuthMode>(), Ok(AuthMode::Issuer));
/// assert_eq!(AuthMode::default(), AuthMode::SharedSecret);
/// assert!("kerberos".parse::<AuthMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AuthMode {
    /// HS256 with the shared `JWT_SECRET` (the guide's way).
    #[default]
    SharedSecret,
    /// EdDSA by the auth-service alone; everyone verifies with its JWKS.
    Issuer,
}

impl AuthMode {
    /// The setting's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMode::SharedSecret => "shared-secret",
            AuthMode::Issuer => "issuer",
        }
    }
}

impl FromStr for AuthMode {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shared-secret" => Ok(AuthMode::SharedSecret),
            "issuer" => Ok(AuthMode::Issuer),
            other => Err(AuthError::Config(format!(
                "{SERVICE_AUTH_MODE_ENV} must be shared-secret or issuer, not {other:?}"
            ))),
        }
    }
}

/// Settings of a [`ServiceAuth`].
///
/// ```
/// use forten_shared::auth::{AuthMode, ServiceAuthConfig};
/// let c = ServiceAuthConfig::shared_secret("access-service", "0123456789abcdef0123456789abcdef")
///     .scopes(["internal:read"]);
/// assert_eq!(c.mode, AuthMode::SharedSecret);
/// assert!(!format!("{c:?}").contains("0123456789abcdef"));
/// let i = ServiceAuthConfig::issuer("access-service", "s3cret", "http://127.0.0.1:3001");
/// assert_eq!(i.mode, AuthMode::Issuer);
/// ```
#[derive(Clone)]
pub struct ServiceAuthConfig {
    /// This service's name: `sub` of its tokens, the `aud` it accepts.
    pub service_name: String,
    /// `SERVICE_SECRET`: proves this service to the issuer (issuer mode).
    pub service_secret: Option<String>,
    /// `JWT_SECRET`: HS256 key (shared-secret mode), at least 32 bytes.
    pub jwt_secret: Option<String>,
    /// The mode.
    pub mode: AuthMode,
    /// Base URL of the auth-service (issuer mode), e.g. `http://127.0.0.1:3001`.
    pub issuer_url: Option<String>,
    /// Scopes asked for in every token. In issuer mode, empty asks for all the policy allows.
    pub scopes: Vec<String>,
    /// Lifetime of self-minted tokens (shared-secret mode; default 5 min).
    pub token_ttl: Duration,
    /// Renew a cached token this long before it expires (default 60 s).
    pub renew_before: Duration,
    /// Clock-skew leeway when verifying (default 5 s).
    pub leeway: Duration,
    /// At most one JWKS refresh per this interval on unknown key ids (default 5 s).
    pub jwks_min_refresh_interval: Duration,
    /// Timeout of calls to the issuer (default 5 s).
    pub http_timeout: Duration,
}

impl std::fmt::Debug for ServiceAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAuthConfig")
            .field("service_name", &self.service_name)
            .field(
                "service_secret",
                &self.service_secret.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("mode", &self.mode)
            .field("issuer_url", &self.issuer_url)
            .field("scopes", &self.scopes)
            .field("token_ttl", &self.token_ttl)
            .field("renew_before", &self.renew_before)
            .finish_non_exhaustive()
    }
}

impl Default for ServiceAuthConfig {
    fn default() -> Self {
        Self {
            service_name: String::new(),
            service_secret: None,
            jwt_secret: None,
            mode: AuthMode::SharedSecret,
            issuer_url: None,
            scopes: Vec::new(),
            token_ttl: Duration::from_secs(300),
            renew_before: Duration::from_secs(60),
            leeway: DEFAULT_LEEWAY,
            jwks_min_refresh_interval: Duration::from_secs(5),
            http_timeout: Duration::from_secs(5),
        }
    }
}

impl ServiceAuthConfig {
    /// Shared-secret mode.
    pub fn shared_secret(service_name: impl Into<String>, jwt_secret: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            jwt_secret: Some(jwt_secret.into()),
            ..Self::default()
        }
    }

    /// Issuer mode, with this service's secret and the auth-service's base URL.
    pub fn issuer(
        service_name: impl Into<String>,
        service_secret: impl Into<String>,
        issuer_url: impl Into<String>,
    ) -> Self {
        Self {
            service_name: service_name.into(),
            service_secret: Some(service_secret.into()),
            mode: AuthMode::Issuer,
            issuer_url: Some(issuer_url.into()),
            ..Self::default()
        }
    }

    /// Sets the scopes asked for.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the lifetime of self-minted tokens.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Sets how early cached tokens are renewed.
    pub fn renew_before(mut self, d: Duration) -> Self {
        self.renew_before = d;
        self
    }

    /// Sets the verification leeway.
    pub fn leeway(mut self, d: Duration) -> Self {
        self.leeway = d;
        self
    }

    /// Sets the minimum interval between JWKS refreshes.
    pub fn jwks_min_refresh_interval(mut self, d: Duration) -> Self {
        self.jwks_min_refresh_interval = d;
        self
    }
}

/// How this service obtains tokens.
enum Minter {
    Shared(EncodingKey),
    Remote {
        client: reqwest::Client,
        url: String,
        secret: String,
    },
    Local(Arc<TokenIssuer>),
}

/// A cached token for one (target, scopes, cnf).
#[derive(Default)]
struct Slot {
    /// std `RwLock`: the hot path takes a read lock for a clone of a `HeaderValue`.
    cached: RwLock<Option<Cached>>,
    /// Single flight: only one task mints while the others wait and reuse its token.
    mint: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Cached {
    token: Arc<str>,
    header: HeaderValue,
    renew_at: Instant,
}

/// A service's identity (the guide's `createServiceAuth`): mints or fetches the tokens it
/// presents to other services — cached and renewed before expiry, so a hot path mints nothing —
/// and verifies the tokens presented to it.
///
/// ```
/// use forten_shared::auth::{ServiceAuth, ServiceAuthConfig};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// forten_shared::auth::install_crypto_provider();
/// let secret = "0123456789abcdef0123456789abcdef";
/// let access = ServiceAuth::new(ServiceAuthConfig::shared_secret("access-service", secret).scopes(["internal:read"]))?;
/// let monitoring = ServiceAuth::new(ServiceAuthConfig::shared_secret("monitoring-service", secret))?;
///
/// let header = access.create_auth_header("monitoring-service").await?;
/// let token = header.to_str()?.strip_prefix("Bearer ").unwrap();
/// let caller = monitoring.verify(token)?;
/// assert_eq!(caller.name, "access-service");
/// assert!(caller.has_scope("internal:read"));
///
/// access.create_auth_header("monitoring-service").await?; // cached
/// assert_eq!(access.minted_tokens(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServiceAuth {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    mode: AuthMode,
    scopes: Vec<String>,
    token_ttl: Duration,
    renew_before: Duration,
    minter: Minter,
    verifier: TokenVerifier,
    /// std `Mutex`: held only to look up or insert a slot.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// The slots of the configured scopes by target alone, looked up without building a key
    /// (`create_auth_header` on every call of a hot path).
    default_slots: std::sync::RwLock<HashMap<String, Arc<Slot>>>,
    minted: AtomicU64,
}

impl std::fmt::Debug for ServiceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAuth")
            .field("name", &self.inner.name)
            .field("mode", &self.inner.mode)
            .field("scopes", &self.inner.scopes)
            .finish_non_exhaustive()
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| AuthError::Config(format!("http client: {e}")))
}

impl ServiceAuth {
    /// Validates the configuration and builds the identity (no network: in issuer mode the
    /// first token and the JWKS are fetched on first use).
    pub fn new(config: ServiceAuthConfig) -> Result<Self, AuthError> {
        super::install_crypto_provider();
        validate_common(&config)?;
        let (minter, verifier) = match config.mode {
            AuthMode::SharedSecret => {
                let secret = config.jwt_secret.as_deref().ok_or_else(|| {
                    AuthError::Config("JWT_SECRET is required in shared-secret mode".into())
                })?;
                if secret.len() < MIN_JWT_SECRET_LEN {
                    return Err(AuthError::Config(format!(
                        "JWT_SECRET must be at least {MIN_JWT_SECRET_LEN} bytes"
                    )));
                }
                (
                    Minter::Shared(EncodingKey::from_secret(secret.as_bytes())),
                    TokenVerifier::shared_secret(secret.as_bytes()),
                )
            }
            AuthMode::Issuer => {
                let url = config
                    .issuer_url
                    .as_deref()
                    .ok_or_else(|| {
                        AuthError::Config("issuer URL is required in issuer mode".into())
                    })?
                    .trim_end_matches('/')
                    .to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(AuthError::Config(format!(
                        "issuer URL {url:?} is not http(s)"
                    )));
                }
                let secret = config
                    .service_secret
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        AuthError::Config("SERVICE_SECRET is required in issuer mode".into())
                    })?;
                let client = http_client(config.http_timeout)?;
                let jwks = JwksCache::with_client(
                    format!("{url}{JWKS_PATH}"),
                    config.jwks_min_refresh_interval,
                    client.clone(),
                );
                (
                    Minter::Remote {
                        client,
                        url: format!("{url}{SERVICE_TOKEN_PATH}"),
                        secret,
                    },
                    TokenVerifier::jwks(jwks),
                )
            }
        };
        let verifier = verifier.with_leeway(config.leeway);
        Ok(Self::build(config, minter, verifier))
    }

    /// Issuer mode inside the auth-service: signs locally with `issuer`'s key (no policy check
    /// for itself) and verifies with its keys. `config.mode`, secrets and URL are ignored.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use forten_shared::auth::{IssuerConfig, IssuerPolicy, ServiceAuth, ServiceAuthConfig, TokenIssuer};
    /// forten_shared::auth::install_crypto_provider();
    /// let issuer = Arc::new(TokenIssuer::new(IssuerConfig::new(IssuerPolicy::new()))?);
    /// let auth = ServiceAuth::with_local_issuer(
    ///     ServiceAuthConfig { service_name: "auth-service".into(), ..Default::default() }, issuer)?;
    /// assert_eq!(auth.name(), "auth-service");
    /// # Ok::<(), forten_shared::auth::AuthError>(())
    /// ```
    pub fn with_local_issuer(
        config: ServiceAuthConfig,
        issuer: Arc<TokenIssuer>,
    ) -> Result<Self, AuthError> {
        super::install_crypto_provider();
        validate_common(&config)?;
        let verifier = TokenVerifier::local(issuer.clone()).with_leeway(config.leeway);
        let mut config = config;
        config.mode = AuthMode::Issuer;
        config.token_ttl = issuer.token_ttl();
        Ok(Self::build(config, Minter::Local(issuer), verifier))
    }

    fn build(config: ServiceAuthConfig, minter: Minter, verifier: TokenVerifier) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: config.service_name,
                mode: config.mode,
                scopes: config.scopes,
                token_ttl: config.token_ttl,
                renew_before: config.renew_before,
                minter,
                verifier,
                slots: Mutex::new(HashMap::new()),
                default_slots: std::sync::RwLock::new(HashMap::new()),
                minted: AtomicU64::new(0),
            }),
        }
    }

    /// This service's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The mode.
    pub fn mode(&self) -> AuthMode {
        self.inner.mode
    }

    /// The verifier for tokens presented to this service.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.inner.verifier
    }

    /// How many tokens this identity has minted or fetched so far (cache misses).
    pub fn minted_tokens(&self) -> u64 {
        self.inner.minted.load(Ordering::Relaxed)
    }

    /// `Bearer <token>` for calls to `target` (the guide's `createAuthHeader`), with the
    /// configured scopes; cached until `renew_before` ahead of expiry.
    pub async fn create_auth_header(&self, target: &str) -> Result<HeaderValue, AuthError> {
        let known = self
            .inner
            .default_slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(target)
            .and_then(|slot| fresh(slot));
        if let Some(c) = known {
            return Ok(c.header);
        }
        let cached = self.cached(target, &self.inner.scopes, None).await?;
        Ok(cached.header)
    }

    /// The bare token for `target` with the configured scopes (cached).
    pub async fn token(&self, target: &str) -> Result<Arc<str>, AuthError> {
        Ok(self.cached(target, &self.inner.scopes, None).await?.token)
    }

    /// The bare token for `target` with explicit scopes (cached per scope set).
    ///
    /// ```
    /// # use forten_shared::auth::{ServiceAuth, ServiceAuthConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # forten_shared::auth::install_crypto_provider();
    /// let auth = ServiceAuth::new(ServiceAuthConfig::shared_secret("api-gateway", "0123456789abcdef0123456789abcdef"))?;
    /// let t = auth.token_with_scopes("access-service", &["registry:write"]).await?;
    /// let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode(t.as_bytes())?.claims;
    /// assert_eq!(claims["scope"], "registry:write");
    /// # Ok(()) }
    /// ```
    pub async fn token_with_scopes(
        &self,
        target: &str,
        scopes: &[&str],
    ) -> Result<Arc<str>, AuthError> {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        Ok(self.cached(target, &scopes, None).await?.token)
    }

    /// The publisher token for events, bound to the key `cnf_x` (cached).
    pub(crate) async fn events_token(&self, cnf_x: &str) -> Result<Arc<str>, AuthError> {
        let scopes = [PUBLISH_SCOPE.to_owned()];
        Ok(self
            .cached(EVENTS_AUDIENCE, &scopes, Some(cnf_x))
            .await?
            .token)
    }

    /// Verifies a token presented to this service (audience = this service), with cached keys.
    pub fn verify(&self, token: &str) -> Result<ServiceIdentity, TokenError> {
        self.inner
            .verifier
            .verify(token, &self.inner.name)
            .map(|c| ServiceIdentity::from(&c))
    }

    /// Like [`verify`](Self::verify), refreshing the JWKS once on an unknown key id.
    pub async fn verify_refreshing(&self, token: &str) -> Result<ServiceIdentity, TokenError> {
        self.inner
            .verifier
            .verify_refreshing(token, &self.inner.name)
            .await
            .map(|c| ServiceIdentity::from(&c))
    }

    /// The guide's `serviceAuthMiddleware(serviceAuth, scopes)`: a layer admitting callers
    /// whose token targets this service and holds every scope in `required_scopes`.
    pub fn layer<I, S>(&self, required_scopes: I) -> ServiceAuthLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ServiceAuthLayer::new(
            self.inner.verifier.clone(),
            &self.inner.name,
            required_scopes,
        )
    }

    fn slot(&self, key: String) -> Arc<Slot> {
        let mut slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(key).or_default().clone()
    }

    async fn cached(
        &self,
        target: &str,
        scopes: &[String],
        cnf: Option<&str>,
    ) -> Result<Cached, AuthError> {
        let key = format!(
            "{target}\u{1f}{}\u{1f}{}",
            scopes.join(" "),
            cnf.unwrap_or("")
        );
        let slot = self.slot(key);
        if cnf.is_none() && std::ptr::eq(scopes, self.inner.scopes.as_slice()) {
            self.inner
                .default_slots
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(target.to_owned())
                .or_insert_with(|| slot.clone());
        }
        if let Some(c) = fresh(&slot) {
            return Ok(c);
        }
        let _guard = slot.mint.lock().await;
        if let Some(c) = fresh(&slot) {
            return Ok(c);
        }
        let (token, expires_in) = self.mint(target, scopes, cnf).await?;
        self.inner.minted.fetch_add(1, Ordering::Relaxed);
        let header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| AuthError::Sign(format!("token is not a header value: {e}")))?;
        let lifetime = Duration::from_secs(expires_in);
        let renew_in = lifetime
            .checked_sub(self.inner.renew_before)
            .unwrap_or(lifetime / 2);
        let cached = Cached {
            token: Arc::from(token),
            header,
            renew_at: Instant::now() + renew_in,
        };
        *slot
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cached.clone());
        Ok(cached)
    }

    /// Mints (shared secret, local issuer) or fetches (remote issuer) a token: (jwt, expires_in).
    async fn mint(
        &self,
        target: &str,
        scopes: &[String],
        cnf: Option<&str>,
    ) -> Result<(String, u64), AuthError> {
        let cnf = cnf.map(|x| Confirmation {
            jwk: PublicJwk::ed25519(x, None),
        });
        match &self.inner.minter {
            Minter::Shared(key) => {
                let ttl = self.inner.token_ttl.as_secs();
                let mut claims = ServiceClaims::new(&self.inner.name, target, scopes, ttl);
                claims.cnf = cnf;
                let token = jsonwebtoken::encode(&Header::default(), &claims, key)
                    .map_err(|e| AuthError::Sign(e.to_string()))?;
                Ok((token, ttl))
            }
            Minter::Local(issuer) => {
                let ttl = issuer.token_ttl().as_secs();
                let mut claims = ServiceClaims::new(&self.inner.name, target, scopes, ttl);
                claims.cnf = cnf;
                Ok((issuer.sign(&claims)?, ttl))
            }
            Minter::Remote {
                client,
                url,
                secret,
            } => {
                let req = ServiceTokenRequest {
                    service_name: self.inner.name.clone(),
                    service_secret: secret.clone(),
                    audience: target.to_owned(),
                    scopes: scopes.to_vec(),
                    cnf,
                };
                let resp = client
                    .post(url)
                    .json(&req)
                    .send()
                    .await
                    .map_err(|e| AuthError::Issuer(e.to_string()))?;
                let status = resp.status();
                if !status.is_success() {
                    let detail = resp
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                        .unwrap_or_default();
                    return Err(AuthError::IssuerRefused {
                        status: status.as_u16(),
                        detail,
                    });
                }
                let body: ServiceTokenResponse = resp
                    .json()
                    .await
                    .map_err(|e| AuthError::Issuer(e.to_string()))?;
                Ok((body.token, body.expires_in))
            }
        }
    }
}

fn fresh(slot: &Slot) -> Option<Cached> {
    let cached = slot
        .cached
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cached
        .as_ref()
        .filter(|c| Instant::now() < c.renew_at)
        .cloned()
}

fn validate_common(config: &ServiceAuthConfig) -> Result<(), AuthError> {
    if config.service_name.is_empty() {
        return Err(AuthError::Config("service name must not be empty".into()));
    }
    if config.token_ttl.as_secs() == 0 {
        return Err(AuthError::Config(
            "token TTL must be at least one second".into(),
        ));
    }
    Ok(())
}
