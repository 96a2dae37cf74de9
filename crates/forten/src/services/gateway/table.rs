//! The routing table: which service owns which `/api` prefix, and the per-route timeout.

use std::time::Duration;

use super::GatewayError;

/// One entry of the table: requests whose path is `prefix` or lies below it (segment-wise:
/// `/api/doors` owns `/api/doors` and `/api/doors/1`, not `/api/doorsX`) go to `service`.
///
/// Invariant (checked by [`RouteTable::new`]): `prefix` starts with `/api/`, has no trailing
/// slash, no empty, `.` or `..` segment and no wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// The path prefix, e.g. `/api/doors`.
    pub(crate) prefix: String,
    /// The owning service, as registered in discovery (e.g. `access-service`).
    pub(crate) service: String,
    /// This route's per-request timeout; `None` uses the gateway's default.
    pub(crate) timeout: Option<Duration>,
}

impl Route {
    /// `prefix` (and everything below it) → `service`.
    pub(crate) fn new(prefix: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            service: service.into(),
            timeout: None,
        }
    }

    /// Overrides the per-request timeout on this route.
    #[must_use]
    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether `path` is this route's prefix or lies below it.
    fn matches(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    fn validate(&self) -> Result<(), GatewayError> {
        let bad = |why: &str| {
            Err(GatewayError::InvalidConfig(format!(
                "route {:?}: {why}",
                self.prefix
            )))
        };
        let Some(rest) = self.prefix.strip_prefix("/api/") else {
            return bad("must start with /api/");
        };
        if rest
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return bad("must not end with / nor have empty, . or .. segments");
        }
        if rest.contains(['{', '}', '*', '?', '#', '%', '\\']) {
            return bad("must be a plain path (no wildcard, query or escape)");
        }
        if self.service.trim().is_empty() {
            return bad("names no service");
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return bad("timeout must be positive");
        }
        Ok(())
    }
}

/// The routes of SPEC §8: auth-service owns `/api/auth/**` and `/api/users/**`,
/// access-service `/api/buildings/**`, `/api/doors/**` and `/api/access/**`,
/// monitoring-service `/api/cameras/**` and `/api/alerts/**`, analytics-service
/// `/api/analytics/**`.
pub(crate) fn default_routes() -> Vec<Route> {
    vec![
        Route::new("/api/auth", "auth-service"),
        Route::new("/api/users", "auth-service"),
        Route::new("/api/buildings", "access-service"),
        Route::new("/api/doors", "access-service"),
        Route::new("/api/access", "access-service"),
        Route::new("/api/cameras", "monitoring-service"),
        Route::new("/api/alerts", "monitoring-service"),
        Route::new("/api/analytics", "analytics-service"),
    ]
}

/// The validated table, longest prefix first (so that a more specific route wins).
#[derive(Debug, Clone)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Checks every route (and that no prefix appears twice).
    pub(crate) fn new(routes: &[Route]) -> Result<Self, GatewayError> {
        let mut routes = routes.to_vec();
        for r in &routes {
            r.validate()?;
        }
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        if let Some(w) = routes.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(GatewayError::InvalidConfig(format!(
                "route {:?} appears twice",
                w[0].prefix
            )));
        }
        Ok(Self { routes })
    }

    /// The route owning `path`, if any.
    pub(crate) fn resolve(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }

    /// The routes, longest prefix first.
    pub(crate) fn routes(&self) -> &[Route] {
        &self.routes
    }
}

/// Whether a request path is safe to forward: no `.` or `..` segment, even percent-encoded,
/// and no backslash (an HTTP client would normalise them, letting `/api/users/../internal`
/// escape the prefix it was routed by).
pub(crate) fn is_safe_path(path: &str) -> bool {
    !path.contains('\\')
        && path.split('/').all(|segment| {
            let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
            decoded != "." && decoded != ".."
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new(&default_routes()).unwrap()
    }

    fn owner(path: &str) -> Option<String> {
        table().resolve(path).map(|r| r.service.clone())
    }

    #[test]
    fn spec_prefixes_resolve_to_their_owner() {
        for (path, service) in [
            ("/api/auth/login", "auth-service"),
            ("/api/users", "auth-service"),
            ("/api/users/42", "auth-service"),
            ("/api/buildings", "access-service"),
            ("/api/buildings/1", "access-service"),
            ("/api/doors/7/forced", "access-service"),
            ("/api/access/profiles/u1", "access-service"),
            ("/api/cameras/c1/heartbeat", "monitoring-service"),
            ("/api/alerts", "monitoring-service"),
            ("/api/analytics/metrics", "analytics-service"),
        ] {
            assert_eq!(owner(path).as_deref(), Some(service), "{path}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments_only() {
        for path in [
            "/api/doorsX",
            "/api/userservice",
            "/api",
            "/api/",
            "/api/unknown",
            "/apix/doors",
        ] {
            assert_eq!(owner(path), None, "{path}");
        }
    }

    #[test]
    fn the_longest_prefix_wins() {
        let t = RouteTable::new(&[
            Route::new("/api/access", "access-service"),
            Route::new("/api/access/reports", "analytics-service"),
        ])
        .unwrap();
        assert_eq!(
            t.resolve("/api/access/reports/x").unwrap().service,
            "analytics-service"
        );
        assert_eq!(
            t.resolve("/api/access/profiles").unwrap().service,
            "access-service"
        );
    }

    #[test]
    fn bad_routes_are_refused() {
        for bad in [
            Route::new("/doors", "s"),
            Route::new("/api/doors/", "s"),
            Route::new("/api//doors", "s"),
            Route::new("/api/../internal", "s"),
            Route::new("/api/{id}", "s"),
            Route::new("/api/doors", " "),
            Route::new("/api/doors", "s").timeout(Duration::ZERO),
        ] {
            assert!(
                RouteTable::new(std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
        let twice = [Route::new("/api/a", "s"), Route::new("/api/a", "t")];
        assert!(RouteTable::new(&twice).is_err());
    }

    #[test]
    fn dot_segments_are_unsafe() {
        for bad in [
            "/api/users/../internal/doors",
            "/api/users/%2e%2e/internal",
            "/api/users/.%2E/x",
            "/api/users/./x",
            "/api/users/..",
            "/api/users\\..\\internal",
        ] {
            assert!(!is_safe_path(bad), "{bad}");
        }
        for good in [
            "/api/users/1",
            "/api/users/a..b",
            "/api/users/.hidden",
            "/api/doors",
        ] {
            assert!(is_safe_path(good), "{good}");
        }
    }
}
