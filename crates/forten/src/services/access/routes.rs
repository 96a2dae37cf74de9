//! The access-service's HTTP handlers and their OpenAPI description.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use forten_shared::events::{AccessDenied, AccessGranted, DoorForced, Severity};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    AccessProfile, AttemptInput, AttemptResult, Building, BuildingInput, BuildingList, Decision,
    Door, DoorInput, DoorList, DoorQuery, ForcedResult, ProfileInput,
};
use super::store::{self, ProfileFields, Table};
use super::{AccessState, decide};
use crate::services::api::{
    ApiJson, ApiPath, ApiQuery, AppError, Page, Problem, fallback, json, method_not_allowed,
    openapi_route,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "access-service",
        description = "Buildings, doors, access profiles and access attempts"
    ),
    components(schemas(Problem))
)]
struct ApiDoc;

fn public_routes() -> OpenApiRouter<AccessState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_buildings, create_building))
        .routes(routes!(get_building, update_building, delete_building))
        .routes(routes!(list_doors, create_door))
        .routes(routes!(get_door, update_door, delete_door))
        .routes(routes!(door_forced))
        .routes(routes!(get_profile, put_profile))
        .routes(routes!(attempt))
}

fn internal_routes() -> OpenApiRouter<AccessState> {
    OpenApiRouter::new().routes(routes!(internal_doors))
}

/// The whole OpenAPI description (public and internal routes).
pub(super) fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().merge(internal_routes()).into_openapi()
}

/// The public routes with `/openapi.json` and problem+json fallbacks.
pub(super) fn public(state: AccessState) -> Router {
    let (router, _) = public_routes().split_for_parts();
    router
        .merge(openapi_route(openapi()))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The internal routes.
pub(super) fn internal(state: AccessState) -> Router {
    let (router, _) = internal_routes().split_for_parts();
    router
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn require_building(state: &AccessState, id: &str) -> Result<Building, AppError> {
    store::get_building(state.db.pool(), id)
        .await?
        .ok_or_else(|| AppError::not_found("building", id))
}

async fn require_door(state: &AccessState, id: &str) -> Result<Door, AppError> {
    store::get_door(state.db.pool(), id)
        .await?
        .ok_or_else(|| AppError::not_found("door", id))
}

/// Checks that a body's `buildingId` exists (422 naming the field otherwise).
async fn check_building_ref(state: &AccessState, id: &str) -> Result<(), AppError> {
    match store::get_building(state.db.pool(), id).await? {
        Some(_) => Ok(()),
        None => Err(AppError::invalid(
            "buildingId",
            format!("building {id} does not exist"),
        )),
    }
}

/// List buildings.
#[utoipa::path(get, path = "/api/buildings", tag = "buildings", params(Page),
    responses((status = 200, body = BuildingList), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_buildings(
    State(state): State<AccessState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Response, AppError> {
    let buildings = store::list_buildings(state.db.pool(), page.limit(), page.offset()).await?;
    Ok(json(StatusCode::OK, &BuildingList { buildings }))
}

/// Create a building.
#[utoipa::path(post, path = "/api/buildings", tag = "buildings", request_body = BuildingInput,
    responses((status = 201, body = Building), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_building(
    State(state): State<AccessState>,
    ApiJson(input): ApiJson<BuildingInput>,
) -> Result<Response, AppError> {
    let b =
        store::create_building(state.db.pool(), input.name.trim(), input.address.trim()).await?;
    Ok(json(StatusCode::CREATED, &b))
}

/// One building.
#[utoipa::path(get, path = "/api/buildings/{id}", tag = "buildings", params(("id" = String, Path)),
    responses((status = 200, body = Building), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_building(
    State(state): State<AccessState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, AppError> {
    Ok(json(StatusCode::OK, &require_building(&state, &id).await?))
}

/// Replace a building's name and address.
#[utoipa::path(put, path = "/api/buildings/{id}", tag = "buildings", params(("id" = String, Path)),
    request_body = BuildingInput,
    responses((status = 200, body = Building), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_building(
    State(state): State<AccessState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<BuildingInput>,
) -> Result<Response, AppError> {
    let b = store::update_building(
        state.db.pool(),
        &id,
        input.name.trim(),
        input.address.trim(),
    )
    .await?
    .ok_or_else(|| AppError::not_found("building", &id))?;
    Ok(json(StatusCode::OK, &b))
}

/// Delete a building without doors.
#[utoipa::path(delete, path = "/api/buildings/{id}", tag = "buildings", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn delete_building(
    State(state): State<AccessState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    require_building(&state, &id).await?;
    if store::count_doors(state.db.pool(), &id).await? > 0 {
        return Err(AppError::Conflict(format!(
            "building {id} still has doors; delete them first"
        )));
    }
    match store::delete_building(state.db.pool(), &id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(AppError::not_found("building", &id)),
        Err(e) if crate::storage::is_constraint_violation(&e) => Err(AppError::Conflict(format!(
            "building {id} still has doors; delete them first"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// List doors, optionally of one building.
#[utoipa::path(get, path = "/api/doors", tag = "doors", params(DoorQuery),
    responses((status = 200, body = DoorList), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_doors(
    State(state): State<AccessState>,
    ApiQuery(q): ApiQuery<DoorQuery>,
) -> Result<Response, AppError> {
    let page = q.page();
    let doors = store::list_doors(
        state.db.pool(),
        q.building_id.as_deref(),
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(json(StatusCode::OK, &DoorList { doors }))
}

/// Create a door in an existing building.
#[utoipa::path(post, path = "/api/doors", tag = "doors", request_body = DoorInput,
    responses((status = 201, body = Door), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_door(
    State(state): State<AccessState>,
    ApiJson(input): ApiJson<DoorInput>,
) -> Result<Response, AppError> {
    check_building_ref(&state, &input.building_id).await?;
    let door = store::create_door(
        state.db.pool(),
        input.name.trim(),
        &input.building_id,
        input.locked,
    )
    .await
    .map_err(|e| {
        if crate::storage::is_constraint_violation(&e) {
            AppError::invalid("buildingId", "building does not exist")
        } else {
            e.into()
        }
    })?;
    Ok(json(StatusCode::CREATED, &door))
}

/// One door.
#[utoipa::path(get, path = "/api/doors/{id}", tag = "doors", params(("id" = String, Path)),
    responses((status = 200, body = Door), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_door(
    State(state): State<AccessState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, AppError> {
    Ok(json(StatusCode::OK, &require_door(&state, &id).await?))
}

/// Replace a door's fields.
#[utoipa::path(put, path = "/api/doors/{id}", tag = "doors", params(("id" = String, Path)),
    request_body = DoorInput,
    responses((status = 200, body = Door), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_door(
    State(state): State<AccessState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<DoorInput>,
) -> Result<Response, AppError> {
    require_door(&state, &id).await?;
    check_building_ref(&state, &input.building_id).await?;
    let door = store::update_door(
        state.db.pool(),
        &id,
        input.name.trim(),
        &input.building_id,
        input.locked,
    )
    .await?
    .ok_or_else(|| AppError::not_found("door", &id))?;
    Ok(json(StatusCode::OK, &door))
}

/// Delete a door.
#[utoipa::path(delete, path = "/api/doors/{id}", tag = "doors", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_door(
    State(state): State<AccessState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    if store::delete_door(state.db.pool(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("door", &id))
    }
}

/// Report a forced door: publishes `door.forced` (critical).
#[utoipa::path(post, path = "/api/doors/{id}/forced", tag = "doors", params(("id" = String, Path)),
    responses((status = 200, body = ForcedResult), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn door_forced(
    State(state): State<AccessState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, AppError> {
    let door = require_door(&state, &id).await?;
    let timestamp = Utc::now();
    let event = state
        .publisher
        .publish_door_forced(DoorForced {
            door_id: door.id.clone(),
            building_id: door.building_id.clone(),
            timestamp,
            severity: Severity::Critical,
        })
        .await
        .map_err(|e| AppError::Unavailable(format!("event bus: {e}")))?;
    Ok(json(
        StatusCode::OK,
        &ForcedResult {
            door_id: door.id,
            building_id: door.building_id,
            severity: "critical".to_owned(),
            timestamp,
            event_id: event.id,
        },
    ))
}

/// A user's access profile.
#[utoipa::path(get, path = "/api/access/profiles/{userId}", tag = "profiles",
    params(("userId" = String, Path)),
    responses((status = 200, body = AccessProfile), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_profile(
    State(state): State<AccessState>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Response, AppError> {
    let profile = store::get_profile(state.db.pool(), &user_id)
        .await?
        .ok_or_else(|| AppError::not_found("access profile", &user_id))?;
    Ok(json(StatusCode::OK, &profile))
}

/// Create or replace a user's access profile (201 when created).
#[utoipa::path(put, path = "/api/access/profiles/{userId}", tag = "profiles",
    params(("userId" = String, Path)), request_body = ProfileInput,
    responses((status = 200, body = AccessProfile), (status = 201, body = AccessProfile),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_profile(
    State(state): State<AccessState>,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(input): ApiJson<ProfileInput>,
) -> Result<Response, AppError> {
    crate::services::api::check_id("userId", &user_id)?;
    let pool = state.db.pool();
    if let Some(i) = store::missing_ids(pool, Table::Buildings, &input.building_ids).await? {
        return Err(AppError::invalid(
            format!("buildingIds[{i}]"),
            "building does not exist",
        ));
    }
    if let Some(i) = store::missing_ids(pool, Table::Doors, &input.door_ids).await? {
        return Err(AppError::invalid(
            format!("doorIds[{i}]"),
            "door does not exist",
        ));
    }
    let fields = ProfileFields {
        all_doors: input.all_doors,
        building_ids: &input.building_ids,
        door_ids: &input.door_ids,
        schedule: input.schedule.as_deref(),
    };
    let created = store::put_profile(pool, &user_id, &fields).await?;
    let profile = store::get_profile(pool, &user_id)
        .await?
        .ok_or_else(|| AppError::not_found("access profile", &user_id))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &profile))
}

/// Decide an access attempt (200 whatever the decision) and publish `access.granted` or
/// `access.denied`.
#[utoipa::path(post, path = "/api/access/attempts", tag = "attempts", request_body = AttemptInput,
    responses((status = 200, body = AttemptResult), (status = 404, body = Problem, content_type = "application/problem+json", description = "unknown door"),
        (status = 422, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn attempt(
    State(state): State<AccessState>,
    ApiJson(input): ApiJson<AttemptInput>,
) -> Result<Response, AppError> {
    let door = require_door(&state, &input.door_id).await?;
    let profile = store::get_profile(state.db.pool(), &input.user_id).await?;
    let timestamp = Utc::now();
    let (decision, reason) = decide(profile.as_ref(), &door, timestamp);
    let published = match decision {
        Decision::Granted => {
            state
                .publisher
                .publish_access_granted(AccessGranted {
                    user_id: input.user_id.clone(),
                    door_id: door.id.clone(),
                    building_id: door.building_id.clone(),
                    access_method: input.access_method.into(),
                    timestamp,
                })
                .await
        }
        Decision::Denied => {
            state
                .publisher
                .publish_access_denied(AccessDenied {
                    user_id: Some(input.user_id.clone()),
                    door_id: door.id.clone(),
                    building_id: door.building_id.clone(),
                    access_method: input.access_method.into(),
                    reason: reason.to_owned(),
                    timestamp,
                })
                .await
        }
    };
    let event = published.map_err(|e| AppError::Unavailable(format!("event bus: {e}")))?;
    Ok(json(
        StatusCode::OK,
        &AttemptResult {
            decision,
            reason: reason.to_owned(),
            user_id: input.user_id,
            door_id: door.id,
            building_id: door.building_id,
            timestamp,
            event_id: event.id,
        },
    ))
}

/// Every door (for other services; needs a service token with `internal:read`).
#[utoipa::path(get, path = "/internal/doors", tag = "internal", params(Page),
    responses((status = 200, body = DoorList), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn internal_doors(
    State(state): State<AccessState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Response, AppError> {
    let doors = store::list_doors(state.db.pool(), None, page.limit(), page.offset()).await?;
    Ok(json(StatusCode::OK, &DoorList { doors }))
}
