//! Issuer mode: round trip, JWKS, policy, secrets, rotation.

use std::time::Duration;

use forten_shared::auth::{
    AuthError, IssuerConfig, IssuerPolicy, JwkSet, TokenError, hash_service_secret,
};

use crate::support::*;

async fn post_token(url: &str, body: &serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/internal/auth/service-token"))
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn fetch_jwks(url: &str) -> JwkSet {
    reqwest::get(format!("{url}/.well-known/jwks.json"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json")
}

#[tokio::test]
async fn round_trip_over_http() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let monitoring = issuer_mode("monitoring-service", MONITORING_SECRET, &url, &[]);
    let addr = serve(protected_app(&monitoring, &["internal:read"])).await;
    let access = issuer_mode("access-service", ACCESS_SECRET, &url, &["internal:read"]);
    let header = access
        .create_auth_header("monitoring-service")
        .await
        .expect("token from issuer");
    let resp = get_with(
        &format!("http://{addr}/internal/doors"),
        header.to_str().ok(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["name"], "access-service");
    assert_eq!(body["scopes"], serde_json::json!(["internal:read"]));
}

#[tokio::test]
async fn token_verifies_with_ed25519_dalek_and_the_published_jwks() {
    init();
    let (issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let access = issuer_mode("access-service", ACCESS_SECRET, &url, &["internal:read"]);
    let token = access.token("monitoring-service").await.expect("token");
    let jwks = fetch_jwks(&url).await;
    assert_eq!(jwks.keys.len(), 1);
    let jwk = &jwks.keys[0];
    assert_eq!(
        (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_deref()),
        ("OKP", "Ed25519", Some("EdDSA"))
    );
    assert_eq!(jwk.kid.as_deref(), Some(issuer.active_kid().as_str()));
    let claims = verify_eddsa_independently(&token, &jwk.x);
    assert_eq!(claims["iss"], "forten");
    assert_eq!(claims["sub"], "access-service");
    assert_eq!(claims["aud"], "monitoring-service");
    assert_eq!(claims["scope"], "internal:read");
    let mut keys: Vec<&str> = claims
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["aud", "exp", "iat", "iss", "jti", "scope", "sub"]);
}

#[tokio::test]
async fn jwks_feeds_a_standard_jwk_parser() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let access = issuer_mode("access-service", ACCESS_SECRET, &url, &["internal:read"]);
    let token = access.token("monitoring-service").await.expect("token");
    let text = reqwest::get(format!("{url}/.well-known/jwks.json"))
        .await
        .expect("jwks")
        .text()
        .await
        .expect("text");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&text).expect("standard JWK set");
    let kid = jsonwebtoken::decode_header(token.as_bytes())
        .expect("header")
        .kid
        .expect("kid");
    let jwk = set.find(&kid).expect("kid published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["monitoring-service"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token.as_bytes(), &key, &validation)
        .expect("verifies");
    assert_eq!(data.claims["sub"], "access-service");
}

#[tokio::test]
async fn wrong_service_secret_gets_401() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let resp = post_token(
        &url,
        &serde_json::json!({"serviceName": "access-service", "serviceSecret": "guess",
        "audience": "monitoring-service", "scopes": ["internal:read"]}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], 401);
    assert_eq!(body["reason"], "invalid_credentials");
    // and the client surfaces it
    let client = issuer_mode("access-service", "guess", &url, &["internal:read"]);
    let err = client
        .create_auth_header("monitoring-service")
        .await
        .expect_err("refused");
    assert!(
        matches!(err, AuthError::IssuerRefused { status: 401, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_service_gets_401() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let resp = post_token(
        &url,
        &serde_json::json!({"serviceName": "evil-service", "serviceSecret": ACCESS_SECRET,
        "audience": "monitoring-service"}),
    )
    .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn scope_outside_the_policy_is_not_granted() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let resp = post_token(&url, &serde_json::json!({"serviceName": "access-service", "serviceSecret": ACCESS_SECRET,
        "audience": "monitoring-service", "scopes": ["internal:read", "internal:write", "registry:write"]})).await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["scope"], "internal:read");
    assert_eq!(body["tokenType"], "Bearer");
    let jwks = fetch_jwks(&url).await;
    let claims =
        verify_eddsa_independently(body["token"].as_str().expect("token"), &jwks.keys[0].x);
    assert_eq!(claims["scope"], "internal:read");
    // only forbidden scopes: refused
    let resp = post_token(
        &url,
        &serde_json::json!({"serviceName": "access-service", "serviceSecret": ACCESS_SECRET,
        "audience": "monitoring-service", "scopes": ["internal:write"]}),
    )
    .await;
    assert_eq!(resp.status(), 403);
    // an audience the policy does not list: refused
    let resp = post_token(
        &url,
        &serde_json::json!({"serviceName": "access-service", "serviceSecret": ACCESS_SECRET,
        "audience": "auth-service"}),
    )
    .await;
    assert_eq!(resp.status(), 403);
    // the protected endpoint refuses the read-only token for a write scope
    let monitoring = issuer_mode("monitoring-service", MONITORING_SECRET, &url, &[]);
    let addr = serve(protected_app(&monitoring, &["internal:write"])).await;
    let access = issuer_mode(
        "access-service",
        ACCESS_SECRET,
        &url,
        &["internal:read", "internal:write"],
    );
    let header = access
        .create_auth_header("monitoring-service")
        .await
        .expect("read-only token");
    let resp = get_with(
        &format!("http://{addr}/internal/doors"),
        header.to_str().ok(),
    )
    .await;
    assert_problem(resp, 403, "missing_scope").await;
}

#[tokio::test]
async fn a_service_cannot_obtain_a_token_as_another() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    // access-service knows only its own secret and asks as monitoring-service
    let resp = post_token(
        &url,
        &serde_json::json!({"serviceName": "monitoring-service", "serviceSecret": ACCESS_SECRET,
        "audience": "access-service", "scopes": ["internal:write"]}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let impostor = issuer_mode("monitoring-service", ACCESS_SECRET, &url, &[]);
    assert!(impostor.token("access-service").await.is_err());
    // nor can it forge one with HS256 and a guessed secret: issuer-mode verifiers accept EdDSA only
    let access_server = issuer_mode("access-service", ACCESS_SECRET, &url, &[]);
    let forged = hs256(
        &serde_json::json!({"alg": "HS256"}),
        &claims("monitoring-service", "access-service", "internal:write"),
        ACCESS_SECRET.as_bytes(),
    );
    assert_eq!(
        access_server.verify(&forged),
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn malformed_request_gets_400_problem() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let resp = reqwest::Client::new()
        .post(format!("{url}/internal/auth/service-token"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_until_expiry_and_new_tokens_verify() {
    init();
    let (issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let monitoring = issuer_mode("monitoring-service", MONITORING_SECRET, &url, &[]);
    let addr = serve(protected_app(&monitoring, &["internal:read"])).await;
    let target = format!("http://{addr}/internal/doors");

    let before = issuer_mode("access-service", ACCESS_SECRET, &url, &["internal:read"]);
    let old = before
        .create_auth_header("monitoring-service")
        .await
        .expect("old token");
    assert_eq!(get_with(&target, old.to_str().ok()).await.status(), 200);
    let old_kid = issuer.active_kid();

    let new_kid = issuer.rotate().expect("rotate");
    assert_ne!(old_kid, new_kid);
    let published: Vec<_> = fetch_jwks(&url)
        .await
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect();
    assert_eq!(published.len(), 2, "both keys valid during the rotation");
    assert!(published.contains(&old_kid) && published.contains(&new_kid));

    let after = issuer_mode("access-service", ACCESS_SECRET, &url, &["internal:read"]);
    let new = after
        .create_auth_header("monitoring-service")
        .await
        .expect("new token");
    let new_header =
        jsonwebtoken::decode_header(new.to_str().expect("ascii").trim_start_matches("Bearer "))
            .expect("header");
    assert_eq!(new_header.kid.as_deref(), Some(new_kid.as_str()));
    // the verifier has only the old key cached: the unknown kid triggers one JWKS refresh
    assert_eq!(get_with(&target, new.to_str().ok()).await.status(), 200);
    assert_eq!(
        get_with(&target, old.to_str().ok()).await.status(),
        200,
        "old token still valid"
    );
}

#[tokio::test]
async fn retired_key_is_no_longer_accepted() {
    init();
    let (issuer, url) =
        start_issuer(IssuerConfig::new(policy()).retire_after(Duration::ZERO)).await;
    let access = issuer_mode("access-service", ACCESS_SECRET, &url, &["internal:read"]);
    let old = access.token("monitoring-service").await.expect("token");
    issuer.rotate().expect("rotate");
    assert_eq!(fetch_jwks(&url).await.keys.len(), 1);
    let monitoring = issuer_mode("monitoring-service", MONITORING_SECRET, &url, &[]);
    assert_eq!(
        monitoring.verify_refreshing(&old).await,
        Err(TokenError::UnknownKid)
    );
}

#[test]
fn policy_from_json_file_and_env() {
    init();
    let json = format!(
        r#"{{"services":{{"access-service":{{"secretHash":"{}","allow":{{"monitoring-service":["internal:read"],"*":["health:read"]}}}}}}}}"#,
        hash_service_secret(ACCESS_SECRET)
    );
    let policy = IssuerPolicy::from_json(&json).expect("valid policy");
    assert_eq!(
        policy.allowed_scopes("access-service", "monitoring-service"),
        ["health:read", "internal:read"]
    );
    assert_eq!(
        policy.allowed_scopes("access-service", "auth-service"),
        ["health:read"]
    );
    let dir = std::env::temp_dir().join(format!("forten-policy-{}", uuid::Uuid::new_v4()));
    std::fs::write(&dir, &json).expect("write policy");
    let from_file = IssuerPolicy::from_env(|k| {
        (k == "FORTEN_SERVICE_POLICY_FILE").then(|| dir.display().to_string())
    })
    .expect("from file");
    assert_eq!(from_file, policy);
    let _ = std::fs::remove_file(&dir);
    let bad = IssuerPolicy::from_json(r#"{"services":{"a":{"secretHash":"plaintext"}}}"#);
    assert!(matches!(bad, Err(AuthError::Config(m)) if m.contains("secretHash")));
}

#[tokio::test]
async fn argon2_hashed_secrets_work_too() {
    init();
    let mut policy = IssuerPolicy::new();
    policy.services.insert(
        "access-service".into(),
        forten_shared::auth::ServicePolicy {
            secret_hash: forten_shared::auth::hash_password("short pass").expect("argon2"),
            allow: [(
                "monitoring-service".to_string(),
                vec!["internal:read".to_string()],
            )]
            .into(),
        },
    );
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy)).await;
    let ok = issuer_mode("access-service", "short pass", &url, &[]);
    assert!(ok.token("monitoring-service").await.is_ok());
    let bad = issuer_mode("access-service", "short pasS", &url, &[]);
    assert!(bad.token("monitoring-service").await.is_err());
}
