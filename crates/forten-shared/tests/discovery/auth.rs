//! The registry behind real tokens: SPEC §6 "writes need a service token with scope
//! `registry:write`; reads need `registry:read` or an admin user".

use std::sync::Arc;
use std::time::Duration;

use forten_shared::auth::{ServiceAuth, ServiceAuthConfig, UserAuth, UserIdentity};
use forten_shared::client::ServiceClient;
use forten_shared::discovery::{
    DiscoveryClient, DiscoveryConfig, Registration, Registry, RegistryConfig, RegistryToken,
    TokenAuthorizer,
};
use forten_shared::events::Role;
use serde_json::json;

use crate::support::{Backend, TestServer, trace_init, unique};

const SECRET: &str = "0123456789abcdef0123456789abcdef-discovery-tests";

fn service(name: &str) -> ServiceAuth {
    forten_shared::auth::install_crypto_provider();
    ServiceAuth::new(ServiceAuthConfig::shared_secret(name, SECRET)).unwrap()
}

async fn guarded_registry() -> (Registry, TestServer) {
    trace_init();
    let users = UserAuth::new(SECRET, Duration::from_secs(600)).unwrap();
    let registry = Registry::builder(RegistryConfig::default().health_checks(None))
        .authorizer(Arc::new(
            TokenAuthorizer::new(service("api-gateway")).with_users(users),
        ))
        .start()
        .unwrap();
    let server = TestServer::start(registry.router()).await;
    (registry, server)
}

fn registration() -> serde_json::Value {
    json!({"name": "auth-service", "version": "1.0.0", "host": "127.0.0.1", "port": 3001,
        "healthCheckUrl": null, "metadata": {}})
}

#[tokio::test]
async fn writes_need_registry_write_and_reads_registry_read_or_an_admin() {
    let (_registry, server) = guarded_registry().await;
    let http = reqwest::Client::new();
    let url = format!("{}/registry/services", server.url);
    let caller = service("auth-service");

    // No token: 401 problem+json.
    let res = http.post(&url).json(&registration()).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // Valid token without registry:write: 403.
    let read_only = caller
        .token_with_scopes("api-gateway", &["registry:read"])
        .await
        .unwrap();
    let res = http
        .post(&url)
        .bearer_auth(&*read_only)
        .json(&registration())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("registry:write"),
        "{problem}"
    );

    // A token for another audience: 401.
    let elsewhere = caller
        .token_with_scopes("access-service", &["registry:write"])
        .await
        .unwrap();
    let res = http
        .post(&url)
        .bearer_auth(&*elsewhere)
        .json(&registration())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // registry:write: 201.
    let writer = caller
        .token_with_scopes("api-gateway", &["registry:write"])
        .await
        .unwrap();
    let res = http
        .post(&url)
        .bearer_auth(&*writer)
        .json(&registration())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // Reads: registry:read, or an admin user; not a plain user, not anonymous.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&url)
            .bearer_auth(&*read_only)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let users = UserAuth::new(SECRET, Duration::from_secs(600)).unwrap();
    let admin = users
        .issue(&UserIdentity {
            user_id: "u1".into(),
            email: "admin@forten.test".into(),
            role: Role::Admin,
        })
        .unwrap();
    let res = http
        .get(format!("{url}/auth-service"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["instances"].as_array().unwrap().len(), 1);
    let operator = users
        .issue(&UserIdentity {
            user_id: "u2".into(),
            email: "op@forten.test".into(),
            role: Role::Operator,
        })
        .unwrap();
    assert_eq!(
        http.get(&url)
            .bearer_auth(&operator.token)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // An admin user cannot write.
    let res = http
        .post(&url)
        .bearer_auth(&admin.token)
        .json(&registration())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn clients_carry_service_tokens_to_the_registry_and_to_the_target() {
    let (registry, server) = guarded_registry().await;
    let backend = Backend::new("access-1");
    let backend_server = backend.serve().await;
    let target = unique("access-service");

    // The target registers itself with its own service token.
    let target_auth = service(&target);
    let target_discovery = DiscoveryClient::new(
        DiscoveryConfig::new(&server.url).auth(Arc::new(RegistryToken::new(target_auth.clone()))),
    )
    .unwrap();
    target_discovery
        .register(
            Registration::new(&target, "1", "127.0.0.1", backend_server.addr.port())
                .health_check_url(None),
        )
        .await
        .unwrap();
    assert_eq!(registry.instances(&target, false).await.unwrap().len(), 1);

    // A caller discovers it (registry:read) and calls it with a token for the target.
    let caller_auth = ServiceAuth::new(
        ServiceAuthConfig::shared_secret("auth-service", SECRET).scopes(["internal:read"]),
    )
    .unwrap();
    let discovery = DiscoveryClient::new(
        DiscoveryConfig::new(&server.url).auth(Arc::new(RegistryToken::new(caller_auth.clone()))),
    )
    .unwrap();
    let client = ServiceClient::builder(&target, discovery)
        .auth(Arc::new(caller_auth))
        .build()
        .unwrap();
    assert_eq!(
        client.get("/internal/doors").send().await.unwrap().status(),
        200
    );
    let header = backend.last_headers.lock().unwrap()["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    let token = header.strip_prefix("Bearer ").unwrap();
    let identity = target_auth.verify(token).unwrap();
    assert_eq!(identity.name, "auth-service");
    assert!(identity.has_scope("internal:read"));

    target_discovery.shutdown().await;
    assert!(
        registry.instances(&target, true).await.unwrap().is_empty(),
        "deregistered with its token"
    );
    backend_server.stop().await;
    server.stop().await;
}
