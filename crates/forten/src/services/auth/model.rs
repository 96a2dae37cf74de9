//! The auth-service's resources and request bodies (camelCase on the wire).

use chrono::{DateTime, Utc};
use forten_shared::events::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::services::api::{AppError, Validate, check_text};

/// Shortest accepted password.
pub(crate) const MIN_PASSWORD_LEN: usize = 8;
/// Longest accepted password: argon2 hashes anything, but an unbounded input is a cheap way to
/// burn the server's CPU.
pub(crate) const MAX_PASSWORD_LEN: usize = 256;
/// Longest e-mail address (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;
/// Longest first or last name.
const MAX_NAME_LEN: usize = 100;

/// A user's role, as documented in `/openapi.json` (the wire form of [`Role`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UserRole {
    /// Full control, including users.
    Admin,
    /// Operates buildings, doors, cameras and alerts; reads users.
    Operator,
    /// A badge holder; reads only itself.
    User,
}

impl UserRole {
    /// Its stored (and wire) name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::User => "user",
        }
    }

    /// Parses a stored name.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "operator" => Some(Self::Operator),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

impl From<UserRole> for Role {
    fn from(r: UserRole) -> Self {
        match r {
            UserRole::Admin => Self::Admin,
            UserRole::Operator => Self::Operator,
            UserRole::User => Self::User,
        }
    }
}

impl From<Role> for UserRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => Self::Admin,
            Role::Operator => Self::Operator,
            Role::User => Self::User,
        }
    }
}

/// A user, as answered (never with its password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    /// Its id (UUID v7).
    pub(crate) id: String,
    /// Login e-mail, lowercase (unique).
    pub(crate) email: String,
    /// Given name.
    pub(crate) first_name: String,
    /// Family name.
    pub(crate) last_name: String,
    /// Role.
    pub(crate) role: UserRole,
    /// When it was created.
    pub(crate) created_at: DateTime<Utc>,
    /// When it was last changed.
    pub(crate) updated_at: DateTime<Utc>,
}

/// A stored user with its password hash (never serialised).
#[derive(Clone)]
pub(crate) struct StoredUser {
    /// The user.
    pub(crate) user: User,
    /// argon2id PHC string.
    pub(crate) password_hash: String,
}

impl std::fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUser")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Body of `POST /api/users`.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct UserInput {
    /// Login e-mail (unique, case-insensitive).
    pub(crate) email: String,
    /// 8 to 256 characters.
    pub(crate) password: String,
    /// Given name, 1 to 100 characters.
    pub(crate) first_name: String,
    /// Family name, 1 to 100 characters.
    pub(crate) last_name: String,
    /// `admin`, `operator` or `user`.
    pub(crate) role: UserRole,
}

impl std::fmt::Debug for UserInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserInput")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Validate for UserInput {
    fn validate(&self) -> Result<(), AppError> {
        check_email("email", &self.email)?;
        check_password("password", &self.password)?;
        check_text("firstName", &self.first_name, MAX_NAME_LEN)?;
        check_text("lastName", &self.last_name, MAX_NAME_LEN)
    }
}

/// Body of `PUT` / `PATCH /api/users/{id}`: the fields to change (absent ones are kept).
#[derive(Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct UserPatch {
    /// New login e-mail.
    pub(crate) email: Option<String>,
    /// New password.
    pub(crate) password: Option<String>,
    /// New given name.
    pub(crate) first_name: Option<String>,
    /// New family name.
    pub(crate) last_name: Option<String>,
    /// New role.
    pub(crate) role: Option<UserRole>,
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPatch")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Validate for UserPatch {
    fn validate(&self) -> Result<(), AppError> {
        if let Some(email) = &self.email {
            check_email("email", email)?;
        }
        if let Some(password) = &self.password {
            check_password("password", password)?;
        }
        if let Some(name) = &self.first_name {
            check_text("firstName", name, MAX_NAME_LEN)?;
        }
        if let Some(name) = &self.last_name {
            check_text("lastName", name, MAX_NAME_LEN)?;
        }
        Ok(())
    }
}

/// Body of `POST /api/auth/login`.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LoginInput {
    /// Login e-mail (case-insensitive).
    pub(crate) email: String,
    /// Password.
    pub(crate) password: String,
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl Validate for LoginInput {
    /// Only the shape: a wrong e-mail or password is a 401, not a 422, so that the answer says
    /// nothing about which users exist.
    fn validate(&self) -> Result<(), AppError> {
        if self.email.trim().is_empty() || self.email.len() > MAX_EMAIL_LEN {
            return Err(AppError::invalid(
                "email",
                format!("must be 1 to {MAX_EMAIL_LEN} characters"),
            ));
        }
        if self.password.is_empty() || self.password.chars().count() > MAX_PASSWORD_LEN {
            return Err(AppError::invalid(
                "password",
                format!("must be 1 to {MAX_PASSWORD_LEN} characters"),
            ));
        }
        Ok(())
    }
}

/// Answer of `POST /api/auth/login` (the toolkit's `UserToken`, documented here).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginResult {
    /// The user token (JWT, HS256, audience `forten-api`); send it as `Authorization: Bearer`.
    pub(crate) token: String,
    /// Seconds until it expires.
    pub(crate) expires_in: u64,
}

/// A page of users.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct UserList {
    /// The users, oldest first.
    pub(crate) users: Vec<User>,
}

/// The canonical form of an e-mail address: trimmed, lowercase.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Checks an e-mail address: `local@domain`, at most 254 characters, no spaces or control
/// characters, a dot-free or dotted domain without empty labels.
pub(crate) fn check_email(field: &str, email: &str) -> Result<(), AppError> {
    let email = email.trim();
    let invalid = || AppError::invalid(field, "must be an e-mail address (name@domain)");
    if email.is_empty() || email.chars().count() > MAX_EMAIL_LEN {
        return Err(invalid());
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(invalid());
    };
    if local.is_empty() || local.contains('@') || domain.is_empty() {
        return Err(invalid());
    }
    if domain.split('.').any(str::is_empty) {
        return Err(invalid());
    }
    Ok(())
}

/// Checks a new password: 8 to 256 characters, no control characters.
pub(crate) fn check_password(field: &str, password: &str) -> Result<(), AppError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n) {
        return Err(AppError::invalid(
            field,
            format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}
