//! [`EventBuilder`]: creates events with id, time and the current request context filled in.

use chrono::{SubsecRound, Utc};

use super::{Event, EventData, EventError, EventType};
use crate::RequestContext;

/// Creates [`Event`]s: a fresh UUID v7 id, the current time, and the correlation id and
/// `traceparent` of the current [`RequestContext`] when there is one.
///
/// ```
/// use forten_shared::{EventBuilder, EventType, RequestContext, events::{Role, UserCreated}};
///
/// # tokio_test::block_on(async {
/// let user = UserCreated { user_id: "123".into(), email: "user@example.com".into(),
///     first_name: "John".into(), last_name: "Doe".into(), role: Role::User };
/// let event = RequestContext::new("req-1")
///     .scope(async { EventBuilder::create(EventType::UserCreated, user, "auth-service") })
///     .await?;
/// assert_eq!(event.correlation_id.as_deref(), Some("req-1"));
/// assert_eq!(event.source, "auth-service");
/// # Ok::<(), forten_shared::events::EventError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct EventBuilder {
    event: Event,
}

impl EventBuilder {
    /// The guide's `EventBuilder.create(type, data, source)`: fails when `data` is not a
    /// payload of `ty`.
    ///
    /// ```
    /// use forten_shared::{EventBuilder, EventType, events::UserDeleted};
    /// let bad = EventBuilder::create(EventType::DoorForced, UserDeleted { user_id: "u".into() }, "s");
    /// assert!(bad.is_err());
    /// ```
    pub fn create(
        ty: EventType,
        data: impl Into<EventData>,
        source: impl Into<String>,
    ) -> Result<Event, EventError> {
        let data = data.into();
        if data.event_type() != ty {
            return Err(EventError::TypeMismatch {
                expected: ty,
                actual: data.event_type(),
            });
        }
        Ok(Self::new(data, source).build())
    }

    /// Starts an event for a payload; its type follows from the payload.
    ///
    /// ```
    /// use forten_shared::{EventBuilder, events::UserDeleted};
    /// let e = EventBuilder::new(UserDeleted { user_id: "u".into() }, "s").subject("u").build();
    /// assert_eq!(e.subject.as_deref(), Some("u"));
    /// ```
    pub fn new(data: impl Into<EventData>, source: impl Into<String>) -> Self {
        // the current span's traceparent (a child span's, not only the request's)
        let correlation_id = RequestContext::current().map(|c| c.correlation_id);
        let traceparent = crate::telemetry::current_traceparent();
        Self {
            event: Event {
                id: uuid::Uuid::now_v7().to_string(),
                source: source.into(),
                time: Utc::now().trunc_subsecs(3),
                subject: None,
                correlation_id,
                traceparent,
                extensions: serde_json::Map::new(),
                data: data.into(),
            },
        }
    }

    /// Sets `subject` (the entity the event is about).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.event.subject = Some(subject.into());
        self
    }

    /// Sets the correlation id, overriding the context's.
    ///
    /// ```
    /// # use forten_shared::{EventBuilder, events::UserDeleted};
    /// let e = EventBuilder::new(UserDeleted { user_id: "u".into() }, "s").correlation_id("c").build();
    /// assert_eq!(e.correlation_id.as_deref(), Some("c"));
    /// ```
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.event.correlation_id = Some(id.into());
        self
    }

    /// Sets the `traceparent`, overriding the context's.
    pub fn traceparent(mut self, tp: impl Into<String>) -> Self {
        self.event.traceparent = Some(tp.into());
        self
    }

    /// Sets the event time (defaults to now); kept to the millisecond, as on the wire.
    pub fn time(mut self, time: chrono::DateTime<Utc>) -> Self {
        self.event.time = time.trunc_subsecs(3);
        self
    }

    /// Adds an extension attribute (name: lowercase letters and digits).
    ///
    /// ```
    /// # use forten_shared::{EventBuilder, events::UserDeleted};
    /// let e = EventBuilder::new(UserDeleted { user_id: "u".into() }, "s").extension("tenant", "t1").build();
    /// assert_eq!(e.extensions["tenant"], "t1");
    /// ```
    pub fn extension(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.event.extensions.insert(name.into(), value.into());
        self
    }

    /// Finishes the event.
    pub fn build(self) -> Event {
        self.event
    }
}
