//! The claims of a service token (SPEC §7) and the caller identity derived from them.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// `iss` of every Forten token.
pub const ISSUER: &str = "forten";

/// Audience of the tokens that authenticate event publishers.
pub const EVENTS_AUDIENCE: &str = "forten.events";

/// Scope a publisher's events token must carry.
pub const PUBLISH_SCOPE: &str = "events:publish";

/// Claims of a service token: exactly SPEC §7 (`iss`, `sub`, `aud`, `scope`, `iat`, `exp`,
/// `jti`), plus `cnf` (RFC 7800 proof-of-possession key) on event-publisher tokens only.
///
/// ```
/// use forten_shared::auth::ServiceClaims;
/// let c = ServiceClaims::new("access-service", "monitoring-service", &["internal:read".into()], 300);
/// assert_eq!(c.iss, "forten");
/// assert_eq!(c.exp - c.iat, 300);
/// let json = serde_json::to_value(&c).unwrap();
/// assert_eq!(json["scope"], "internal:read");
/// assert!(json.get("cnf").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// Always [`ISSUER`].
    pub iss: String,
    /// The calling service.
    pub sub: String,
    /// The target service (one audience only: a token is bound to one target).
    pub aud: String,
    /// Space-separated scopes (RFC 9068 style).
    pub scope: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Unique token id.
    pub jti: String,
    /// Not before (never set by us; honoured when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Confirmation key (RFC 7800) binding the token to a publisher's signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl ServiceClaims {
    /// Fresh claims from `sub` to `aud`, valid from now for `ttl_secs`, with a random `jti`.
    pub fn new(sub: &str, aud: &str, scopes: &[String], ttl_secs: u64) -> Self {
        let iat = now_secs();
        Self {
            iss: ISSUER.to_owned(),
            sub: sub.to_owned(),
            aud: aud.to_owned(),
            scope: scopes.join(" "),
            iat,
            exp: iat + ttl_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: None,
            cnf: None,
        }
    }

    /// The scopes as a list.
    ///
    /// ```
    /// # use forten_shared::auth::ServiceClaims;
    /// let c = ServiceClaims::new("a", "b", &["x:read".into(), "y:write".into()], 60);
    /// assert_eq!(c.scopes().collect::<Vec<_>>(), ["x:read", "y:write"]);
    /// ```
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// RFC 7800 `cnf` claim: the public key whose holder may use the token.
///
/// ```
/// use forten_shared::auth::{Confirmation, PublicJwk};
/// let c = Confirmation { jwk: PublicJwk::ed25519("abc", None) };
/// assert_eq!(serde_json::to_value(&c).unwrap()["jwk"]["crv"], "Ed25519");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The key.
    pub jwk: PublicJwk,
}

/// A public Ed25519 key as a JWK (RFC 8037 `OKP`).
///
/// ```
/// use forten_shared::auth::PublicJwk;
/// let k = PublicJwk::ed25519("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", Some("k1".into()));
/// let v = serde_json::to_value(&k).unwrap();
/// assert_eq!(v["kty"], "OKP");
/// assert_eq!(v["alg"], "EdDSA");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm: `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Use: `sig`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl PublicJwk {
    /// An Ed25519 signing key with base64url `x`.
    pub fn ed25519(x: impl Into<String>, kid: Option<String>) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: x.into(),
            kid,
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    /// Whether this is an Ed25519 key.
    pub fn is_ed25519(&self) -> bool {
        self.kty == "OKP" && self.crv == "Ed25519"
    }
}

/// A JSON Web Key Set as served at `/.well-known/jwks.json`.
///
/// ```
/// use forten_shared::auth::{JwkSet, PublicJwk};
/// let set = JwkSet { keys: vec![PublicJwk::ed25519("AAAA", Some("k1".into()))] };
/// assert!(serde_json::to_string(&set).unwrap().starts_with("{\"keys\":["));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<PublicJwk>,
}

/// Who called: the verified identity a [`ServiceAuthLayer`](super::ServiceAuthLayer) puts in the
/// request extensions (the guide's `req.serviceIdentity`).
///
/// ```
/// use forten_shared::auth::ServiceIdentity;
/// let id = ServiceIdentity { name: "access-service".into(), scopes: vec!["internal:read".into()], token_id: "j".into() };
/// assert!(id.has_scope("internal:read"));
/// assert!(!id.has_scope("internal:write"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdentity {
    /// The calling service (`sub`).
    pub name: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The token's `jti`.
    pub token_id: String,
}

impl ServiceIdentity {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

impl From<&ServiceClaims> for ServiceIdentity {
    fn from(c: &ServiceClaims) -> Self {
        Self {
            name: c.sub.clone(),
            scopes: c.scopes().map(str::to_owned).collect(),
            token_id: c.jti.clone(),
        }
    }
}

/// Seconds since the epoch (wall clock, as JWT `iat`/`exp` need).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// base64url without padding.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}
