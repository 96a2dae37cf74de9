//! The simulator's HTTP client: an admin user of the gateway's `/api/**`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::commands::CliError;

/// Why a call got no answer, or an answer it cannot use.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No HTTP answer (connection refused, reset, timed out): the request may or may not
    /// have been served.
    #[error("{method} {path}: {source}")]
    Transport {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },
    /// An answer with a status the caller did not expect.
    #[error("{method} {path}: {status} {body}")]
    Status {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// The status.
        status: StatusCode,
        /// The body (shortened).
        body: String,
    },
}

impl CallError {
    /// The status, when there was an answer.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Transport { .. } => None,
            Self::Status { status, .. } => Some(*status),
        }
    }

    /// Whether the request may have been served although its caller cannot tell (no answer,
    /// or a 5xx from the gateway: a timeout or an upstream cut off mid-way).
    pub(crate) fn is_ambiguous(&self) -> bool {
        self.status().is_none_or(|s| s.is_server_error())
    }
}

/// An answer: status and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The status.
    pub(crate) status: StatusCode,
    /// The body.
    pub(crate) body: Value,
}

/// The gateway, logged in as an admin. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    base: Arc<str>,
    http: reqwest::Client,
    email: Arc<str>,
    password: Arc<str>,
    /// The bearer token; replaced when a call finds it expired (a `RwLock` so that calls
    /// read it concurrently).
    token: Arc<RwLock<String>>,
}

impl Gateway {
    /// Logs in at `base` as `email`: an unreachable gateway is [`CliError::Unavailable`]
    /// (exit 69), refused credentials [`CliError::Usage`] (exit 64).
    pub(crate) async fn login(
        base: &str,
        email: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Self, CliError> {
        let base = base.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| CliError::Failed(format!("cannot build an HTTP client: {e}")))?;
        let gateway = Self {
            base: base.into(),
            http,
            email: email.into(),
            password: password.into(),
            token: Arc::default(),
        };
        let token = gateway.fetch_token().await?;
        *gateway.token.write().await = token;
        Ok(gateway)
    }

    /// The gateway's URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    async fn fetch_token(&self) -> Result<String, CliError> {
        let url = format!("{}/api/auth/login", self.base);
        let body = json!({"email": &*self.email, "password": &*self.password});
        let res = self.http.post(&url).json(&body).send().await.map_err(|e| {
            CliError::Unavailable(format!(
                "cannot reach the gateway at {}: {}",
                self.base,
                root_cause(&e)
            ))
        })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(CliError::Usage(format!(
                "the gateway at {} refused the login of {} ({status}); set FORTEN_ADMIN_EMAIL / FORTEN_ADMIN_PASSWORD",
                self.base, self.email
            )));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::BAD_GATEWAY {
            return Err(CliError::Unavailable(format!(
                "the gateway at {} cannot log in now ({status}): {}",
                self.base,
                shorten(&text)
            )));
        }
        if !status.is_success() {
            return Err(CliError::Failed(format!(
                "login at {}: {status} {}",
                self.base,
                shorten(&text)
            )));
        }
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_owned))
            .ok_or_else(|| {
                CliError::Failed(format!(
                    "login at {}: no token in the answer {}",
                    self.base,
                    shorten(&text)
                ))
            })
    }

    /// One call; any status is an `Ok` answer. A 401 (an expired token) logs in again and
    /// retries once.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let mut answer = self.send(method.clone(), path, body).await?;
        if answer.status == StatusCode::UNAUTHORIZED
            && let Ok(token) = self.fetch_token().await
        {
            *self.token.write().await = token;
            answer = self.send(method, path, body).await?;
        }
        Ok(answer)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let token = self.token.read().await.clone();
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let transport = |source| CallError::Transport {
            method: method.clone(),
            path: path.to_owned(),
            source,
        };
        let res = req.send().await.map_err(transport)?;
        let status = res.status();
        let text = res.text().await.map_err(transport)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// A call that must answer `expected`; anything else is a [`CallError::Status`].
    pub(crate) async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Result<Value, CallError> {
        let answer = self.call(method.clone(), path, body).await?;
        if answer.status == expected {
            Ok(answer.body)
        } else {
            Err(CallError::Status {
                method,
                path: path.to_owned(),
                status: answer.status,
                body: shorten(&answer.body.to_string()),
            })
        }
    }

    /// `GET` answering 200.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, CallError> {
        self.expect(Method::GET, path, None, StatusCode::OK).await
    }

    /// `POST` of a resource answering 201; returns its `id`.
    pub(crate) async fn create(&self, path: &str, body: &Value) -> Result<String, CallError> {
        let created = self
            .expect(Method::POST, path, Some(body), StatusCode::CREATED)
            .await?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }
}

/// At most 300 characters of `s`.
pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= 300 {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(300).collect();
        format!("{cut}…")
    }
}

/// The innermost cause of an error (reqwest's own text is only "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
