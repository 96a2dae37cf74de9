//! Errors of the auth module: configuration and minting ([`AuthError`]), token rejection
//! ([`TokenError`]).

use http::StatusCode;

/// Failure to build, mint, fetch keys or hash: an operational error, not a rejected caller.
///
/// ```
/// use forten_shared::auth::AuthError;
/// let e = AuthError::Config("JWT_SECRET is empty".into());
/// assert_eq!(e.to_string(), "invalid auth configuration: JWT_SECRET is empty");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A setting is missing or malformed.
    #[error("invalid auth configuration: {0}")]
    Config(String),
    /// Signing a token failed.
    #[error("token signing failed: {0}")]
    Sign(String),
    /// The token issuer could not be reached or answered garbage.
    #[error("token issuer request failed: {0}")]
    Issuer(String),
    /// The token issuer refused the request (wrong secret, audience not allowed, ...).
    #[error("token issuer refused ({status}): {detail}")]
    IssuerRefused {
        /// HTTP status of the refusal.
        status: u16,
        /// The problem `detail` returned by the issuer.
        detail: String,
    },
    /// Fetching or parsing the JWKS failed.
    #[error("jwks fetch failed: {0}")]
    Jwks(String),
    /// Generating key material failed.
    #[error("key generation failed: {0}")]
    Key(String),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Password(String),
}

/// Why a bearer token was rejected. Each variant has a stable [`reason`](TokenError::reason)
/// code (used in metrics and problem documents) and an HTTP [`status`](TokenError::status).
///
/// ```
/// use forten_shared::auth::TokenError;
/// assert_eq!(TokenError::Expired.reason(), "expired");
/// assert_eq!(TokenError::Expired.status().as_u16(), 401);
/// assert_eq!(TokenError::MissingScope("internal:read".into()).status().as_u16(), 403);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Not a JWT (bad segments, base64 or JSON header).
    #[error("malformed token")]
    Malformed,
    /// `alg` is not in the allow-list (`none`, algorithm confusion).
    #[error("token algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The `kid` is absent or names no known key.
    #[error("unknown signing key")]
    UnknownKid,
    /// The signature does not verify.
    #[error("invalid token signature")]
    BadSignature,
    /// `exp` is past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` is not this service.
    #[error("token audience mismatch")]
    WrongAudience,
    /// `iss` is not `forten`.
    #[error("token issuer mismatch")]
    WrongIssuer,
    /// A claim is missing or has the wrong shape.
    #[error("invalid token claims: {0}")]
    InvalidClaims(String),
    /// The token is valid but lacks a required scope (or role).
    #[error("missing scope {0}")]
    MissingScope(String),
}

impl TokenError {
    /// Stable machine-readable reason code (metric label, problem `reason` member).
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Missing => "missing_token",
            TokenError::Malformed => "malformed",
            TokenError::AlgorithmNotAllowed => "alg_not_allowed",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::InvalidClaims(_) => "invalid_claims",
            TokenError::MissingScope(_) => "missing_scope",
        }
    }

    /// 403 for a missing scope, 401 for everything else.
    pub fn status(&self) -> StatusCode {
        match self {
            TokenError::MissingScope(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// Maps a `jsonwebtoken` error (signature and claim validation) to a rejection reason.
    pub(crate) fn from_jwt(e: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenError::BadSignature,
            K::InvalidAlgorithm
            | K::InvalidAlgorithmName
            | K::MissingAlgorithm
            | K::UnsupportedAlgorithm
            | K::InvalidKeyFormat
            | K::InvalidEddsaKey
            | K::InvalidEcdsaKey
            | K::InvalidRsaKey(_) => TokenError::AlgorithmNotAllowed,
            K::ExpiredSignature => TokenError::Expired,
            K::ImmatureSignature => TokenError::NotYetValid,
            K::InvalidAudience => TokenError::WrongAudience,
            K::InvalidIssuer => TokenError::WrongIssuer,
            K::MissingRequiredClaim(c) => TokenError::InvalidClaims(format!("missing {c}")),
            K::InvalidSubject => TokenError::InvalidClaims("bad sub".into()),
            K::Json(e) => TokenError::InvalidClaims(e.to_string()),
            _ => TokenError::Malformed,
        }
    }
}
