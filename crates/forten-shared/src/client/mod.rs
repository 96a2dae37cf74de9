//! The resilient service client (the guide's "HTTP Service-to-Service Communication" and
//! "Circuit Breaker Pattern"): [`ServiceClient`] with discovery, balancing, circuit breaker,
//! retries with a budget, timeouts, deadline propagation, auth and tracing.
//!
//! ```no_run
//! use std::time::Duration;
//! use forten_shared::client::{CircuitBreakerConfig, RetryPolicy, ServiceClient};
//! use forten_shared::discovery::{DiscoveryClient, DiscoveryConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let discovery = DiscoveryClient::new(DiscoveryConfig::new("http://api-gateway:3000"))?;
//! let access = ServiceClient::builder("access-service", discovery)
//!     .circuit_breaker(CircuitBreakerConfig::default().failure_threshold(5).reset_timeout(Duration::from_secs(60)))
//!     .retry_policy(RetryPolicy::default().max_retries(3).initial_delay(Duration::from_secs(1)))
//!     .build()?;
//! let mut events = access.circuit_events();
//! tokio::spawn(async move {
//!     while let Ok(e) = events.recv().await { println!("Circuit state: {}", e.to); }
//! });
//! let doors = access.get("/api/doors").send().await?;
//! # let _ = doors; Ok(()) }
//! ```

mod auth;
mod breaker;
mod deadline;
mod error;
mod layer;
mod retry;
mod service;

pub use self::{
    auth::{AuthHeaderProvider, BoxError, StaticAuthHeader},
    breaker::{
        CircuitBreaker, CircuitBreakerConfig, CircuitEvent, CircuitOpen, CircuitState, Permit,
    },
    deadline::{DEADLINE_HEADER, Deadline, DeadlineLayer, DeadlineService},
    error::ClientError,
    layer::{
        CircuitBreakerLayer, CircuitBreakerService, ClassifyOutcome, ResponseFuture,
        ServerErrorsFail, is_circuit_open,
    },
    retry::{RetryPolicy, is_idempotent, retry_after},
    service::{
        BodyStream, RequestBuilder, Response, ServiceClient, ServiceClientBuilder,
        StreamingResponse,
    },
};
