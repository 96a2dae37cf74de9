//! Service discovery (the guide's "Service Discovery"): the registry server hosted by
//! api-gateway (SPEC §6), its stores, and the [`DiscoveryClient`] every service uses to
//! register itself and find its peers.
//!
//! ```
//! use std::time::Duration;
//! use forten_shared::discovery::{DiscoveryClient, DiscoveryConfig, Registration, Registry, RegistryConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The gateway side: a registry mounted in a router.
//! let registry = Registry::builder(RegistryConfig::default()).start()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let registry_url = format!("http://{}", listener.local_addr()?);
//! let app: axum::Router = registry.router();
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! // A service: register, then find a peer.
//! let discovery = DiscoveryClient::new(DiscoveryConfig::new(&registry_url))?;
//! discovery.register(Registration::new("auth-service", "1.0.0", "127.0.0.1", 3001).health_check_url(None)).await?;
//! let url = discovery.get_service_url("auth-service").await?;
//! assert_eq!(url, "http://127.0.0.1:3001");
//! discovery.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! | item | role |
//! | --- | --- |
//! | [`Registry`] | registry state, TTL eviction, health checks, events, metrics; [`Registry::router`] serves SPEC §6 |
//! | [`RegistryStore`] | storage trait: [`MemoryRegistryStore`] (default), `RedisRegistryStore` (feature `redis`) |
//! | [`RegistryAuthorizer`] | who may read / write (applied as a layer on each route group); [`TokenAuthorizer`]: service tokens with `registry:read` / `registry:write`, admin users for reads |
//! | [`DiscoveryClient`] | register + heartbeat, cached discovery, [`RegistryEvent`]s, balancing |
//! | [`BalanceStrategy`], [`OutlierConfig`] | round robin, random, least-outstanding (P2C); ejection of failing instances |

mod access;
mod auth_glue;
mod balance;
mod client;
mod error;
mod model;
mod registry;
mod store;

#[cfg(feature = "redis")]
pub use self::store::RedisRegistryStore;
pub use self::{
    access::{AccessDenied, AllowAll, RegistryAccess, RegistryAuthorizer},
    auth_glue::{RegistryToken, TokenAuthorizer},
    balance::{BalanceStrategy, Endpoint, OutlierConfig},
    client::{DiscoveryClient, DiscoveryConfig, RegistryEvent},
    error::{DiscoveryError, InvalidConfig, RegistryError},
    model::{
        Discovered, InstanceStatus, RegisterResponse, Registration, ServiceEntry, ServiceInstance,
        ServiceList, render_registry_table,
    },
    registry::{HealthCheckConfig, Registry, RegistryBuilder, RegistryConfig},
    store::{MemoryRegistryStore, RegistryStore, StoreError},
};

/// Lists the registry's services (what `forten registry list` prints, with
/// [`render_registry_table`]). `auth` supplies the `Authorization` header (a service token
/// with `registry:read`, or an admin user token).
///
/// ```no_run
/// # async fn f() -> Result<(), forten_shared::discovery::DiscoveryError> {
/// let services = forten_shared::discovery::list_registry("http://127.0.0.1:3000", None).await?;
/// print!("{}", forten_shared::discovery::render_registry_table(&services, chrono::Utc::now()));
/// # Ok(()) }
/// ```
pub async fn list_registry(
    registry_url: &str,
    auth: Option<std::sync::Arc<dyn crate::client::AuthHeaderProvider>>,
) -> Result<Vec<ServiceEntry>, DiscoveryError> {
    let mut config = DiscoveryConfig::new(registry_url);
    config.auth = auth;
    let client = DiscoveryClient::new(config)?;
    let services = client.list_services().await;
    client.shutdown().await;
    services
}
