//! The token cache: a hot path mints nothing.

use std::time::Duration;

use forten_shared::auth::{IssuerConfig, ServiceAuth, ServiceAuthConfig};

use crate::support::*;

async fn thousand_requests(client: &ServiceAuth, target_url: &str) {
    let http = reqwest::Client::new();
    let calls = (0..1000).map(|_| {
        let (client, http) = (client.clone(), http.clone());
        let url = target_url.to_owned();
        tokio::spawn(async move {
            let header = client
                .create_auth_header("monitoring-service")
                .await
                .expect("header");
            http.get(&url)
                .header("authorization", header)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        })
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(
        statuses.into_iter().all(|s| s.is_ok_and(|s| s == 200)),
        "all 1000 admitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_protected_requests_mint_one_token_shared_secret() {
    init();
    let addr = serve(protected_app(
        &shared("monitoring-service", &[]),
        &["internal:read"],
    ))
    .await;
    let client = shared("access-service", &["internal:read"]);
    thousand_requests(&client, &format!("http://{addr}/internal/doors")).await;
    assert!(
        client.minted_tokens() <= 3,
        "minted {}",
        client.minted_tokens()
    );
    assert_eq!(client.minted_tokens(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_protected_requests_fetch_one_token_issuer() {
    init();
    let (_issuer, url) = start_issuer(IssuerConfig::new(policy())).await;
    let monitoring = issuer_mode("monitoring-service", MONITORING_SECRET, &url, &[]);
    let addr = serve(protected_app(&monitoring, &["internal:read"])).await;
    let client = issuer_mode("access-service", ACCESS_SECRET, &url, &["internal:read"]);
    thousand_requests(&client, &format!("http://{addr}/internal/doors")).await;
    assert!(
        client.minted_tokens() <= 3,
        "fetched {}",
        client.minted_tokens()
    );
}

#[tokio::test(start_paused = true)]
async fn tokens_are_renewed_before_expiry() {
    init();
    let client = ServiceAuth::new(
        ServiceAuthConfig::shared_secret("access-service", SECRET)
            .token_ttl(Duration::from_secs(120))
            .renew_before(Duration::from_secs(30)),
    )
    .expect("auth");
    let first = client.token("monitoring-service").await.expect("token");
    tokio::time::advance(Duration::from_secs(89)).await;
    assert_eq!(
        client.token("monitoring-service").await.expect("token"),
        first,
        "still cached"
    );
    assert_eq!(client.minted_tokens(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    let second = client.token("monitoring-service").await.expect("token");
    assert_ne!(second, first, "renewed 30 s before expiry");
    assert_eq!(client.minted_tokens(), 2);
}

#[tokio::test]
async fn each_target_and_scope_set_has_its_own_token() {
    init();
    let client = shared("access-service", &["internal:read"]);
    let a = client.token("monitoring-service").await.expect("a");
    let b = client.token("analytics-service").await.expect("b");
    let c = client
        .token_with_scopes("monitoring-service", &["internal:write"])
        .await
        .expect("c");
    assert!(a != b && a != c && b != c);
    assert_eq!(client.minted_tokens(), 3);
}
