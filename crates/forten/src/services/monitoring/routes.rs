//! The monitoring-service's HTTP handlers and their OpenAPI description.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use forten_shared::events::{AlertAcknowledged, AlertResolved, CameraOnline};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    Alert, AlertAction, AlertList, AlertQuery, AlertStatus, Camera, CameraInput, CameraList,
    CameraQuery,
};
use super::store::{self, CameraFields};
use super::{MonitoringState, now};
use crate::services::api::{
    ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery, AppError, Problem, documented_router, json,
};
use crate::storage::now_millis;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "monitoring-service",
        description = "Cameras, heartbeats and alerts"
    ),
    components(schemas(Problem))
)]
struct ApiDoc;

fn public_routes() -> OpenApiRouter<MonitoringState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_cameras, create_camera))
        .routes(routes!(get_camera, update_camera, delete_camera))
        .routes(routes!(heartbeat))
        .routes(routes!(list_alerts))
        .routes(routes!(get_alert))
        .routes(routes!(acknowledge_alert))
        .routes(routes!(resolve_alert))
}

/// The OpenAPI description.
pub(super) fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

/// The public routes with `/openapi.json` and problem+json fallbacks.
pub(super) fn public(state: MonitoringState) -> Router {
    documented_router(public_routes(), state)
}

async fn require_camera(state: &MonitoringState, id: &str) -> Result<Camera, AppError> {
    store::get_camera(state.db.pool(), id)
        .await?
        .ok_or_else(|| AppError::not_found("camera", id))
}

async fn require_alert(state: &MonitoringState, id: &str) -> Result<Alert, AppError> {
    store::get_alert(state.db.pool(), id)
        .await?
        .ok_or_else(|| AppError::not_found("alert", id))
}

fn fields<'a>(state: &MonitoringState, input: &'a CameraInput) -> CameraFields<'a> {
    let default_timeout =
        i64::try_from(state.config.default_heartbeat_timeout.as_secs()).unwrap_or(60);
    CameraFields {
        name: input.name.trim(),
        building_id: &input.building_id,
        location: input.location.as_deref().map(str::trim),
        heartbeat_timeout_secs: input
            .heartbeat_timeout_seconds
            .unwrap_or(default_timeout)
            .max(1),
    }
}

/// List cameras (`?buildingId=`, `?status=`).
#[utoipa::path(get, path = "/api/cameras", tag = "cameras", params(CameraQuery),
    responses((status = 200, body = CameraList), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_cameras(
    State(state): State<MonitoringState>,
    ApiQuery(q): ApiQuery<CameraQuery>,
) -> Result<Response, AppError> {
    let page = q.page();
    let cameras = store::list_cameras(
        state.db.pool(),
        q.building_id.as_deref(),
        q.status,
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(json(StatusCode::OK, &CameraList { cameras }))
}

/// Register a camera (pending until its first heartbeat).
#[utoipa::path(post, path = "/api/cameras", tag = "cameras", request_body = CameraInput,
    responses((status = 201, body = Camera), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_camera(
    State(state): State<MonitoringState>,
    ApiJson(input): ApiJson<CameraInput>,
) -> Result<Response, AppError> {
    let camera = store::create_camera(state.db.pool(), &fields(&state, &input)).await?;
    Ok(json(StatusCode::CREATED, &camera))
}

/// One camera.
#[utoipa::path(get, path = "/api/cameras/{id}", tag = "cameras", params(("id" = String, Path)),
    responses((status = 200, body = Camera), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_camera(
    State(state): State<MonitoringState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, AppError> {
    Ok(json(StatusCode::OK, &require_camera(&state, &id).await?))
}

/// Replace a camera's fields.
#[utoipa::path(put, path = "/api/cameras/{id}", tag = "cameras", params(("id" = String, Path)),
    request_body = CameraInput,
    responses((status = 200, body = Camera), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_camera(
    State(state): State<MonitoringState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<CameraInput>,
) -> Result<Response, AppError> {
    let camera = store::update_camera(state.db.pool(), &id, &fields(&state, &input))
        .await?
        .ok_or_else(|| AppError::not_found("camera", &id))?;
    Ok(json(StatusCode::OK, &camera))
}

/// Delete a camera.
#[utoipa::path(delete, path = "/api/cameras/{id}", tag = "cameras", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_camera(
    State(state): State<MonitoringState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    if store::delete_camera(state.db.pool(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("camera", &id))
    }
}

/// A camera's heartbeat; a camera coming back from offline publishes `camera.online`.
#[utoipa::path(post, path = "/api/cameras/{id}/heartbeat", tag = "cameras",
    params(("id" = String, Path)),
    responses((status = 200, body = Camera), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn heartbeat(
    State(state): State<MonitoringState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, AppError> {
    let camera = require_camera(&state, &id).await?;
    let pool = state.db.pool();
    let at = now();
    let now_ms = at.timestamp_millis();
    if let Some(prev) = store::heartbeat(pool, &camera, now_ms).await? {
        let downtime = u64::try_from((now_ms - prev) / 1000).unwrap_or(0);
        let published = state
            .publisher
            .publish_camera_online(CameraOnline {
                camera_id: camera.id.clone(),
                building_id: camera.building_id.clone(),
                timestamp: at,
                downtime_seconds: downtime,
            })
            .await;
        if let Err(e) = published {
            store::revert_online(pool, &camera.id, now_ms, prev).await?;
            return Err(AppError::Unavailable(format!("event bus: {e}")));
        }
    }
    Ok(json(StatusCode::OK, &require_camera(&state, &id).await?))
}

/// List alerts, newest first (`?status=open|acknowledged|resolved`, `?severity=`).
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, body = AlertList), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_alerts(
    State(state): State<MonitoringState>,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> Result<Response, AppError> {
    let page = q.page();
    let alerts = store::list_alerts(
        state.db.pool(),
        q.status,
        q.severity,
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(json(StatusCode::OK, &AlertList { alerts }))
}

/// One alert.
#[utoipa::path(get, path = "/api/alerts/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = Alert), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_alert(
    State(state): State<MonitoringState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, AppError> {
    Ok(json(StatusCode::OK, &require_alert(&state, &id).await?))
}

/// Who acts: the body's field, else the `x-user-id` header, else `operator`.
fn actor(body: Option<&String>, headers: &HeaderMap) -> String {
    body.cloned()
        .or_else(|| {
            headers
                .get("x-user-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .filter(|s| !s.is_empty() && s.len() <= 200)
        })
        .unwrap_or_else(|| "operator".to_owned())
}

/// Acknowledge an open alert: publishes `alert.acknowledged`.
#[utoipa::path(post, path = "/api/alerts/{id}/acknowledge", tag = "alerts",
    params(("id" = String, Path)), request_body = Option<AlertAction>,
    responses((status = 200, body = Alert), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn acknowledge_alert(
    State(state): State<MonitoringState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJsonOrEmpty(action): ApiJsonOrEmpty<AlertAction>,
) -> Result<Response, AppError> {
    let pool = state.db.pool();
    let by = actor(action.acknowledged_by.as_ref(), &headers);
    let at = now();
    let now_ms = at.timestamp_millis();
    if !store::acknowledge(pool, &id, &by, now_ms).await? {
        let alert = require_alert(&state, &id).await?;
        return Err(AppError::Conflict(format!(
            "alert {id} is {}, not open",
            alert.status.as_str()
        )));
    }
    let published = state
        .publisher
        .publish_alert_acknowledged(AlertAcknowledged {
            alert_id: id.clone(),
            acknowledged_by: by,
            timestamp: at,
        })
        .await;
    if let Err(e) = published {
        store::revert_acknowledge(pool, &id, now_ms).await?;
        return Err(AppError::Unavailable(format!("event bus: {e}")));
    }
    Ok(json(StatusCode::OK, &require_alert(&state, &id).await?))
}

/// Resolve an open or acknowledged alert: publishes `alert.resolved`.
#[utoipa::path(post, path = "/api/alerts/{id}/resolve", tag = "alerts",
    params(("id" = String, Path)), request_body = Option<AlertAction>,
    responses((status = 200, body = Alert), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn resolve_alert(
    State(state): State<MonitoringState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJsonOrEmpty(action): ApiJsonOrEmpty<AlertAction>,
) -> Result<Response, AppError> {
    let pool = state.db.pool();
    let by = actor(action.resolved_by.as_ref(), &headers);
    let alert = require_alert(&state, &id).await?;
    if alert.status == AlertStatus::Resolved {
        return Err(AppError::Conflict(format!(
            "alert {id} is already resolved"
        )));
    }
    let now_ms = now_millis();
    let at = crate::storage::from_millis(now_ms);
    if !store::resolve(pool, &id, alert.status, &by, now_ms).await? {
        return Err(AppError::Conflict(format!(
            "alert {id} changed meanwhile; try again"
        )));
    }
    let published = state
        .publisher
        .publish_alert_resolved(AlertResolved {
            alert_id: id.clone(),
            resolved_by: by,
            timestamp: at,
        })
        .await;
    if let Err(e) = published {
        store::revert_resolve(pool, &id, alert.status, now_ms).await?;
        return Err(AppError::Unavailable(format!("event bus: {e}")));
    }
    Ok(json(StatusCode::OK, &require_alert(&state, &id).await?))
}
