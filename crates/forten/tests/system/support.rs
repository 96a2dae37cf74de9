//! Running `forten` processes and talking to them as a user would.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "system-test-secret-0123456789abcdef0123";
pub const ADMIN_EMAIL: &str = "admin@forten.local";
pub const ADMIN_PASSWORD: &str = "system-test-admin-pw";

pub fn rabbit_url(vhost: &str) -> String {
    format!("amqp://guest:guest@127.0.0.1:5672/{vhost}")
}

/// A unique name for this test run.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A `forten` process whose output lines are collected; killed on drop.
pub struct Forten {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    pub name: String,
}

impl Forten {
    /// Starts `forten <args>` with `env` (and nothing of the test's own Forten settings).
    pub fn start(name: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forten"));
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for var in [
            "RABBITMQ_URL",
            "DATABASE_URL",
            "REGISTRY_URL",
            "JWT_SECRET",
            "PORT",
            "HOST",
            "FORTEN_DATA_DIR",
            "REDIS_URL",
            "ADVERTISE_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("RUST_LOG", "warn,lapin=error");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start forten");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Self {
            child,
            lines,
            name: name.to_owned(),
        }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line containing `needle` and returns it; panics with the output on
    /// time-out or exit.
    pub async fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before printing {needle:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not print {needle:?} within {within:?}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `forten run`: waits for `<service> listening on <url>` and returns the URL.
    pub async fn listening_url(&mut self) -> String {
        let line = self
            .wait_for_line(" listening on ", Duration::from_secs(30))
            .await;
        line.rsplit(' ').next().unwrap().to_owned()
    }

    /// `forten up`: waits for the banner and returns each service's URL.
    pub async fn banner(&mut self) -> HashMap<String, String> {
        self.wait_for_line("Ctrl-C to stop", Duration::from_secs(30))
            .await;
        let mut urls = HashMap::new();
        for line in self.lines.lock().unwrap().iter() {
            let mut parts = line.split_whitespace();
            if let (Some(name), Some(url), None) = (parts.next(), parts.next(), parts.next())
                && url.starts_with("http://")
                && !name.ends_with(':')
            {
                urls.insert(name.to_owned(), url.to_owned());
            }
        }
        urls
    }

    /// SIGKILL (`kill -9`): no drain, no deregistration, nothing acked that was not yet.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to end by itself and returns its exit code; panics with its
    /// output when it still runs after `within`.
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} still runs after {within:?}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `forten up` on free ports and a fresh data directory (removed when the returned guard
    /// drops); waits for the banner and returns each service's URL.
    pub async fn up(
        prefix: &str,
        env: &[(&str, String)],
    ) -> (Self, DataDir, HashMap<String, String>) {
        let data = DataDir(std::env::temp_dir().join(unique(prefix)));
        let mut up = Self::start(
            "forten up",
            &[
                "up",
                "--port-base",
                "0",
                "--data-dir",
                data.0.to_str().unwrap(),
            ],
            env,
        );
        let urls = up.banner().await;
        (up, data, urls)
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = kill(pid, Signal::SIGTERM);
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Forten {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data directory of its own, removed on drop.
pub struct DataDir(pub std::path::PathBuf);

impl DataDir {
    pub fn join(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A user of the HTTP API (through the gateway).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            token: None,
        }
    }

    /// Logs in; panics when it fails.
    pub async fn login(mut self, email: &str, password: &str) -> Self {
        let (status, body) = self
            .call(
                "POST",
                "/api/auth/login",
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login: {body}");
        self.token = Some(body["token"].as_str().unwrap().to_owned());
        self
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = res.status();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Calls until `check` accepts the answer (events travel asynchronously).
    pub async fn eventually(
        &self,
        method: &str,
        path: &str,
        check: impl Fn(StatusCode, &Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.call(method, path, None).await;
            if check(status, &body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{method} {path}: still {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A metric's value from a service's `/metrics` (the sum over series matching `labels`).
    pub async fn metric(&self, service_url: &str, name: &str, labels: &[&str]) -> f64 {
        let text = self
            .http
            .get(format!("{service_url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|f| l.contains(f)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// A RabbitMQ virtual host of its own (the services' queue names are fixed by the SPEC, so
/// parallel tests keep apart by vhost); deleted on drop.
pub struct Vhost(pub String);

impl Vhost {
    pub fn create() -> Self {
        let name = unique("forten-test");
        for args in [
            vec!["add_vhost", name.as_str()],
            vec![
                "set_permissions",
                "-p",
                name.as_str(),
                "guest",
                ".*",
                ".*",
                ".*",
            ],
        ] {
            let out = Command::new("rabbitmqctl")
                .args(&args)
                .output()
                .expect("rabbitmqctl is required for the multi-process tests");
            assert!(
                out.status.success(),
                "rabbitmqctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self(name)
    }

    pub fn url(&self) -> String {
        rabbit_url(&self.0)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.0])
            .output();
    }
}

/// A PostgreSQL database of its own; dropped on drop.
pub struct PgDatabase(pub String);

impl PgDatabase {
    pub async fn create() -> Self {
        let name = unique("forten_test");
        let mut conn = admin_pg().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        Self(name)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.0)
    }
}

async fn admin_pg() -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is required for this test and is not reachable: {e}")
        })
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = admin_pg().await;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            });
        })
        .join();
    }
}
