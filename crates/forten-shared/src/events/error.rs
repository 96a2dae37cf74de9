//! Errors of the events module.

use super::EventType;

/// Why an event could not be built, parsed or validated.
///
/// The `Display` text is what lands in `x-forten-error` when an invalid message is
/// dead-lettered.
///
/// ```
/// use forten_shared::events::EventError;
/// assert_eq!(EventError::MissingAttribute("id").to_string(), "missing required attribute \"id\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The body is not JSON, or not a JSON object.
    #[error("body is not a JSON CloudEvent: {0}")]
    Json(String),
    /// `specversion` is not `1.0`.
    #[error("unsupported specversion {0:?} (expected \"1.0\")")]
    SpecVersion(String),
    /// A required attribute is absent.
    #[error("missing required attribute {0:?}")]
    MissingAttribute(&'static str),
    /// An attribute has an invalid value.
    #[error("invalid attribute {name:?}: {reason}")]
    InvalidAttribute {
        /// The attribute.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `type` is not in the catalogue.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// `data` does not match the payload of its type.
    #[error("data does not match the schema of {ty}: {reason}")]
    InvalidData {
        /// The declared type.
        ty: EventType,
        /// What serde found.
        reason: String,
    },
    /// The payload given to the builder is not of the type given.
    #[error("payload is a {actual} but the event type is {expected}")]
    TypeMismatch {
        /// The type asked for.
        expected: EventType,
        /// The payload's own type.
        actual: EventType,
    },
    /// Serialisation failed (should not happen for catalogue payloads).
    #[error("could not serialise event: {0}")]
    Serialize(String),
}
