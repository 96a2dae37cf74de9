//! The gateway's router: the proxy under `/api`, the dashboard at `/`, `/openapi.json`, and
//! the OpenAPI description of the proxied prefixes.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, Ref, Required, ResponseBuilder};

use super::GatewayState;
use super::proxy::proxy;
use super::table::Route;
use crate::services::api::{PROBLEM_JSON, Problem, fallback, openapi_route};

/// The operator dashboard: one self-contained page (no external assets).
const DASHBOARD_HTML: &str = include_str!("dashboard.html");

#[derive(OpenApi)]
#[openapi(
    info(
        title = "api-gateway",
        description = "The single entry point: `/api/**` is proxied to the owning service \
            (discovery, load balancing, circuit breaking, retries) after a user-token check \
            (all but `POST /api/auth/login` need `Authorization: Bearer <token>`); the service \
            registry is under `/registry` (SPEC §6); `/` is the operator dashboard."
    ),
    paths(dashboard),
    components(schemas(Problem))
)]
struct ApiDoc;

/// The operator dashboard: log in, then watch the registry's services and instances.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    responses((status = 200, description = "The dashboard page", content_type = "text/html"))
)]
async fn dashboard() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        DASHBOARD_HTML,
    )
}

/// The description: the dashboard, then each proxied prefix (any method) with the answers
/// the gateway itself may give.
pub(super) fn openapi(routes: &[Route]) -> utoipa::openapi::OpenApi {
    let mut api = ApiDoc::openapi();
    let problem = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content(
                PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build()
    };
    let methods = || {
        vec![
            HttpMethod::Get,
            HttpMethod::Post,
            HttpMethod::Put,
            HttpMethod::Patch,
            HttpMethod::Delete,
        ]
    };
    for route in routes {
        let operation = |with_rest: bool| {
            let mut op = OperationBuilder::new()
                .tag(route.service.clone())
                .summary(Some(format!("Proxied to {}", route.service)))
                .description(Some(format!(
                    "Forwarded unchanged (method, path, query, body, `Authorization`) to an \
                     instance of `{}`; its answer is relayed, the body streamed.",
                    route.service
                )))
                .response(
                    "2XX",
                    ResponseBuilder::new()
                        .description("The service's answer, relayed")
                        .build(),
                )
                .response("401", problem("Missing or invalid user token"))
                .response("404", problem("No service serves this path"))
                .response("413", problem("Request body too large"))
                .response(
                    "503",
                    problem("The service cannot answer; `service` and `circuit` say why"),
                )
                .response("504", problem("The service did not answer in time"));
            if with_rest {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name("path")
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .description(Some("The rest of the path, passed on unchanged"))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
            op.build()
        };
        api.paths
            .add_path_operation(&route.prefix, methods(), operation(false));
        api.paths.add_path_operation(
            format!("{}/{{path}}", route.prefix),
            methods(),
            operation(true),
        );
    }
    api
}

/// The router (see [`super::router`]).
pub(super) fn router(state: GatewayState) -> Router {
    let api = openapi(state.inner.table.routes());
    Router::new()
        .route("/", get(dashboard))
        .route("/api", any(proxy))
        .route("/api/{*rest}", any(proxy))
        .merge(openapi_route(api))
        .fallback(fallback)
        .with_state(state)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::services::gateway::{SERVICE, default_routes};

    #[test]
    fn openapi_describes_every_prefix_and_the_dashboard() {
        let api = openapi(&default_routes());
        let json = serde_json::to_value(&api).unwrap();
        let paths = json["paths"].as_object().unwrap();
        assert!(paths.contains_key("/"));
        for route in default_routes() {
            assert!(paths.contains_key(&route.prefix), "{}", route.prefix);
            let rest = format!("{}/{{path}}", route.prefix);
            assert_eq!(paths[&rest]["get"]["tags"][0], route.service.as_str());
        }
        assert_eq!(json["info"]["title"], SERVICE);
    }

    #[test]
    fn the_dashboard_is_self_contained() {
        assert!(DASHBOARD_HTML.contains("/api/auth/login"));
        assert!(DASHBOARD_HTML.contains("/registry/services"));
        assert!(!DASHBOARD_HTML.contains("http://") && !DASHBOARD_HTML.contains("https://"));
    }
}
