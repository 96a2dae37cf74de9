//! The event catalogue of SPEC §4: one [`EventType`] per event, one payload struct per type,
//! and [`EventData`], the typed `data` of an [`Event`](super::Event).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::EventError;

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $payload:ident; )*) => {
        /// Every event type of the catalogue. The type string is also the AMQP routing key.
        ///
        /// ```
        /// use forten_shared::EventType;
        /// assert_eq!(EventType::DoorForced.as_str(), "door.forced");
        /// assert_eq!("user.created".parse::<EventType>().unwrap(), EventType::UserCreated);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $( $(#[$doc])* $variant, )*
        }

        impl EventType {
            /// The whole catalogue, in SPEC order.
            ///
            /// ```
            /// assert_eq!(forten_shared::EventType::ALL.len(), 14);
            /// ```
            pub const ALL: &'static [EventType] = &[ $( EventType::$variant, )* ];

            /// The type string (`user.created`), also the routing key.
            ///
            /// ```
            /// assert_eq!(forten_shared::EventType::CameraOnline.as_str(), "camera.online");
            /// ```
            pub const fn as_str(self) -> &'static str {
                match self { $( EventType::$variant => $name, )* }
            }
        }

        impl FromStr for EventType {
            type Err = EventError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $name => Ok(EventType::$variant), )*
                    other => Err(EventError::UnknownType(other.to_owned())),
                }
            }
        }

        /// The typed `data` of an event: one variant per catalogue type.
        ///
        /// ```
        /// use forten_shared::events::{EventData, UserDeleted};
        /// let data = EventData::from(UserDeleted { user_id: "u1".into() });
        /// assert_eq!(data.event_type(), forten_shared::EventType::UserDeleted);
        /// ```
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventData {
            $( $(#[$doc])* $variant($payload), )*
        }

        impl EventData {
            /// The catalogue type of this payload.
            ///
            /// ```
            /// use forten_shared::events::{EventData, UserDeleted};
            /// let d: EventData = UserDeleted { user_id: "u".into() }.into();
            /// assert_eq!(d.event_type().as_str(), "user.deleted");
            /// ```
            pub fn event_type(&self) -> EventType {
                match self { $( EventData::$variant(_) => EventType::$variant, )* }
            }

            /// Parses `data` of the given type from JSON, checking that it matches the type's
            /// payload.
            ///
            /// ```
            /// use forten_shared::{EventType, events::EventData};
            /// let v = serde_json::json!({"userId": "u1"});
            /// assert!(EventData::from_json(EventType::UserDeleted, &v.to_string()).is_ok());
            /// assert!(EventData::from_json(EventType::DoorForced, &v.to_string()).is_err());
            /// ```
            pub fn from_json(ty: EventType, json: &str) -> Result<Self, EventError> {
                let invalid = |e: serde_json::Error| EventError::InvalidData { ty, reason: e.to_string() };
                Ok(match ty {
                    $( EventType::$variant => EventData::$variant(serde_json::from_str(json).map_err(invalid)?), )*
                })
            }

            /// Serialises the payload alone as JSON.
            pub(crate) fn serialize_into<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $( EventData::$variant(p) => p.serialize(s), )* }
            }
        }

        $(
            impl Payload for $payload {
                const TYPE: EventType = EventType::$variant;

                fn from_data(data: &EventData) -> Option<&Self> {
                    match data { EventData::$variant(p) => Some(p), _ => None }
                }
            }

            impl From<$payload> for EventData {
                fn from(p: $payload) -> Self { EventData::$variant(p) }
            }
        )*
    };
}

/// A catalogue payload: knows its [`EventType`].
///
/// ```
/// use forten_shared::events::{Payload, UserDeleted};
/// assert_eq!(UserDeleted::TYPE.as_str(), "user.deleted");
/// ```
pub trait Payload: Serialize + for<'de> Deserialize<'de> + Into<EventData> {
    /// The type this payload belongs to.
    const TYPE: EventType;

    /// Borrows this payload out of `data` when `data` is of this type.
    fn from_data(data: &EventData) -> Option<&Self>;
}

catalogue! {
    /// `user.created`
    UserCreated => "user.created", UserCreated;
    /// `user.updated`
    UserUpdated => "user.updated", UserUpdated;
    /// `user.deleted`
    UserDeleted => "user.deleted", UserDeleted;
    /// `access.granted`
    AccessGranted => "access.granted", AccessGranted;
    /// `access.denied`
    AccessDenied => "access.denied", AccessDenied;
    /// `door.forced`
    DoorForced => "door.forced", DoorForced;
    /// `door.held_open`
    DoorHeldOpen => "door.held_open", DoorHeldOpen;
    /// `camera.offline`
    CameraOffline => "camera.offline", CameraOffline;
    /// `camera.online`
    CameraOnline => "camera.online", CameraOnline;
    /// `alert.triggered`
    AlertTriggered => "alert.triggered", AlertTriggered;
    /// `alert.acknowledged`
    AlertAcknowledged => "alert.acknowledged", AlertAcknowledged;
    /// `alert.resolved`
    AlertResolved => "alert.resolved", AlertResolved;
    /// `service.registered`
    ServiceRegistered => "service.registered", ServiceRegistered;
    /// `service.deregistered`
    ServiceDeregistered => "service.deregistered", ServiceDeregistered;
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A user's role.
///
/// ```
/// use forten_shared::events::Role;
/// assert_eq!(serde_json::to_string(&Role::Operator).unwrap(), "\"operator\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control.
    Admin,
    /// Operates buildings, doors, cameras and alerts.
    Operator,
    /// A badge holder.
    User,
}

/// How a door was asked to open.
///
/// ```
/// use forten_shared::events::AccessMethod;
/// assert_eq!(serde_json::to_string(&AccessMethod::Card).unwrap(), "\"card\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessMethod {
    /// Badge card.
    Card,
    /// PIN code.
    Pin,
    /// Phone.
    Mobile,
    /// Fingerprint, face.
    Biometric,
}

/// Severity of a door or alert event.
///
/// ```
/// use forten_shared::events::Severity;
/// assert!(Severity::Critical > Severity::Low);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Low,
    /// Worth a look.
    Medium,
    /// Needs attention.
    High,
    /// Needs attention now.
    Critical,
}

/// Payload of `user.created`.
///
/// ```
/// use forten_shared::events::{Role, UserCreated};
/// let p = UserCreated { user_id: "u1".into(), email: "a@b.c".into(), first_name: "A".into(),
///     last_name: "B".into(), role: Role::User };
/// assert!(serde_json::to_string(&p).unwrap().contains("\"firstName\""));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    /// The new user's id.
    pub user_id: String,
    /// Login e-mail.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Role.
    pub role: Role,
}

/// Payload of `user.updated`.
///
/// ```
/// let p = forten_shared::events::UserUpdated { user_id: "u1".into(), changes: serde_json::json!({"role": "admin"}) };
/// assert_eq!(p.changes["role"], "admin");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    /// The user's id.
    pub user_id: String,
    /// The changed fields with their new values (a JSON object).
    pub changes: serde_json::Value,
}

/// Payload of `user.deleted`.
///
/// ```
/// let p = forten_shared::events::UserDeleted { user_id: "u1".into() };
/// assert_eq!(p.user_id, "u1");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDeleted {
    /// The user's id.
    pub user_id: String,
}

/// Payload of `access.granted`.
///
/// ```
/// use forten_shared::events::{AccessGranted, AccessMethod};
/// let p = AccessGranted { user_id: "u".into(), door_id: "d".into(), building_id: "b".into(),
///     access_method: AccessMethod::Card, timestamp: chrono::Utc::now() };
/// assert_eq!(p.door_id, "d");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessGranted {
    /// Who.
    pub user_id: String,
    /// Which door.
    pub door_id: String,
    /// In which building.
    pub building_id: String,
    /// How.
    pub access_method: AccessMethod,
    /// When the attempt happened.
    pub timestamp: DateTime<Utc>,
}

/// Payload of `access.denied`.
///
/// ```
/// use forten_shared::events::{AccessDenied, AccessMethod};
/// let p = AccessDenied { user_id: None, door_id: "d".into(), building_id: "b".into(),
///     access_method: AccessMethod::Pin, reason: "unknown_user".into(), timestamp: chrono::Utc::now() };
/// assert!(serde_json::to_value(&p).unwrap()["userId"].is_null());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessDenied {
    /// Who, when known.
    pub user_id: Option<String>,
    /// Which door.
    pub door_id: String,
    /// In which building.
    pub building_id: String,
    /// How.
    pub access_method: AccessMethod,
    /// Why it was denied (`unknown_user`, `no_profile`, `outside_schedule`, `door_locked`, …).
    pub reason: String,
    /// When the attempt happened.
    pub timestamp: DateTime<Utc>,
}

/// Payload of `door.forced`.
///
/// ```
/// use forten_shared::events::{DoorForced, Severity};
/// let p = DoorForced { door_id: "d".into(), building_id: "b".into(), timestamp: chrono::Utc::now(),
///     severity: Severity::Critical };
/// assert_eq!(p.severity, Severity::Critical);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoorForced {
    /// Which door.
    pub door_id: String,
    /// In which building.
    pub building_id: String,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// How bad.
    pub severity: Severity,
}

/// Payload of `door.held_open`.
///
/// ```
/// let p = forten_shared::events::DoorHeldOpen { door_id: "d".into(), building_id: "b".into(),
///     duration_seconds: 90, timestamp: chrono::Utc::now() };
/// assert_eq!(p.duration_seconds, 90);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoorHeldOpen {
    /// Which door.
    pub door_id: String,
    /// In which building.
    pub building_id: String,
    /// How long it has been open.
    pub duration_seconds: u64,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// Payload of `camera.offline`.
///
/// ```
/// let p = forten_shared::events::CameraOffline { camera_id: "c".into(), building_id: "b".into(),
///     last_seen: chrono::Utc::now(), reason: "Network timeout".into() };
/// assert_eq!(p.reason, "Network timeout");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraOffline {
    /// Which camera.
    pub camera_id: String,
    /// In which building.
    pub building_id: String,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
    /// Why it is considered offline.
    pub reason: String,
}

/// Payload of `camera.online`.
///
/// ```
/// let p = forten_shared::events::CameraOnline { camera_id: "c".into(), building_id: "b".into(),
///     timestamp: chrono::Utc::now(), downtime_seconds: 42 };
/// assert_eq!(p.downtime_seconds, 42);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraOnline {
    /// Which camera.
    pub camera_id: String,
    /// In which building.
    pub building_id: String,
    /// When it came back.
    pub timestamp: DateTime<Utc>,
    /// How long it was offline.
    pub downtime_seconds: u64,
}

/// Payload of `alert.triggered`.
///
/// ```
/// use forten_shared::events::{AlertTriggered, Severity};
/// let p = AlertTriggered { alert_id: "a".into(), alert_type: "security".into(), severity: Severity::High,
///     source: "door-1".into(), description: "Unauthorized access attempt".into(), timestamp: chrono::Utc::now() };
/// assert_eq!(serde_json::to_value(&p).unwrap()["type"], "security");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertTriggered {
    /// The alert's id.
    pub alert_id: String,
    /// Kind of alert (`security`, `door_forced`, `access_denied_burst`, …); `type` on the wire.
    #[serde(rename = "type")]
    pub alert_type: String,
    /// How bad.
    pub severity: Severity,
    /// What raised it (a door id, a camera id).
    pub source: String,
    /// Human description.
    pub description: String,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// Payload of `alert.acknowledged`.
///
/// ```
/// let p = forten_shared::events::AlertAcknowledged { alert_id: "a".into(), acknowledged_by: "u".into(),
///     timestamp: chrono::Utc::now() };
/// assert_eq!(p.acknowledged_by, "u");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertAcknowledged {
    /// The alert's id.
    pub alert_id: String,
    /// The user who acknowledged it.
    pub acknowledged_by: String,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// Payload of `alert.resolved`.
///
/// ```
/// let p = forten_shared::events::AlertResolved { alert_id: "a".into(), resolved_by: "u".into(),
///     timestamp: chrono::Utc::now() };
/// assert_eq!(p.resolved_by, "u");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertResolved {
    /// The alert's id.
    pub alert_id: String,
    /// The user who resolved it.
    pub resolved_by: String,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// Payload of `service.registered`.
///
/// ```
/// let p = forten_shared::events::ServiceRegistered { service_name: "auth-service".into(),
///     instance_id: "i1".into(), url: "http://127.0.0.1:3001".into() };
/// assert_eq!(p.service_name, "auth-service");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistered {
    /// The service.
    pub service_name: String,
    /// The instance.
    pub instance_id: String,
    /// Where it answers.
    pub url: String,
}

/// Payload of `service.deregistered`.
///
/// ```
/// let p = forten_shared::events::ServiceDeregistered { service_name: "auth-service".into(),
///     instance_id: "i1".into(), url: "http://127.0.0.1:3001".into() };
/// assert_eq!(p.instance_id, "i1");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeregistered {
    /// The service.
    pub service_name: String,
    /// The instance.
    pub instance_id: String,
    /// Where it answered.
    pub url: String,
}
