//! Who may read and write the registry: the [`RegistryAuthorizer`] policy, applied as a layer
//! on the read and the write route groups.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::future::BoxFuture;
use http::HeaderMap;

use super::error::problem;

/// The two route groups of the registry.
///
/// ```
/// use forten_shared::discovery::RegistryAccess;
/// assert_eq!(RegistryAccess::Write.required_scope(), "registry:write");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryAccess {
    /// `GET` routes: scope `registry:read` (or an admin user).
    Read,
    /// `POST`/`PUT`/`DELETE` routes: scope `registry:write`.
    Write,
}

impl RegistryAccess {
    /// The service-token scope this access needs.
    ///
    /// ```
    /// assert_eq!(forten_shared::discovery::RegistryAccess::Read.required_scope(), "registry:read");
    /// ```
    pub fn required_scope(self) -> &'static str {
        match self {
            Self::Read => "registry:read",
            Self::Write => "registry:write",
        }
    }
}

/// Why a registry request was refused.
///
/// ```
/// use forten_shared::discovery::AccessDenied;
/// assert_eq!(AccessDenied::Forbidden("missing scope registry:write".into()).status(), 403);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    /// No credentials, or invalid ones: 401.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Valid credentials lacking the permission: 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl AccessDenied {
    /// The HTTP status to answer with.
    ///
    /// ```
    /// assert_eq!(forten_shared::discovery::AccessDenied::Unauthenticated("no token".into()).status(), 401);
    /// ```
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::Unauthenticated(_) => http::StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => http::StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for AccessDenied {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Unauthenticated(d) | Self::Forbidden(d) => d.clone(),
        };
        let mut res = problem(status, &detail);
        if status == http::StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"forten\""),
            );
        }
        res
    }
}

/// Decides whether a request may read or write the registry (a policy trait: the default
/// [`AllowAll`] suits tests and a trusted network; the gateway plugs in token checks).
///
/// ```
/// use forten_shared::discovery::{AccessDenied, RegistryAccess, RegistryAuthorizer};
/// use futures_util::future::BoxFuture;
///
/// /// Admits writes only with a fixed header, reads always.
/// #[derive(Debug)]
/// struct Header;
/// impl RegistryAuthorizer for Header {
///     fn authorize<'a>(&'a self, headers: &'a http::HeaderMap, access: RegistryAccess) -> BoxFuture<'a, Result<(), AccessDenied>> {
///         let ok = access == RegistryAccess::Read || headers.contains_key("x-let-me-in");
///         Box::pin(async move { if ok { Ok(()) } else { Err(AccessDenied::Unauthenticated("no header".into())) } })
///     }
/// }
/// ```
pub trait RegistryAuthorizer: Send + Sync + std::fmt::Debug + 'static {
    /// `Ok` admits the request.
    fn authorize<'a>(
        &'a self,
        headers: &'a HeaderMap,
        access: RegistryAccess,
    ) -> BoxFuture<'a, Result<(), AccessDenied>>;
}

/// Admits everyone.
///
/// ```
/// use forten_shared::discovery::{AllowAll, RegistryAccess, RegistryAuthorizer};
/// # tokio_test::block_on(async {
/// assert!(AllowAll.authorize(&http::HeaderMap::new(), RegistryAccess::Write).await.is_ok());
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl RegistryAuthorizer for AllowAll {
    fn authorize<'a>(
        &'a self,
        _headers: &'a HeaderMap,
        _access: RegistryAccess,
    ) -> BoxFuture<'a, Result<(), AccessDenied>> {
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub(crate) authorizer: Arc<dyn RegistryAuthorizer>,
    pub(crate) access: RegistryAccess,
}

/// The middleware (`axum::middleware::from_fn_with_state`) applied to a route group.
pub(crate) async fn guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    match guard
        .authorizer
        .authorize(req.headers(), guard.access)
        .await
    {
        Ok(()) => next.run(req).await,
        Err(denied) => denied.into_response(),
    }
}
