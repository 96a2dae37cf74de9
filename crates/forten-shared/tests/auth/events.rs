//! Authenticated publishers: the hooks the event bus calls (sign on publish, verify before the
//! handler). Forged, missing and unauthorised publishers are refused with a reason.

use forten_shared::auth::{
    AUTH_SIGNATURE_EXTENSION, AUTH_TOKEN_EXTENSION, EventAuthError, EventAuthenticator,
    IssuerConfig, IssuerPolicy, PublishPolicy, ServiceAuth, TokenError,
};
use forten_shared::events::{CameraOffline, DoorForced, Severity, UserDeleted};
use forten_shared::{Event, EventBuilder};

use crate::support::*;

fn door_forced(source: &str) -> Event {
    EventBuilder::new(
        DoorForced {
            door_id: "d1".into(),
            building_id: "b1".into(),
            timestamp: chrono::Utc::now(),
            severity: Severity::High,
        },
        source,
    )
    .subject("d1")
    .build()
}

fn camera_offline(source: &str) -> Event {
    EventBuilder::new(
        CameraOffline {
            camera_id: "c1".into(),
            building_id: "b1".into(),
            last_seen: chrono::Utc::now(),
            reason: "timeout".into(),
        },
        source,
    )
    .build()
}

fn policy_rules() -> PublishPolicy {
    PublishPolicy::new()
        .allow("door.forced", ["access-service"])
        .allow("camera.*", ["monitoring-service"])
}

fn publisher(auth: &ServiceAuth) -> EventAuthenticator {
    EventAuthenticator::new(auth, policy_rules()).expect("authenticator")
}

fn consumer() -> EventAuthenticator {
    EventAuthenticator::verifier_only(
        shared("analytics-service", &[]).verifier().clone(),
        policy_rules(),
    )
}

#[tokio::test]
async fn signed_event_verifies_across_the_wire_shared_secret() {
    init();
    let access = publisher(&shared("access-service", &[]));
    let mut event = door_forced("access-service");
    access.sign(&mut event).await.expect("sign");
    assert!(event.extensions.contains_key(AUTH_TOKEN_EXTENSION));
    assert!(event.extensions.contains_key(AUTH_SIGNATURE_EXTENSION));
    let received =
        Event::from_slice(&event.to_vec().expect("serialise")).expect("valid CloudEvent");
    let id = consumer().verify(&received).expect("verified");
    assert_eq!(id.name, "access-service");
    assert!(id.has_scope("events:publish"));
}

#[tokio::test]
async fn publisher_token_is_cached_across_events() {
    init();
    let auth = shared("access-service", &[]);
    let access = publisher(&auth);
    for _ in 0..50 {
        let mut e = door_forced("access-service");
        access.sign(&mut e).await.expect("sign");
        consumer().verify(&e).expect("verified");
    }
    assert_eq!(auth.minted_tokens(), 1);
}

#[tokio::test]
async fn signed_event_verifies_issuer_mode() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let monitoring = issuer_mode("monitoring-service", MONITORING_SECRET, &url, &[]);
    let publisher = EventAuthenticator::new(&monitoring, policy_rules()).expect("authenticator");
    let mut event = camera_offline("monitoring-service");
    publisher.sign(&mut event).await.expect("sign via issuer");
    let token = event.extensions[AUTH_TOKEN_EXTENSION]
        .as_str()
        .expect("token")
        .to_owned();
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::EdDSA,
        "issued by the auth-service"
    );

    let analytics = issuer_mode("analytics-service", "unused", &url, &[]);
    let consumer = EventAuthenticator::verifier_only(analytics.verifier().clone(), policy_rules());
    // cold JWKS cache: the sync hot path says unknown key, the refreshing variant fetches it
    assert_eq!(
        consumer.verify(&event),
        Err(EventAuthError::InvalidToken(TokenError::UnknownKid))
    );
    assert_eq!(
        consumer
            .verify_refreshing(&event)
            .await
            .expect("verified")
            .name,
        "monitoring-service"
    );
    assert_eq!(
        consumer.verify(&event).expect("now cached").name,
        "monitoring-service"
    );
}

#[tokio::test]
async fn issuer_mode_publisher_needs_the_events_audience_in_its_policy() {
    init();
    let policy = IssuerPolicy::new().service(
        "auth-service",
        "auth-secret",
        [("access-service", ["internal:read"])],
    );
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy)).await;
    let auth = issuer_mode("auth-service", "auth-secret", &url, &[]);
    let publisher = EventAuthenticator::new(&auth, PublishPolicy::new()).expect("authenticator");
    let mut event = EventBuilder::new(
        UserDeleted {
            user_id: "u".into(),
        },
        "auth-service",
    )
    .build();
    let err = publisher
        .sign(&mut event)
        .await
        .expect_err("refused by the issuer");
    assert_eq!(err.reason(), "token_unavailable");
}

#[tokio::test]
async fn missing_identity_is_refused() {
    init();
    let event = door_forced("access-service");
    let err = consumer().verify(&event).expect_err("unsigned");
    assert_eq!(err, EventAuthError::Missing("authtoken"));
    assert_eq!(err.reason(), "publisher_identity_missing");
    // a token without its signature
    let mut signed = door_forced("access-service");
    publisher(&shared("access-service", &[]))
        .sign(&mut signed)
        .await
        .expect("sign");
    signed.extensions.remove(AUTH_SIGNATURE_EXTENSION);
    assert_eq!(
        consumer().verify(&signed),
        Err(EventAuthError::Missing("authsig"))
    );
    signed
        .extensions
        .insert(AUTH_SIGNATURE_EXTENSION.into(), serde_json::json!(42));
    assert_eq!(
        consumer().verify(&signed),
        Err(EventAuthError::Missing("authsig"))
    );
}

#[tokio::test]
async fn forged_token_is_refused() {
    init();
    // someone with broker credentials but not the JWT_SECRET
    let mut rogue_cfg = forten_shared::auth::ServiceAuthConfig::shared_secret(
        "access-service",
        "not-the-real-secret-0123456789abcdef",
    );
    rogue_cfg.scopes = vec![];
    let rogue = ServiceAuth::new(rogue_cfg).expect("rogue");
    let mut event = door_forced("access-service");
    publisher(&rogue)
        .sign(&mut event)
        .await
        .expect("rogue signs");
    let err = consumer().verify(&event).expect_err("forged");
    assert_eq!(err, EventAuthError::InvalidToken(TokenError::BadSignature));
    assert_eq!(err.reason(), "publisher_token_invalid");
    // garbage token
    event
        .extensions
        .insert(AUTH_TOKEN_EXTENSION.into(), "garbage".into());
    assert!(matches!(
        consumer().verify(&event),
        Err(EventAuthError::InvalidToken(_))
    ));
}

#[tokio::test]
async fn forged_signature_is_refused() {
    init();
    let auth = shared("access-service", &[]);
    let mut event = door_forced("access-service");
    publisher(&auth).sign(&mut event).await.expect("sign");
    // a second authenticator for the same service has another event key: its signature does
    // not match the key bound in the first one's token
    let mut other = event.clone();
    EventAuthenticator::new(&auth, policy_rules())
        .expect("second")
        .sign(&mut other)
        .await
        .expect("sign");
    event.extensions.insert(
        AUTH_SIGNATURE_EXTENSION.into(),
        other.extensions[AUTH_SIGNATURE_EXTENSION].clone(),
    );
    assert_eq!(consumer().verify(&event), Err(EventAuthError::BadSignature));
    event
        .extensions
        .insert(AUTH_SIGNATURE_EXTENSION.into(), "AAAA".into());
    assert_eq!(consumer().verify(&event), Err(EventAuthError::BadSignature));
}

#[tokio::test]
async fn tampered_event_is_refused() {
    init();
    let mut event = door_forced("access-service");
    publisher(&shared("access-service", &[]))
        .sign(&mut event)
        .await
        .expect("sign");
    let mut json: serde_json::Value =
        serde_json::from_slice(&event.to_vec().expect("ser")).expect("json");
    json["data"]["severity"] = "low".into();
    let tampered =
        Event::from_slice(&serde_json::to_vec(&json).expect("ser")).expect("still a valid event");
    assert_eq!(
        consumer().verify(&tampered),
        Err(EventAuthError::BadSignature)
    );
    // the identity lifted onto another event
    let mut other = door_forced("access-service");
    for name in [AUTH_TOKEN_EXTENSION, AUTH_SIGNATURE_EXTENSION] {
        other
            .extensions
            .insert(name.into(), event.extensions[name].clone());
    }
    assert_eq!(consumer().verify(&other), Err(EventAuthError::BadSignature));
    // a changed source
    let mut moved = event.clone();
    moved.source = "monitoring-service".into();
    assert_eq!(consumer().verify(&moved), Err(EventAuthError::BadSignature));
}

#[tokio::test]
async fn publisher_not_allowed_by_policy_is_refused() {
    init();
    // monitoring-service may not publish door.forced
    let mut event = door_forced("monitoring-service");
    publisher(&shared("monitoring-service", &[]))
        .sign(&mut event)
        .await
        .expect("sign");
    let err = consumer().verify(&event).expect_err("not allowed");
    assert_eq!(
        err,
        EventAuthError::NotAllowed {
            publisher: "monitoring-service".into(),
            event_type: "door.forced".into()
        }
    );
    assert_eq!(err.reason(), "publisher_not_allowed");
    // access-service may not publish camera.*
    let mut camera = camera_offline("access-service");
    publisher(&shared("access-service", &[]))
        .sign(&mut camera)
        .await
        .expect("sign");
    assert!(matches!(
        consumer().verify(&camera),
        Err(EventAuthError::NotAllowed { .. })
    ));
    // monitoring-service may
    let mut camera = camera_offline("monitoring-service");
    publisher(&shared("monitoring-service", &[]))
        .sign(&mut camera)
        .await
        .expect("sign");
    assert!(consumer().verify(&camera).is_ok());
}

#[tokio::test]
async fn a_publisher_cannot_sign_for_another_source() {
    init();
    let mut event = door_forced("monitoring-service");
    let err = publisher(&shared("access-service", &[]))
        .sign(&mut event)
        .await
        .expect_err("refused");
    assert!(matches!(err, EventAuthError::SourceMismatch { .. }));
    let verifier_only = consumer();
    assert_eq!(
        verifier_only.sign(&mut event).await,
        Err(EventAuthError::NotAPublisher)
    );
}

#[tokio::test]
async fn a_plain_service_token_is_no_publisher_token() {
    init();
    // a token for another audience, or without the cnf key, does not vouch for events
    let auth = shared("access-service", &["events:publish"]);
    let mut event = door_forced("access-service");
    publisher(&auth).sign(&mut event).await.expect("sign");
    let plain = auth
        .token("forten.events")
        .await
        .expect("plain token for the events audience");
    event
        .extensions
        .insert(AUTH_TOKEN_EXTENSION.into(), plain.as_ref().into());
    assert!(matches!(
        consumer().verify(&event),
        Err(EventAuthError::InvalidToken(TokenError::InvalidClaims(_)))
    ));
    let wrong_aud = auth.token("monitoring-service").await.expect("token");
    event
        .extensions
        .insert(AUTH_TOKEN_EXTENSION.into(), wrong_aud.as_ref().into());
    assert_eq!(
        consumer().verify(&event),
        Err(EventAuthError::InvalidToken(TokenError::WrongAudience))
    );
}
