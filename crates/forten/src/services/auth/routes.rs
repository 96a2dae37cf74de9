//! The auth-service's HTTP handlers, their role checks and their OpenAPI description.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Router};
use forten_shared::auth::{UserIdentity, UserToken};
use forten_shared::events::{Role, UserDeleted, UserUpdated};
use serde_json::{Map, Value};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    LoginInput, LoginResult, StoredUser, User, UserInput, UserList, UserPatch, UserRole,
    normalize_email,
};
use super::store::{self, NewUser};
use super::{AuthState, PasswordError, hash_blocking, user_created, verify_blocking};
use crate::services::api::{
    ApiJson, ApiPath, ApiQuery, AppError, Page, Problem, fallback, json, method_not_allowed,
    openapi_route,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "auth-service",
        description = "Users, roles and login; in issuer mode also service tokens and the JWKS"
    ),
    components(schemas(Problem, UserRole)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme (user tokens from `/api/auth/login`).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Routes without a token.
fn login_routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(login))
}

/// Routes for admins.
fn admin_routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(put_user, patch_user, delete_user))
}

/// Routes for admins and operators.
fn staff_routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new().routes(routes!(list_users))
}

/// Routes for every logged-in user (the handler narrows further).
fn user_routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new().routes(routes!(get_user))
}

/// The whole OpenAPI description.
pub(super) fn openapi() -> utoipa::openapi::OpenApi {
    login_routes()
        .merge(admin_routes())
        .merge(staff_routes())
        .merge(user_routes())
        .into_openapi()
}

/// The routes, each group behind its [`UserAuthLayer`](forten_shared::auth::UserAuthLayer)
/// (which runs before the body is read: an unauthenticated request is a 401 whatever its
/// body), with `/openapi.json` and problem+json fallbacks.
pub(super) fn public(state: AuthState) -> Router {
    let (login, _) = login_routes().split_for_parts();
    let (admin, _) = admin_routes().split_for_parts();
    let (staff, _) = staff_routes().split_for_parts();
    let (users, _) = user_routes().split_for_parts();
    login
        .merge(admin.layer(state.layer([Role::Admin])))
        .merge(staff.layer(state.layer([Role::Admin, Role::Operator])))
        .merge(users.layer(state.layer([])))
        .merge(openapi_route(openapi()))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

impl From<PasswordError> for AppError {
    fn from(e: PasswordError) -> Self {
        tracing::error!(error = %e, "password hashing failed");
        AppError::Unavailable("the password could not be processed; try again".to_owned())
    }
}

async fn require_user(state: &AuthState, id: &str) -> Result<StoredUser, AppError> {
    store::get_user(state.db.pool(), id)
        .await?
        .ok_or_else(|| AppError::not_found("user", id))
}

/// Log in: a user token for a right e-mail and password; 401 otherwise (the same answer,
/// after the same argon2 work, for an unknown e-mail and a wrong password).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = LoginResult),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn login(
    State(state): State<AuthState>,
    ApiJson(input): ApiJson<LoginInput>,
) -> Result<Response, AppError> {
    let found = store::get_by_email(state.db.pool(), &normalize_email(&input.email)).await?;
    let hash = match &found {
        Some(u) => u.password_hash.clone(),
        None => state.dummy_hash().await?.to_owned(),
    };
    let verified = verify_blocking(input.password, hash).await?;
    let Some(found) = found.filter(|_| verified) else {
        tracing::info!("login refused");
        return Err(AppError::InvalidCredentials);
    };
    let UserToken { token, expires_in } = state
        .user_auth
        .issue(&UserIdentity {
            user_id: found.user.id.clone(),
            email: found.user.email.clone(),
            role: found.user.role.into(),
        })
        .map_err(|e| {
            tracing::error!(error = %e, "user token signing failed");
            AppError::Unavailable("the token could not be issued; try again".to_owned())
        })?;
    tracing::info!(user_id = %found.user.id, "login");
    Ok(json(StatusCode::OK, &LoginResult { token, expires_in }))
}

/// Create a user (admin): 201 with the user, `user.created` published; 409 when the e-mail is
/// taken.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = UserInput,
    security(("bearer" = [])),
    responses((status = 201, body = User),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_user(
    State(state): State<AuthState>,
    ApiJson(input): ApiJson<UserInput>,
) -> Result<Response, AppError> {
    let email = normalize_email(&input.email);
    let pool = state.db.pool();
    if store::get_by_email(pool, &email).await?.is_some() {
        return Err(email_taken(&email));
    }
    let hash = hash_blocking(input.password).await?;
    let new = NewUser {
        email: &email,
        password_hash: &hash,
        first_name: input.first_name.trim(),
        last_name: input.last_name.trim(),
        role: input.role,
    };
    let mut tx = pool.begin().await?;
    // the unique index decides a concurrent duplicate (the transaction rolls back on drop)
    let user = store::insert_user(&mut tx, &new)
        .await?
        .ok_or_else(|| email_taken(&email))?;
    let event = state.event(user_created(&user), &user.id);
    store::enqueue(&mut tx, &event).await?;
    tx.commit().await?;
    state.deliver(&event).await;
    Ok(json(StatusCode::CREATED, &user))
}

fn email_taken(email: &str) -> AppError {
    AppError::Conflict(format!("a user with e-mail {email} already exists"))
}

/// List users (admin, operator), oldest first.
#[utoipa::path(get, path = "/api/users", tag = "users", params(Page),
    security(("bearer" = [])),
    responses((status = 200, body = UserList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_users(
    State(state): State<AuthState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Response, AppError> {
    let users = store::list_users(state.db.pool(), page.limit(), page.offset()).await?;
    Ok(json(StatusCode::OK, &UserList { users }))
}

/// One user (admin, operator; a user may read itself).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = User),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_user(
    State(state): State<AuthState>,
    Extension(caller): Extension<UserIdentity>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, AppError> {
    if caller.role == Role::User && caller.user_id != id {
        return Err(AppError::Forbidden(
            "a user may only read itself".to_owned(),
        ));
    }
    Ok(json(StatusCode::OK, &require_user(&state, &id).await?.user))
}

/// Update a user (admin): the fields given change; `user.updated` lists them.
#[utoipa::path(put, path = "/api/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body = UserPatch, security(("bearer" = [])),
    responses((status = 200, body = User),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_user(
    State(state): State<AuthState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Response, AppError> {
    update_user(&state, &id, patch).await
}

/// Update a user (admin), like `PUT`.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body = UserPatch, security(("bearer" = [])),
    responses((status = 200, body = User),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn patch_user(
    State(state): State<AuthState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Response, AppError> {
    update_user(&state, &id, patch).await
}

async fn update_user(state: &AuthState, id: &str, patch: UserPatch) -> Result<Response, AppError> {
    let pool = state.db.pool();
    let StoredUser {
        user: mut next,
        mut password_hash,
    } = require_user(state, id).await?;
    let mut changes = Map::new();
    if let Some(email) = patch.email.map(|e| normalize_email(&e))
        && email != next.email
    {
        if store::get_by_email(pool, &email).await?.is_some() {
            return Err(email_taken(&email));
        }
        changes.insert("email".into(), Value::from(email.clone()));
        next.email = email;
    }
    if let Some(name) = patch.first_name.map(|n| n.trim().to_owned())
        && name != next.first_name
    {
        changes.insert("firstName".into(), Value::from(name.clone()));
        next.first_name = name;
    }
    if let Some(name) = patch.last_name.map(|n| n.trim().to_owned())
        && name != next.last_name
    {
        changes.insert("lastName".into(), Value::from(name.clone()));
        next.last_name = name;
    }
    if let Some(role) = patch.role
        && role != next.role
    {
        if next.role == UserRole::Admin && store::count_admins(pool).await? <= 1 {
            return Err(AppError::Conflict(
                "the last admin cannot lose its role".into(),
            ));
        }
        changes.insert("role".into(), Value::from(role.as_str()));
        next.role = role;
    }
    if let Some(password) = patch.password {
        password_hash = hash_blocking(password).await?;
        changes.insert("passwordChanged".into(), Value::Bool(true));
    }
    if changes.is_empty() {
        return Ok(json(StatusCode::OK, &next));
    }
    next.updated_at = chrono::Utc::now();
    let mut tx = pool.begin().await?;
    if !store::update_user(&mut tx, &next, &password_hash)
        .await
        .map_err(|e| {
            if crate::storage::is_constraint_violation(&e) {
                email_taken(&next.email)
            } else {
                e.into()
            }
        })?
    {
        return Err(AppError::not_found("user", id));
    }
    let event = state.event(
        UserUpdated {
            user_id: next.id.clone(),
            changes: Value::Object(changes),
        },
        &next.id,
    );
    store::enqueue(&mut tx, &event).await?;
    tx.commit().await?;
    state.deliver(&event).await;
    Ok(json(StatusCode::OK, &next))
}

/// Delete a user (admin): 204, `user.deleted` published; 409 for the last admin.
#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn delete_user(
    State(state): State<AuthState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    let pool = state.db.pool();
    let user = require_user(&state, &id).await?.user;
    if user.role == UserRole::Admin && store::count_admins(pool).await? <= 1 {
        return Err(AppError::Conflict(
            "the last admin cannot be deleted".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    if !store::delete_user(&mut tx, &id).await? {
        return Err(AppError::not_found("user", &id));
    }
    let event = state.event(
        UserDeleted {
            user_id: id.clone(),
        },
        &id,
    );
    store::enqueue(&mut tx, &event).await?;
    tx.commit().await?;
    state.deliver(&event).await;
    Ok(StatusCode::NO_CONTENT)
}
