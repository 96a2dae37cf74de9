//! User authentication primitives: argon2 password hashing, user JWTs, [`UserAuthLayer`].

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::Body;
use http::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

use super::claims::{ISSUER, now_secs};
use super::layer::{ResponseFuture, rejection};
use super::problem::bearer_token;
use super::{AuthError, TokenError};
use crate::events::Role;

/// Audience of user tokens (never a service name, so a user token is no service token).
pub const USER_AUDIENCE: &str = "forten-api";

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string.
///
/// ```
/// use forten_shared::auth::{hash_password, verify_password};
/// let phc = hash_password("correct horse")?;
/// assert!(phc.starts_with("$argon2id$"));
/// assert!(verify_password("correct horse", &phc)?);
/// assert!(!verify_password("wrong", &phc)?);
/// # Ok::<(), forten_shared::auth::AuthError>(())
/// ```
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| AuthError::Password("no randomness".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Password(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Password(e.to_string()))
}

/// Checks a password against a PHC string (constant time inside argon2). `Ok(false)` for a
/// wrong password, `Err` for a malformed hash.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, AuthError> {
    let parsed = PasswordHash::new(phc).map_err(|e| AuthError::Password(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Claims of a user token.
///
/// ```
/// use forten_shared::auth::UserClaims;
/// use forten_shared::events::Role;
/// let c: UserClaims = serde_json::from_str(r#"{"iss":"forten","sub":"u1","aud":"forten-api",
///   "email":"a@b.c","role":"operator","iat":1,"exp":2,"jti":"j"}"#).unwrap();
/// assert_eq!(c.role, Role::Operator);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    /// Always `forten`.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// Always [`USER_AUDIENCE`].
    pub aud: String,
    /// Login e-mail.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Issued at.
    pub iat: u64,
    /// Expiry.
    pub exp: u64,
    /// Token id.
    pub jti: String,
}

/// The logged-in user, put in the request extensions by [`UserAuthLayer`].
///
/// ```
/// use forten_shared::auth::UserIdentity;
/// use forten_shared::events::Role;
/// let u = UserIdentity { user_id: "u1".into(), email: "a@b.c".into(), role: Role::Admin };
/// assert_eq!(u.role, Role::Admin);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// User id.
    pub user_id: String,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: Role,
}

/// Answer of `POST /api/auth/login`: `{token, expiresIn}`.
///
/// ```
/// use forten_shared::auth::UserToken;
/// let t = UserToken { token: "jwt".into(), expires_in: 3600 };
/// assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"token":"jwt","expiresIn":3600}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserToken {
    /// The JWT.
    pub token: String,
    /// Seconds until expiry.
    pub expires_in: u64,
}

/// Issues and verifies user tokens (HS256 with `JWT_SECRET`).
///
/// ```
/// use forten_shared::auth::{UserAuth, UserIdentity};
/// use forten_shared::events::Role;
/// forten_shared::auth::install_crypto_provider();
/// let auth = UserAuth::new("0123456789abcdef0123456789abcdef", std::time::Duration::from_secs(3600))?;
/// let user = UserIdentity { user_id: "u1".into(), email: "a@b.c".into(), role: Role::Operator };
/// let t = auth.issue(&user)?;
/// assert_eq!(t.expires_in, 3600);
/// assert_eq!(auth.verify(&t.token).unwrap(), user);
/// # Ok::<(), forten_shared::auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct UserAuth {
    inner: Arc<UserAuthInner>,
}

struct UserAuthInner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    validation: Validation,
}

impl std::fmt::Debug for UserAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAuth")
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl UserAuth {
    /// User tokens signed with `jwt_secret` (at least 32 bytes), valid for `ttl`.
    pub fn new(jwt_secret: &str, ttl: Duration) -> Result<Self, AuthError> {
        super::install_crypto_provider();
        if jwt_secret.len() < super::MIN_JWT_SECRET_LEN {
            return Err(AuthError::Config(format!(
                "JWT_SECRET must be at least {} bytes",
                super::MIN_JWT_SECRET_LEN
            )));
        }
        if ttl.as_secs() == 0 {
            return Err(AuthError::Config(
                "user token TTL must be at least one second".into(),
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = super::verifier::DEFAULT_LEEWAY.as_secs();
        validation.set_audience(&[USER_AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self {
            inner: Arc::new(UserAuthInner {
                encoding: EncodingKey::from_secret(jwt_secret.as_bytes()),
                decoding: DecodingKey::from_secret(jwt_secret.as_bytes()),
                ttl,
                validation,
            }),
        })
    }

    /// A token for `user`.
    pub fn issue(&self, user: &UserIdentity) -> Result<UserToken, AuthError> {
        let iat = now_secs();
        let ttl = self.inner.ttl.as_secs();
        let claims = UserClaims {
            iss: ISSUER.into(),
            sub: user.user_id.clone(),
            aud: USER_AUDIENCE.into(),
            email: user.email.clone(),
            role: user.role,
            iat,
            exp: iat + ttl,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.encoding,
        )
        .map_err(|e| AuthError::Sign(e.to_string()))?;
        Ok(UserToken {
            token,
            expires_in: ttl,
        })
    }

    /// Verifies a user token.
    pub fn verify(&self, token: &str) -> Result<UserIdentity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let data =
            jsonwebtoken::decode::<UserClaims>(token, &self.inner.decoding, &self.inner.validation)
                .map_err(|e| TokenError::from_jwt(&e))?;
        let c = data.claims;
        if c.iat > now_secs() + self.inner.validation.leeway {
            return Err(TokenError::NotYetValid);
        }
        Ok(UserIdentity {
            user_id: c.sub,
            email: c.email,
            role: c.role,
        })
    }

    /// A layer admitting users with one of `roles` (any role when empty).
    pub fn layer(&self, roles: impl IntoIterator<Item = Role>) -> UserAuthLayer {
        UserAuthLayer::new(self.clone(), roles)
    }
}

/// Admits requests with a valid user token whose role is allowed; puts the [`UserIdentity`] in
/// the request extensions. 401 / 403 problem+json otherwise.
///
/// ```
/// use axum::{Router, routing::get};
/// use forten_shared::auth::{UserAuth, UserAuthLayer};
/// use forten_shared::events::Role;
/// # fn main() -> Result<(), forten_shared::auth::AuthError> {
/// forten_shared::auth::install_crypto_provider();
/// let users = UserAuth::new("0123456789abcdef0123456789abcdef", std::time::Duration::from_secs(3600))?;
/// let app: Router = Router::new()
///     .route("/api/users", get(|| async { "list" }))
///     .layer(UserAuthLayer::new(users, [Role::Admin]));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct UserAuthLayer {
    auth: UserAuth,
    roles: Arc<[Role]>,
}

impl UserAuthLayer {
    /// Admits the given roles (every role when empty).
    pub fn new(auth: UserAuth, roles: impl IntoIterator<Item = Role>) -> Self {
        Self {
            auth,
            roles: roles.into_iter().collect(),
        }
    }

    fn check(&self, headers: &http::HeaderMap) -> Result<UserIdentity, TokenError> {
        let token = bearer_token(headers).ok_or(TokenError::Missing)?;
        let user = self.auth.verify(token)?;
        if !self.roles.is_empty() && !self.roles.contains(&user.role) {
            let wanted: Vec<&str> = self
                .roles
                .iter()
                .map(|r| match r {
                    Role::Admin => "role:admin",
                    Role::Operator => "role:operator",
                    Role::User => "role:user",
                })
                .collect();
            return Err(TokenError::MissingScope(wanted.join(" ")));
        }
        Ok(user)
    }
}

impl<S> Layer<S> for UserAuthLayer {
    type Service = UserAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UserAuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`UserAuthLayer`].
///
/// ```
/// use forten_shared::auth::{UserAuth, UserAuthLayer, UserAuthService};
/// use tower::Layer;
/// # forten_shared::auth::install_crypto_provider();
/// let users = UserAuth::new("0123456789abcdef0123456789abcdef", std::time::Duration::from_secs(60)).unwrap();
/// let svc: UserAuthService<()> = UserAuthLayer::new(users, []).layer(());
/// assert_eq!(svc.into_inner(), ());
/// ```
#[derive(Debug, Clone)]
pub struct UserAuthService<S> {
    inner: S,
    layer: UserAuthLayer,
}

// === impl UserAuthService ===

impl<S> UserAuthService<S> {
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

impl<S, B> Service<Request<B>> for UserAuthService<S>
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
        match self.layer.check(req.headers()) {
            Ok(user) => {
                req.extensions_mut().insert(user);
                let fut = self.inner.call(req);
                Box::pin(fut)
            }
            Err(err) => {
                metrics::counter!("user_auth_requests_total", "outcome" => "rejected", "reason" => err.reason())
                    .increment(1);
                Box::pin(std::future::ready(Ok(rejection(&err))))
            }
        }
    }
}
