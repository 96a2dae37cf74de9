//! Issuer mode: the auth-service alone signs service tokens (EdDSA), grants only what its
//! [`IssuerPolicy`] allows, and publishes its public keys as a JWKS.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderValue, StatusCode, header};
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::AuthError;
use super::claims::{Confirmation, JwkSet, ServiceClaims};
use super::keys::SigningKey;
use super::problem::problem;

/// Path of the token endpoint.
pub const SERVICE_TOKEN_PATH: &str = "/internal/auth/service-token";
/// Path of the public keys.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Environment variable holding the issuer policy as inline JSON.
pub const SERVICE_POLICY_ENV: &str = "FORTEN_SERVICE_POLICY";
/// Environment variable naming a file holding the issuer policy (JSON).
pub const SERVICE_POLICY_FILE_ENV: &str = "FORTEN_SERVICE_POLICY_FILE";

/// Audience key in a policy that stands for every audience.
const ANY_AUDIENCE: &str = "*";

/// Who may obtain tokens, proving themselves with which secret, toward which audience, with
/// which scopes.
///
/// # Format (JSON, from a file or the `FORTEN_SERVICE_POLICY` variable)
///
/// ```json
/// {
///   "services": {
///     "access-service": {
///       "secretHash": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
///       "allow": {
///         "monitoring-service": ["internal:read"],
///         "api-gateway": ["registry:read", "registry:write"],
///         "forten.events": ["events:publish"],
///         "*": ["health:read"]
///       }
///     }
///   }
/// }
/// ```
///
/// `secretHash` is `sha256:<64 hex>` of the service's `SERVICE_SECRET` (the secret must be
/// random, at least 128 bits; make one with [`hash_service_secret`]) or an argon2 PHC string
/// (`$argon2id$...`) for low-entropy secrets. Secrets themselves are never stored. `allow` maps
/// an audience (a target service, `forten.events` for publishing events, or `*` for any) to the
/// scopes the service may hold toward it; the scopes under `*` add to every audience.
///
/// ```
/// use forten_shared::auth::{IssuerPolicy, hash_service_secret};
/// let json = format!(r#"{{"services":{{"access-service":{{"secretHash":"{}",
///     "allow":{{"monitoring-service":["internal:read"]}}}}}}}}"#, hash_service_secret("s3cret"));
/// let policy = IssuerPolicy::from_json(&json)?;
/// assert_eq!(policy.allowed_scopes("access-service", "monitoring-service"), ["internal:read"]);
/// assert!(policy.allowed_scopes("access-service", "auth-service").is_empty());
/// # Ok::<(), forten_shared::auth::AuthError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerPolicy {
    /// Policy per service name.
    #[serde(default)]
    pub services: BTreeMap<String, ServicePolicy>,
}

/// One service's entry in an [`IssuerPolicy`].
///
/// ```
/// use forten_shared::auth::ServicePolicy;
/// let p: ServicePolicy = serde_json::from_str(r#"{"secretHash":"sha256:00","allow":{}}"#).unwrap();
/// assert!(p.allow.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePolicy {
    /// `sha256:<hex>` or an argon2 PHC string.
    pub secret_hash: String,
    /// Audience → allowed scopes.
    #[serde(default)]
    pub allow: BTreeMap<String, Vec<String>>,
}

impl IssuerPolicy {
    /// An empty policy (nobody gets a token).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service with its plain secret (hashed here) and its allowances; for tests and the
    /// embedded `forten up`.
    ///
    /// ```
    /// use forten_shared::auth::IssuerPolicy;
    /// let p = IssuerPolicy::new().service("access-service", "secret", [("monitoring-service", ["internal:read"])]);
    /// assert_eq!(p.allowed_scopes("access-service", "monitoring-service"), ["internal:read"]);
    /// ```
    pub fn service<A, S, I>(mut self, name: &str, secret: &str, allow: I) -> Self
    where
        I: IntoIterator<Item = (A, S)>,
        A: Into<String>,
        S: IntoIterator,
        S::Item: Into<String>,
    {
        let allow = allow
            .into_iter()
            .map(|(a, s)| (a.into(), s.into_iter().map(Into::into).collect()))
            .collect();
        self.services.insert(
            name.to_owned(),
            ServicePolicy {
                secret_hash: hash_service_secret(secret),
                allow,
            },
        );
        self
    }

    /// Parses and validates the JSON format above.
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        let policy: Self = serde_json::from_str(json)
            .map_err(|e| AuthError::Config(format!("service policy: {e}")))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Reads the JSON format above from a file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, AuthError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            AuthError::Config(format!("service policy file {}: {e}", path.display()))
        })?;
        Self::from_json(&text)
    }

    /// Loads from `FORTEN_SERVICE_POLICY` (inline JSON) or else `FORTEN_SERVICE_POLICY_FILE`,
    /// looked up through `lookup` (pass `|k| std::env::var(k).ok()` in a binary, a map in tests).
    ///
    /// ```
    /// use forten_shared::auth::IssuerPolicy;
    /// let p = IssuerPolicy::from_env(|k| (k == "FORTEN_SERVICE_POLICY").then(|| r#"{"services":{}}"#.to_string()))?;
    /// assert!(p.services.is_empty());
    /// assert!(IssuerPolicy::from_env(|_| None).is_err());
    /// # Ok::<(), forten_shared::auth::AuthError>(())
    /// ```
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AuthError> {
        if let Some(json) = lookup(SERVICE_POLICY_ENV) {
            return Self::from_json(&json);
        }
        if let Some(path) = lookup(SERVICE_POLICY_FILE_ENV) {
            return Self::from_file(path);
        }
        Err(AuthError::Config(format!(
            "{SERVICE_POLICY_ENV} or {SERVICE_POLICY_FILE_ENV} must be set in issuer mode"
        )))
    }

    fn validate(&self) -> Result<(), AuthError> {
        for (name, svc) in &self.services {
            if parse_secret_hash(&svc.secret_hash).is_none() {
                return Err(AuthError::Config(format!(
                    "service policy: secretHash of {name} is neither sha256:<64 hex> nor an argon2 PHC string"
                )));
            }
        }
        Ok(())
    }

    /// The scopes `service` may hold toward `audience` (sorted, deduplicated).
    pub fn allowed_scopes(&self, service: &str, audience: &str) -> Vec<String> {
        let Some(svc) = self.services.get(service) else {
            return Vec::new();
        };
        let mut scopes: Vec<String> = svc
            .allow
            .get(audience)
            .into_iter()
            .chain(svc.allow.get(ANY_AUDIENCE))
            .flatten()
            .cloned()
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }
}

/// Hashes a service secret for the policy file: `sha256:<hex>`.
///
/// ```
/// use forten_shared::auth::hash_service_secret;
/// assert_eq!(hash_service_secret("test"),
///     "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
/// ```
pub fn hash_service_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

enum SecretHash {
    Sha256([u8; 32]),
    Argon2(String),
}

fn parse_secret_hash(s: &str) -> Option<SecretHash> {
    if let Some(hex) = s.strip_prefix("sha256:") {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(SecretHash::Sha256(out))
    } else if s.starts_with("$argon2") {
        argon2::PasswordHash::new(s).ok()?;
        Some(SecretHash::Argon2(s.to_owned()))
    } else {
        None
    }
}

/// Constant-time check of `given` against a stored hash.
fn secret_matches(stored: &str, given: &str) -> bool {
    match parse_secret_hash(stored) {
        Some(SecretHash::Sha256(want)) => {
            let got = Sha256::digest(given.as_bytes());
            bool::from(want.as_slice().ct_eq(got.as_slice()))
        }
        Some(SecretHash::Argon2(phc)) => super::user::verify_password(given, &phc).unwrap_or(false),
        None => false,
    }
}

/// Settings of a [`TokenIssuer`].
///
/// ```
/// use forten_shared::auth::{IssuerConfig, IssuerPolicy};
/// use std::time::Duration;
/// let c = IssuerConfig::new(IssuerPolicy::new()).token_ttl(Duration::from_secs(120));
/// assert_eq!(c.token_ttl, Duration::from_secs(120));
/// ```
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Who gets what.
    pub policy: IssuerPolicy,
    /// Lifetime of issued tokens (default 5 min: short, so a leaked token dies soon).
    pub token_ttl: Duration,
    /// How long a rotated-out key stays in the JWKS (default: token TTL + 1 min, so that every
    /// token it signed expires first).
    pub retire_after: Option<Duration>,
}

impl IssuerConfig {
    /// Defaults around `policy`.
    pub fn new(policy: IssuerPolicy) -> Self {
        Self {
            policy,
            token_ttl: Duration::from_secs(300),
            retire_after: None,
        }
    }

    /// Sets the token lifetime.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Sets how long a rotated-out key stays published.
    pub fn retire_after(mut self, d: Duration) -> Self {
        self.retire_after = Some(d);
        self
    }
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self::new(IssuerPolicy::default())
    }
}

/// Body of `POST /internal/auth/service-token`.
///
/// ```
/// use forten_shared::auth::ServiceTokenRequest;
/// let r: ServiceTokenRequest = serde_json::from_str(
///     r#"{"serviceName":"a","serviceSecret":"s","audience":"b","scopes":["x"]}"#).unwrap();
/// assert_eq!(r.audience, "b");
/// assert!(!format!("{r:?}").contains("\"s\""));
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTokenRequest {
    /// The caller.
    pub service_name: String,
    /// The caller's `SERVICE_SECRET`.
    pub service_secret: String,
    /// The target service.
    pub audience: String,
    /// Scopes asked for; empty asks for everything the policy allows toward `audience`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Proof-of-possession key to bind into the token (event publishers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl std::fmt::Debug for ServiceTokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokenRequest")
            .field("service_name", &self.service_name)
            .field("service_secret", &"[redacted]")
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Answer of `POST /internal/auth/service-token`.
///
/// ```
/// use forten_shared::auth::ServiceTokenResponse;
/// let r = ServiceTokenResponse { token: "t".into(), token_type: "Bearer".into(), expires_in: 300, scope: "x".into() };
/// assert_eq!(serde_json::to_value(&r).unwrap()["expiresIn"], 300);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTokenResponse {
    /// The JWT.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until expiry.
    pub expires_in: u64,
    /// The scopes actually granted (space-separated; may be fewer than asked).
    pub scope: String,
}

/// Why the issuer refused a token request.
///
/// ```
/// use forten_shared::auth::IssueError;
/// assert_eq!(IssueError::InvalidCredentials.to_string(), "invalid service credentials");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// Unknown service or wrong secret (deliberately indistinguishable): 401.
    #[error("invalid service credentials")]
    InvalidCredentials,
    /// The policy grants nothing toward that audience (or none of the scopes asked): 403.
    #[error("no scope allowed toward {0}")]
    NotAllowed(String),
    /// The request is malformed: 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Signing failed: 500.
    #[error(transparent)]
    Internal(#[from] AuthError),
}

impl IntoResponse for IssueError {
    fn into_response(self) -> Response {
        let (status, reason) = match &self {
            IssueError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            IssueError::NotAllowed(_) => (StatusCode::FORBIDDEN, "scope_not_allowed"),
            IssueError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            IssueError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let challenge = (status == StatusCode::UNAUTHORIZED)
            .then(|| "Basic realm=\"forten-services\"".to_owned());
        problem(status, reason, &self.to_string(), challenge)
    }
}

/// Keys in use: the active one, and the one before it until it retires.
#[derive(Debug)]
struct KeyRing {
    active: Arc<SigningKey>,
    previous: Option<(Arc<SigningKey>, Instant)>,
}

/// The token issuer (auth-service side of issuer mode).
///
/// ```
/// use std::sync::Arc;
/// use forten_shared::auth::{IssuerConfig, IssuerPolicy, ServiceTokenRequest, TokenIssuer, issuer_router};
/// forten_shared::auth::install_crypto_provider();
/// let policy = IssuerPolicy::new().service("access-service", "s3cret", [("monitoring-service", ["internal:read"])]);
/// let issuer = Arc::new(TokenIssuer::new(IssuerConfig::new(policy))?);
/// let granted = issuer.issue(&ServiceTokenRequest {
///     service_name: "access-service".into(), service_secret: "s3cret".into(),
///     audience: "monitoring-service".into(), scopes: vec!["internal:read".into(), "internal:write".into()], cnf: None,
/// }).unwrap();
/// assert_eq!(granted.scope, "internal:read");
/// assert_eq!(issuer.jwks().keys.len(), 1);
/// let _router: axum::Router = issuer_router(issuer);
/// # Ok::<(), forten_shared::auth::AuthError>(())
/// ```
#[derive(Debug)]
pub struct TokenIssuer {
    policy: IssuerPolicy,
    ttl: Duration,
    retire_after: Duration,
    /// std `RwLock`: held for a pointer copy only, never across an await.
    keys: RwLock<KeyRing>,
}

impl TokenIssuer {
    /// A new issuer with a fresh random key.
    pub fn new(config: IssuerConfig) -> Result<Self, AuthError> {
        super::install_crypto_provider();
        if config.token_ttl.as_secs() == 0 {
            return Err(AuthError::Config(
                "issuer token TTL must be at least one second".into(),
            ));
        }
        config.policy.validate()?;
        let retire_after = config
            .retire_after
            .unwrap_or(config.token_ttl + Duration::from_secs(60));
        Ok(Self {
            policy: config.policy,
            ttl: config.token_ttl,
            retire_after,
            keys: RwLock::new(KeyRing {
                active: Arc::new(SigningKey::generate()?),
                previous: None,
            }),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &IssuerPolicy {
        &self.policy
    }

    /// Lifetime of issued tokens.
    pub fn token_ttl(&self) -> Duration {
        self.ttl
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Key id of the active signing key.
    pub fn active_kid(&self) -> String {
        self.ring().active.kid.clone()
    }

    /// Starts a key rotation: a new key signs from now on; the old one stays published (so
    /// tokens it signed keep verifying) until `retire_after`. At most two keys are valid at
    /// once: rotating again before the previous key retired drops that one. Returns the new `kid`.
    pub fn rotate(&self) -> Result<String, AuthError> {
        let new = Arc::new(SigningKey::generate()?);
        let kid = new.kid.clone();
        let mut ring = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = std::mem::replace(&mut ring.active, new);
        ring.previous = Some((old, Instant::now() + self.retire_after));
        metrics::counter!("service_auth_key_rotations_total").increment(1);
        Ok(kid)
    }

    /// The published keys: active, plus the previous one until it retires.
    pub fn jwks(&self) -> JwkSet {
        let ring = self.ring();
        let mut keys = vec![ring.active.jwk()];
        if let Some((prev, until)) = &ring.previous
            && Instant::now() < *until
        {
            keys.push(prev.jwk());
        }
        JwkSet { keys }
    }

    /// The verification key for `kid`, when published.
    pub(crate) fn decoding_key(&self, kid: &str) -> Option<Arc<jsonwebtoken::DecodingKey>> {
        let ring = self.ring();
        if ring.active.kid == kid {
            return Some(ring.active.decoding.clone());
        }
        match &ring.previous {
            Some((prev, until)) if prev.kid == kid && Instant::now() < *until => {
                Some(prev.decoding.clone())
            }
            _ => None,
        }
    }

    /// Signs claims with the active key (no policy check: for the issuer's own service and
    /// the operator's `forten token`). Returns the JWT.
    pub fn sign(&self, claims: &ServiceClaims) -> Result<String, AuthError> {
        let key = self.ring().active.clone();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }

    /// Checks the caller's secret (constant time) and grants the requested scopes that the
    /// policy allows toward the audience.
    pub fn issue(&self, req: &ServiceTokenRequest) -> Result<ServiceTokenResponse, IssueError> {
        if req.service_name.is_empty() || req.audience.is_empty() {
            return Err(IssueError::BadRequest(
                "serviceName and audience are required".into(),
            ));
        }
        let ok = match self.policy.services.get(&req.service_name) {
            Some(svc) => secret_matches(&svc.secret_hash, &req.service_secret),
            None => {
                // same work as a known service, so timing does not reveal which names exist
                let _ = secret_matches(DUMMY_HASH, &req.service_secret);
                false
            }
        };
        if !ok {
            metrics::counter!("service_tokens_refused_total", "service" => req.service_name.clone(), "reason" => "invalid_credentials").increment(1);
            return Err(IssueError::InvalidCredentials);
        }
        let allowed = self.policy.allowed_scopes(&req.service_name, &req.audience);
        let granted: Vec<String> = if req.scopes.is_empty() {
            allowed
        } else {
            req.scopes
                .iter()
                .filter(|s| allowed.contains(s))
                .cloned()
                .collect()
        };
        if granted.is_empty() {
            metrics::counter!("service_tokens_refused_total", "service" => req.service_name.clone(), "reason" => "scope_not_allowed").increment(1);
            return Err(IssueError::NotAllowed(req.audience.clone()));
        }
        if req.cnf.as_ref().is_some_and(|cnf| !cnf.jwk.is_ed25519()) {
            return Err(IssueError::BadRequest(
                "cnf.jwk must be an Ed25519 OKP key".into(),
            ));
        }
        let mut claims = ServiceClaims::new(
            &req.service_name,
            &req.audience,
            &granted,
            self.ttl.as_secs(),
        );
        claims.cnf = req.cnf.clone();
        let token = self.sign(&claims)?;
        metrics::counter!("service_tokens_issued_total", "service" => req.service_name.clone(), "audience" => req.audience.clone()).increment(1);
        Ok(ServiceTokenResponse {
            token,
            token_type: "Bearer".into(),
            expires_in: self.ttl.as_secs(),
            scope: claims.scope,
        })
    }
}

/// Hash compared against when the service is unknown.
const DUMMY_HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The issuer's HTTP endpoints, for the auth-service to mount:
/// `POST /internal/auth/service-token` and `GET /.well-known/jwks.json`.
///
/// ```
/// # use std::sync::Arc;
/// use forten_shared::auth::{IssuerConfig, IssuerPolicy, TokenIssuer, issuer_router};
/// forten_shared::auth::install_crypto_provider();
/// let issuer = Arc::new(TokenIssuer::new(IssuerConfig::new(IssuerPolicy::new()))?);
/// let app: axum::Router = axum::Router::new().merge(issuer_router(issuer));
/// # Ok::<(), forten_shared::auth::AuthError>(())
/// ```
pub fn issuer_router(issuer: Arc<TokenIssuer>) -> Router {
    Router::new()
        .route(SERVICE_TOKEN_PATH, post(service_token))
        .route(JWKS_PATH, get(jwks))
        .with_state(issuer)
}

async fn service_token(
    State(issuer): State<Arc<TokenIssuer>>,
    body: Result<Json<ServiceTokenRequest>, JsonRejection>,
) -> Result<Json<ServiceTokenResponse>, IssueError> {
    let Json(req) = body.map_err(|e| IssueError::BadRequest(e.body_text()))?;
    let is_argon = issuer
        .policy
        .services
        .get(&req.service_name)
        .is_some_and(|s| s.secret_hash.starts_with("$argon2"));
    if is_argon {
        // argon2 costs milliseconds: keep it off the async workers
        let issuer = issuer.clone();
        tokio::task::spawn_blocking(move || issuer.issue(&req))
            .await
            .map_err(|e| IssueError::Internal(AuthError::Sign(e.to_string())))?
            .map(Json)
    } else {
        issuer.issue(&req).map(Json)
    }
}

async fn jwks(State(issuer): State<Arc<TokenIssuer>>) -> Response {
    let mut resp = Json(issuer.jwks()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
