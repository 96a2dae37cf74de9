//! Events: the CloudEvents envelope, the catalogue, and the [`EventBus`] that carries them over
//! RabbitMQ or in-process with the same semantics.
//!
//! ```
//! use forten_shared::{EventBuilder, EventType, events::UserDeleted};
//! let event = EventBuilder::create(EventType::UserDeleted, UserDeleted { user_id: "1".into() }, "auth-service")?;
//! assert_eq!(event.event_type().as_str(), "user.deleted");
//! # Ok::<(), forten_shared::events::EventError>(())
//! ```

mod builder;
mod bus;
mod catalogue;
mod dedup;
mod envelope;
mod error;
mod handler;
mod memory;
mod metrics;
mod pattern;
mod pipeline;
mod publisher;
#[cfg(feature = "rabbitmq")]
mod rabbitmq;
mod subscription;

pub use self::builder::EventBuilder;
pub use self::bus::{
    BusError, ConnectionEvent, DeadLetter, EventBus, SubscriptionHandle, Tail, Tapped,
};
pub use self::catalogue::{
    AccessDenied, AccessGranted, AccessMethod, AlertAcknowledged, AlertResolved, AlertTriggered,
    CameraOffline, CameraOnline, DoorForced, DoorHeldOpen, EventData, EventType, Payload, Role,
    ServiceDeregistered, ServiceRegistered, Severity, UserCreated, UserDeleted, UserUpdated,
};
#[cfg(feature = "redis")]
pub use self::dedup::RedisDedupStore;
pub use self::dedup::{Claim, DedupError, DedupStore, Deduplicate, MemoryDedupStore};
pub use self::envelope::{CONTENT_TYPE, DATA_CONTENT_TYPE, Event, SPEC_VERSION};
pub use self::error::EventError;
pub use self::handler::{Classify, FailureKind, Handler, HandlerError, IntoOutcome, Outcome};
pub use self::pattern::TopicPattern;
pub use self::publisher::EventPublisher;
#[cfg(feature = "rabbitmq")]
pub use self::rabbitmq::RabbitConfig;
pub use self::subscription::Subscribe;
