//! [`ServiceAuthLayer`]: the guide's `serviceAuthMiddleware`, as a tower layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response};
use tower::{Layer, Service};

use super::problem::{bearer_challenge, bearer_token, problem};
use super::verifier::TokenVerifier;
use super::{ServiceIdentity, TokenError};

/// Realm of the `WWW-Authenticate` challenges.
const REALM: &str = "forten";

/// Admits requests carrying a service token for this service with every required scope; puts
/// the caller's [`ServiceIdentity`] in the request extensions. Otherwise answers 401 (missing or
/// invalid token) or 403 (missing scope) as `application/problem+json` with a
/// `WWW-Authenticate` challenge, and counts the outcome in `service_auth_requests_total`.
///
/// ```
/// use axum::{Extension, Router, routing::get};
/// use forten_shared::auth::{ServiceAuth, ServiceAuthConfig, ServiceIdentity};
/// # fn main() -> Result<(), forten_shared::auth::AuthError> {
/// forten_shared::auth::install_crypto_provider();
/// let auth = ServiceAuth::new(ServiceAuthConfig::shared_secret("access-service", "0123456789abcdef0123456789abcdef"))?;
/// let app: Router = Router::new()
///     .route("/internal/doors", get(|Extension(caller): Extension<ServiceIdentity>| async move { caller.name }))
///     .layer(auth.layer(["internal:read"]));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ServiceAuthLayer {
    verifier: TokenVerifier,
    audience: Arc<str>,
    scopes: Arc<[String]>,
}

impl ServiceAuthLayer {
    /// Admits tokens for `audience` holding all `required_scopes`.
    pub fn new<I, S>(verifier: TokenVerifier, audience: &str, required_scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            verifier,
            audience: Arc::from(audience),
            scopes: required_scopes.into_iter().map(Into::into).collect(),
        }
    }

    /// Checks a request's headers: the caller, or why it is rejected.
    async fn check(&self, headers: &http::HeaderMap) -> Result<ServiceIdentity, TokenError> {
        let token = bearer_token(headers).ok_or(TokenError::Missing)?;
        let claims = match self.verifier.verify(token, &self.audience) {
            Err(TokenError::UnknownKid) => {
                self.verifier
                    .verify_refreshing(token, &self.audience)
                    .await?
            }
            other => other?,
        };
        let identity = ServiceIdentity::from(&claims);
        if let Some(missing) = self.scopes.iter().find(|s| !identity.has_scope(s)) {
            return Err(TokenError::MissingScope(missing.clone()));
        }
        Ok(identity)
    }
}

impl<S> Layer<S> for ServiceAuthLayer {
    type Service = ServiceAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServiceAuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`ServiceAuthLayer`].
///
/// ```
/// use forten_shared::auth::{ServiceAuthLayer, ServiceAuthService, TokenVerifier};
/// use tower::Layer;
/// let layer = ServiceAuthLayer::new(TokenVerifier::shared_secret(b"k"), "svc", ["internal:read"]);
/// let svc: ServiceAuthService<()> = layer.layer(());
/// assert_eq!(svc.get_ref(), &());
/// ```
#[derive(Debug, Clone)]
pub struct ServiceAuthService<S> {
    inner: S,
    layer: ServiceAuthLayer,
}

// === impl ServiceAuthService ===

impl<S> ServiceAuthService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Future of the auth services.
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, B> Service<Request<B>> for ServiceAuthService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // take the service that was driven to readiness, leave a clone in its place
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            match layer.check(req.headers()).await {
                Ok(identity) => {
                    record(&layer.audience, "accepted", "ok");
                    req.extensions_mut().insert(identity);
                    inner.call(req).await
                }
                Err(err) => {
                    record(&layer.audience, "rejected", err.reason());
                    tracing::debug!(service = %layer.audience, reason = err.reason(), "service auth rejected a request");
                    Ok(rejection(&err))
                }
            }
        })
    }
}

fn record(service: &str, outcome: &'static str, reason: &'static str) {
    metrics::counter!(
        "service_auth_requests_total",
        "service" => service.to_owned(),
        "outcome" => outcome,
        "reason" => reason
    )
    .increment(1);
}

/// The problem response for a rejected token.
pub(crate) fn rejection(err: &TokenError) -> Response<Body> {
    problem(
        err.status(),
        err.reason(),
        &err.to_string(),
        Some(bearer_challenge(err, REALM)),
    )
}
