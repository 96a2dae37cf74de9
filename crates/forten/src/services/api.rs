//! What every service's HTTP API shares (SPEC §5): errors as RFC 7807
//! `application/problem+json` ([`AppError`]), extractors whose rejections use the same format
//! ([`ApiJson`], [`ApiPath`], [`ApiQuery`]), input validation ([`Validate`]) and the
//! `/openapi.json` route.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::storage::StorageError;

/// Content type of problem documents.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// The body of an error answer (RFC 7807), as documented in `/openapi.json`.
///
/// `type` is `urn:forten:problem:<reason>` and `reason` repeats the stable reason code (the
/// same shape as the toolkit's service-auth rejections); `field` names the offending input
/// field of a validation error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Problem {
    /// `urn:forten:problem:<reason>`.
    #[serde(rename = "type")]
    pub(crate) problem_type: String,
    /// The status's reason phrase.
    pub(crate) title: String,
    /// The HTTP status.
    pub(crate) status: u16,
    /// What went wrong, for a human.
    pub(crate) detail: String,
    /// Stable machine-readable reason (`not_found`, `validation`, …).
    pub(crate) reason: String,
    /// The offending field (camelCase path), for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<String>,
}

/// Errors of the services' HTTP handlers; each answers as `application/problem+json`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// 404: the resource does not exist.
    #[error("{resource} {id} not found")]
    NotFound {
        /// What kind of resource (`building`, `door`, …).
        resource: &'static str,
        /// The id asked for.
        id: String,
    },
    /// 422: the body is well-formed JSON but a field is invalid.
    #[error("{field}: {message}")]
    Validation {
        /// The field (camelCase).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 400: the query parameter `field` is unusable.
    #[error("query parameter {field}: {message}")]
    InvalidParameter {
        /// The parameter.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 401: unknown e-mail or wrong password (one answer for both).
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// 403: the caller's role does not allow this on this resource.
    #[error("{0}")]
    Forbidden(String),
    /// 400: the request cannot be read (bad JSON, bad query string, bad path).
    #[error("{0}")]
    BadRequest(String),
    /// 415: the body is not declared as JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 413: the body is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 405: the route exists, not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 503: a dependency (the event bus) is unavailable; the request may be retried.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a database failure. The cause is logged, never sent to the client.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

impl AppError {
    /// A validation error on `field`.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An unusable query parameter `field`.
    pub(crate) fn invalid_parameter(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidParameter {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A missing resource.
    pub(crate) fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            resource,
            id: id.into(),
        }
    }

    /// Its HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidParameter { .. } | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Its stable reason code.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Validation { .. } => "validation",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden(_) => "forbidden",
            Self::BadRequest(_) => "bad_request",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
            Self::Storage(_) => "internal",
        }
    }

    /// The problem document.
    pub(crate) fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            Self::Storage(_) => "the request could not be completed; try again".to_owned(),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("urn:forten:problem:{}", self.reason()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            reason: self.reason().to_owned(),
            field: match self {
                Self::Validation { field, .. } | Self::InvalidParameter { field, .. } => {
                    Some(field.clone())
                }
                _ => None,
            },
        }
    }
}

impl From<sqlx::Error> for AppError {
    /// A database that cannot be reached (pool exhausted or closed, connection lost) is a 503
    /// worth retrying; a uniqueness or reference violation (a concurrent change) a 409;
    /// anything else a 500.
    fn from(e: sqlx::Error) -> Self {
        if crate::storage::is_constraint_violation(&e) {
            return Self::Conflict(
                "the request conflicts with a concurrent change; reload and try again".to_owned(),
            );
        }
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable("the database is unavailable; try again".to_owned())
            }
            e => Self::Storage(StorageError::Query(e)),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Storage(e) = &self {
            tracing::error!(error = %e, "request failed on storage");
        }
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        (self.status(), [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        let text = r.body_text();
        match r {
            JsonRejection::JsonDataError(_) => {
                // axum names the path of the bad field: "…: name: invalid type …"
                let detail = text
                    .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                    .unwrap_or(&text)
                    .to_owned();
                let field = field_of(&detail);
                Self::Validation {
                    field,
                    message: detail,
                }
            }
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType(text),
            JsonRejection::BytesRejection(ref b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge(text)
            }
            _ => Self::BadRequest(text),
        }
    }
}

/// The field a serde error is about: the path axum puts in front (`name: invalid type …`),
/// or the name in ``missing field `x` `` / ``unknown field `x` ``; else `body`.
fn field_of(detail: &str) -> String {
    if let Some((path, _)) = detail.split_once(": ")
        && !path.contains(' ')
        && !path.is_empty()
    {
        return path.to_owned();
    }
    for marker in ["missing field `", "unknown field `"] {
        if let Some(rest) = detail.split_once(marker).map(|(_, r)| r)
            && let Some((name, _)) = rest.split_once('`')
        {
            return name.to_owned();
        }
    }
    "body".to_owned()
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

/// Input that checks itself beyond its types (lengths, ranges, formats).
pub(crate) trait Validate {
    /// `Ok` when every field is acceptable, else the first offending field.
    fn validate(&self) -> Result<(), AppError>;
}

/// A JSON body, deserialised (camelCase) and [validated](Validate); rejections answer
/// problem+json: malformed JSON 400, a wrong or missing field 422, not JSON 415.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        value.validate()?;
        Ok(Self(value))
    }
}

/// Largest optional body read by [`ApiJsonOrEmpty`] (axum's default limit for `Json`).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Like [`ApiJson`], but an empty body reads as `T::default()` (optional bodies).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiJsonOrEmpty<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJsonOrEmpty<T>
where
    T: DeserializeOwned + Validate + Default,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|e| AppError::PayloadTooLarge(e.to_string()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let ApiJson(value) = ApiJson::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// Path parameters whose rejections answer problem+json (400).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A query string, deserialised and [validated](Validate); rejections answer problem+json
/// (400 unreadable, 422 invalid).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        value.validate()?;
        Ok(Self(value))
    }
}

/// Responds with a JSON body and a status (201 for created resources).
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, axum::Json(value)).into_response()
}

/// Checks a required text field: trimmed, 1 to `max` characters.
pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<(), AppError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks an id given in a body (`buildingId`, `userId`): 1 to 128 printable characters.
pub(crate) fn check_id(field: &str, value: &str) -> Result<(), AppError> {
    if value.is_empty() || value.len() > 128 || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::invalid(
            field,
            "must be 1 to 128 printable ASCII characters without spaces",
        ));
    }
    Ok(())
}

/// Paging of list routes: `?limit=` (1 to 1000, default 100) and `?offset=` (default 0).
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// How many items at most (1 to 1000, default 100).
    pub(crate) limit: Option<i64>,
    /// How many to skip (default 0).
    pub(crate) offset: Option<i64>,
}

impl Page {
    /// The limit, defaulted.
    pub(crate) fn limit(&self) -> i64 {
        self.limit.unwrap_or(100)
    }

    /// The offset, defaulted.
    pub(crate) fn offset(&self) -> i64 {
        self.offset.unwrap_or(0)
    }

    /// Checks the ranges.
    pub(crate) fn check(&self) -> Result<(), AppError> {
        if !(1..=1000).contains(&self.limit()) {
            return Err(AppError::invalid("limit", "must be between 1 and 1000"));
        }
        if self.offset() < 0 {
            return Err(AppError::invalid("offset", "must not be negative"));
        }
        Ok(())
    }
}

impl Validate for Page {
    fn validate(&self) -> Result<(), AppError> {
        self.check()
    }
}

/// Serves `api` at `/openapi.json`.
pub(crate) fn openapi_route<S>(api: utoipa::openapi::OpenApi) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let api = std::sync::Arc::new(api);
    axum::Router::new().route(
        "/openapi.json",
        axum::routing::get(move || {
            let api = api.clone();
            async move { axum::Json(api.as_ref().clone()) }
        }),
    )
}

/// A service's public router from its documented routes: the routes, `/openapi.json`
/// describing them, problem+json 404 / 405 for anything else, and the state.
pub(crate) fn documented_router<S>(
    routes: utoipa_axum::router::OpenApiRouter<S>,
    state: S,
) -> axum::Router
where
    S: Clone + Send + Sync + 'static,
{
    let (router, api) = routes.split_for_parts();
    router
        .merge(openapi_route(api))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Answers problem+json 405 for a known route with a wrong method.
pub(crate) async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// Answers problem+json 404 for unknown routes and 405 for known routes with a wrong method,
/// so that no route answers a plain-text error.
pub(crate) async fn fallback() -> AppError {
    AppError::NotFound {
        resource: "route",
        id: "requested".to_owned(),
    }
}
