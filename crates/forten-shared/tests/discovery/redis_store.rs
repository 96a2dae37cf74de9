use std::sync::Arc;
use std::time::Duration;

use forten_shared::discovery::{
    InstanceStatus, RedisRegistryStore, Registration, Registry, RegistryConfig, RegistryStore,
};

use crate::support::{redis_url, trace_init, unique, wait_until};

async fn store(prefix: &str) -> Arc<RedisRegistryStore> {
    Arc::new(
        RedisRegistryStore::connect(&redis_url(), prefix)
            .await
            .unwrap_or_else(|e| {
                panic!("Redis is required for this test and is not reachable: {e}")
            }),
    )
}

#[tokio::test]
async fn two_gateways_sharing_redis_see_the_same_instances() {
    trace_init();
    let prefix = format!("{}:", unique("forten-test-registry"));
    let cfg = RegistryConfig::default()
        .health_checks(None)
        .ttl(Duration::from_secs(1))
        .sweep_interval(Duration::from_millis(50));
    let a = Registry::builder(cfg.clone())
        .store(store(&prefix).await)
        .start()
        .unwrap();
    let b = Registry::builder(cfg)
        .store(store(&prefix).await)
        .start()
        .unwrap();

    let created = a
        .register(
            Registration::new("auth-service", "1.0.0", "127.0.0.1", 3001).health_check_url(None),
        )
        .await
        .unwrap();
    let seen = b.instances("auth-service", false).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, created.id);
    assert_eq!(seen[0].url, "http://127.0.0.1:3001");

    // A heartbeat through B keeps it alive for A; health set by B is seen by A.
    assert!(b.heartbeat(&created.id).await.is_ok());
    let raw = store(&prefix).await;
    assert!(
        raw.set_status(&created.id, InstanceStatus::Unhealthy)
            .await
            .unwrap()
    );
    assert!(a.instances("auth-service", false).await.unwrap().is_empty());
    assert_eq!(
        a.instances("auth-service", true).await.unwrap()[0].status,
        InstanceStatus::Unhealthy
    );

    // Deregistered through B: gone for A.
    b.deregister(&created.id).await.unwrap();
    assert!(a.instances("auth-service", true).await.unwrap().is_empty());

    // TTL eviction works on the shared store too.
    let second = b
        .register(
            Registration::new("auth-service", "1.0.0", "127.0.0.1", 3002).health_check_url(None),
        )
        .await
        .unwrap();
    assert_eq!(
        a.instances("auth-service", true).await.unwrap()[0].id,
        second.id
    );
    wait_until("eviction from redis", Duration::from_secs(10), || async {
        raw.list().await.unwrap().is_empty()
    })
    .await;
    assert!(b.heartbeat(&second.id).await.is_err());
}
