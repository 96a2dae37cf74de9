//! The Forten services (SPEC §8), each a library-style module that `forten up` / `forten run`
//! mount: `router(state)` for the public API (with `/openapi.json`), `internal_router(state)`
//! where a service has internal routes (to be wrapped in `ServiceAuthLayer`), and
//! `subscribe(state, bus)` for its event handlers.
//!
//! | module | service |
//! | --- | --- |
//! | [`access`] | access-service: buildings, doors, access profiles, access attempts |
//! | [`monitoring`] | monitoring-service: cameras and their watchdog, alerts |
//! | [`gateway`] | api-gateway's routing layer: `/api/**` proxy, dashboard |
//! | [`api`] | what their HTTP APIs share: problem+json errors, extractors, validation |

//! # Mounting a service (what `forten up` / `forten run` do)
//!
//! ```ignore
//! let db = access::open_database(&database_config).await?;          // migrations run here
//! let state = AccessState::new(db.clone(), bus.clone(), access_config);
//! access::subscribe(&state, &bus).await?;                           // user.created → profiles
//! let obs = Observability::new(access::SERVICE, env!("CARGO_PKG_VERSION"));
//! obs.health().register(HealthCheck::database("database", move || {
//!     let db = db.clone();
//!     async move { db.ping().await }
//! }));
//! obs.health().start();
//! let app = obs.apply(
//!     access::router(state.clone())
//!         .merge(access::internal_router(state).layer(service_auth.layer(["internal:read"]))),
//! );
//! axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
//! ```
//!
//! The monitoring-service is mounted the same way, plus its camera watchdog:
//! `let _watchdog = monitoring::Watchdog::start(state.clone());` (stopped on drop).

// The services are mounted by `forten up` / `forten run` in the next step of issue 6; until
// then only the tests use this module.
#![allow(dead_code)]

pub(crate) mod access;
pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod gateway;
pub(crate) mod monitoring;
pub(crate) mod periodic;

/// Subscribes `handle(state, event)` on `queue` to one event type: the shape every service's
/// subscriptions share.
pub(crate) async fn subscribe_to<S, F, Fut>(
    bus: &forten_shared::EventBus,
    queue: &str,
    event_type: forten_shared::EventType,
    state: &S,
    handle: F,
) -> Result<forten_shared::events::SubscriptionHandle, forten_shared::events::BusError>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, forten_shared::Event) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<
            Output = Result<forten_shared::events::Outcome, forten_shared::events::HandlerError>,
        > + Send
        + 'static,
{
    let state = state.clone();
    let sub = forten_shared::events::Subscribe::new(queue).pattern(event_type);
    bus.subscribe(sub, move |event: forten_shared::Event| {
        handle(state.clone(), event)
    })
    .await
}
