//! The environment of `forten up` / `forten run` (SPEC §3), read and checked in one place.
//!
//! Every setting is read through a lookup function (the process environment in production, a
//! map in tests), and a missing or malformed one fails with one line naming it.

use std::path::PathBuf;
use std::str::FromStr;

use forten_shared::auth::AuthMode;

use crate::services::access::DefaultPolicy;

/// The environment variables the services read (SPEC §3), for the deployment files' tests.
pub(crate) mod env {
    use forten_shared::telemetry::env as telemetry;

    /// The broker; without it `forten up` uses the in-process bus.
    pub(crate) const RABBITMQ_URL: &str = "RABBITMQ_URL";
    /// The registry (the api-gateway).
    pub(crate) const REGISTRY_URL: &str = "REGISTRY_URL";
    /// This service's secret towards the issuer (issuer mode).
    pub(crate) const SERVICE_SECRET: &str = "SERVICE_SECRET";
    /// The HS256 key of user tokens and (shared-secret mode) service tokens.
    pub(crate) const JWT_SECRET: &str = "JWT_SECRET";
    /// `postgres://…` or `sqlite://…`; without it, SQLite under `FORTEN_DATA_DIR`.
    pub(crate) const DATABASE_URL: &str = "DATABASE_URL";
    /// The registry's shared store (several gateways).
    pub(crate) const REDIS_URL: &str = "REDIS_URL";
    /// The address to listen on.
    pub(crate) const HOST: &str = "HOST";
    /// The port to listen on (`0`: any free port).
    pub(crate) const PORT: &str = "PORT";
    /// The URL other services reach this instance at.
    pub(crate) const ADVERTISE_URL: &str = "ADVERTISE_URL";
    /// The embedded databases' directory.
    pub(crate) const FORTEN_DATA_DIR: &str = "FORTEN_DATA_DIR";
    /// `shared-secret` or `issuer`.
    pub(crate) const SERVICE_AUTH_MODE: &str = "SERVICE_AUTH_MODE";
    /// The auth-service's base URL for service tokens (issuer mode).
    pub(crate) const FORTEN_ISSUER_URL: &str = "FORTEN_ISSUER_URL";
    /// The bootstrap admin's e-mail.
    pub(crate) const FORTEN_ADMIN_EMAIL: &str = "FORTEN_ADMIN_EMAIL";
    /// The bootstrap admin's password.
    pub(crate) const FORTEN_ADMIN_PASSWORD: &str = "FORTEN_ADMIN_PASSWORD";
    /// A new user's access profile: `all` or `none`.
    pub(crate) const ACCESS_DEFAULT_POLICY: &str = "ACCESS_DEFAULT_POLICY";

    /// Every variable above, plus the telemetry ones read by `forten-shared`.
    pub(crate) const ALL: &[&str] = &[
        RABBITMQ_URL,
        REGISTRY_URL,
        SERVICE_SECRET,
        JWT_SECRET,
        DATABASE_URL,
        REDIS_URL,
        HOST,
        PORT,
        ADVERTISE_URL,
        FORTEN_DATA_DIR,
        SERVICE_AUTH_MODE,
        FORTEN_ISSUER_URL,
        FORTEN_ADMIN_EMAIL,
        FORTEN_ADMIN_PASSWORD,
        ACCESS_DEFAULT_POLICY,
        telemetry::RUST_LOG,
        telemetry::LOG_FORMAT,
        telemetry::OTEL_EXPORTER_OTLP_ENDPOINT,
        telemetry::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
        forten_shared::auth::SERVICE_POLICY_ENV,
        forten_shared::auth::SERVICE_POLICY_FILE_ENV,
    ];
}

/// A setting is missing or malformed: one line naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub(crate) struct SettingsError {
    /// The variable (or flag).
    pub(crate) name: &'static str,
    /// What is wrong with it.
    pub(crate) message: String,
}

impl SettingsError {
    pub(crate) fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
        }
    }
}

/// The settings every service process shares (SPEC §3).
#[derive(Clone, Default)]
pub(crate) struct Settings {
    /// `RABBITMQ_URL`.
    pub(crate) rabbitmq_url: Option<String>,
    /// `REGISTRY_URL` (default `http://127.0.0.1:3000`).
    pub(crate) registry_url: Option<String>,
    /// `SERVICE_SECRET`.
    pub(crate) service_secret: Option<String>,
    /// `JWT_SECRET` (at least 32 bytes).
    pub(crate) jwt_secret: Option<String>,
    /// `DATABASE_URL`.
    pub(crate) database_url: Option<String>,
    /// `REDIS_URL`.
    pub(crate) redis_url: Option<String>,
    /// `HOST` (default `127.0.0.1`).
    pub(crate) host: Option<String>,
    /// `PORT`.
    pub(crate) port: Option<u16>,
    /// `ADVERTISE_URL`.
    pub(crate) advertise_url: Option<String>,
    /// `FORTEN_DATA_DIR` (default `./forten-data`).
    pub(crate) data_dir: Option<PathBuf>,
    /// `SERVICE_AUTH_MODE` (default `shared-secret`).
    pub(crate) auth_mode: AuthMode,
    /// `FORTEN_ISSUER_URL` (default `http://127.0.0.1:3001`).
    pub(crate) issuer_url: Option<String>,
    /// `FORTEN_ADMIN_EMAIL`.
    pub(crate) admin_email: Option<String>,
    /// `FORTEN_ADMIN_PASSWORD`.
    pub(crate) admin_password: Option<String>,
    /// `ACCESS_DEFAULT_POLICY` (default `all`).
    pub(crate) access_policy: DefaultPolicy,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("Settings")
            .field(
                "rabbitmq_url",
                &self.rabbitmq_url.as_deref().map(redact_url),
            )
            .field("registry_url", &self.registry_url)
            .field("service_secret", &redact(&self.service_secret))
            .field("jwt_secret", &redact(&self.jwt_secret))
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("advertise_url", &self.advertise_url)
            .field("data_dir", &self.data_dir)
            .field("auth_mode", &self.auth_mode)
            .field("issuer_url", &self.issuer_url)
            .field("admin_email", &self.admin_email)
            .field("admin_password", &redact(&self.admin_password))
            .field("access_policy", &self.access_policy)
            .finish()
    }
}

/// `scheme://user:password@host…` without the password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://[redacted]@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// The shortest `JWT_SECRET` accepted (HS256 wants a key as long as the hash).
pub(crate) const MIN_SECRET_LEN: usize = 32;

impl Settings {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `lookup` (blank values count as unset).
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let get = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let url = |name: &'static str, schemes: &[&str]| -> Result<Option<String>, SettingsError> {
            let Some(v) = get(name) else { return Ok(None) };
            let scheme = v.split_once("://").map(|(s, _)| s).unwrap_or_default();
            if schemes.contains(&scheme) {
                Ok(Some(v))
            } else {
                Err(SettingsError::new(
                    name,
                    format!("{} is not a {} URL", redact_url(&v), schemes.join(" or ")),
                ))
            }
        };
        let settings = Self {
            rabbitmq_url: url(env::RABBITMQ_URL, &["amqp", "amqps"])?,
            registry_url: url(env::REGISTRY_URL, &["http", "https"])?,
            service_secret: get(env::SERVICE_SECRET),
            jwt_secret: match get(env::JWT_SECRET) {
                Some(s) if s.len() < MIN_SECRET_LEN => {
                    return Err(SettingsError::new(
                        env::JWT_SECRET,
                        format!(
                            "must be at least {MIN_SECRET_LEN} bytes (it has {})",
                            s.len()
                        ),
                    ));
                }
                other => other,
            },
            database_url: url(env::DATABASE_URL, &["postgres", "postgresql", "sqlite"])?,
            redis_url: url(env::REDIS_URL, &["redis", "rediss"])?,
            host: get(env::HOST),
            port: get(env::PORT)
                .map(|p| {
                    p.parse::<u16>().map_err(|_| {
                        SettingsError::new(
                            env::PORT,
                            format!("{p:?} is not a port number (0-65535)"),
                        )
                    })
                })
                .transpose()?,
            advertise_url: url(env::ADVERTISE_URL, &["http", "https"])?,
            data_dir: get(env::FORTEN_DATA_DIR).map(PathBuf::from),
            auth_mode: match get(env::SERVICE_AUTH_MODE).as_deref() {
                None | Some("shared-secret") => AuthMode::SharedSecret,
                Some("issuer") => AuthMode::Issuer,
                Some(other) => {
                    return Err(SettingsError::new(
                        env::SERVICE_AUTH_MODE,
                        format!("must be `shared-secret` or `issuer`, not {other:?}"),
                    ));
                }
            },
            issuer_url: url(env::FORTEN_ISSUER_URL, &["http", "https"])?,
            admin_email: get(env::FORTEN_ADMIN_EMAIL),
            admin_password: get(env::FORTEN_ADMIN_PASSWORD),
            access_policy: get(env::ACCESS_DEFAULT_POLICY)
                .map(|p| DefaultPolicy::from_str(&p))
                .transpose()
                .map_err(|e| SettingsError::new(env::ACCESS_DEFAULT_POLICY, e.to_string()))?
                .unwrap_or_default(),
        };
        Ok(settings)
    }

    /// The registry's URL.
    pub(crate) fn registry_url(&self) -> &str {
        self.registry_url
            .as_deref()
            .unwrap_or("http://127.0.0.1:3000")
    }

    /// The address to listen on.
    pub(crate) fn host(&self) -> &str {
        self.host.as_deref().unwrap_or("127.0.0.1")
    }

    /// The embedded databases' directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("./forten-data"))
    }

    /// The auth-service's URL for service tokens (issuer mode).
    pub(crate) fn issuer_url(&self) -> &str {
        self.issuer_url
            .as_deref()
            .unwrap_or("http://127.0.0.1:3001")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_without_environment() {
        let s = read(&[]).unwrap();
        assert_eq!(s.registry_url(), "http://127.0.0.1:3000");
        assert_eq!(s.host(), "127.0.0.1");
        assert_eq!(s.data_dir(), PathBuf::from("./forten-data"));
        assert_eq!(s.auth_mode, AuthMode::SharedSecret);
        assert_eq!(s.access_policy, DefaultPolicy::All);
        assert!(s.rabbitmq_url.is_none() && s.database_url.is_none() && s.port.is_none());
    }

    #[test]
    fn reads_every_setting() {
        let s = read(&[
            ("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            ("DATABASE_URL", "postgres://127.0.0.1/test"),
            ("PORT", "0"),
            ("SERVICE_AUTH_MODE", "issuer"),
            ("ACCESS_DEFAULT_POLICY", "none"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("HOST", " 0.0.0.0 "),
        ])
        .unwrap();
        assert_eq!(s.port, Some(0));
        assert_eq!(s.auth_mode, AuthMode::Issuer);
        assert_eq!(s.access_policy, DefaultPolicy::None);
        assert_eq!(s.host(), "0.0.0.0");
        assert!(
            !format!("{s:?}").contains("0123456789abcdef"),
            "secrets are redacted"
        );
        assert!(
            !format!("{s:?}").contains("guest:guest"),
            "URL passwords are redacted"
        );
    }

    #[test]
    fn a_bad_setting_is_named_in_one_line() {
        for (var, value) in [
            ("PORT", "http"),
            ("PORT", "70000"),
            ("RABBITMQ_URL", "http://x"),
            ("DATABASE_URL", "mysql://x"),
            ("SERVICE_AUTH_MODE", "magic"),
            ("ACCESS_DEFAULT_POLICY", "some"),
            ("JWT_SECRET", "short"),
            ("REGISTRY_URL", "127.0.0.1:3000"),
        ] {
            let e = read(&[(var, value)]).unwrap_err();
            assert_eq!(e.name, var);
            assert!(!e.to_string().contains('\n'));
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }
}
