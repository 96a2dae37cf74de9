//! `forten`: the Forten system and its operator commands.
//!
//! `main` only parses the command line, installs logging and runs the command; the work lives
//! in `forten-shared` and the command modules. Every failure ends in one clear line on stderr
//! and a non-zero exit: 64 for bad arguments or configuration, 69 for an unreachable
//! dependency, 1 otherwise.

mod cli;
mod commands;
mod services;
mod storage;
mod system;

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc instead of glibc's allocator: the services allocate per request and per event, and
/// glibc's malloc/free showed at ≈ 10 % of the HTTP profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // process-wide crypto provider for JWTs, before anything signs or verifies
    forten_shared::auth::install_crypto_provider();
    let _telemetry = match init_logging(&cli.command) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Help and version are printed as asked (exit 0); a command line that does not parse gives
/// clap's one-line reason alone (`error: unexpected argument '--x' found`) and exit 64.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(64)
        }
        _ => {
            let rendered = e.to_string();
            let line = rendered.lines().next().unwrap_or("error: bad arguments");
            eprintln!("{line}");
            ExitCode::from(64)
        }
    }
}

/// Logs go to stderr (stdout is for the command's output).
///
/// The services (`up`, `run`) get the full telemetry pipeline: structured logs (`LOG_FORMAT`,
/// `RUST_LOG`, default `info` for `run` and `warn` for `up`, whose console shows the banner),
/// traces (exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set). Operator commands
/// log errors only (`RUST_LOG` to change): a command reports its own failure in one line.
fn init_logging(
    command: &cli::Command,
) -> Result<Option<forten_shared::telemetry::TelemetryGuard>, String> {
    use forten_shared::telemetry::{TelemetryConfig, build_subscriber};
    let default_filter = match command {
        cli::Command::Up(_) => "warn,lapin=error",
        cli::Command::Run(_) => "info,lapin=warn",
        _ => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,lapin=off"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
            return Ok(None);
        }
    };
    let service = match command {
        cli::Command::Run(args) => args.service.name(),
        _ => "forten",
    };
    let mut config = TelemetryConfig::from_env(service).map_err(|e| e.to_string())?;
    if std::env::var_os("RUST_LOG").is_none() {
        config = config.with_log_filter(default_filter);
    }
    let (subscriber, guard) =
        build_subscriber(&config, std::io::stderr).map_err(|e| e.to_string())?;
    tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())?;
    Ok(Some(guard))
}
