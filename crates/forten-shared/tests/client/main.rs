//! Integration tests of `forten_shared::client`: balancing, ejection, retries, the circuit
//! breaker, deadlines and propagation, against real servers on loopback.
#![allow(
    clippy::unwrap_used,
    missing_docs,
    unreachable_pub,
    dead_code,
    missing_debug_implementations
)]

mod balance;
mod bench;
mod breaker;
mod propagation;
mod retry;
mod streaming;
#[path = "../discovery/support.rs"]
mod support;

use std::time::Duration;

use forten_shared::client::{CircuitBreakerConfig, RetryPolicy, ServiceClient};
use forten_shared::discovery::{
    BalanceStrategy, DiscoveryClient, DiscoveryConfig, OutlierConfig, Registration, Registry,
    RegistryConfig,
};

use support::{Backend, TestServer, unique};

/// A registry, `n` backends of one service registered in it, and a discovery client.
pub struct Cluster {
    pub service: String,
    pub registry: Registry,
    pub registry_server: TestServer,
    pub backends: Vec<Backend>,
    pub servers: Vec<Option<TestServer>>,
    pub discovery: DiscoveryClient,
}

impl Cluster {
    pub async fn start(n: usize, strategy: BalanceStrategy) -> Self {
        Self::start_with(
            n,
            DiscoveryConfig::new("http://placeholder").strategy(strategy),
        )
        .await
    }

    pub async fn start_with(n: usize, mut discovery: DiscoveryConfig) -> Self {
        support::trace_init();
        let service = unique("target");
        let registry = Registry::builder(RegistryConfig::default().health_checks(None))
            .start()
            .unwrap();
        let registry_server = TestServer::start(registry.router()).await;
        let mut backends = Vec::new();
        let mut servers = Vec::new();
        for i in 0..n {
            let backend = Backend::new(&format!("b{i}"));
            let server = backend.serve().await;
            registry
                .register(
                    Registration::new(&service, "1", "127.0.0.1", server.addr.port())
                        .health_check_url(None),
                )
                .await
                .unwrap();
            backends.push(backend);
            servers.push(Some(server));
        }
        discovery.registry_url = registry_server.url.clone();
        let discovery = DiscoveryClient::new(
            discovery
                .refresh_interval(Duration::from_millis(200))
                .heartbeat_interval(Duration::from_millis(200)),
        )
        .unwrap();
        Self {
            service,
            registry,
            registry_server,
            backends,
            servers,
            discovery,
        }
    }

    pub fn client(&self, breaker: CircuitBreakerConfig, retry: RetryPolicy) -> ServiceClient {
        ServiceClient::builder(&self.service, self.discovery.clone())
            .caller(unique("caller"))
            .circuit_breaker(breaker)
            .retry_policy(retry)
            .build()
            .unwrap()
    }

    pub fn hits(&self) -> Vec<usize> {
        self.backends.iter().map(Backend::hits).collect()
    }
}

pub fn fast_retries(n: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(n)
        .initial_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
}

pub fn lenient_breaker() -> CircuitBreakerConfig {
    CircuitBreakerConfig::default().failure_threshold(10_000)
}

pub fn outlier(failures: u32) -> OutlierConfig {
    OutlierConfig::try_new(
        failures,
        Duration::from_secs(30),
        Duration::from_secs(60),
        50,
    )
    .unwrap()
}
