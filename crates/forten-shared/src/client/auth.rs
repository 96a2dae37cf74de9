//! [`AuthHeaderProvider`]: where a call's `Authorization` header comes from.

use futures_util::future::BoxFuture;
use http::HeaderValue;

/// Boxed error of a provider.
///
/// ```
/// let e: forten_shared::client::BoxError = "boom".into();
/// assert_eq!(e.to_string(), "boom");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies the `Authorization` header for a call to `target` (a service name). The service
/// auth of the toolkit implements it; so does [`StaticAuthHeader`].
///
/// ```
/// use forten_shared::client::{AuthHeaderProvider, BoxError};
/// use futures_util::future::BoxFuture;
///
/// #[derive(Debug)]
/// struct PerTarget;
/// impl AuthHeaderProvider for PerTarget {
///     fn auth_header<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<http::HeaderValue, BoxError>> {
///         Box::pin(async move { Ok(http::HeaderValue::from_str(&format!("Bearer token-for-{target}"))?) })
///     }
/// }
/// ```
pub trait AuthHeaderProvider: Send + Sync + std::fmt::Debug + 'static {
    /// The header value (`Bearer …`) for a call to `target`.
    fn auth_header<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<HeaderValue, BoxError>>;
}

/// The same header for every target (an operator's token, tests).
///
/// ```
/// use forten_shared::client::{AuthHeaderProvider, StaticAuthHeader};
/// # tokio_test::block_on(async {
/// let p = StaticAuthHeader::bearer("abc").unwrap();
/// assert_eq!(p.auth_header("x").await.unwrap(), "Bearer abc");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct StaticAuthHeader(HeaderValue);

impl StaticAuthHeader {
    /// `Authorization: Bearer <token>`.
    ///
    /// ```
    /// assert!(forten_shared::client::StaticAuthHeader::bearer("bad\ntoken").is_err());
    /// ```
    pub fn bearer(token: &str) -> Result<Self, http::header::InvalidHeaderValue> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

impl AuthHeaderProvider for StaticAuthHeader {
    fn auth_header<'a>(&'a self, _target: &'a str) -> BoxFuture<'a, Result<HeaderValue, BoxError>> {
        let value = self.0.clone();
        Box::pin(async move { Ok(value) })
    }
}
