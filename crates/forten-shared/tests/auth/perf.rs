//! Measurements for `forten bench auth` (ignored; run with
//! `cargo test --release -p forten-shared --test auth -- --ignored --nocapture perf`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use forten_shared::auth::{
    EventAuthenticator, IssuerConfig, PublishPolicy, ServiceAuth, ServiceAuthConfig, ServiceClaims,
    TokenIssuer, TokenVerifier,
};
use http::Request;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::support::*;

fn rate(n: u32, started: Instant) -> f64 {
    f64::from(n) / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "measurement, not a test"]
async fn perf_auth() {
    init();
    const N: u32 = 20_000;
    let scopes = vec!["internal:read".to_string()];

    // --- tokens: shared secret (HS256) ---
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let t0 = Instant::now();
    let tokens: Vec<String> = (0..N)
        .map(|_| {
            let c = ServiceClaims::new("access-service", "monitoring-service", &scopes, 300);
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), &c, &key).expect("sign")
        })
        .collect();
    let hs_sign = rate(N, t0);
    let verifier = TokenVerifier::shared_secret(SECRET.as_bytes());
    let t0 = Instant::now();
    for t in &tokens {
        verifier.verify(t, "monitoring-service").expect("verify");
    }
    let hs_verify = rate(N, t0);
    let t0 = Instant::now();
    for _ in 0..N {
        verifier
            .verify(&tokens[0], "monitoring-service")
            .expect("verify");
    }
    let hs_verify_cached = rate(N, t0);

    // --- tokens: issuer (EdDSA) ---
    let issuer = Arc::new(TokenIssuer::new(IssuerConfig::new(policy())).expect("issuer"));
    let t0 = Instant::now();
    let tokens: Vec<String> = (0..N)
        .map(|_| {
            let c = ServiceClaims::new("access-service", "monitoring-service", &scopes, 300);
            issuer.sign(&c).expect("sign")
        })
        .collect();
    let ed_sign = rate(N, t0);
    let verifier = TokenVerifier::local(issuer.clone());
    let t0 = Instant::now();
    for t in &tokens {
        verifier.verify(t, "monitoring-service").expect("verify");
    }
    let ed_verify = rate(N, t0);
    let t0 = Instant::now();
    for _ in 0..N {
        verifier
            .verify(&tokens[0], "monitoring-service")
            .expect("verify");
    }
    let ed_verify_cached = rate(N, t0);

    // --- events ---
    let policy = PublishPolicy::forten();
    let shared_pub =
        EventAuthenticator::new(&shared("access-service", &[]), policy.clone()).expect("pub");
    let shared_con = EventAuthenticator::verifier_only(
        shared("analytics-service", &[]).verifier().clone(),
        policy.clone(),
    );
    let local_auth = ServiceAuth::with_local_issuer(
        ServiceAuthConfig {
            service_name: "access-service".into(),
            ..Default::default()
        },
        issuer.clone(),
    )
    .expect("local");
    let issuer_pub = EventAuthenticator::new(&local_auth, policy.clone()).expect("pub");
    let issuer_con =
        EventAuthenticator::verifier_only(TokenVerifier::local(issuer.clone()), policy);
    let mut results = Vec::new();
    for (mode, publisher, consumer) in [
        ("shared", &shared_pub, &shared_con),
        ("issuer", &issuer_pub, &issuer_con),
    ] {
        let mut events: Vec<_> = (0..N)
            .map(|_| {
                forten_shared::EventBuilder::new(
                    forten_shared::events::DoorForced {
                        door_id: "d1".into(),
                        building_id: "b1".into(),
                        timestamp: chrono::Utc::now(),
                        severity: forten_shared::events::Severity::High,
                    },
                    "access-service",
                )
                .build()
            })
            .collect();
        let t0 = Instant::now();
        for e in &mut events {
            publisher.sign(e).await.expect("sign");
        }
        let s = rate(N, t0);
        let t0 = Instant::now();
        for e in &events {
            consumer.verify(e).expect("verify");
        }
        results.push((mode, s, rate(N, t0)));
    }

    // --- layer overhead (in-process, no socket) ---
    let server = shared("monitoring-service", &[]);
    let open: Router = Router::new().route("/x", get(|| async { "ok" }));
    let protected: Router = Router::new()
        .route("/x", get(|| async { "ok" }))
        .layer(server.layer(["internal:read"]));
    let client = shared("access-service", &["internal:read"]);
    let header = client
        .create_auth_header("monitoring-service")
        .await
        .expect("header");
    let mut per_req = Vec::new();
    for (app, auth) in [
        (&open, false),
        (&protected, true),
        (&open, false),
        (&protected, true),
    ] {
        let t0 = Instant::now();
        for _ in 0..N {
            let mut req = Request::get("/x");
            if auth {
                req = req.header("authorization", header.clone());
            }
            let resp = app
                .clone()
                .oneshot(req.body(Body::empty()).expect("req"))
                .await
                .expect("resp");
            assert_eq!(resp.status(), 200);
        }
        per_req.push(t0.elapsed().as_secs_f64() * 1e6 / f64::from(N));
    }
    // client side: a cached create_auth_header
    let t0 = Instant::now();
    for _ in 0..N {
        client
            .create_auth_header("monitoring-service")
            .await
            .expect("header");
    }
    let header_rate = rate(N, t0);

    println!("auth.sign (HS256, shared-secret)      {hs_sign:>10.0} tokens/s");
    println!("auth.verify (HS256, shared-secret)    {hs_verify:>10.0} tokens/s");
    println!("auth.verify cached (HS256)            {hs_verify_cached:>10.0} tokens/s");
    println!("auth.sign (EdDSA, issuer)             {ed_sign:>10.0} tokens/s");
    println!("auth.verify (EdDSA, issuer)           {ed_verify:>10.0} tokens/s");
    println!("auth.verify cached (EdDSA)            {ed_verify_cached:>10.0} tokens/s");
    for (mode, s, v) in results {
        println!("events.sign ({mode})                  {s:>10.0} events/s");
        println!("events.verify ({mode})                {v:>10.0} events/s");
    }
    println!("create_auth_header (cached)           {header_rate:>10.0} calls/s");
    println!(
        "router unprotected {:.2} us/req, protected {:.2} us/req (second round: {:.2} vs {:.2}); layer cost ~{:.2} us/req",
        per_req[0],
        per_req[1],
        per_req[2],
        per_req[3],
        per_req[3] - per_req[2]
    );
}
