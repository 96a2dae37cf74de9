//! Glue with the toolkit's service and user auth: [`TokenAuthorizer`] guards the registry
//! routes with service tokens (and admin user tokens for reads), and [`ServiceAuth`] supplies
//! the service token of every call.

use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue};

use super::{AccessDenied, RegistryAccess, RegistryAuthorizer};
use crate::auth::{ServiceAuth, TokenError, UserAuth};
use crate::client::{AuthHeaderProvider, BoxError};
use crate::events::Role;

/// The registry's authorizer (SPEC §6): writes need a service token for this gateway with
/// scope `registry:write`; reads need `registry:read`, or an admin user token.
///
/// ```
/// use std::sync::Arc;
/// use forten_shared::auth::{ServiceAuth, ServiceAuthConfig, UserAuth};
/// use forten_shared::discovery::{Registry, RegistryConfig, TokenAuthorizer};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// forten_shared::auth::install_crypto_provider();
/// let secret = "0123456789abcdef0123456789abcdef";
/// let gateway = ServiceAuth::new(ServiceAuthConfig::shared_secret("api-gateway", secret))?;
/// let users = UserAuth::new(secret, std::time::Duration::from_secs(3600))?;
/// let registry = Registry::builder(RegistryConfig::default())
///     .authorizer(Arc::new(TokenAuthorizer::new(gateway).with_users(users)))
///     .start()?;
/// # drop(registry); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TokenAuthorizer {
    service: ServiceAuth,
    users: Option<UserAuth>,
}

impl TokenAuthorizer {
    /// Verifies service tokens addressed to `service` (the gateway's own identity).
    pub fn new(service: ServiceAuth) -> Self {
        Self {
            service,
            users: None,
        }
    }

    /// Also admits admin user tokens for reads.
    #[must_use]
    pub fn with_users(mut self, users: UserAuth) -> Self {
        self.users = Some(users);
        self
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl RegistryAuthorizer for TokenAuthorizer {
    fn authorize<'a>(
        &'a self,
        headers: &'a HeaderMap,
        access: RegistryAccess,
    ) -> BoxFuture<'a, Result<(), AccessDenied>> {
        Box::pin(async move {
            let token = bearer(headers)
                .ok_or_else(|| AccessDenied::Unauthenticated("missing bearer token".into()))?;
            let scope = access.required_scope();
            match self.service.verify_refreshing(token).await {
                Ok(identity) if identity.has_scope(scope) => Ok(()),
                Ok(identity) => Err(AccessDenied::Forbidden(format!(
                    "{} lacks scope {scope}",
                    identity.name
                ))),
                Err(service_err) => {
                    if let Some(users) = &self.users
                        && let Ok(user) = users.verify(token)
                    {
                        return if access == RegistryAccess::Read && user.role == Role::Admin {
                            Ok(())
                        } else {
                            Err(AccessDenied::Forbidden(format!(
                                "user {} may not {} the registry",
                                user.email,
                                if access == RegistryAccess::Read {
                                    "read"
                                } else {
                                    "write"
                                }
                            )))
                        };
                    }
                    Err(match service_err {
                        TokenError::MissingScope(s) => {
                            AccessDenied::Forbidden(format!("missing scope {s}"))
                        }
                        e => AccessDenied::Unauthenticated(e.to_string()),
                    })
                }
            }
        })
    }
}

/// The service token for the target (the guide's `serviceAuth.createAuthHeader(target)`),
/// with the scopes configured on the [`ServiceAuth`].
impl AuthHeaderProvider for ServiceAuth {
    fn auth_header<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<HeaderValue, BoxError>> {
        Box::pin(async move { Ok(self.create_auth_header(target).await?) })
    }
}

/// Supplies registry calls with a service token holding `registry:read registry:write`,
/// whatever scopes the [`ServiceAuth`] uses for other calls.
///
/// ```
/// use std::sync::Arc;
/// use forten_shared::auth::{ServiceAuth, ServiceAuthConfig};
/// use forten_shared::discovery::{DiscoveryConfig, RegistryToken};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// forten_shared::auth::install_crypto_provider();
/// let auth = ServiceAuth::new(ServiceAuthConfig::shared_secret("auth-service", "0123456789abcdef0123456789abcdef"))?;
/// let config = DiscoveryConfig::new("http://127.0.0.1:3000").auth(Arc::new(RegistryToken::new(auth)));
/// # drop(config); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RegistryToken(ServiceAuth);

impl RegistryToken {
    /// Tokens minted by `auth`.
    pub fn new(auth: ServiceAuth) -> Self {
        Self(auth)
    }
}

impl AuthHeaderProvider for RegistryToken {
    fn auth_header<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<HeaderValue, BoxError>> {
        Box::pin(async move {
            let token = self
                .0
                .token_with_scopes(target, &["registry:read", "registry:write"])
                .await?;
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
            value.set_sensitive(true);
            Ok(value)
        })
    }
}
