//! # forten-shared
//!
//! The Forten toolkit: everything a Rust service needs to talk to its peers — events over
//! RabbitMQ (or in-process), service-to-service auth, health checks, tracing, correlation ids,
//! structured logs and metrics, with request context propagated across HTTP and events.
//!
//! # Layout
//!
//! | module | concept |
//! | --- | --- |
//! | [`events`] | CloudEvents envelope, catalogue, the [`EventBus`] over RabbitMQ or in-process, DLQ, dedup |
//! | [`auth`] | service identity: service tokens (shared-secret / issuer), [`ServiceAuthLayer`], user login, authenticated publishers |
//! | `context` | [`RequestContext`]: correlation id and `traceparent` of the work in progress |
//! | [`telemetry`] | tracing (OpenTelemetry), correlation ids, structured logs, Prometheus metrics |
//! | [`discovery`] | the registry (SPEC §6), its stores, [`DiscoveryClient`]: register, heartbeat, discover, balance |
//! | [`client`] | [`ServiceClient`]: discovery, balancing, circuit breaker, retries with a budget, deadlines |
//! | [`health`] | [`HealthMonitor`]: background health checks, `/health`, `/health/live`, `/health/ready` |

pub mod auth;
pub mod client;
mod context;
pub mod discovery;
pub mod events;
pub mod health;
pub mod telemetry;

pub use self::auth::{ServiceAuth, ServiceAuthConfig, ServiceAuthLayer, ServiceIdentity};
pub use self::client::ServiceClient;
pub use self::context::RequestContext;
pub use self::discovery::DiscoveryClient;
pub use self::events::{Event, EventBuilder, EventBus, EventPublisher, EventType};
pub use self::health::{HealthCheck, HealthMonitor};
pub use self::telemetry::{Metrics, Observability, Tracer};

/// The README's examples, compiled as doc tests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
