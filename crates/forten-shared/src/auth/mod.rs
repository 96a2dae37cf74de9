//! Service identity (the guide's "Service Authentication", SPEC §7): service-to-service JWTs in
//! two modes, the layer that protects endpoints, user login primitives, and authenticated
//! event publishers.
//!
//! | piece | role |
//! | --- | --- |
//! | [`ServiceAuth`] | this service's identity: `create_auth_header(target)` (cached tokens) and verification |
//! | [`ServiceAuthLayer`] | the guide's `serviceAuthMiddleware(serviceAuth, ['internal:read'])` |
//! | [`TokenIssuer`], [`issuer_router`] | issuer mode: the auth-service's token endpoint and JWKS |
//! | [`JwksCache`], [`TokenVerifier`] | local verification (shared secret, cached JWKS) |
//! | [`hash_password`], [`UserAuth`], [`UserAuthLayer`] | user login and role checks |
//! | [`EventAuthenticator`], [`PublishPolicy`] | sign / verify event publishers, per-type policy |
//!
//! Install the `jsonwebtoken` crypto provider once at the top of `main`
//! ([`install_crypto_provider`]); constructors here also do, idempotently.
//!
//! ```
//! use axum::{Router, routing::get};
//! use forten_shared::auth::{ServiceAuth, ServiceAuthConfig};
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! forten_shared::auth::install_crypto_provider();
//! let secret = "0123456789abcdef0123456789abcdef"; // JWT_SECRET
//! let access = ServiceAuth::new(ServiceAuthConfig::shared_secret("access-service", secret))?;
//! // protect /internal with a scope
//! let app: Router = Router::new()
//!     .route("/internal/doors", get(|| async { "[]" }))
//!     .layer(access.layer(["internal:read"]));
//! // and call another service
//! let caller = ServiceAuth::new(ServiceAuthConfig::shared_secret("api-gateway", secret).scopes(["internal:read"]))?;
//! let header = caller.create_auth_header("access-service").await?;
//! assert!(header.to_str()?.starts_with("Bearer "));
//! # let _ = app; Ok(()) }
//! ```

mod claims;
mod error;
mod events;
mod issuer;
mod jwks;
mod keys;
mod layer;
mod problem;
mod service;
mod user;
mod verifier;

pub use self::claims::{
    Confirmation, EVENTS_AUDIENCE, ISSUER, JwkSet, PUBLISH_SCOPE, PublicJwk, ServiceClaims,
    ServiceIdentity,
};
pub use self::error::{AuthError, TokenError};
pub use self::events::{
    AUTH_SIGNATURE_EXTENSION, AUTH_TOKEN_EXTENSION, EventAuthError, EventAuthenticator,
    PublishPolicy,
};
pub use self::issuer::{
    IssueError, IssuerConfig, IssuerPolicy, JWKS_PATH, SERVICE_POLICY_ENV, SERVICE_POLICY_FILE_ENV,
    SERVICE_TOKEN_PATH, ServicePolicy, ServiceTokenRequest, ServiceTokenResponse, TokenIssuer,
    hash_service_secret, issuer_router,
};
pub use self::jwks::JwksCache;
pub use self::layer::{ResponseFuture, ServiceAuthLayer, ServiceAuthService};
pub use self::service::{
    AuthMode, MIN_JWT_SECRET_LEN, SERVICE_AUTH_MODE_ENV, ServiceAuth, ServiceAuthConfig,
};
pub use self::user::{
    USER_AUDIENCE, UserAuth, UserAuthLayer, UserAuthService, UserClaims, UserIdentity, UserToken,
    hash_password, verify_password,
};
pub use self::verifier::TokenVerifier;

/// Installs `jsonwebtoken`'s aws-lc-rs crypto provider for the process (idempotent; keeps a
/// provider installed earlier). `jsonwebtoken` 11 panics on first use without one.
///
/// ```
/// forten_shared::auth::install_crypto_provider();
/// forten_shared::auth::install_crypto_provider(); // harmless twice
/// ```
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
