//! The commands: each parses what it needs, calls the toolkit, and prints.

mod analytics;
mod bench;
mod dlq;
mod env;
mod events;
mod registry;
mod simulate;
mod token;

use forten_shared::EventBus;
use forten_shared::events::{BusError, RabbitConfig};

use crate::cli::{
    AnalyticsCommand, BenchCommand, BrokerArgs, Cli, Command, LaunchArgs, RegistryCommand,
};
use crate::system::{self, Launch};

/// Why a command failed; decides the exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad arguments or configuration (exit 64).
    #[error("{0}")]
    Usage(String),
    /// A dependency cannot be reached (exit 69).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 64,
            CliError::Unavailable(_) => 69,
            CliError::Failed(_) => 1,
        }
    }
}

impl From<BusError> for CliError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Connect { .. } => CliError::Unavailable(e.to_string()),
            BusError::InvalidUrl(_) | BusError::InvalidSubscription(_) | BusError::Event(_) => {
                CliError::Usage(e.to_string())
            }
            other => CliError::Failed(other.to_string()),
        }
    }
}

pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Up(args) => {
            let launch = Launch {
                port_base: Some(args.port_base),
                ..launch(args.common)
            };
            system::up(launch).await
        }
        Command::Run(args) => {
            let launch = Launch {
                port: args.port,
                ..launch(args.common)
            };
            system::run(args.service, launch).await
        }
        Command::Events(cmd) => events::run(cmd).await,
        Command::Dlq(cmd) => dlq::run(cmd).await,
        Command::Bench(BenchCommand::Events(args)) => bench::events(args).await,
        Command::Bench(BenchCommand::Http(args)) => bench::http(args).await,
        Command::Bench(BenchCommand::Auth(args)) => bench::auth(args).await,
        Command::Bench(BenchCommand::Gateway(args)) => bench::gateway(args).await,
        Command::Bench(BenchCommand::Analytics(args)) => bench::analytics(args).await,
        Command::Analytics(AnalyticsCommand::Rebuild(args)) => analytics::rebuild(args).await,
        Command::Token(args) => token::run(args).await,
        Command::Registry(RegistryCommand::List(args)) => registry::list(args).await,
        Command::Env => env::run(),
        Command::Simulate(args) => simulate::run(args).await,
    }
}

fn launch(args: LaunchArgs) -> Launch {
    Launch {
        host: args.host,
        data_dir: args.data_dir,
        drain_grace: args.drain_grace,
        ..Launch::default()
    }
}

/// Connects the bus of an operator command.
pub(crate) async fn connect(broker: &BrokerArgs, service: &str) -> Result<EventBus, CliError> {
    let config = RabbitConfig::new(&broker.url)
        .connect_timeout(broker.connect_timeout)
        .connection_name(format!("forten-cli {service}"));
    Ok(EventBus::rabbitmq(service, config).await?)
}
