//! [`EventPublisher`]: one typed helper per catalogue type, as the guide's
//! `eventPublisher.publishAccessGranted(…)`.

use super::{
    AccessDenied, AccessGranted, AlertAcknowledged, AlertResolved, AlertTriggered, BusError,
    CameraOffline, CameraOnline, DoorForced, DoorHeldOpen, Event, EventBuilder, EventBus,
    EventData, ServiceDeregistered, ServiceRegistered, UserCreated, UserDeleted, UserUpdated,
};

/// Publishes catalogue events as one service (`source`), stamping each with the current
/// request context. Each helper returns the published event.
///
/// ```
/// use forten_shared::{EventBus, events::{EventPublisher, DoorForced, Severity}};
///
/// # tokio_test::block_on(async {
/// let publisher = EventPublisher::new(EventBus::in_process("access-service"));
/// let event = publisher.publish_door_forced(DoorForced {
///     door_id: "door-1".into(), building_id: "building-1".into(),
///     timestamp: chrono::Utc::now(), severity: Severity::Critical,
/// }).await?;
/// assert_eq!(event.source, "access-service");
/// assert_eq!(event.subject.as_deref(), Some("door-1"));
/// # Ok::<(), forten_shared::events::BusError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct EventPublisher {
    bus: EventBus,
}

macro_rules! helpers {
    ($( $(#[$doc:meta])* $fn:ident($payload:ident) subject $field:ident; )*) => {
        $(
            $(#[$doc])*
            pub async fn $fn(&self, data: $payload) -> Result<Event, BusError> {
                let subject = data.$field.clone();
                self.publish_with_subject(data.into(), subject).await
            }
        )*
    };
}

impl EventPublisher {
    /// A publisher on `bus`, publishing as the bus's service.
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// The bus it publishes on.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Builds and publishes any catalogue payload, with `subject` set.
    pub async fn publish_with_subject(
        &self,
        data: EventData,
        subject: String,
    ) -> Result<Event, BusError> {
        let event = EventBuilder::new(data, self.bus.service())
            .subject(subject)
            .build();
        self.bus.publish(&event).await?;
        Ok(event)
    }

    helpers! {
        /// Publishes `user.created` (subject: the user).
        publish_user_created(UserCreated) subject user_id;
        /// Publishes `user.updated` (subject: the user).
        publish_user_updated(UserUpdated) subject user_id;
        /// Publishes `user.deleted` (subject: the user).
        publish_user_deleted(UserDeleted) subject user_id;
        /// Publishes `access.granted` (subject: the door).
        publish_access_granted(AccessGranted) subject door_id;
        /// Publishes `access.denied` (subject: the door).
        publish_access_denied(AccessDenied) subject door_id;
        /// Publishes `door.forced` (subject: the door).
        publish_door_forced(DoorForced) subject door_id;
        /// Publishes `door.held_open` (subject: the door).
        publish_door_held_open(DoorHeldOpen) subject door_id;
        /// Publishes `camera.offline` (subject: the camera).
        publish_camera_offline(CameraOffline) subject camera_id;
        /// Publishes `camera.online` (subject: the camera).
        publish_camera_online(CameraOnline) subject camera_id;
        /// Publishes `alert.triggered` (subject: the alert).
        publish_alert_triggered(AlertTriggered) subject alert_id;
        /// Publishes `alert.acknowledged` (subject: the alert).
        publish_alert_acknowledged(AlertAcknowledged) subject alert_id;
        /// Publishes `alert.resolved` (subject: the alert).
        publish_alert_resolved(AlertResolved) subject alert_id;
        /// Publishes `service.registered` (subject: the instance).
        publish_service_registered(ServiceRegistered) subject instance_id;
        /// Publishes `service.deregistered` (subject: the instance).
        publish_service_deregistered(ServiceDeregistered) subject instance_id;
    }
}
