//! The deployment files — `Dockerfile`, `docker-compose.yml` with `.env.example`, and the
//! Kubernetes manifests under `deploy/k8s/` — checked against the code's own contract, as the
//! built binary prints it (`forten env`): the services and their ports, the environment
//! variables the code reads, the probe paths.
//!
//! Every check collects what disagrees, so that one run names every problem, each as
//! `file: field: what is wrong`. The `*_is_named` tests feed broken copies of the real files to
//! the same checks, so that each check is known to fail when it should.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

/// Variables a deployment file may set on a Forten container although the code does not read
/// them: helpers that other variables refer to (Kubernetes' `$(POD_IP)` in `ADVERTISE_URL`).
const HELPER_VARIABLES: &[&str] = &["POD_IP"];

/// The shortest `JWT_SECRET` the code accepts (`settings::MIN_SECRET_LEN`).
const MIN_JWT_SECRET_LEN: usize = 32;

/// The variables `forten run` cannot start without.
const REQUIRED_BY_RUN: &[&str] = &["JWT_SECRET", "RABBITMQ_URL"];

const COMPOSE: &str = "docker-compose.yml";
const ENV_EXAMPLE: &str = ".env.example";
const DOCKERFILE: &str = "Dockerfile";
const K8S_DIR: &str = "deploy/k8s";

// === the contract ===

/// What `forten env` prints.
#[derive(Debug)]
struct Contract {
    variables: BTreeSet<String>,
    /// Service name → the port it listens on by default.
    ports: BTreeMap<String, u16>,
    live: String,
    ready: String,
}

impl Contract {
    fn knows_variable(&self, name: &str) -> bool {
        self.variables.contains(name) || HELPER_VARIABLES.contains(&name)
    }

    fn is_probe(&self, path: &str) -> bool {
        path == self.live || path == self.ready
    }
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_forten"))
            .arg("env")
            .env_clear()
            .output()
            .expect("run `forten env`");
        assert!(
            out.status.success(),
            "`forten env` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("`forten env` prints JSON");
        let strings = |v: &Value| -> BTreeSet<String> {
            v.as_array()
                .expect("an array")
                .iter()
                .map(|s| s.as_str().expect("a string").to_owned())
                .collect()
        };
        let ports = v["services"]
            .as_array()
            .expect("`services` is an array")
            .iter()
            .map(|s| {
                let name = s["name"].as_str().expect("service name").to_owned();
                let port = u16::try_from(s["port"].as_u64().expect("service port")).unwrap();
                (name, port)
            })
            .collect();
        Contract {
            variables: strings(&v["variables"]),
            ports,
            live: v["probes"]["live"]
                .as_str()
                .expect("probes.live")
                .to_owned(),
            ready: v["probes"]["ready"]
                .as_str()
                .expect("probes.ready")
                .to_owned(),
        }
    })
}

// === reading the files ===

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{relative}: cannot read: {e}"))
}

/// Every YAML document of a file, with `<<` merge keys applied, as JSON values.
fn yaml_documents(relative: &str, text: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    let mut docs = Vec::new();
    for (i, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let mut doc = yaml_serde::Value::deserialize(de)
            .unwrap_or_else(|e| panic!("{relative}: document {i} is not valid YAML: {e}"));
        doc.apply_merge()
            .unwrap_or_else(|e| panic!("{relative}: document {i}: bad merge key: {e}"));
        if doc.is_null() {
            continue;
        }
        docs.push(
            serde_json::to_value(&doc)
                .unwrap_or_else(|e| panic!("{relative}: document {i}: not JSON-like: {e}")),
        );
    }
    docs
}

/// `KEY=value` lines of an env file (comments and blank lines skipped).
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

// === problems ===

/// What disagrees, one line each: `file: field: message`.
#[derive(Debug, Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, file: &str, field: &str, message: impl std::fmt::Display) {
        self.0.push(format!("{file}: {field}: {message}"));
    }

    fn assert_none(&self) {
        assert!(
            self.0.is_empty(),
            "the deployment files disagree with the code (`forten env`):\n  {}",
            self.0.join("\n  ")
        );
    }

    /// For the tests of the checks: exactly one problem, naming `file` and `field`.
    fn assert_names(&self, file: &str, field: &str, words: &str) {
        assert!(
            self.0.iter().any(|p| p.starts_with(&format!("{file}: "))
                && p.contains(field)
                && p.contains(words)),
            "expected a problem naming {file} / {field} / {words:?}, got {:#?}",
            self.0
        );
    }
}

// === URLs ===

/// The parts of a URL the checks look at.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

/// A small URL reader: enough for `scheme://[user:pass@]host[:port][/path]`, including hosts
/// that are placeholders such as `$(POD_IP)`.
fn parse_url(s: &str) -> Option<Url> {
    let (scheme, rest) = s.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h, Some(p.parse().ok()?))
        }
        _ => (host_port, None),
    };
    let port = port.or(match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "amqp" => Some(5672),
        "amqps" => Some(5671),
        "postgres" | "postgresql" => Some(5432),
        "redis" | "rediss" => Some(6379),
        _ => None,
    });
    (!host.is_empty()).then(|| Url {
        scheme: scheme.to_owned(),
        host: host.to_owned(),
        port,
        path: path.split(['?', '#']).next().unwrap_or("/").to_owned(),
    })
}

// === docker compose ===

/// Compose's variable interpolation (`${NAME}`, `${NAME:-default}`, `${NAME:?error}`, `$$`),
/// with `.env` taken to hold what `.env.example` holds. A variable with neither a value nor a
/// default is an error naming it.
fn interpolate(s: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (expr, tail) = if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            (&body[..end], &body[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            (&after[..end], &after[end..])
        };
        let name_end = expr
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(expr.len());
        let (name, modifier) = expr.split_at(name_end);
        let value = env.get(name).filter(|v| !v.is_empty());
        let resolved = match (value, modifier) {
            (Some(v), _) => v.clone(),
            (None, m) if m.starts_with(":-") => m[2..].to_owned(),
            (None, m) if m.starts_with('-') => m[1..].to_owned(),
            (None, _) => return Err(format!("${{{name}}} is not defined in {ENV_EXAMPLE}")),
        };
        out.push_str(&resolved);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// Interpolates every string of `v`; an undefined variable is a problem at its field.
fn interpolate_tree(
    v: &Value,
    env: &BTreeMap<String, String>,
    field: &str,
    problems: &mut Problems,
) -> Value {
    match v {
        Value::String(s) => match interpolate(s, env) {
            Ok(s) => Value::String(s),
            Err(e) => {
                problems.add(COMPOSE, field, e);
                Value::String(s.clone())
            }
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| interpolate_tree(x, env, &format!("{field}[{i}]"), problems))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        interpolate_tree(x, env, &format!("{field}.{k}"), problems),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A compose service's `environment`, in either of its two forms.
fn compose_environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.to_owned(), String::new()),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A compose service's `depends_on`: service → condition.
fn compose_depends_on(service: &Value) -> BTreeMap<String, String> {
    match &service["depends_on"] {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| (s.to_owned(), "service_started".to_owned()))
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let condition = v["condition"].as_str().unwrap_or("service_started");
                (k.clone(), condition.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Is this compose service one of ours (built from this repository, or running `forten run`)?
fn is_forten_compose_service(service: &Value) -> bool {
    service.get("build").is_some()
        || service["image"]
            .as_str()
            .is_some_and(|i| image_name(i) == "forten")
        || service["command"][0].as_str() == Some("run")
}

/// `registry.example.com/team/forten:1.0` → `forten`.
fn image_name(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split([':', '@']).next().unwrap_or(last)
}

/// The container side of a published port (`"3000:3000"`, `"127.0.0.1:80:3000/tcp"`, or the
/// long form).
fn container_port(entry: &Value) -> Option<u16> {
    match entry {
        Value::String(s) => s.rsplit(':').next()?.split('/').next()?.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::Object(m) => match m.get("target")? {
            Value::String(s) => s.parse().ok(),
            n => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        },
        _ => None,
    }
}

fn check_compose(c: &Contract, doc: &Value, env: &BTreeMap<String, String>) -> Problems {
    let mut p = Problems::default();
    let Some(services) = doc["services"].as_object() else {
        p.add(COMPOSE, "services", "missing");
        return p;
    };
    let mut seen = BTreeSet::new();
    // compose service → (forten service, port), for REGISTRY_URL
    let mut instances = BTreeMap::new();
    for (name, raw) in services
        .iter()
        .filter(|(_, s)| is_forten_compose_service(s))
    {
        let at = |f: &str| format!("services.{name}.{f}");
        let service = interpolate_tree(raw, env, &format!("services.{name}"), &mut p);
        // command: ["run", <service>]
        let command: Vec<&str> = service["command"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let kind = match command.as_slice() {
            ["run", kind, ..] if c.ports.contains_key(*kind) => (*kind).to_owned(),
            ["run", other, ..] => {
                p.add(
                    COMPOSE,
                    &at("command"),
                    format!(
                        "{other:?} is not a service of the code (known: {:?})",
                        c.ports.keys()
                    ),
                );
                continue;
            }
            _ => {
                p.add(
                    COMPOSE,
                    &at("command"),
                    format!(
                        "must be [\"run\", \"<service>\"], not {}",
                        service["command"]
                    ),
                );
                continue;
            }
        };
        seen.insert(kind.clone());
        let code_port = c.ports[&kind];
        let environment = compose_environment(&service);
        for var in environment.keys() {
            if !c.knows_variable(var) {
                p.add(
                    COMPOSE,
                    &at(&format!("environment.{var}")),
                    "not a variable the code reads (`forten env`)",
                );
            }
        }
        for var in REQUIRED_BY_RUN {
            if !environment.contains_key(*var) {
                p.add(
                    COMPOSE,
                    &at(&format!("environment.{var}")),
                    "missing: `forten run` requires it",
                );
            }
        }
        if let Some(secret) = environment.get("JWT_SECRET")
            && secret.len() < MIN_JWT_SECRET_LEN
        {
            p.add(
                COMPOSE,
                &at("environment.JWT_SECRET"),
                format!(
                    "{} bytes from {ENV_EXAMPLE}; the code wants at least {MIN_JWT_SECRET_LEN}",
                    secret.len()
                ),
            );
        }
        if let Some(host) = environment.get("HOST")
            && matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1")
        {
            p.add(
                COMPOSE,
                &at("environment.HOST"),
                "a container must listen on every interface (0.0.0.0)",
            );
        }
        let port = match environment.get("PORT").map(|s| s.parse::<u16>()) {
            None => code_port,
            Some(Ok(port)) => {
                if port != code_port {
                    p.add(
                        COMPOSE,
                        &at("environment.PORT"),
                        format!("{port}, but {kind} listens on {code_port}"),
                    );
                }
                port
            }
            Some(Err(_)) => {
                p.add(COMPOSE, &at("environment.PORT"), "not a port number");
                code_port
            }
        };
        instances.insert(name.clone(), (kind.clone(), port));
        // ADVERTISE_URL: this very instance, as its peers reach it
        match environment.get("ADVERTISE_URL").map(|u| (u, parse_url(u))) {
            None => p.add(
                COMPOSE,
                &at("environment.ADVERTISE_URL"),
                "missing: the instance would advertise 127.0.0.1, which its peers cannot reach",
            ),
            Some((u, None)) => p.add(
                COMPOSE,
                &at("environment.ADVERTISE_URL"),
                format!("{u:?} is not a URL"),
            ),
            Some((u, Some(url))) => {
                let own_names = [
                    Some(name.as_str()),
                    service["hostname"].as_str(),
                    service["container_name"].as_str(),
                ];
                if !own_names.contains(&Some(url.host.as_str())) {
                    p.add(
                        COMPOSE,
                        &at("environment.ADVERTISE_URL"),
                        format!(
                            "{u} points at {:?}, not at this instance ({name})",
                            url.host
                        ),
                    );
                }
                if url.port != Some(port) {
                    p.add(
                        COMPOSE,
                        &at("environment.ADVERTISE_URL"),
                        format!(
                            "{u} has port {:?}, but the instance listens on {port}",
                            url.port
                        ),
                    );
                }
            }
        }
        // healthcheck: curl on its own port, on a probe path
        let test: Vec<&str> = service["healthcheck"]["test"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match test.iter().find_map(|a| parse_url(a)) {
            None => p.add(COMPOSE, &at("healthcheck.test"), "missing or without a URL"),
            Some(url) => {
                if url.port != Some(port) {
                    p.add(
                        COMPOSE,
                        &at("healthcheck.test"),
                        format!(
                            "checks port {:?}, but the service listens on {port}",
                            url.port
                        ),
                    );
                }
                if !c.is_probe(&url.path) {
                    p.add(
                        COMPOSE,
                        &at("healthcheck.test"),
                        format!(
                            "{} is not a probe path of the code ({}, {})",
                            url.path, c.live, c.ready
                        ),
                    );
                }
                if !matches!(url.host.as_str(), "127.0.0.1" | "localhost") {
                    p.add(
                        COMPOSE,
                        &at("healthcheck.test"),
                        format!("checks {}, not the container itself", url.host),
                    );
                }
            }
        }
        // published ports: only the gateway, on its own port
        if let Some(ports) = service["ports"].as_array() {
            if kind != "api-gateway" {
                p.add(
                    COMPOSE,
                    &at("ports"),
                    "only the api-gateway publishes a port",
                );
            }
            for (i, entry) in ports.iter().enumerate() {
                if container_port(entry) != Some(port) {
                    p.add(
                        COMPOSE,
                        &at(&format!("ports[{i}]")),
                        format!("{entry} does not reach the service's port {port}"),
                    );
                }
            }
        }
        // dependencies: the infrastructure its URLs name, healthy first
        let depends_on = compose_depends_on(&service);
        for var in ["RABBITMQ_URL", "DATABASE_URL", "REDIS_URL"] {
            let Some(url) = environment.get(var).and_then(|u| parse_url(u)) else {
                continue;
            };
            let Some(infra) = services.get(&url.host) else {
                continue; // outside the compose project
            };
            if depends_on.get(&url.host).map(String::as_str) != Some("service_healthy") {
                p.add(
                    COMPOSE,
                    &at(&format!("depends_on.{}", url.host)),
                    format!(
                        "{var} names {}: wait for it with condition: service_healthy",
                        url.host
                    ),
                );
            }
            if infra.get("healthcheck").is_none() {
                p.add(
                    COMPOSE,
                    &format!("services.{}.healthcheck", url.host),
                    format!("missing, but {name} waits for it to be healthy"),
                );
            }
        }
        for dep in depends_on.keys() {
            if !services.contains_key(dep) {
                p.add(
                    COMPOSE,
                    &at(&format!("depends_on.{dep}")),
                    "no such service",
                );
            }
        }
    }
    for kind in c.ports.keys() {
        if !seen.contains(kind) {
            p.add(COMPOSE, "services", format!("no service runs {kind}"));
        }
    }
    // REGISTRY_URL: the gateway's compose service, on its port
    for (name, raw) in services
        .iter()
        .filter(|(_, s)| is_forten_compose_service(s))
    {
        let service = interpolate_tree(raw, env, "", &mut Problems::default());
        let Some(u) = compose_environment(&service).get("REGISTRY_URL").cloned() else {
            continue;
        };
        let field = format!("services.{name}.environment.REGISTRY_URL");
        match parse_url(&u) {
            Some(url) => match instances.get(&url.host) {
                Some((kind, port)) if kind == "api-gateway" && url.port == Some(*port) => {}
                _ => p.add(
                    COMPOSE,
                    &field,
                    format!("{u} is not the api-gateway's address"),
                ),
            },
            None => p.add(COMPOSE, &field, format!("{u:?} is not a URL")),
        }
    }
    p
}

fn check_env_example(compose_text: &str, env: &BTreeMap<String, String>) -> Problems {
    let mut p = Problems::default();
    // every variable the compose file interpolates without a default is defined
    let mut rest = compose_text;
    while let Some(i) = rest.find("${") {
        let body = &rest[i + 2..];
        let end = body.find('}').unwrap_or(body.len());
        let expr = &body[..end];
        let name: String = expr
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let modifier = &expr[name.len()..];
        let has_default = modifier.starts_with(":-") || modifier.starts_with('-');
        if !has_default && !env.contains_key(&name) {
            p.add(
                ENV_EXAMPLE,
                &name,
                format!("{COMPOSE} needs it and {ENV_EXAMPLE} does not define it"),
            );
        }
        rest = &body[end..];
    }
    match env.get("JWT_SECRET") {
        Some(s) if s.len() >= MIN_JWT_SECRET_LEN => {}
        Some(s) => p.add(
            ENV_EXAMPLE,
            "JWT_SECRET",
            format!(
                "placeholder of {} bytes; the code wants at least {MIN_JWT_SECRET_LEN}",
                s.len()
            ),
        ),
        None => p.add(ENV_EXAMPLE, "JWT_SECRET", "missing"),
    }
    for var in ["FORTEN_ADMIN_EMAIL", "FORTEN_ADMIN_PASSWORD"] {
        if !env.contains_key(var) {
            p.add(
                ENV_EXAMPLE,
                var,
                "missing: the bootstrap admin's credentials",
            );
        }
    }
    p
}

fn compose_inputs() -> (String, Value, BTreeMap<String, String>) {
    let text = read(COMPOSE);
    let mut docs = yaml_documents(COMPOSE, &text);
    assert_eq!(docs.len(), 1, "{COMPOSE}: one YAML document expected");
    (text, docs.remove(0), env_file(&read(ENV_EXAMPLE)))
}

// === Kubernetes ===

/// One document of one manifest file.
#[derive(Debug, Clone)]
struct Manifest {
    file: String,
    doc: Value,
}

impl Manifest {
    fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or("?")
    }

    fn name(&self) -> &str {
        self.doc["metadata"]["name"].as_str().unwrap_or("?")
    }

    /// `Deployment/access-service`, how a problem names it.
    fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }
}

/// Every manifest under `deploy/k8s/` (the kustomization is returned apart).
fn k8s_manifests() -> (Vec<Manifest>, Option<Value>) {
    let dir = repo_root().join(K8S_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{K8S_DIR}: cannot list: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut manifests = Vec::new();
    let mut kustomization = None;
    for path in files {
        let file = format!("{K8S_DIR}/{}", path.file_name().unwrap().to_string_lossy());
        let text = read(&file);
        for doc in yaml_documents(&file, &text) {
            if doc["kind"] == "Kustomization" {
                kustomization = Some(doc);
            } else {
                manifests.push(Manifest {
                    file: file.clone(),
                    doc,
                });
            }
        }
    }
    (manifests, kustomization)
}

/// Where a container's variable comes from.
#[derive(Debug, Clone)]
enum Source {
    Literal(String),
    FieldRef(String),
    /// A ConfigMap's or Secret's value, when the manifests hold it.
    Object(Option<String>),
}

/// The keys and values of the ConfigMap or Secret `name`.
fn object_data(
    manifests: &[Manifest],
    kind: &str,
    name: &str,
) -> Option<BTreeMap<String, Option<String>>> {
    let m = manifests
        .iter()
        .find(|m| m.kind() == kind && m.name() == name)?;
    let mut data = BTreeMap::new();
    for section in ["data", "stringData"] {
        if let Some(map) = m.doc[section].as_object() {
            for (k, v) in map {
                // a Secret's `data` is base64: its keys count, its values are not read here
                let value = (kind == "ConfigMap" || section == "stringData")
                    .then(|| v.as_str().map(str::to_owned))
                    .flatten();
                data.insert(k.clone(), value);
            }
        }
    }
    Some(data)
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// Resolves a probe's or Service's port (number or container port name) in `container`.
fn resolve_port(port: &Value, container: &Value) -> Option<u16> {
    match port {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(name) => container["ports"]
            .as_array()?
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|n| u16::try_from(n).ok()),
        _ => None,
    }
}

/// A Forten container of a workload: what the Service checks need.
#[derive(Debug)]
struct K8sInstance {
    kind: String,
    port: u16,
    labels: Value,
    container: Value,
}

fn check_k8s(
    c: &Contract,
    manifests: &[Manifest],
    kustomization: Option<&Value>,
    files: &BTreeSet<String>,
) -> Problems {
    let mut p = Problems::default();
    let mut instances = Vec::new();
    let mut registry_urls = Vec::new();
    // (kind, object, key, variable) of ConfigMap/Secret keys that Forten containers import
    let mut env_from_unknown = BTreeSet::new();
    for m in manifests
        .iter()
        .filter(|m| matches!(m.kind(), "Deployment" | "StatefulSet" | "DaemonSet"))
    {
        let file = m.file.as_str();
        let pod = &m.doc["spec"]["template"];
        let replicas = m.doc["spec"]["replicas"].as_u64().unwrap_or(1);
        let containers = pod["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (ci, container) in containers.iter().enumerate() {
            let at = |f: &str| format!("{} spec.template.spec.containers[{ci}].{f}", m.id());
            if container["image"]
                .as_str()
                .is_none_or(|i| image_name(i) != "forten")
            {
                continue;
            }
            let args: Vec<&str> = container["args"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let kind = match args.as_slice() {
                ["run", kind, ..] if c.ports.contains_key(*kind) => (*kind).to_owned(),
                ["run", other, ..] => {
                    p.add(
                        file,
                        &at("args"),
                        format!(
                            "{other:?} is not a service of the code (known: {:?})",
                            c.ports.keys()
                        ),
                    );
                    continue;
                }
                _ => {
                    p.add(file, &at("args"), format!("must be [\"run\", \"<service>\"] (the image's entrypoint is forten), not {}", container["args"]));
                    continue;
                }
            };
            let code_port = c.ports[&kind];
            // the environment, in order, with where each value comes from
            let mut env: Vec<(String, Source, String)> = Vec::new();
            for (ei, from) in container["envFrom"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let field = at(&format!("envFrom[{ei}]"));
                let (kind, r) = if from.get("configMapRef").is_some() {
                    ("ConfigMap", &from["configMapRef"])
                } else {
                    ("Secret", &from["secretRef"])
                };
                let prefix = from["prefix"].as_str().unwrap_or("");
                let name = r["name"].as_str().unwrap_or("?");
                match object_data(manifests, kind, name) {
                    Some(data) => {
                        for (k, v) in data {
                            let var = format!("{prefix}{k}");
                            if !c.knows_variable(&var) {
                                env_from_unknown.insert((
                                    kind,
                                    name.to_owned(),
                                    k.clone(),
                                    var.clone(),
                                ));
                            }
                            env.push((
                                var,
                                Source::Object(v),
                                format!("{field} ({kind} {name}, key {k})"),
                            ));
                        }
                    }
                    None if r["optional"] == true => {}
                    None => p.add(
                        file,
                        &field,
                        format!("{kind} {name:?} is not among the manifests"),
                    ),
                }
            }
            for (ei, e) in container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let name = e["name"].as_str().unwrap_or("?").to_owned();
                let field = at(&format!("env[{ei}] ({name})"));
                let source = if let Some(v) = e.get("value") {
                    Source::Literal(v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Source::FieldRef(path.to_owned())
                } else {
                    let (kind, r) = if e["valueFrom"].get("secretKeyRef").is_some() {
                        ("Secret", &e["valueFrom"]["secretKeyRef"])
                    } else {
                        ("ConfigMap", &e["valueFrom"]["configMapKeyRef"])
                    };
                    let (obj, key) = (
                        r["name"].as_str().unwrap_or("?"),
                        r["key"].as_str().unwrap_or("?"),
                    );
                    let value = object_data(manifests, kind, obj).and_then(|d| d.get(key).cloned());
                    if value.is_none() && r["optional"] != true {
                        p.add(
                            file,
                            &field,
                            format!("{kind} {obj:?} has no key {key:?} among the manifests"),
                        );
                    }
                    Source::Object(value.flatten())
                };
                env.retain(|(n, _, _)| *n != name); // env overrides envFrom
                env.push((name, source, field));
            }
            for (name, _, field) in &env {
                if !c.knows_variable(name) && !field.contains(".envFrom[") {
                    p.add(
                        file,
                        field,
                        format!("{name} is not a variable the code reads (`forten env`)"),
                    );
                }
            }
            let value = |name: &str| -> Option<(Source, String)> {
                env.iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, s, f)| (s.clone(), f.clone()))
            };
            for var in REQUIRED_BY_RUN {
                if value(var).is_none() {
                    p.add(
                        file,
                        &at("env"),
                        format!("{var} missing: `forten run` requires it"),
                    );
                }
            }
            if let Some((Source::Object(Some(s)) | Source::Literal(s), field)) = value("JWT_SECRET")
                && s.len() < MIN_JWT_SECRET_LEN
            {
                p.add(
                    file,
                    &field,
                    format!(
                        "JWT_SECRET of {} bytes; the code wants at least {MIN_JWT_SECRET_LEN}",
                        s.len()
                    ),
                );
            }
            if let Some((Source::Object(Some(h)) | Source::Literal(h), field)) = value("HOST")
                && matches!(h.as_str(), "127.0.0.1" | "localhost" | "::1")
            {
                p.add(
                    file,
                    &field,
                    "HOST: a container must listen on every interface (0.0.0.0)",
                );
            }
            if let Some((Source::Object(Some(u)) | Source::Literal(u), field)) =
                value("REGISTRY_URL")
            {
                registry_urls.push((file.to_owned(), field, u));
            }
            let port = match value("PORT") {
                Some((Source::Literal(s) | Source::Object(Some(s)), field)) => {
                    match s.parse::<u16>() {
                        Ok(port) if port == code_port => port,
                        Ok(port) => {
                            p.add(
                                file,
                                &field,
                                format!("PORT {port}, but {kind} listens on {code_port}"),
                            );
                            port
                        }
                        Err(_) => {
                            p.add(file, &field, format!("PORT {s:?} is not a port number"));
                            code_port
                        }
                    }
                }
                _ => code_port,
            };
            // containerPort
            let ports: Vec<u64> = container["ports"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p["containerPort"].as_u64())
                        .collect()
                })
                .unwrap_or_default();
            if ports != [u64::from(port)] {
                p.add(
                    file,
                    &at("ports"),
                    format!("container ports {ports:?}, but {kind} listens on {port} alone"),
                );
            }
            // ADVERTISE_URL: this very pod
            match value("ADVERTISE_URL") {
                None => p.add(file, &at("env"), "ADVERTISE_URL missing: the pod would advertise 127.0.0.1, which its peers cannot reach"),
                Some((Source::Literal(u), field)) => match parse_url(&u) {
                    None => p.add(file, &field, format!("ADVERTISE_URL {u:?} is not a URL")),
                    Some(url) => {
                        if url.port != Some(port) {
                            p.add(file, &field, format!("ADVERTISE_URL {u} has port {:?}, but the pod listens on {port}", url.port));
                        }
                        let helper = url.host.strip_prefix("$(").and_then(|h| h.strip_suffix(')'));
                        let own = match helper {
                            // declared before, from the pod's own IP
                            Some(var) => env
                                .iter()
                                .take_while(|(n, _, _)| n != "ADVERTISE_URL")
                                .any(|(n, s, _)| n == var && matches!(s, Source::FieldRef(f) if f == "status.podIP")),
                            // a Service name is the instance's own address only with one replica
                            None => replicas <= 1
                                && manifests.iter().any(|s| {
                                    s.kind() == "Service"
                                        && s.name() == url.host
                                        && labels_match(&s.doc["spec"]["selector"], &pod["metadata"]["labels"])
                                }),
                        };
                        if !own {
                            p.add(file, &field, format!("ADVERTISE_URL {u} is not this pod's own address: use $(POD_IP) with POD_IP from fieldRef status.podIP, declared before it"));
                        }
                    }
                },
                Some((_, field)) => p.add(file, &field, "ADVERTISE_URL must be a literal value built from the pod's own address"),
            }
            // probes
            for (probe, want) in [
                ("livenessProbe", Some(&c.live)),
                ("readinessProbe", Some(&c.ready)),
                ("startupProbe", None),
            ] {
                let get = &container[probe]["httpGet"];
                if container.get(probe).is_none() {
                    if want.is_some() {
                        p.add(file, &at(probe), "missing");
                    }
                    continue;
                }
                let path = get["path"].as_str().unwrap_or("");
                if !c.is_probe(path) {
                    p.add(
                        file,
                        &at(&format!("{probe}.httpGet.path")),
                        format!(
                            "{path:?} is not a probe path of the code ({}, {})",
                            c.live, c.ready
                        ),
                    );
                } else if want.is_some_and(|w| w != path) {
                    p.add(
                        file,
                        &at(&format!("{probe}.httpGet.path")),
                        format!(
                            "{path} for a {probe}; the code serves {} for it",
                            want.unwrap()
                        ),
                    );
                }
                if resolve_port(&get["port"], container) != Some(port) {
                    p.add(
                        file,
                        &at(&format!("{probe}.httpGet.port")),
                        format!(
                            "{} does not resolve to the service's port {port}",
                            get["port"]
                        ),
                    );
                }
            }
            for limit in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    if container["resources"][limit][resource].is_null() {
                        p.add(
                            file,
                            &at(&format!("resources.{limit}.{resource}")),
                            "missing",
                        );
                    }
                }
            }
            instances.push(K8sInstance {
                kind,
                port,
                labels: pod["metadata"]["labels"].clone(),
                container: container.clone(),
            });
        }
    }
    for (kind, name, key, var) in env_from_unknown {
        let object = manifests
            .iter()
            .find(|m| m.kind() == kind && m.name() == name);
        let file = object.map_or(K8S_DIR, |m| m.file.as_str());
        let section = object.map_or("data", |m| {
            if m.doc["stringData"].get(&key).is_some() {
                "stringData"
            } else {
                "data"
            }
        });
        p.add(file, &format!("{kind}/{name} {section}.{key}"), format!("imported by Forten containers as {var}, not a variable the code reads (`forten env`)"));
    }
    // Services: select a Forten workload and reach its port
    let mut served = BTreeMap::new(); // service name → (kind, port)
    for s in manifests.iter().filter(|m| m.kind() == "Service") {
        let selected: Vec<&K8sInstance> = instances
            .iter()
            .filter(|i| labels_match(&s.doc["spec"]["selector"], &i.labels))
            .collect();
        let Some(first) = selected.first() else {
            continue;
        };
        if selected.iter().any(|i| i.kind != first.kind) {
            p.add(
                &s.file,
                &format!("{} spec.selector", s.id()),
                "selects pods of different services",
            );
        }
        for (pi, port) in s.doc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{} spec.ports[{pi}]", s.id());
            let target = port.get("targetPort").unwrap_or(&port["port"]);
            if resolve_port(target, &first.container) != Some(first.port) {
                p.add(
                    &s.file,
                    &format!("{field}.targetPort"),
                    format!(
                        "{target} does not reach {}'s port {}",
                        first.kind, first.port
                    ),
                );
            }
            if port["port"].as_u64() != Some(u64::from(c.ports[&first.kind])) {
                p.add(
                    &s.file,
                    &format!("{field}.port"),
                    format!(
                        "{}, but peers expect {} on {}",
                        port["port"], first.kind, c.ports[&first.kind]
                    ),
                );
            }
            served.insert(
                s.name().to_owned(),
                (first.kind.clone(), port["port"].as_u64()),
            );
        }
    }
    for kind in c.ports.keys() {
        if !instances.iter().any(|i| &i.kind == kind) {
            p.add(K8S_DIR, "Deployment", format!("no workload runs {kind}"));
        }
        if !served.values().any(|(k, _)| k == kind) {
            p.add(K8S_DIR, "Service", format!("no Service reaches {kind}"));
        }
    }
    for (file, field, u) in registry_urls {
        let ok = parse_url(&u).is_some_and(|url| {
            let host = url.host.split('.').next().unwrap_or("");
            served
                .get(host)
                .is_some_and(|(k, port)| k == "api-gateway" && url.port.map(u64::from) == *port)
        });
        if !ok {
            p.add(
                &file,
                &field,
                format!("REGISTRY_URL {u} is not the api-gateway's Service"),
            );
        }
    }
    // the kustomization lists every manifest file
    match kustomization {
        None => p.add(K8S_DIR, "kustomization.yaml", "missing"),
        Some(k) => {
            let listed: BTreeSet<String> = k["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|r| format!("{K8S_DIR}/{r}"))
                .collect();
            for f in files.difference(&listed) {
                p.add(
                    &format!("{K8S_DIR}/kustomization.yaml"),
                    "resources",
                    format!("{f} is not listed"),
                );
            }
            for f in listed.difference(files) {
                p.add(
                    &format!("{K8S_DIR}/kustomization.yaml"),
                    "resources",
                    format!("{f} does not exist"),
                );
            }
        }
    }
    p
}

fn manifest_files(manifests: &[Manifest]) -> BTreeSet<String> {
    manifests.iter().map(|m| m.file.clone()).collect()
}

// === Dockerfile ===

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (word, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((word.to_ascii_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

fn check_dockerfile(c: &Contract, text: &str) -> Problems {
    let mut p = Problems::default();
    let all = dockerfile_instructions(text);
    // the final stage only
    let start = all.iter().rposition(|(w, _)| w == "FROM").unwrap_or(0);
    let last = &all[start..];
    let mut exposed = BTreeSet::new();
    for (_, arg) in last.iter().filter(|(w, _)| w == "EXPOSE") {
        for token in arg.split_whitespace() {
            let token = token.split('/').next().unwrap_or(token);
            let range = match token.split_once('-') {
                Some((a, b)) => a.parse::<u16>().ok().zip(b.parse::<u16>().ok()),
                None => token.parse::<u16>().ok().map(|a| (a, a)),
            };
            match range {
                Some((a, b)) => exposed.extend(a..=b),
                None => p.add(
                    DOCKERFILE,
                    "EXPOSE",
                    format!("{token:?} is not a port or a range"),
                ),
            }
        }
    }
    for (kind, port) in &c.ports {
        if !exposed.contains(port) {
            p.add(
                DOCKERFILE,
                "EXPOSE",
                format!("does not cover {kind}'s port {port}"),
            );
        }
    }
    match last.iter().rfind(|(w, _)| w == "ENTRYPOINT") {
        Some((_, arg)) => {
            let parsed: Option<Vec<String>> = serde_json::from_str(arg).ok();
            if !parsed.is_some_and(|a| a.len() == 1 && a[0].rsplit('/').next() == Some("forten")) {
                p.add(DOCKERFILE, "ENTRYPOINT", format!("{arg} is not [\"forten\"] (compose `command` and Kubernetes `args` start with `run`)"));
            }
        }
        None => p.add(DOCKERFILE, "ENTRYPOINT", "missing"),
    }
    match last.iter().rfind(|(w, _)| w == "USER") {
        Some((_, user)) if !matches!(user.split(':').next(), Some("root" | "0")) => {}
        _ => p.add(
            DOCKERFILE,
            "USER",
            "the final stage must run as a non-root user",
        ),
    }
    for (_, arg) in last.iter().filter(|(w, _)| w == "ENV") {
        for pair in arg.split_whitespace().filter(|t| t.contains('=')) {
            let name = pair.split('=').next().unwrap_or("");
            if !c.knows_variable(name) {
                p.add(
                    DOCKERFILE,
                    &format!("ENV {name}"),
                    "not a variable the code reads (`forten env`)",
                );
            }
        }
    }
    p
}

// === the tests ===

#[test]
fn forten_env_prints_the_contract() {
    let c = contract();
    let names: Vec<&str> = c.ports.keys().map(String::as_str).collect();
    for name in [
        "api-gateway",
        "auth-service",
        "access-service",
        "monitoring-service",
        "analytics-service",
    ] {
        assert!(
            names.contains(&name),
            "{name} missing from `forten env`: {names:?}"
        );
    }
    for var in [
        "JWT_SECRET",
        "RABBITMQ_URL",
        "ADVERTISE_URL",
        "PORT",
        "HOST",
    ] {
        assert!(c.variables.contains(var), "{var} missing from `forten env`");
    }
    assert_eq!(
        (c.live.as_str(), c.ready.as_str()),
        ("/health/live", "/health/ready")
    );
}

#[test]
fn compose_file_matches_the_code() {
    let (_, doc, env) = compose_inputs();
    check_compose(contract(), &doc, &env).assert_none();
}

#[test]
fn env_example_defines_what_compose_needs() {
    let (text, _, env) = compose_inputs();
    check_env_example(&text, &env).assert_none();
}

#[test]
fn kubernetes_manifests_match_the_code() {
    let (manifests, kustomization) = k8s_manifests();
    let files = manifest_files(&manifests);
    check_k8s(contract(), &manifests, kustomization.as_ref(), &files).assert_none();
}

#[test]
fn dockerfile_exposes_every_port_and_runs_forten() {
    check_dockerfile(contract(), &read(DOCKERFILE)).assert_none();
}

// --- the checks fail when they should ---

fn compose_with(edit: impl FnOnce(&mut Value)) -> Problems {
    let (_, mut doc, env) = compose_inputs();
    edit(&mut doc);
    check_compose(contract(), &doc, &env)
}

#[test]
fn a_wrong_port_in_compose_is_named() {
    compose_with(|d| d["services"]["auth-service"]["environment"]["PORT"] = json!("3009"))
        .assert_names(
            COMPOSE,
            "services.auth-service.environment.PORT",
            "listens on 3001",
        );
    compose_with(|d| {
        d["services"]["monitoring-service"]["healthcheck"]["test"] =
            json!(["CMD", "curl", "-f", "http://127.0.0.1:3003/healthz"]);
    })
    .assert_names(
        COMPOSE,
        "services.monitoring-service.healthcheck.test",
        "not a probe path",
    );
}

#[test]
fn an_unknown_variable_or_service_in_compose_is_named() {
    compose_with(|d| d["services"]["auth-service"]["environment"]["JWT_SECRETS"] = json!("x"))
        .assert_names(
            COMPOSE,
            "services.auth-service.environment.JWT_SECRETS",
            "not a variable",
        );
    compose_with(|d| d["services"]["auth-service"]["command"] = json!(["run", "billing-service"]))
        .assert_names(
            COMPOSE,
            "services.auth-service.command",
            "not a service of the code",
        );
}

#[test]
fn an_advertise_url_of_another_instance_is_named() {
    compose_with(|d| {
        d["services"]["access-service-2"]["environment"]["ADVERTISE_URL"] =
            json!("http://access-service-1:3002");
    })
    .assert_names(
        COMPOSE,
        "services.access-service-2.environment.ADVERTISE_URL",
        "not at this instance",
    );
}

#[test]
fn a_compose_variable_missing_from_env_example_is_named() {
    let (text, _, mut env) = compose_inputs();
    env.remove("POSTGRES_PASSWORD");
    check_env_example(&text, &env).assert_names(
        ENV_EXAMPLE,
        "POSTGRES_PASSWORD",
        "does not define it",
    );
    env.insert("JWT_SECRET".into(), "short".into());
    check_env_example(&text, &env).assert_names(ENV_EXAMPLE, "JWT_SECRET", "at least 32");
}

fn k8s_with(edit: impl FnOnce(&mut Vec<Manifest>)) -> Problems {
    let (mut manifests, kustomization) = k8s_manifests();
    let files = manifest_files(&manifests);
    edit(&mut manifests);
    check_k8s(contract(), &manifests, kustomization.as_ref(), &files)
}

fn deployment<'a>(manifests: &'a mut [Manifest], name: &str) -> &'a mut Value {
    &mut manifests
        .iter_mut()
        .find(|m| m.kind() == "Deployment" && m.name() == name)
        .unwrap_or_else(|| panic!("no Deployment {name}"))
        .doc
}

fn container_env<'a>(manifests: &'a mut [Manifest], name: &str) -> &'a mut Vec<Value> {
    deployment(manifests, name)["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .expect("env is a list")
}

#[test]
fn a_wrong_port_or_probe_in_kubernetes_is_named() {
    k8s_with(|m| {
        deployment(m, "monitoring-service")["spec"]["template"]["spec"]["containers"][0]["ports"]
            [0]["containerPort"] = json!(8080);
    })
    .assert_names(
        "deploy/k8s/monitoring-service.yaml",
        "containers[0].ports",
        "listens on 3003",
    );
    k8s_with(|m| {
        deployment(m, "auth-service")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
            ["httpGet"]["path"] = json!("/health/live");
    })
    .assert_names(
        "deploy/k8s/auth-service.yaml",
        "readinessProbe.httpGet.path",
        "serves /health/ready",
    );
    k8s_with(|m| {
        let service = m
            .iter_mut()
            .find(|m| m.kind() == "Service" && m.name() == "analytics-service")
            .unwrap();
        service.doc["spec"]["ports"][0]["targetPort"] = json!(3003);
    })
    .assert_names(
        "deploy/k8s/analytics-service.yaml",
        "Service/analytics-service spec.ports[0].targetPort",
        "port 3004",
    );
}

#[test]
fn an_unknown_variable_or_service_in_kubernetes_is_named() {
    k8s_with(|m| {
        container_env(m, "access-service").push(json!({"name": "ACCESS_POLICY", "value": "all"}))
    })
    .assert_names(
        "deploy/k8s/access-service.yaml",
        "(ACCESS_POLICY)",
        "not a variable",
    );
    k8s_with(|m| {
        let config = m.iter_mut().find(|m| m.kind() == "ConfigMap").unwrap();
        config.doc["data"]["LOGFORMAT"] = json!("json");
    })
    .assert_names(
        "deploy/k8s/config.yaml",
        "ConfigMap/forten-config data.LOGFORMAT",
        "not a variable",
    );
    k8s_with(|m| {
        deployment(m, "analytics-service")["spec"]["template"]["spec"]["containers"][0]["args"] =
            json!(["run", "analytics"]);
    })
    .assert_names(
        "deploy/k8s/analytics-service.yaml",
        "containers[0].args",
        "not a service of the code",
    );
}

#[test]
fn an_advertise_url_that_is_not_the_pod_is_named() {
    // a shared Service name cannot tell two replicas apart
    k8s_with(|m| {
        let env = container_env(m, "access-service");
        let advertise = env
            .iter_mut()
            .find(|e| e["name"] == "ADVERTISE_URL")
            .unwrap();
        advertise["value"] = json!("http://access-service:3002");
    })
    .assert_names(
        "deploy/k8s/access-service.yaml",
        "(ADVERTISE_URL)",
        "not this pod's own address",
    );
    // POD_IP must be declared before ADVERTISE_URL refers to it
    k8s_with(|m| {
        let env = container_env(m, "auth-service");
        let i = env.iter().position(|e| e["name"] == "POD_IP").unwrap();
        let pod_ip = env.remove(i);
        env.push(pod_ip);
    })
    .assert_names(
        "deploy/k8s/auth-service.yaml",
        "(ADVERTISE_URL)",
        "declared before it",
    );
}

#[test]
fn a_dockerfile_missing_a_port_is_named() {
    let text = read(DOCKERFILE).replace("EXPOSE 3000-3004", "EXPOSE 3000-3003");
    check_dockerfile(contract(), &text).assert_names(
        DOCKERFILE,
        "EXPOSE",
        "analytics-service's port 3004",
    );
    let text = read(DOCKERFILE).replace("USER 10001:10001", "USER root");
    check_dockerfile(contract(), &text).assert_names(DOCKERFILE, "USER", "non-root");
}

#[test]
fn urls_are_read_as_the_checks_need() {
    assert_eq!(
        parse_url("amqp://u:p@rabbitmq:5672/%2f"),
        Some(Url {
            scheme: "amqp".into(),
            host: "rabbitmq".into(),
            port: Some(5672),
            path: "/%2f".into()
        })
    );
    let url = parse_url("http://$(POD_IP):3002").unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("$(POD_IP)", Some(3002), "/")
    );
    assert_eq!(parse_url("redis://redis").unwrap().port, Some(6379));
    assert_eq!(parse_url("127.0.0.1:3000"), None);
    let env = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
    assert_eq!(interpolate("x${A}y${B:-2}$$z", &env).unwrap(), "x1y2$z");
    assert!(
        interpolate("${B:?set B}", &env)
            .unwrap_err()
            .contains("${B}")
    );
}
