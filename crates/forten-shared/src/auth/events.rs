//! Authenticated publishers: every published event carries its publisher's identity in a
//! verifiable form, and a [`PublishPolicy`] says which service may publish which event type.
//!
//! # Wire format
//!
//! Two CloudEvents extension attributes:
//! - `authtoken`: a service token (`sub` = publisher, `aud` = `forten.events`, scope
//!   `events:publish`) carrying in `cnf` (RFC 7800) the publisher's Ed25519 event-signing key.
//!   In shared-secret mode the publisher mints it (HS256); in issuer mode only the auth-service
//!   can, so a service cannot claim another's name. It is cached and reused for many events.
//! - `authsig`: the Ed25519 signature (base64url) by that key over the canonical event: id,
//!   type, source, subject, time (RFC 3339, ms) and data (JSON with sorted keys). Binding the
//!   signature to the event id and content means a token lifted from one event cannot vouch for
//!   another, and no attribute that matters can be changed.
//!
//! In shared-secret mode anyone holding `JWT_SECRET` can mint a publisher token for any name,
//! so the guarantee there is "holds the secret", not "is that service"; issuer mode, where
//! only the auth-service signs and each service proves itself with its own secret, closes
//! that gap. Either way, broker credentials alone no longer suffice to inject events.
//!
//! Verification is synchronous and local: token signature with the shared secret or the cached
//! JWKS (verified tokens are cached until expiry), one Ed25519 verification, `source` = `sub`,
//! then the policy.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use chrono::SecondsFormat;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::claims::{EVENTS_AUDIENCE, PUBLISH_SCOPE, b64url, b64url_decode, now_secs};
use super::keys::ephemeral_ed25519;
use super::verifier::TokenVerifier;
use super::{AuthError, ServiceAuth, ServiceIdentity, TokenError};
use crate::events::{Event, EventData, TopicPattern};

/// Extension attribute holding the publisher token.
pub const AUTH_TOKEN_EXTENSION: &str = "authtoken";
/// Extension attribute holding the event signature.
pub const AUTH_SIGNATURE_EXTENSION: &str = "authsig";

/// Why an event's publisher identity was refused. [`reason`](EventAuthError::reason) gives a
/// stable code for the DLQ's `x-forten-error`.
///
/// ```
/// use forten_shared::auth::EventAuthError;
/// let e = EventAuthError::NotAllowed { publisher: "auth-service".into(), event_type: "door.forced".into() };
/// assert_eq!(e.reason(), "publisher_not_allowed");
/// assert_eq!(e.to_string(), "auth-service may not publish door.forced");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventAuthError {
    /// The event carries no (or a non-string) `authtoken` / `authsig`.
    #[error("event has no publisher identity ({0} missing)")]
    Missing(&'static str),
    /// The publisher token is invalid (forged, expired, wrong audience, unknown key ...).
    #[error("invalid publisher token: {0}")]
    InvalidToken(TokenError),
    /// The signature does not match the event: forged or altered.
    #[error("event signature does not verify")]
    BadSignature,
    /// The event's `source` is not the authenticated publisher.
    #[error("event source {claimed} is not its publisher {publisher}")]
    SourceMismatch {
        /// Authenticated publisher.
        publisher: String,
        /// The event's `source` attribute.
        claimed: String,
    },
    /// The policy does not let this publisher publish this type.
    #[error("{publisher} may not publish {event_type}")]
    NotAllowed {
        /// Authenticated publisher.
        publisher: String,
        /// Event type.
        event_type: String,
    },
    /// This authenticator only verifies (built without a [`ServiceAuth`]).
    #[error("this authenticator cannot sign")]
    NotAPublisher,
    /// Getting the publisher token failed.
    #[error(transparent)]
    Token(#[from] AuthError),
    /// The event could not be serialised for signing.
    #[error("event not serialisable: {0}")]
    Canonical(String),
}

impl EventAuthError {
    /// Stable machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            EventAuthError::Missing(_) => "publisher_identity_missing",
            EventAuthError::InvalidToken(_) => "publisher_token_invalid",
            EventAuthError::BadSignature => "event_signature_invalid",
            EventAuthError::SourceMismatch { .. } => "source_mismatch",
            EventAuthError::NotAllowed { .. } => "publisher_not_allowed",
            EventAuthError::NotAPublisher => "not_a_publisher",
            EventAuthError::Token(_) => "token_unavailable",
            EventAuthError::Canonical(_) => "not_serialisable",
        }
    }
}

/// Which service may publish which event types.
///
/// Rules pair a topic pattern (`door.forced`, `camera.*`, `#`) with the services allowed. A
/// type matched by at least one rule may be published only by a service named in one of the
/// matching rules; a type matched by none is open to any authenticated publisher, unless
/// [`deny_unlisted`](Self::deny_unlisted) was called.
///
/// ```
/// use forten_shared::auth::PublishPolicy;
/// let p = PublishPolicy::new()
///     .allow("door.forced", ["access-service"])
///     .allow("camera.*", ["monitoring-service"]);
/// assert!(p.is_allowed("access-service", "door.forced"));
/// assert!(!p.is_allowed("auth-service", "door.forced"));
/// assert!(p.is_allowed("monitoring-service", "camera.offline"));
/// assert!(p.is_allowed("auth-service", "user.created"));
/// assert!(!p.clone().deny_unlisted().is_allowed("auth-service", "user.created"));
/// ```
#[derive(Debug, Clone)]
pub struct PublishPolicy {
    rules: Vec<(TopicPattern, Vec<String>)>,
    allow_unlisted: bool,
}

impl Default for PublishPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl PublishPolicy {
    /// No rules: any authenticated publisher may publish anything.
    pub fn new() -> Self {
        Self {
            rules: Vec::new(),
            allow_unlisted: true,
        }
    }

    /// Forten's catalogue (SPEC §4, §8): `user.*` by auth-service; `access.*` and `door.*` by
    /// access-service; `camera.*` and `alert.*` by monitoring-service; `service.*` by
    /// api-gateway; any other type refused.
    ///
    /// ```
    /// use forten_shared::auth::PublishPolicy;
    /// let p = PublishPolicy::forten();
    /// assert!(p.is_allowed("access-service", "door.forced"));
    /// assert!(!p.is_allowed("monitoring-service", "door.forced"));
    /// assert!(p.is_allowed("monitoring-service", "camera.offline"));
    /// ```
    pub fn forten() -> Self {
        Self::new()
            .allow("user.*", ["auth-service"])
            .allow("access.*", ["access-service"])
            .allow("door.*", ["access-service"])
            .allow("camera.*", ["monitoring-service"])
            .allow("alert.*", ["monitoring-service"])
            .allow("service.*", ["api-gateway"])
            .deny_unlisted()
    }

    /// Lets `services` publish types matching `pattern`.
    pub fn allow<I, S>(mut self, pattern: impl Into<TopicPattern>, services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rules.push((
            pattern.into(),
            services.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Refuses types that no rule matches.
    pub fn deny_unlisted(mut self) -> Self {
        self.allow_unlisted = false;
        self
    }

    /// Whether `publisher` may publish `event_type`.
    pub fn is_allowed(&self, publisher: &str, event_type: &str) -> bool {
        let mut matched = false;
        for (pattern, services) in &self.rules {
            if pattern.matches(event_type) {
                if services.iter().any(|s| s == publisher) {
                    return true;
                }
                matched = true;
            }
        }
        !matched && self.allow_unlisted
    }
}

/// A verified publisher token, cached until it expires.
struct VerifiedToken {
    identity: ServiceIdentity,
    exp: u64,
    key: Vec<u8>,
}

/// Bound on the verified-token cache (tokens are few: one per publisher per TTL).
const TOKEN_CACHE_MAX: usize = 1024;

/// Signs events as their publisher and verifies the publisher of received events — the hooks
/// the event bus calls on publish ([`sign`](Self::sign)) and before a handler
/// ([`verify`](Self::verify)).
///
/// ```
/// use forten_shared::auth::{EventAuthenticator, PublishPolicy, ServiceAuth, ServiceAuthConfig};
/// use forten_shared::{EventBuilder, events::{DoorForced, Severity}};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// forten_shared::auth::install_crypto_provider();
/// let secret = "0123456789abcdef0123456789abcdef";
/// let policy = PublishPolicy::new().allow("door.forced", ["access-service"]);
/// let access = ServiceAuth::new(ServiceAuthConfig::shared_secret("access-service", secret))?;
/// let publisher = EventAuthenticator::new(&access, policy.clone())?;
///
/// let mut event = EventBuilder::new(DoorForced { door_id: "d1".into(), building_id: "b1".into(),
///     timestamp: chrono::Utc::now(), severity: Severity::High }, "access-service").build();
/// publisher.sign(&mut event).await?;
///
/// let monitoring = ServiceAuth::new(ServiceAuthConfig::shared_secret("monitoring-service", secret))?;
/// let consumer = EventAuthenticator::verifier_only(monitoring.verifier().clone(), policy);
/// assert_eq!(consumer.verify(&event)?.name, "access-service");
///
/// event.extensions.remove("authsig");
/// assert!(consumer.verify(&event).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventAuthenticator {
    inner: Arc<Inner>,
}

struct Inner {
    service: Option<ServiceAuth>,
    signer: Option<(Ed25519KeyPair, String)>,
    verifier: TokenVerifier,
    policy: PublishPolicy,
    /// std `RwLock`: never held across an await.
    verified: RwLock<HashMap<String, Arc<VerifiedToken>>>,
}

impl std::fmt::Debug for EventAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventAuthenticator")
            .field(
                "publisher",
                &self.inner.service.as_ref().map(ServiceAuth::name),
            )
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl EventAuthenticator {
    /// Signs as `service` (with a fresh per-process Ed25519 event key) and verifies with
    /// `service`'s verifier.
    pub fn new(service: &ServiceAuth, policy: PublishPolicy) -> Result<Self, AuthError> {
        let signer = ephemeral_ed25519()?;
        Ok(Self {
            inner: Arc::new(Inner {
                service: Some(service.clone()),
                signer: Some(signer),
                verifier: service.verifier().clone(),
                policy,
                verified: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// Verifies only (a consumer that never publishes).
    pub fn verifier_only(verifier: TokenVerifier, policy: PublishPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                service: None,
                signer: None,
                verifier,
                policy,
                verified: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &PublishPolicy {
        &self.inner.policy
    }

    /// Whether this authenticator can sign (it was built with [`new`](Self::new), not
    /// [`verifier_only`](Self::verifier_only)).
    ///
    /// ```
    /// # use forten_shared::auth::{EventAuthenticator, PublishPolicy, TokenVerifier};
    /// let v = EventAuthenticator::verifier_only(TokenVerifier::shared_secret(b"0123456789abcdef0123456789abcdef"), PublishPolicy::forten());
    /// assert!(!v.can_sign());
    /// ```
    pub fn can_sign(&self) -> bool {
        self.inner.service.is_some() && self.inner.signer.is_some()
    }

    /// Adds `authtoken` and `authsig` to `event`. The publisher token is cached (a network call
    /// to the issuer only when it must be renewed); the signature is one Ed25519 operation.
    /// The event's `source` must be this service.
    pub async fn sign(&self, event: &mut Event) -> Result<(), EventAuthError> {
        let (Some(service), Some((pair, x))) = (&self.inner.service, &self.inner.signer) else {
            return Err(EventAuthError::NotAPublisher);
        };
        if event.source != service.name() {
            return Err(EventAuthError::SourceMismatch {
                publisher: service.name().to_owned(),
                claimed: event.source.clone(),
            });
        }
        let token = service.events_token(x).await?;
        let message = canonical(event)?;
        let sig = pair.sign(&message);
        event
            .extensions
            .insert(AUTH_TOKEN_EXTENSION.into(), token.as_ref().into());
        event
            .extensions
            .insert(AUTH_SIGNATURE_EXTENSION.into(), b64url(sig.as_ref()).into());
        Ok(())
    }

    /// Checks the publisher of `event`: token, signature, `source` = publisher, and the
    /// [`PublishPolicy`]. Synchronous, no network: an unknown issuer key fails with
    /// [`TokenError::UnknownKid`] (see [`verify_refreshing`](Self::verify_refreshing)).
    pub fn verify(&self, event: &Event) -> Result<ServiceIdentity, EventAuthError> {
        let token = ext_str(event, AUTH_TOKEN_EXTENSION)?;
        let sig = ext_str(event, AUTH_SIGNATURE_EXTENSION)?;
        let verified = self.verified_token(token)?;
        let sig = b64url_decode(sig).ok_or(EventAuthError::BadSignature)?;
        let message = canonical(event)?;
        UnparsedPublicKey::new(&ED25519, &verified.key)
            .verify(&message, &sig)
            .map_err(|_| EventAuthError::BadSignature)?;
        let publisher = &verified.identity.name;
        if *publisher != event.source {
            return Err(EventAuthError::SourceMismatch {
                publisher: publisher.clone(),
                claimed: event.source.clone(),
            });
        }
        let ty = event.event_type();
        if !self.inner.policy.is_allowed(publisher, ty.as_str()) {
            return Err(EventAuthError::NotAllowed {
                publisher: publisher.clone(),
                event_type: ty.as_str().to_owned(),
            });
        }
        Ok(verified.identity.clone())
    }

    /// Like [`verify`](Self::verify), but refreshes the issuer's JWKS once when the token was
    /// signed by a key not yet cached (right after a key rotation).
    pub async fn verify_refreshing(
        &self,
        event: &Event,
    ) -> Result<ServiceIdentity, EventAuthError> {
        match self.verify(event) {
            Err(EventAuthError::InvalidToken(TokenError::UnknownKid)) => {
                let token = ext_str(event, AUTH_TOKEN_EXTENSION)?;
                self.inner
                    .verifier
                    .verify_refreshing(token, EVENTS_AUDIENCE)
                    .await
                    .map_err(EventAuthError::InvalidToken)?;
                self.verify(event)
            }
            other => other,
        }
    }

    fn verified_token(&self, token: &str) -> Result<Arc<VerifiedToken>, EventAuthError> {
        let now = now_secs();
        let cached = self
            .inner
            .verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned();
        if let Some(v) = cached {
            if now <= v.exp {
                return Ok(v);
            }
            return Err(EventAuthError::InvalidToken(TokenError::Expired));
        }
        let claims = self
            .inner
            .verifier
            .verify(token, EVENTS_AUDIENCE)
            .map_err(EventAuthError::InvalidToken)?;
        let identity = ServiceIdentity::from(&claims);
        if !identity.has_scope(PUBLISH_SCOPE) {
            return Err(EventAuthError::InvalidToken(TokenError::MissingScope(
                PUBLISH_SCOPE.into(),
            )));
        }
        let key = claims
            .cnf
            .as_ref()
            .filter(|c| c.jwk.is_ed25519())
            .and_then(|c| b64url_decode(&c.jwk.x))
            .filter(|k| k.len() == 32)
            .ok_or_else(|| {
                EventAuthError::InvalidToken(TokenError::InvalidClaims("no cnf key".into()))
            })?;
        let verified = Arc::new(VerifiedToken {
            identity,
            exp: claims.exp,
            key,
        });
        let mut cache = self
            .inner
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= TOKEN_CACHE_MAX {
            cache.retain(|_, v| v.exp >= now);
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), verified.clone());
        Ok(verified)
    }
}

fn ext_str<'a>(event: &'a Event, name: &'static str) -> Result<&'a str, EventAuthError> {
    event
        .extensions
        .get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or(EventAuthError::Missing(name))
}

/// The bytes signed for an event: a domain tag, then a JSON array of id, type, source, subject,
/// time (ms) and the SHA-256 of the data in canonical JSON (sorted keys, no whitespace).
pub(crate) fn canonical(event: &Event) -> Result<Vec<u8>, EventAuthError> {
    struct Data<'a>(&'a EventData);
    impl Serialize for Data<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.serialize_into(s)
        }
    }
    let data = serde_json::to_value(Data(&event.data))
        .map_err(|e| EventAuthError::Canonical(e.to_string()))?;
    let mut data_bytes = Vec::with_capacity(256);
    write_canonical(&data, &mut data_bytes);
    let head = serde_json::json!([
        event.id,
        event.event_type().as_str(),
        event.source,
        event.subject,
        event.time.to_rfc3339_opts(SecondsFormat::Millis, true),
        b64url(&Sha256::digest(&data_bytes)),
    ]);
    let mut out = b"forten-event-v1\n".to_vec();
    write_canonical(&head, &mut out);
    Ok(out)
}

/// JSON with object keys sorted, whatever serde_json's map order.
fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}
