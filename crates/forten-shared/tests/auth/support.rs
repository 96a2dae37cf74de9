//! Shared helpers: servers on 127.0.0.1:0, token crafting, independent verifiers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use forten_shared::auth::{
    IssuerConfig, IssuerPolicy, ServiceAuth, ServiceAuthConfig, ServiceIdentity, TokenIssuer,
    issuer_router,
};
use hmac::Mac as _;

/// A shared JWT_SECRET for tests.
pub(crate) const SECRET: &str = "test-jwt-secret-0123456789abcdef-0123456789";

/// Installs the crypto provider and a test-writer subscriber (idempotent).
pub(crate) fn init() {
    forten_shared::auth::install_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("forten_shared=debug")
        .try_init();
}

/// Serves `app` on an ephemeral loopback port; the server lives as long as the runtime.
pub(crate) async fn serve(app: Router) -> SocketAddr {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// `/internal/doors` protected by `auth` with `scopes` (answers the caller's identity as JSON),
/// `/open` unprotected.
pub(crate) fn protected_app(auth: &ServiceAuth, scopes: &[&str]) -> Router {
    let protected = Router::new()
        .route(
            "/internal/doors",
            get(|Extension(id): Extension<ServiceIdentity>| async move {
                Json(serde_json::json!({"name": id.name, "scopes": id.scopes, "tokenId": id.token_id}))
            }),
        )
        .layer(auth.layer(scopes.iter().copied()));
    Router::new()
        .merge(protected)
        .route("/open", get(|| async { "open" }))
}

/// A shared-secret identity.
pub(crate) fn shared(name: &str, scopes: &[&str]) -> ServiceAuth {
    ServiceAuth::new(ServiceAuthConfig::shared_secret(name, SECRET).scopes(scopes.iter().copied()))
        .expect("shared-secret auth")
}

/// Secrets of the issuer-mode services.
pub(crate) const ACCESS_SECRET: &str = "access-secret-9f1c2e7a";
pub(crate) const MONITORING_SECRET: &str = "monitoring-secret-51bd07";

/// The issuer policy used by the issuer-mode tests.
pub(crate) fn policy() -> IssuerPolicy {
    IssuerPolicy::new()
        .service(
            "access-service",
            ACCESS_SECRET,
            [
                ("monitoring-service", vec!["internal:read"]),
                ("forten.events", vec!["events:publish"]),
            ],
        )
        .service(
            "monitoring-service",
            MONITORING_SECRET,
            [
                ("access-service", vec!["internal:read", "internal:write"]),
                ("forten.events", vec!["events:publish"]),
            ],
        )
}

/// An issuer served on loopback: (issuer, base URL).
pub(crate) async fn start_issuer(config: IssuerConfig) -> (Arc<TokenIssuer>, String) {
    let issuer = Arc::new(TokenIssuer::new(config).expect("issuer"));
    let addr = serve(issuer_router(issuer.clone())).await;
    (issuer, format!("http://{addr}"))
}

/// An issuer-mode identity talking to `url`; JWKS refreshes not rate-limited (deterministic).
pub(crate) fn issuer_mode(name: &str, secret: &str, url: &str, scopes: &[&str]) -> ServiceAuth {
    ServiceAuth::new(
        ServiceAuthConfig::issuer(name, secret, url)
            .scopes(scopes.iter().copied())
            .jwks_min_refresh_interval(Duration::ZERO),
    )
    .expect("issuer-mode auth")
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// base64url without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub(crate) fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

/// Valid SPEC §7 claims from `sub` to `aud`, overridable.
pub(crate) fn claims(sub: &str, aud: &str, scope: &str) -> serde_json::Value {
    let now = now();
    serde_json::json!({"iss": "forten", "sub": sub, "aud": aud, "scope": scope,
        "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string()})
}

/// Signs arbitrary claims with HS256 and `secret`, by hand (independent of jsonwebtoken).
pub(crate) fn hs256(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    secret: &[u8],
) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

/// Verifies an HS256 JWT by hand; returns its claims.
pub(crate) fn verify_hs256_independently(token: &str, secret: &[u8]) -> serde_json::Value {
    let (input, sig) = token.rsplit_once('.').expect("three segments");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(input.as_bytes());
    mac.verify_slice(&unb64(sig))
        .expect("independent HS256 verification");
    let (header, payload) = input.split_once('.').expect("header.payload");
    let header: serde_json::Value = serde_json::from_slice(&unb64(header)).expect("header json");
    assert_eq!(header["alg"], "HS256");
    serde_json::from_slice(&unb64(payload)).expect("claims json")
}

/// Verifies an EdDSA JWT with ed25519-dalek and a JWK `x`; returns its claims.
pub(crate) fn verify_eddsa_independently(token: &str, x: &str) -> serde_json::Value {
    use ed25519_dalek::Verifier as _;
    let (input, sig) = token.rsplit_once('.').expect("three segments");
    let key_bytes: [u8; 32] = unb64(x).try_into().expect("32-byte key");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes).expect("ed25519 key");
    let sig: [u8; 64] = unb64(sig).try_into().expect("64-byte signature");
    key.verify(
        input.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .expect("independent EdDSA verification");
    let (header, payload) = input.split_once('.').expect("header.payload");
    let header: serde_json::Value = serde_json::from_slice(&unb64(header)).expect("header json");
    assert_eq!(header["alg"], "EdDSA");
    serde_json::from_slice(&unb64(payload)).expect("claims json")
}

/// Asserts a problem+json rejection with `status` and `reason`, and a Bearer challenge.
pub(crate) async fn assert_problem(resp: reqwest::Response, status: u16, reason: &str) {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"forten\""),
        "challenge {challenge:?}"
    );
    let body: serde_json::Value = resp.json().await.expect("problem json");
    assert_eq!(body["status"], status);
    assert_eq!(body["reason"], reason, "{body}");
    assert!(body["type"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
}

/// GET `url` with an optional raw Authorization value.
pub(crate) async fn get_with(url: &str, authorization: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await.expect("request")
}
