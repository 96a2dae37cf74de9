use std::time::Duration;

use forten_shared::discovery::{
    DiscoveryClient, DiscoveryConfig, Registration, Registry, RegistryConfig, RegistryEvent,
    render_registry_table,
};

use crate::support::{TestServer, trace_init, unique, wait_until};

fn registry() -> Registry {
    Registry::builder(RegistryConfig::default().health_checks(None))
        .start()
        .unwrap()
}

fn config(url: &str) -> DiscoveryConfig {
    DiscoveryConfig::new(url)
        .heartbeat_interval(Duration::from_millis(100))
        .refresh_interval(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn register_discover_and_deregister_on_shutdown() {
    trace_init();
    let registry = registry();
    let server = TestServer::start(registry.router()).await;
    let name = unique("svc");
    let service = DiscoveryClient::new(config(&server.url)).unwrap();
    let id = service
        .register(Registration::new(&name, "1.0.0", "127.0.0.1", 4001).health_check_url(None))
        .await
        .unwrap();

    let caller = DiscoveryClient::new(config(&server.url)).unwrap();
    let found = caller.discover(&name).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert_eq!(
        caller.get_service_url(&name).await.unwrap(),
        "http://127.0.0.1:4001"
    );
    assert_eq!(caller.get_service_instance(&name).await.unwrap().id, id);

    // The list `forten registry list` prints.
    let services = forten_shared::discovery::list_registry(&server.url, None)
        .await
        .unwrap();
    let table = render_registry_table(&services, chrono::Utc::now());
    assert!(
        table.contains(&name) && table.contains("healthy"),
        "{table}"
    );

    service.shutdown().await;
    assert!(registry.instances(&name, true).await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn registry_restart_is_healed_by_registering_again_within_a_heartbeat() {
    trace_init();
    let server = TestServer::start(registry().router()).await;
    let addr = server.addr;
    let name = unique("healed");
    let service = DiscoveryClient::new(config(&server.url)).unwrap();
    let mut events = service.subscribe();
    let id = service
        .register(Registration::new(&name, "1", "127.0.0.1", 4002).health_check_url(None))
        .await
        .unwrap();

    // The registry restarts with an empty memory store.
    server.stop().await;
    let fresh = registry();
    let server = TestServer::start_at(addr, fresh.router()).await;
    wait_until(
        "the instance to register again",
        Duration::from_secs(10),
        || async { !fresh.instances(&name, true).await.unwrap().is_empty() },
    )
    .await;
    assert_eq!(
        fresh.instances(&name, true).await.unwrap()[0].id,
        id,
        "same id kept"
    );
    loop {
        match events.recv().await.unwrap() {
            RegistryEvent::Reregistered { id: again, .. } => {
                assert_eq!(again, id);
                break;
            }
            _ => continue,
        }
    }
    service.shutdown().await;
    server.stop().await;
}

#[tokio::test]
async fn unreachable_registry_serves_cache_and_emits_disconnected_then_reconnected() {
    trace_init();
    let reg = registry();
    let server = TestServer::start(reg.router()).await;
    let addr = server.addr;
    let name = unique("cached");
    reg.register(Registration::new(&name, "1", "127.0.0.1", 4003).health_check_url(None))
        .await
        .unwrap();
    let client = DiscoveryClient::new(config(&server.url)).unwrap();
    let mut events = client.subscribe();
    assert_eq!(client.discover(&name).await.unwrap().len(), 1);

    server.stop().await;
    let event = events.recv().await.unwrap();
    assert!(
        matches!(event, RegistryEvent::Disconnected { .. }),
        "{event:?}"
    );
    assert!(!client.is_connected());
    // Still answering from the cache.
    assert_eq!(
        client.get_service_url(&name).await.unwrap(),
        "http://127.0.0.1:4003"
    );

    // Same registry state back on the same address.
    let server = TestServer::start_at(addr, reg.router()).await;
    assert_eq!(events.recv().await.unwrap(), RegistryEvent::Reconnected);
    assert!(client.is_connected());
    assert_eq!(client.discover(&name).await.unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn unknown_service_without_cache_is_an_error() {
    let client = DiscoveryClient::new(config("http://127.0.0.1:9")).unwrap();
    let err = client.discover("nothing").await.unwrap_err();
    assert!(err.to_string().starts_with("registry unreachable"), "{err}");
    assert!(DiscoveryClient::new(DiscoveryConfig::new("ftp://x")).is_err());
}
