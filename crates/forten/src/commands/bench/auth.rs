//! `forten bench auth`: service tokens signed and verified per second in both modes (HS256
//! shared secret, EdDSA issuer), the toolkit against bare `jsonwebtoken` on the same claims, and
//! the cost of `ServiceAuthLayer` per request on an in-process axum router.

use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::body::Body;
use axum::routing::get;
use forten_shared::auth::{
    EventAuthenticator, ISSUER, IssuerConfig, IssuerPolicy, PublishPolicy, ServiceClaims,
    TokenIssuer, TokenVerifier,
};
use forten_shared::events::{DoorForced, Severity};
use forten_shared::{Event, EventBuilder, ServiceAuth, ServiceAuthConfig};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::{CliError, Figure, Report, Runs, Side, at_least_one, failed, median};
use crate::cli::BenchAuthArgs;

/// The calling service of every token.
const CALLER: &str = "forten-bench";
/// The audience of every token.
const TARGET: &str = "bench-target";
/// The scope every token carries and the layer requires.
const SCOPE: &str = "internal:read";
/// Token lifetime, seconds.
const TTL: u64 = 300;

/// Calls `f(i)` for `i` in `0..n`; returns calls per second.
fn per_second(n: usize, mut f: impl FnMut(usize) -> Result<(), CliError>) -> Result<f64, CliError> {
    let t0 = Instant::now();
    for i in 0..n {
        f(i)?;
    }
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    Ok(n as f64 / t0.elapsed().as_secs_f64().max(1e-9))
}

fn claims(target: &str) -> ServiceClaims {
    ServiceClaims::new(CALLER, target, &[SCOPE.to_owned()], TTL)
}

/// The checks the toolkit's verifier makes, for the bare `jsonwebtoken` side.
fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_nbf = true;
    v.set_audience(&[TARGET]);
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v
}

/// The keys of one mode, for both sides.
struct Mode {
    /// The toolkit's signer: a fresh value per run, so that nothing is cached across runs.
    sign: Signer,
    /// The bare side's keys and header.
    raw_header: Header,
    raw_encoding: EncodingKey,
    raw_decoding: DecodingKey,
    raw_validation: Validation,
}

enum Signer {
    /// Shared secret: `ServiceAuth` mints through its token cache.
    Shared(String),
    /// Issuer: `TokenIssuer::sign` with its active key.
    Issuer(Arc<TokenIssuer>),
}

/// One mode's rates in one run.
#[derive(Debug, Clone, Copy, Default)]
struct Rates {
    sign: f64,
    verify: f64,
    verify_cached: f64,
}

impl Mode {
    fn shared_secret() -> Self {
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Self {
            raw_header: Header::default(),
            raw_encoding: EncodingKey::from_secret(secret.as_bytes()),
            raw_decoding: DecodingKey::from_secret(secret.as_bytes()),
            raw_validation: validation(Algorithm::HS256),
            sign: Signer::Shared(secret),
        }
    }

    fn issuer() -> Result<Self, CliError> {
        let issuer = TokenIssuer::new(IssuerConfig::new(IssuerPolicy::new())).map_err(failed)?;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(failed)?;
        let mut raw_header = Header::new(Algorithm::EdDSA);
        raw_header.kid = Some("bench".into());
        Ok(Self {
            raw_header,
            raw_encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            raw_decoding: DecodingKey::from_ed_der(pair.public_key().as_ref()),
            raw_validation: validation(Algorithm::EdDSA),
            sign: Signer::Issuer(Arc::new(issuer)),
        })
    }

    fn verifier(&self) -> TokenVerifier {
        match &self.sign {
            Signer::Shared(secret) => TokenVerifier::shared_secret(secret.as_bytes()),
            Signer::Issuer(issuer) => TokenVerifier::local(issuer.clone()),
        }
    }

    /// The toolkit signs `n` tokens (each for a distinct target, so that each is minted);
    /// then verifies `n` others (each once), then one token `n` times (the verified-token
    /// cache).
    async fn forten(&self, n: usize) -> Result<Rates, CliError> {
        let sign = match &self.sign {
            Signer::Shared(secret) => {
                let auth = ServiceAuth::new(
                    ServiceAuthConfig::shared_secret(CALLER, secret.as_str()).scopes([SCOPE]),
                )
                .map_err(failed)?;
                let targets: Vec<String> = (0..n).map(|i| format!("{TARGET}-{i}")).collect();
                let t0 = Instant::now();
                for target in &targets {
                    auth.token(target).await.map_err(failed)?;
                }
                #[allow(clippy::cast_precision_loss)]
                let rate = n as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                rate
            }
            Signer::Issuer(issuer) => per_second(n, |_| {
                issuer.sign(&claims(TARGET)).map(drop).map_err(failed)
            })?,
        };
        let tokens = self.tokens(n)?;
        let verifier = self.verifier();
        let verify = per_second(n, |i| {
            verifier
                .verify(&tokens[i], TARGET)
                .map(drop)
                .map_err(failed)
        })?;
        let verify_cached = per_second(n, |_| {
            verifier
                .verify(&tokens[0], TARGET)
                .map(drop)
                .map_err(failed)
        })?;
        Ok(Rates {
            sign,
            verify,
            verify_cached,
        })
    }

    /// `n` distinct tokens signed by the toolkit's key.
    fn tokens(&self, n: usize) -> Result<Vec<String>, CliError> {
        (0..n)
            .map(|_| match &self.sign {
                Signer::Shared(secret) => jsonwebtoken::encode(
                    &Header::default(),
                    &claims(TARGET),
                    &EncodingKey::from_secret(secret.as_bytes()),
                )
                .map_err(failed),
                Signer::Issuer(issuer) => issuer.sign(&claims(TARGET)).map_err(failed),
            })
            .collect()
    }

    /// Bare `jsonwebtoken`: claims of the same shape (a fresh `jti`, `iat` and `exp` for each
    /// token, as the toolkit makes them) signed, and decoded with the same checks.
    fn raw(&self, n: usize) -> Result<Rates, CliError> {
        let mut tokens = Vec::with_capacity(n);
        let sign = per_second(n, |_| {
            tokens.push(
                jsonwebtoken::encode(&self.raw_header, &claims(TARGET), &self.raw_encoding)
                    .map_err(failed)?,
            );
            Ok(())
        })?;
        let verify = per_second(n, |i| {
            jsonwebtoken::decode::<ServiceClaims>(
                &tokens[i],
                &self.raw_decoding,
                &self.raw_validation,
            )
            .map(drop)
            .map_err(failed)
        })?;
        Ok(Rates {
            sign,
            verify,
            // no cache on the bare side: every call verifies the signature
            verify_cached: verify,
        })
    }
}

/// Events signed (publisher token + per-event signature) and verified per second, shared-secret
/// mode: (sign, verify).
async fn event_rates(n: usize) -> Result<(f64, f64), CliError> {
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let policy = PublishPolicy::forten();
    let publisher = ServiceAuth::new(ServiceAuthConfig::shared_secret(
        "access-service",
        secret.as_str(),
    ))
    .map_err(failed)?;
    let signer = EventAuthenticator::new(&publisher, policy.clone()).map_err(failed)?;
    let checker =
        EventAuthenticator::verifier_only(TokenVerifier::shared_secret(secret.as_bytes()), policy);
    let mut events: Vec<Event> = (0..n)
        .map(|_| {
            EventBuilder::new(
                DoorForced {
                    door_id: "bench-door".into(),
                    building_id: "bench-building".into(),
                    timestamp: chrono::Utc::now(),
                    severity: Severity::High,
                },
                "access-service",
            )
            .build()
        })
        .collect();
    let t0 = Instant::now();
    for e in &mut events {
        signer.sign(e).await.map_err(failed)?;
    }
    #[allow(clippy::cast_precision_loss)]
    let sign = n as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    let verify = per_second(n, |i| checker.verify(&events[i]).map(drop).map_err(failed))?;
    Ok((sign, verify))
}

/// `n` requests through `app` in-process; µs per request.
async fn per_request(
    app: &axum::Router,
    header: Option<&http::HeaderValue>,
    n: usize,
) -> Result<f64, CliError> {
    let t0 = Instant::now();
    for _ in 0..n {
        let mut req = http::Request::get("/x");
        if let Some(h) = header {
            req = req.header(http::header::AUTHORIZATION, h);
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).map_err(failed)?)
            .await
            .map_err(failed)?;
        if res.status() != http::StatusCode::OK {
            return Err(CliError::Failed(format!("layer run: {}", res.status())));
        }
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(t0.elapsed().as_secs_f64() * 1e6 / n as f64)
}

pub(crate) async fn run(args: BenchAuthArgs) -> Result<(), CliError> {
    at_least_one(&[("--count", args.count), ("--repeat", args.output.repeat)])?;
    let (n, repeat) = (args.count, args.output.repeat);
    let report = Report {
        json: args.output.json,
        baseline: "jsonwebtoken",
    };
    let shared = Mode::shared_secret();
    let issuer = Mode::issuer()?;

    // the layer: the same router with and without it, a cached token (a caller reuses its
    // token for minutes, so the hot path is the verified-token cache)
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let server = ServiceAuth::new(ServiceAuthConfig::shared_secret(TARGET, secret.as_str()))
        .map_err(failed)?;
    let caller = ServiceAuth::new(ServiceAuthConfig::shared_secret(CALLER, secret).scopes([SCOPE]))
        .map_err(failed)?;
    let header = caller.create_auth_header(TARGET).await.map_err(failed)?;
    let open = axum::Router::new().route("/x", get(|| async { "ok" }));
    let protected = open.clone().layer(server.layer([SCOPE]));

    let progress = report.progress(repeat * 7);
    let mut event_runs = Vec::new();
    let (mut hs, mut ed, mut layer) = (
        Runs::<Rates>::default(),
        Runs::<Rates>::default(),
        Runs::<f64>::default(),
    );
    for rep in 0..repeat {
        for side in Side::order(rep) {
            let run = format!("run {}/{repeat}", rep + 1);
            let who = if side == Side::Forten {
                "forten"
            } else {
                "jsonwebtoken"
            };
            progress.set_message(format!("{run}: {who} HS256"));
            hs.push(
                side,
                match side {
                    Side::Forten => shared.forten(n).await?,
                    Side::Baseline => shared.raw(n)?,
                },
            );
            progress.inc(1);
            progress.set_message(format!("{run}: {who} EdDSA"));
            ed.push(
                side,
                match side {
                    Side::Forten => issuer.forten(n).await?,
                    Side::Baseline => issuer.raw(n)?,
                },
            );
            progress.inc(1);
            progress.set_message(format!(
                "{run}: router {}",
                if side == Side::Forten {
                    "with the layer"
                } else {
                    "without the layer"
                }
            ));
            layer.push(
                side,
                match side {
                    Side::Forten => per_request(&protected, Some(&header), n).await?,
                    Side::Baseline => per_request(&open, None, n).await?,
                },
            );
            progress.inc(1);
        }
        progress.set_message(format!("run {}/{repeat}: forten events", rep + 1));
        event_runs.push(event_rates(n).await?);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let (with, without) = (median(layer.forten.clone()), median(layer.baseline.clone()));
    let figures = [
        hs.figure("auth.sign", "tokens/s", |r| r.sign),
        hs.figure("auth.verify", "tokens/s", |r| r.verify),
        hs.figure("auth.verify_cached", "tokens/s", |r| r.verify_cached),
        ed.figure("auth.sign_eddsa", "tokens/s", |r| r.sign),
        ed.figure("auth.verify_eddsa", "tokens/s", |r| r.verify),
        ed.figure("auth.verify_eddsa_cached", "tokens/s", |r| r.verify_cached),
        Figure::compared("auth.layer_overhead_us", "us", with - without, without),
        Figure::alone(
            "auth.event_sign",
            "events/s",
            median(event_runs.iter().map(|r| r.0).collect()),
        ),
        Figure::alone(
            "auth.event_verify",
            "events/s",
            median(event_runs.iter().map(|r| r.1).collect()),
        ),
    ];
    report.print(
        &figures,
        &format!(
            "{n} tokens per run (HS256: shared secret; EdDSA: issuer); layer: {n} in-process requests, overhead over the bare router (baseline) per request; median of {repeat} runs each, alternating"
        ),
    );
    Ok(())
}
