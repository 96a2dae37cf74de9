//! The command line (clap). Every setting can also come from its environment variable.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Forten: microservices that talk to each other — events, discovery, resilient calls.
#[derive(Debug, Parser)]
#[command(name = "forten", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run every service in this process on the embedded defaults (SQLite, in-process bus).
    Up(UpArgs),
    /// Run one service as its own process (RabbitMQ, the registry, SQLite or PostgreSQL).
    Run(RunArgs),
    /// Publish and watch events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Inspect and replay dead letters (`<queue>.dlq`).
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Built-in benchmarks: the toolkit against the raw client, in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Mint a service token (operations, debugging); prints the bare JWT on stdout.
    Token(TokenArgs),
    /// The service registry (hosted by api-gateway).
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// analytics-service maintenance.
    #[command(subcommand)]
    Analytics(AnalyticsCommand),
    /// The deployment contract as JSON: environment variables, services and their ports,
    /// probe paths (for deployment files and their tests).
    #[command(hide = true)]
    Env,
    /// Drive realistic, seeded traffic through the gateway, then compare the simulator's
    /// tally with the analytics-service's figures (exit 0 exactly when they agree).
    Simulate(SimulateArgs),
}

/// `forten simulate`. Values are checked by the command (a bad one: one line, exit 64).
#[derive(Debug, Clone, Args)]
pub(crate) struct SimulateArgs {
    /// The gateway to drive.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:3000")]
    pub(crate) gateway: String,
    /// The admin to log in as.
    #[arg(long, env = "FORTEN_ADMIN_EMAIL", default_value = "admin@forten.local")]
    pub(crate) admin_email: String,
    /// The admin's password.
    #[arg(long, env = "FORTEN_ADMIN_PASSWORD", hide_env_values = true)]
    pub(crate) admin_password: Option<String>,
    /// Actions per second (mean; arrivals are Poisson).
    #[arg(long, default_value = "20", allow_hyphen_values = true)]
    pub(crate) rate: String,
    /// How long actions are started for (e.g. `20s`, `5m`).
    #[arg(long, default_value = "60s")]
    pub(crate) duration: String,
    /// Buildings created (1 to 100).
    #[arg(long, default_value = "3", allow_hyphen_values = true)]
    pub(crate) buildings: String,
    /// Doors per building (1 to 50).
    #[arg(long, default_value = "3", allow_hyphen_values = true)]
    pub(crate) doors: String,
    /// Cameras per building (0 to 20).
    #[arg(long, default_value = "2", allow_hyphen_values = true)]
    pub(crate) cameras: String,
    /// Badge holders created (0 to 200).
    #[arg(long, default_value = "8", allow_hyphen_values = true)]
    pub(crate) users: String,
    /// Share of swipes meant to be denied, 0 to 1.
    #[arg(long, default_value = "0.2", allow_hyphen_values = true)]
    pub(crate) deny_share: String,
    /// The cameras' heartbeat timeout (whole seconds): an outage lasts at least this long.
    #[arg(long, default_value = "2s")]
    pub(crate) heartbeat_timeout: String,
    /// The seed of the plan (default: a random one, printed).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) seed: Option<String>,
    /// How long to wait at the end for the figures to agree or stop changing.
    #[arg(long, default_value = "60s")]
    pub(crate) settle_timeout: String,
    /// One JSON document on stdout instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AnalyticsCommand {
    /// Recompute every aggregate (buckets, windows, lifecycles) from the stored raw events.
    Rebuild(AnalyticsDbArgs),
}

/// Where the analytics-service's database is (as the service finds it).
#[derive(Debug, Clone, Args)]
pub(crate) struct AnalyticsDbArgs {
    /// `postgres://…` or `sqlite://…`; without it, `<data-dir>/analytics.db`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Where the embedded SQLite files live.
    #[arg(long, env = "FORTEN_DATA_DIR", default_value = "./forten-data")]
    pub(crate) data_dir: std::path::PathBuf,
}

/// `forten up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// The gateway's port; the other services take the next four (0: any free ports).
    #[arg(long, default_value_t = crate::system::DEFAULT_PORT_BASE)]
    pub(crate) port_base: u16,
    #[command(flatten)]
    pub(crate) common: LaunchArgs,
}

/// `forten run <service>`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The service to run.
    #[arg(value_enum)]
    pub(crate) service: crate::system::ServiceKind,
    /// The port to listen on (overrides `PORT`; 0: any free port; default: the service's own).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    #[command(flatten)]
    pub(crate) common: LaunchArgs,
}

/// Flags `up` and `run` share; each overrides its environment variable.
#[derive(Debug, Args)]
pub(crate) struct LaunchArgs {
    /// The address to listen on (overrides `HOST`; default 127.0.0.1).
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// Where the embedded SQLite files live (overrides `FORTEN_DATA_DIR`).
    #[arg(long)]
    pub(crate) data_dir: Option<std::path::PathBuf>,
    /// How long a stopping instance keeps serving after deregistering, so that peers stop
    /// sending it requests (default: 2s for `run`, 0 for `up`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) drain_grace: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// Services, instances, health and age.
    List(RegistryArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RegistryArgs {
    /// The registry (api-gateway) URL.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:3000")]
    pub(crate) registry_url: String,
    /// A bearer token to read with (e.g. an admin user's, from `POST /api/auth/login`).
    #[arg(long, env = "FORTEN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Without a token: mint a service token with `registry:read` from this secret.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub(crate) jwt_secret: Option<String>,
}

/// `forten token --from A --to B --scope S`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The calling service (`sub`).
    #[arg(long)]
    pub(crate) from: String,
    /// The target service (`aud`).
    #[arg(long)]
    pub(crate) to: String,
    /// A scope to ask for; repeat for several.
    #[arg(long = "scope", required = true)]
    pub(crate) scopes: Vec<String>,
    /// `shared-secret` (sign here with JWT_SECRET) or `issuer` (ask the auth-service).
    #[arg(long, env = "SERVICE_AUTH_MODE", default_value = "shared-secret", value_parser = ["shared-secret", "issuer"])]
    pub(crate) mode: String,
    /// The shared HS256 secret (shared-secret mode).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub(crate) jwt_secret: Option<String>,
    /// The calling service's own secret (issuer mode).
    #[arg(long, env = "SERVICE_SECRET", hide_env_values = true)]
    pub(crate) service_secret: Option<String>,
    /// Where the auth-service issues tokens (issuer mode).
    #[arg(
        long,
        env = "FORTEN_ISSUER_URL",
        default_value = "http://127.0.0.1:3001"
    )]
    pub(crate) issuer_url: String,
}

/// How to reach RabbitMQ.
#[derive(Debug, Clone, Args)]
pub(crate) struct BrokerArgs {
    /// AMQP URL of the broker.
    #[arg(
        long = "rabbitmq-url",
        env = "RABBITMQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        global = true
    )]
    pub(crate) url: String,
    /// Give up connecting after this long (e.g. `10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub(crate) connect_timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Stream live events matching a topic pattern (one JSON document per line).
    Tail {
        /// Topic pattern: `#` (everything), `access.*`, `door.forced`.
        #[arg(default_value = "#")]
        pattern: String,
        /// Output: `json` (one CloudEvent per line) or `pretty` (one summary line per event).
        #[arg(long, default_value = "json", value_parser = ["json", "pretty"])]
        format: String,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        broker: BrokerArgs,
    },
    /// Build, validate and publish one catalogue event; prints it.
    Publish {
        /// Event type, e.g. `door.forced`.
        #[arg(value_name = "TYPE")]
        event_type: String,
        /// The `data` payload as JSON, e.g. '{"userId":"42"}'.
        data: String,
        /// The `source` attribute.
        #[arg(long, default_value = "forten-cli")]
        source: String,
        /// The `subject` attribute.
        #[arg(long)]
        subject: Option<String>,
        #[command(flatten)]
        broker: BrokerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// One line per dead letter: type, attempts, last failure, error.
    List(DlqArgs),
    /// Every dead letter in full: failure headers and body.
    Show(DlqArgs),
    /// Move dead letters back to their queue (attempts reset).
    Replay(DlqArgs),
    /// Delete every dead letter of the queue.
    Purge {
        /// The subscription's queue (not the `.dlq` itself).
        queue: String,
        #[command(flatten)]
        broker: BrokerArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DlqArgs {
    /// The subscription's queue (not the `.dlq` itself).
    pub(crate) queue: String,
    /// At most this many messages.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Publish with confirms and consume with acks: the event bus against raw lapin.
    Events(BenchEventsArgs),
    /// `ServiceClient` (discovery, balancing, breaker, retry, service token, tracing) against a
    /// bare reqwest client on the same loopback server.
    Http(BenchHttpArgs),
    /// Service tokens signed and verified per second in both modes, and the auth layer's cost.
    Auth(BenchAuthArgs),
    /// `GET /api/buildings` through the api-gateway against straight to the access-service.
    Gateway(BenchGatewayArgs),
    /// analytics-service: ingest from RabbitMQ (dedup + storage), query latency over stored events.
    Analytics(BenchAnalyticsArgs),
}

/// Repetitions and output, common to the benchmarks.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchOutputArgs {
    /// Repetitions of each side (alternating); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) repeat: usize,
    /// One JSON object per figure instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A closed-loop HTTP load: concurrent callers, each sending its next request when the last
/// one is answered.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchLoadArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Requests per run; when given, runs end after this many instead of after `--duration`.
    #[arg(long)]
    pub(crate) count: Option<usize>,
    /// How long each run lasts (e.g. `3s`), unless `--count` is given.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct BenchHttpArgs {
    #[command(flatten)]
    pub(crate) load: BenchLoadArgs,
    /// Size of the JSON response body in bytes.
    #[arg(long, default_value_t = 64)]
    pub(crate) payload: usize,
    #[command(flatten)]
    pub(crate) output: BenchOutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct BenchGatewayArgs {
    #[command(flatten)]
    pub(crate) load: BenchLoadArgs,
    /// Buildings stored in the access-service (the size of the listed answer).
    #[arg(long, default_value_t = 10)]
    pub(crate) buildings: usize,
    #[command(flatten)]
    pub(crate) output: BenchOutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct BenchAuthArgs {
    /// Tokens signed and verified per run (and requests through the router).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) count: usize,
    #[command(flatten)]
    pub(crate) output: BenchOutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct BenchAnalyticsArgs {
    /// Events published to RabbitMQ and ingested (plus 1 % redelivered copies).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) count: usize,
    /// Events stored before the queries are timed (the ingested ones included).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) stored: usize,
    /// Timed calls of each query; p50 and p99 are reported.
    #[arg(long, default_value_t = 50)]
    pub(crate) queries: usize,
    /// The database to bench on (`postgres://…`); default: a fresh SQLite file in a temporary
    /// directory. Nothing outside the bench's own tables (a unique schema on PostgreSQL) is
    /// touched.
    #[arg(long = "bench-database-url")]
    pub(crate) database_url: Option<String>,
    /// One JSON object per figure instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct BenchEventsArgs {
    /// Events per run.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) count: usize,
    /// Payload size in bytes (the whole CloudEvent, approximately).
    #[arg(long, default_value_t = 1024)]
    pub(crate) payload: usize,
    /// Repetitions of each side (alternating); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) repeat: usize,
    /// End-to-end latency: messages per second, publisher and consumer on separate connections.
    #[arg(long, default_value_t = 500)]
    pub(crate) rate: u32,
    /// End-to-end latency: how long to publish at `--rate` (e.g. `10s`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// One JSON object per figure instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        for args in [
            &["forten", "events", "tail"][..],
            &[
                "forten", "events", "tail", "access.*", "--format", "pretty", "--count", "3",
            ],
            &[
                "forten",
                "events",
                "publish",
                "user.deleted",
                r#"{"userId":"1"}"#,
                "--source",
                "ops",
            ],
            &["forten", "up"],
            &["forten", "env"],
            &[
                "forten",
                "up",
                "--port-base",
                "4000",
                "--data-dir",
                "/tmp/x",
            ],
            &["forten", "run", "access-service", "--port", "0"],
            &["forten", "run", "api-gateway", "--drain-grace", "500ms"],
            &["forten", "dlq", "list", "q"],
            &["forten", "dlq", "show", "q", "--limit", "5"],
            &["forten", "dlq", "replay", "q", "--rabbitmq-url", "amqp://h"],
            &["forten", "dlq", "purge", "q"],
            &["forten", "bench", "events", "--count", "10", "--json"],
            &[
                "forten",
                "bench",
                "http",
                "--concurrency",
                "4",
                "--count",
                "100",
                "--json",
            ],
            &[
                "forten",
                "bench",
                "http",
                "--duration",
                "1s",
                "--payload",
                "512",
                "--repeat",
                "1",
            ],
            &[
                "forten", "bench", "auth", "--count", "10", "--repeat", "1", "--json",
            ],
            &[
                "forten",
                "bench",
                "analytics",
                "--count",
                "10",
                "--stored",
                "100",
                "--json",
            ],
            &["forten", "analytics", "rebuild", "--data-dir", "/tmp/x"],
            &["forten", "simulate"],
            &[
                "forten",
                "simulate",
                "--seed",
                "1",
                "--duration",
                "20s",
                "--rate",
                "5",
                "--json",
            ],
            &[
                "forten",
                "token",
                "--from",
                "a",
                "--to",
                "b",
                "--scope",
                "internal:read",
                "--scope",
                "x",
            ],
            &[
                "forten",
                "registry",
                "list",
                "--registry-url",
                "http://127.0.0.1:1",
            ],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        assert!(Cli::try_parse_from(["forten", "events", "tail", "--format", "xml"]).is_err());
        assert!(Cli::try_parse_from(["forten", "dlq", "list"]).is_err());
        assert!(Cli::try_parse_from(["forten", "run", "billing-service"]).is_err());
        assert!(
            Cli::try_parse_from(["forten", "events", "tail", "--connect-timeout", "soon"]).is_err()
        );
    }
}
