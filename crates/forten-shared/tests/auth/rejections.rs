//! Every rejection, one test each: 401/403 problem+json with a challenge, never a panic.

use std::net::SocketAddr;

use forten_shared::auth::{IssuerConfig, ServiceClaims, TokenIssuer};
use serde_json::json;

use crate::support::*;

/// A shared-secret server protecting `/internal/doors` with `internal:read`.
async fn shared_server() -> SocketAddr {
    init();
    serve(protected_app(
        &shared("monitoring-service", &[]),
        &["internal:read"],
    ))
    .await
}

async fn expect_rejected(addr: SocketAddr, token: &str, status: u16, reason: &str) {
    let resp = get_with(
        &format!("http://{addr}/internal/doors"),
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_problem(resp, status, reason).await;
}

fn header() -> serde_json::Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn good_claims() -> serde_json::Value {
    claims("access-service", "monitoring-service", "internal:read")
}

#[tokio::test]
async fn control_a_well_formed_token_passes() {
    let addr = shared_server().await;
    let token = hs256(&header(), &good_claims(), SECRET.as_bytes());
    let resp = get_with(
        &format!("http://{addr}/internal/doors"),
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn missing_token_is_401() {
    let addr = shared_server().await;
    let resp = get_with(&format!("http://{addr}/internal/doors"), None).await;
    assert_problem(resp, 401, "missing_token").await;
}

#[tokio::test]
async fn expired_is_401() {
    let addr = shared_server().await;
    let mut c = good_claims();
    c["iat"] = json!(now() - 900);
    c["exp"] = json!(now() - 600);
    expect_rejected(
        addr,
        &hs256(&header(), &c, SECRET.as_bytes()),
        401,
        "expired",
    )
    .await;
}

#[tokio::test]
async fn not_yet_valid_nbf_is_401() {
    let addr = shared_server().await;
    let mut c = good_claims();
    c["nbf"] = json!(now() + 600);
    expect_rejected(
        addr,
        &hs256(&header(), &c, SECRET.as_bytes()),
        401,
        "not_yet_valid",
    )
    .await;
}

#[tokio::test]
async fn issued_in_the_future_is_401() {
    let addr = shared_server().await;
    let mut c = good_claims();
    c["iat"] = json!(now() + 600);
    c["exp"] = json!(now() + 900);
    expect_rejected(
        addr,
        &hs256(&header(), &c, SECRET.as_bytes()),
        401,
        "not_yet_valid",
    )
    .await;
}

#[tokio::test]
async fn wrong_audience_is_401() {
    let addr = shared_server().await;
    let c = claims("access-service", "analytics-service", "internal:read");
    expect_rejected(
        addr,
        &hs256(&header(), &c, SECRET.as_bytes()),
        401,
        "wrong_audience",
    )
    .await;
}

#[tokio::test]
async fn wrong_issuer_is_401() {
    let addr = shared_server().await;
    let mut c = good_claims();
    c["iss"] = json!("someone-else");
    expect_rejected(
        addr,
        &hs256(&header(), &c, SECRET.as_bytes()),
        401,
        "wrong_issuer",
    )
    .await;
}

#[tokio::test]
async fn missing_scope_is_403() {
    let addr = shared_server().await;
    let c = claims(
        "access-service",
        "monitoring-service",
        "internal:write health:read",
    );
    let token = hs256(&header(), &c, SECRET.as_bytes());
    let resp = get_with(
        &format!("http://{addr}/internal/doors"),
        Some(&format!("Bearer {token}")),
    )
    .await;
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("internal:read"),
        "{challenge}"
    );
    assert_problem(resp, 403, "missing_scope").await;
}

#[tokio::test]
async fn tampered_payload_is_401() {
    let addr = shared_server().await;
    let token = hs256(&header(), &good_claims(), SECRET.as_bytes());
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = good_claims();
    c["scope"] = json!("internal:read internal:write admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(c.to_string().as_bytes()),
        parts[2]
    );
    expect_rejected(addr, &tampered, 401, "bad_signature").await;
}

#[tokio::test]
async fn tampered_signature_is_401() {
    let addr = shared_server().await;
    let token = hs256(&header(), &good_claims(), SECRET.as_bytes());
    let (input, sig) = token.rsplit_once('.').expect("segments");
    let mut sig = unb64(sig);
    sig[0] ^= 0x01;
    expect_rejected(
        addr,
        &format!("{input}.{}", b64(&sig)),
        401,
        "bad_signature",
    )
    .await;
    // and a token signed with another secret
    let other = hs256(
        &header(),
        &good_claims(),
        b"another-secret-another-secret-0123",
    );
    expect_rejected(addr, &other, 401, "bad_signature").await;
}

#[tokio::test]
async fn alg_none_is_401() {
    let addr = shared_server().await;
    for alg in ["none", "None", "NONE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes()),
            b64(good_claims().to_string().as_bytes())
        );
        expect_rejected(addr, &unsigned, 401, "alg_not_allowed").await;
    }
}

#[tokio::test]
async fn other_algorithms_are_401_in_shared_secret_mode() {
    let addr = shared_server().await;
    // HS512 with the right secret is still not the allowed algorithm
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &good_claims(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("hs512");
    expect_rejected(addr, &token, 401, "alg_not_allowed").await;
    // an EdDSA token from some issuer
    let issuer = TokenIssuer::new(IssuerConfig::new(policy())).expect("issuer");
    let eddsa = issuer
        .sign(&ServiceClaims::new(
            "access-service",
            "monitoring-service",
            &["internal:read".into()],
            60,
        ))
        .expect("sign");
    expect_rejected(addr, &eddsa, 401, "alg_not_allowed").await;
}

#[tokio::test]
async fn garbage_headers_are_401() {
    let addr = shared_server().await;
    let url = format!("http://{addr}/internal/doors");
    for (value, reason) in [
        ("Bearer garbage", "malformed"),
        ("Bearer a.b.c", "malformed"),
        ("Bearer ...", "malformed"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.!!!.###", "malformed"),
        ("Bearer ", "missing_token"),
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", "missing_token"),
        ("garbage", "missing_token"),
    ] {
        assert_problem(get_with(&url, Some(value)).await, 401, reason).await;
    }
    // a valid header, garbage claims
    let token = hs256(&header(), &json!({"hello": "world"}), SECRET.as_bytes());
    expect_rejected(addr, &token, 401, "invalid_claims").await;
    let token = hs256(&header(), &json!([1, 2, 3]), SECRET.as_bytes());
    expect_rejected(addr, &token, 401, "invalid_claims").await;
    // non-ASCII bytes in the header value
    let resp = reqwest::Client::new()
        .get(&url)
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("opaque"),
        )
        .send()
        .await
        .expect("request");
    assert_problem(resp, 401, "missing_token").await;
    // the unprotected route is unaffected
    assert_eq!(
        get_with(&format!("http://{addr}/open"), Some("Bearer garbage"))
            .await
            .status(),
        200
    );
}

// --- issuer mode ---

/// An issuer, and a monitoring-service server verifying with its JWKS.
async fn issuer_server() -> (std::sync::Arc<TokenIssuer>, String, SocketAddr) {
    init();
    let (issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let monitoring = issuer_mode("monitoring-service", MONITORING_SECRET, &url, &[]);
    let addr = serve(protected_app(&monitoring, &["internal:read"])).await;
    (issuer, url, addr)
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_401() {
    let (issuer, url, addr) = issuer_server().await;
    let jwks: serde_json::Value = reqwest::get(format!("{url}/.well-known/jwks.json"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let jwk = &jwks["keys"][0];
    let kid = issuer.active_kid();
    let h = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    // the classic confusion: the public key (raw bytes, its base64 text, the JWK JSON) as HMAC secret
    for secret in [
        unb64(jwk["x"].as_str().expect("x")),
        jwk["x"].as_str().expect("x").as_bytes().to_vec(),
        jwk.to_string().into_bytes(),
    ] {
        expect_rejected(
            addr,
            &hs256(&h, &good_claims(), &secret),
            401,
            "alg_not_allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn alg_none_is_401_in_issuer_mode() {
    let (issuer, _url, addr) = issuer_server().await;
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": issuer.active_kid()})
            .to_string()
            .as_bytes()),
        b64(good_claims().to_string().as_bytes())
    );
    expect_rejected(addr, &unsigned, 401, "alg_not_allowed").await;
}

#[tokio::test]
async fn unknown_kid_is_401() {
    let (_issuer, _url, addr) = issuer_server().await;
    // a well-formed EdDSA token from an issuer nobody trusts
    let rogue = TokenIssuer::new(IssuerConfig::new(policy())).expect("rogue issuer");
    let token = rogue
        .sign(&ServiceClaims::new(
            "access-service",
            "monitoring-service",
            &["internal:read".into()],
            60,
        ))
        .expect("sign");
    expect_rejected(addr, &token, 401, "unknown_kid").await;
    // no kid at all
    let (input, sig) = token.rsplit_once('.').expect("segments");
    let (_, payload) = input.split_once('.').expect("segments");
    let no_kid = format!(
        "{}.{payload}.{sig}",
        b64(json!({"alg": "EdDSA"}).to_string().as_bytes())
    );
    expect_rejected(addr, &no_kid, 401, "unknown_kid").await;
}

#[tokio::test]
async fn tampered_eddsa_token_is_401() {
    let (issuer, _url, addr) = issuer_server().await;
    let token = issuer
        .sign(&ServiceClaims::new(
            "access-service",
            "monitoring-service",
            &["internal:read".into()],
            60,
        ))
        .expect("sign");
    let resp = get_with(
        &format!("http://{addr}/internal/doors"),
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(resp.status(), 200, "control");
    let parts: Vec<&str> = token.split('.').collect();
    let mut c: serde_json::Value = serde_json::from_slice(&unb64(parts[1])).expect("claims");
    c["sub"] = json!("auth-service");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(c.to_string().as_bytes()),
        parts[2]
    );
    expect_rejected(addr, &tampered, 401, "bad_signature").await;
    let mut sig = unb64(parts[2]);
    sig[10] ^= 0x80;
    expect_rejected(
        addr,
        &format!("{}.{}.{}", parts[0], parts[1], b64(&sig)),
        401,
        "bad_signature",
    )
    .await;
}

#[tokio::test]
async fn expired_eddsa_token_is_401() {
    let (issuer, _url, addr) = issuer_server().await;
    let mut c = ServiceClaims::new(
        "access-service",
        "monitoring-service",
        &["internal:read".into()],
        60,
    );
    c.iat -= 3600;
    c.exp -= 3600;
    expect_rejected(addr, &issuer.sign(&c).expect("sign"), 401, "expired").await;
}
