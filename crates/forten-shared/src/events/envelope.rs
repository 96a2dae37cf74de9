//! The CloudEvents 1.0 envelope (JSON structured mode) with typed `data`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{EventData, EventError, EventType, Payload};

/// CloudEvents spec version we speak.
pub const SPEC_VERSION: &str = "1.0";
/// Content type of an event in structured mode.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// `datacontenttype` of our payloads.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// One event: the CloudEvents 1.0 envelope of SPEC §4 with typed [`EventData`].
///
/// Serialises to a JSON structured-mode CloudEvent; [`Event::from_slice`] parses and validates
/// one (spec version, required attributes, known type, payload matching its type).
///
/// ```
/// use forten_shared::{Event, EventBuilder, EventType, events::UserDeleted};
///
/// let event = EventBuilder::create(EventType::UserDeleted, UserDeleted { user_id: "u1".into() }, "auth-service")?;
/// let json = event.to_vec()?;
/// let back = Event::from_slice(&json)?;
/// assert_eq!(back, event);
/// assert_eq!(back.data_as::<UserDeleted>().unwrap().user_id, "u1");
/// # Ok::<(), forten_shared::events::EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique id (UUID v7 for events we create); the dedup key.
    pub id: String,
    /// The publishing service (`auth-service`).
    pub source: String,
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// The entity the event is about, when there is one.
    pub subject: Option<String>,
    /// Extension `correlationid`.
    pub correlation_id: Option<String>,
    /// Extension `traceparent` (W3C trace context).
    pub traceparent: Option<String>,
    /// Any other extension attributes (lowercase alphanumeric names), kept as received.
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// The typed payload; it also fixes the event's `type`.
    pub data: EventData,
}

impl Event {
    /// The catalogue type (`type` attribute, routing key).
    ///
    /// ```
    /// # use forten_shared::{EventBuilder, EventType, events::UserDeleted};
    /// let e = EventBuilder::new(UserDeleted { user_id: "u".into() }, "svc").build();
    /// assert_eq!(e.event_type(), EventType::UserDeleted);
    /// ```
    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }

    /// Borrows the payload as `T` when the event is of `T`'s type.
    ///
    /// ```
    /// # use forten_shared::{EventBuilder, events::{UserDeleted, UserCreated}};
    /// let e = EventBuilder::new(UserDeleted { user_id: "u".into() }, "svc").build();
    /// assert!(e.data_as::<UserDeleted>().is_some());
    /// assert!(e.data_as::<UserCreated>().is_none());
    /// ```
    pub fn data_as<T: Payload>(&self) -> Option<&T> {
        T::from_data(&self.data)
    }

    /// Serialises to a CloudEvents JSON document.
    ///
    /// ```
    /// # use forten_shared::{EventBuilder, events::UserDeleted};
    /// let e = EventBuilder::new(UserDeleted { user_id: "u".into() }, "svc").build();
    /// let v: serde_json::Value = serde_json::from_slice(&e.to_vec().unwrap()).unwrap();
    /// assert_eq!(v["specversion"], "1.0");
    /// ```
    pub fn to_vec(&self) -> Result<Vec<u8>, EventError> {
        // sized for a typical event up front instead of growing from serde_json's 128 bytes
        let mut buf = Vec::with_capacity(1024);
        serde_json::to_writer(&mut buf, self).map_err(|e| EventError::Serialize(e.to_string()))?;
        Ok(buf)
    }

    /// Parses and validates a CloudEvents JSON document.
    ///
    /// ```
    /// use forten_shared::{Event, events::EventError};
    /// let err = Event::from_slice(br#"{"specversion":"0.3"}"#).unwrap_err();
    /// assert!(matches!(err, EventError::SpecVersion(_)));
    /// assert!(matches!(Event::from_slice(b"nope").unwrap_err(), EventError::Json(_)));
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EventError> {
        let wire: WireIn<'_> =
            serde_json::from_slice(bytes).map_err(|e| EventError::Json(e.to_string()))?;
        wire.validate()
    }
}

/// Serialised form of an event's `time`: RFC 3339 UTC with milliseconds.
pub(crate) fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Data<'a>(&'a EventData);
        impl Serialize for Data<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize_into(s)
            }
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("specversion", SPEC_VERSION)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("source", &self.source)?;
        m.serialize_entry("type", self.event_type().as_str())?;
        m.serialize_entry("time", &format_time(&self.time))?;
        m.serialize_entry("datacontenttype", DATA_CONTENT_TYPE)?;
        if let Some(subject) = &self.subject {
            m.serialize_entry("subject", subject)?;
        }
        if let Some(c) = &self.correlation_id {
            m.serialize_entry("correlationid", c)?;
        }
        if let Some(t) = &self.traceparent {
            m.serialize_entry("traceparent", t)?;
        }
        for (k, v) in &self.extensions {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("data", &Data(&self.data))?;
        m.end()
    }
}

/// What arrives on the wire, before validation. Deserialised by hand so that `data` stays a
/// borrowed [`RawValue`] (parsed once, straight into its typed payload) while unknown attributes
/// are kept as extensions (`#[serde(flatten)]` cannot do both).
#[derive(Default)]
struct WireIn<'a> {
    specversion: Option<String>,
    id: Option<String>,
    source: Option<String>,
    ty: Option<String>,
    time: Option<String>,
    datacontenttype: Option<String>,
    subject: Option<String>,
    correlationid: Option<String>,
    traceparent: Option<String>,
    data: Option<&'a RawValue>,
    extensions: serde_json::Map<String, serde_json::Value>,
}

impl<'de: 'a, 'a> Deserialize<'de> for WireIn<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = WireIn<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a CloudEvents JSON object")
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut w = WireIn::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "specversion" => &mut w.specversion,
                        "id" => &mut w.id,
                        "source" => &mut w.source,
                        "type" => &mut w.ty,
                        "time" => &mut w.time,
                        "datacontenttype" => &mut w.datacontenttype,
                        "subject" => &mut w.subject,
                        "correlationid" => &mut w.correlationid,
                        "traceparent" => &mut w.traceparent,
                        "data" => {
                            w.data = Some(map.next_value()?);
                            continue;
                        }
                        _ => {
                            let v: serde_json::Value = map.next_value()?;
                            w.extensions.insert(key.into_owned(), v);
                            continue;
                        }
                    };
                    *slot = map.next_value()?;
                }
                Ok(w)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl WireIn<'_> {
    fn validate(self) -> Result<Event, EventError> {
        match self.specversion.as_deref() {
            Some(SPEC_VERSION) => {}
            Some(other) => return Err(EventError::SpecVersion(other.to_owned())),
            None => return Err(EventError::MissingAttribute("specversion")),
        }
        let id = non_empty(self.id, "id")?;
        let source = non_empty(self.source, "source")?;
        let ty: EventType = non_empty(self.ty, "type")?.parse()?;
        if let Some(ct) = self.datacontenttype.as_deref()
            && !ct.starts_with("application/json")
        {
            return Err(EventError::InvalidAttribute {
                name: "datacontenttype",
                reason: format!("expected application/json, got {ct}"),
            });
        }
        let time = match self.time {
            Some(t) => DateTime::parse_from_rfc3339(&t)
                .map_err(|e| EventError::InvalidAttribute {
                    name: "time",
                    reason: format!("not RFC 3339: {e}"),
                })?
                .with_timezone(&Utc),
            None => return Err(EventError::MissingAttribute("time")),
        };
        let data = self.data.ok_or(EventError::MissingAttribute("data"))?;
        let data = EventData::from_json(ty, data.get())?;
        for name in self.extensions.keys() {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(EventError::InvalidAttribute {
                    name: "extension",
                    reason: format!("attribute name {name:?} is not lowercase alphanumeric"),
                });
            }
        }
        Ok(Event {
            id,
            source,
            time,
            subject: self.subject,
            correlation_id: self.correlationid,
            traceparent: self.traceparent,
            extensions: self.extensions,
            data,
        })
    }
}

fn non_empty(v: Option<String>, name: &'static str) -> Result<String, EventError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(EventError::InvalidAttribute {
            name,
            reason: "must not be empty".into(),
        }),
        None => Err(EventError::MissingAttribute(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AccessGranted, AccessMethod, UserDeleted};

    fn sample() -> Event {
        crate::EventBuilder::new(
            AccessGranted {
                user_id: "u1".into(),
                door_id: "d1".into(),
                building_id: "b1".into(),
                access_method: AccessMethod::Card,
                timestamp: Utc::now(),
            },
            "access-service",
        )
        .subject("d1")
        .correlation_id("corr-1")
        .build()
    }

    #[test]
    fn round_trip_preserves_everything() {
        let mut e = sample();
        e.extensions
            .insert("publisher".into(), serde_json::json!("x"));
        let back = Event::from_slice(&e.to_vec().unwrap()).unwrap();
        // time is serialised with millisecond precision
        assert_eq!(format_time(&back.time), format_time(&e.time));
        let mut e2 = e.clone();
        e2.time = back.time;
        assert_eq!(back, e2);
    }

    #[test]
    fn rejects_each_invalid_shape() {
        let good: serde_json::Value = serde_json::from_slice(&sample().to_vec().unwrap()).unwrap();
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("specversion", serde_json::json!("0.3")),
            ("type", serde_json::json!("user.exploded")),
            ("id", serde_json::json!("")),
            ("time", serde_json::json!("yesterday")),
            ("data", serde_json::json!({"userId": 5})),
            ("datacontenttype", serde_json::json!("text/xml")),
        ];
        for (field, value) in cases {
            let mut v = good.clone();
            v[field] = value;
            let err = Event::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
            assert!(!err.to_string().is_empty(), "{field}");
        }
        for field in ["specversion", "id", "source", "type", "time", "data"] {
            let mut v = good.clone();
            v.as_object_mut().unwrap().remove(field);
            let err = Event::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
            assert_eq!(err, EventError::MissingAttribute(field), "{field}");
        }
    }

    #[test]
    fn unknown_type_is_named() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_vec().unwrap()).unwrap();
        v["type"] = "door.melted".into();
        let err = Event::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "unknown event type \"door.melted\"");
    }

    #[test]
    fn payload_must_match_type() {
        let e = crate::EventBuilder::new(
            UserDeleted {
                user_id: "u".into(),
            },
            "s",
        )
        .build();
        let mut v: serde_json::Value = serde_json::from_slice(&e.to_vec().unwrap()).unwrap();
        v["type"] = "door.forced".into();
        let err = Event::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                EventError::InvalidData {
                    ty: EventType::DoorForced,
                    ..
                }
            ),
            "{err}"
        );
    }
}
