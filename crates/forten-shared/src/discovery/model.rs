//! The registry's wire types (SPEC §6), in camelCase JSON.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a service sends to `POST /registry/services` (the guide's `discovery.register({...})`).
///
/// ```
/// use forten_shared::discovery::Registration;
///
/// let reg = Registration::new("auth-service", "1.0.0", "127.0.0.1", 3001)
///     .metadata("capabilities", serde_json::json!(["authentication"]));
/// assert_eq!(reg.url(), "http://127.0.0.1:3001");
/// assert_eq!(reg.health_check_url.as_deref(), Some("http://127.0.0.1:3001/health"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// Instance id to (re)use; the registry generates one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The service name (`auth-service`).
    pub name: String,
    /// The service version.
    #[serde(default)]
    pub version: String,
    /// Host the instance answers on.
    pub host: String,
    /// Port the instance answers on.
    pub port: u16,
    /// Full base URL, when it is not `http://host:port` (`ADVERTISE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL the registry polls; `None` disables active checks for the instance.
    #[serde(default)]
    pub health_check_url: Option<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl Registration {
    /// A registration for `http://host:port`, with health checks at `/health`.
    ///
    /// ```
    /// let reg = forten_shared::discovery::Registration::new("a", "1.0.0", "10.0.0.5", 3002);
    /// assert_eq!(reg.url(), "http://10.0.0.5:3002");
    /// ```
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        host: impl Into<String>,
        port: u16,
    ) -> Self {
        let host = host.into();
        Self {
            id: None,
            name: name.into(),
            version: version.into(),
            health_check_url: Some(format!("http://{host}:{port}/health")),
            host,
            port,
            url: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Sets the advertised base URL (and the health URL under it).
    ///
    /// ```
    /// let reg = forten_shared::discovery::Registration::new("a", "1", "0.0.0.0", 1)
    ///     .advertise_url("https://a.internal:8443/");
    /// assert_eq!(reg.url(), "https://a.internal:8443");
    /// assert_eq!(reg.health_check_url.as_deref(), Some("https://a.internal:8443/health"));
    /// ```
    #[must_use]
    pub fn advertise_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into().trim_end_matches('/').to_owned();
        self.health_check_url = Some(format!("{url}/health"));
        self.url = Some(url);
        self
    }

    /// Sets (or with `None` disables) the health-check URL.
    ///
    /// ```
    /// let reg = forten_shared::discovery::Registration::new("a", "1", "h", 1).health_check_url(None);
    /// assert!(reg.health_check_url.is_none());
    /// ```
    #[must_use]
    pub fn health_check_url(mut self, url: Option<String>) -> Self {
        self.health_check_url = url;
        self
    }

    /// Adds one metadata entry.
    ///
    /// ```
    /// let reg = forten_shared::discovery::Registration::new("a", "1", "h", 1).metadata("zone", "eu".into());
    /// assert_eq!(reg.metadata["zone"], "eu");
    /// ```
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    /// The instance's base URL.
    ///
    /// ```
    /// assert_eq!(forten_shared::discovery::Registration::new("a", "1", "h", 80).url(), "http://h:80");
    /// ```
    pub fn url(&self) -> String {
        match &self.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.host, self.port),
        }
    }
}

/// Health of an instance as the registry sees it.
///
/// ```
/// use forten_shared::discovery::InstanceStatus;
/// assert_eq!(InstanceStatus::Healthy.as_str(), "healthy");
/// assert_eq!(serde_json::to_string(&InstanceStatus::Unhealthy).unwrap(), "\"unhealthy\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    /// Passing its health checks (or not checked): handed out.
    Healthy,
    /// Failing its health checks: not handed out.
    Unhealthy,
}

impl InstanceStatus {
    /// The lowercase name.
    ///
    /// ```
    /// assert_eq!(forten_shared::discovery::InstanceStatus::Unhealthy.as_str(), "unhealthy");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One registered instance, as `GET /registry/services/{name}` lists it.
///
/// ```
/// use forten_shared::discovery::{Registration, ServiceInstance};
/// let inst = ServiceInstance::from_registration("i-1".into(), &Registration::new("a", "1", "h", 80), chrono::Utc::now());
/// assert_eq!(inst.url, "http://h:80");
/// let json = serde_json::to_value(&inst).unwrap();
/// assert!(json.get("healthCheckUrl").is_some() && json.get("lastHeartbeat").is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstance {
    /// Instance id.
    pub id: String,
    /// Service name.
    pub name: String,
    /// Service version.
    pub version: String,
    /// Base URL.
    pub url: String,
    /// Health-check URL, if checked.
    pub health_check_url: Option<String>,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Health as last checked.
    pub status: InstanceStatus,
    /// When it registered.
    pub registered_at: DateTime<Utc>,
    /// When it last heartbeated.
    pub last_heartbeat: DateTime<Utc>,
}

impl ServiceInstance {
    /// A healthy instance built from a registration at `now`.
    ///
    /// ```
    /// use forten_shared::discovery::{InstanceStatus, Registration, ServiceInstance};
    /// let i = ServiceInstance::from_registration("id".into(), &Registration::new("a", "1", "h", 1), chrono::Utc::now());
    /// assert_eq!(i.status, InstanceStatus::Healthy);
    /// ```
    pub fn from_registration(id: String, reg: &Registration, now: DateTime<Utc>) -> Self {
        Self {
            id,
            name: reg.name.clone(),
            version: reg.version.clone(),
            url: reg.url(),
            health_check_url: reg.health_check_url.clone(),
            metadata: reg.metadata.clone(),
            status: InstanceStatus::Healthy,
            registered_at: now,
            last_heartbeat: now,
        }
    }
}

/// Answer to a registration: `{id, ttlSeconds}`.
///
/// ```
/// let r: forten_shared::discovery::RegisterResponse = serde_json::from_str(r#"{"id":"x","ttlSeconds":30}"#).unwrap();
/// assert_eq!(r.ttl_seconds, 30);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    /// The instance id.
    pub id: String,
    /// Heartbeat at least this often (well within).
    pub ttl_seconds: u64,
}

/// One service in `GET /registry/services`: `{name, instances}`.
///
/// ```
/// let s: forten_shared::discovery::ServiceEntry = serde_json::from_str(r#"{"name":"a","instances":[]}"#).unwrap();
/// assert_eq!(s.name, "a");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// Service name.
    pub name: String,
    /// Its instances (every one, healthy or not).
    pub instances: Vec<ServiceInstance>,
}

/// `GET /registry/services` body: `{"services": [...]}`.
///
/// ```
/// let l: forten_shared::discovery::ServiceList = serde_json::from_str(r#"{"services":[]}"#).unwrap();
/// assert!(l.services.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceList {
    /// Services sorted by name.
    pub services: Vec<ServiceEntry>,
}

/// `GET /registry/services/{name}` body: `{"service": name, "instances": [...]}`.
///
/// ```
/// let d: forten_shared::discovery::Discovered = serde_json::from_str(r#"{"service":"a","instances":[]}"#).unwrap();
/// assert_eq!(d.service, "a");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovered {
    /// Service name.
    pub service: String,
    /// Its instances.
    pub instances: Vec<ServiceInstance>,
}

/// Renders services as the table `forten registry list` prints: service, instance, url,
/// health, age (since registration) and time since the last heartbeat.
///
/// ```
/// use forten_shared::discovery::{Registration, ServiceEntry, ServiceInstance, render_registry_table};
/// let now = chrono::Utc::now();
/// let inst = ServiceInstance::from_registration("i-1".into(), &Registration::new("auth-service", "1.0.0", "h", 80), now - chrono::Duration::seconds(75));
/// let table = render_registry_table(&[ServiceEntry { name: "auth-service".into(), instances: vec![inst] }], now);
/// assert!(table.contains("auth-service") && table.contains("healthy") && table.contains("1m15s"));
/// ```
pub fn render_registry_table(services: &[ServiceEntry], now: DateTime<Utc>) -> String {
    let mut rows = vec![[
        "SERVICE".to_owned(),
        "INSTANCE".to_owned(),
        "VERSION".to_owned(),
        "URL".to_owned(),
        "HEALTH".to_owned(),
        "AGE".to_owned(),
        "LAST HEARTBEAT".to_owned(),
    ]];
    for service in services {
        for inst in &service.instances {
            rows.push([
                service.name.clone(),
                inst.id.clone(),
                inst.version.clone(),
                inst.url.clone(),
                inst.status.to_string(),
                age(now, inst.registered_at),
                format!("{} ago", age(now, inst.last_heartbeat)),
            ]);
        }
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if services.iter().all(|s| s.instances.is_empty()) {
        out.push_str("(no instances registered)\n");
    }
    out
}

fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}
