//! `forten env` (hidden, for operators and the deployment files' tests): the system's
//! deployment contract as one JSON document, taken from the code's own constants.
//!
//! ```text
//! {"variables":["RABBITMQ_URL",…],
//!  "services":[{"name":"api-gateway","port":3000},…],
//!  "probes":{"live":"/health/live","ready":"/health/ready"}}
//! ```

use forten_shared::health::{LIVE_PATH, READY_PATH};
use serde_json::{Value, json};

use super::CliError;
use crate::system::ServiceKind;
use crate::system::settings::env;

/// The contract: every environment variable the services read, every service with its
/// default port, and the probe paths every service serves.
pub(crate) fn contract() -> Value {
    let services: Vec<Value> = ServiceKind::ALL
        .into_iter()
        .map(|kind| json!({"name": kind.name(), "port": kind.default_port()}))
        .collect();
    json!({
        "variables": env::ALL,
        "services": services,
        "probes": {"live": LIVE_PATH, "ready": READY_PATH},
    })
}

/// Prints [`contract`] on stdout.
pub(crate) fn run() -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(&contract())
        .map_err(|e| CliError::Failed(format!("cannot render the contract: {e}")))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_service_variable_and_probe() {
        let c = contract();
        let services = c["services"].as_array().unwrap();
        assert_eq!(services.len(), ServiceKind::ALL.len());
        assert_eq!(services[0], json!({"name": "api-gateway", "port": 3000}));
        assert_eq!(
            services[4],
            json!({"name": "analytics-service", "port": 3004})
        );
        let vars = c["variables"].as_array().unwrap();
        for name in [env::JWT_SECRET, env::ADVERTISE_URL, "RUST_LOG"] {
            assert!(vars.contains(&json!(name)), "{name} missing");
        }
        assert_eq!(c["probes"]["live"], "/health/live");
        assert_eq!(c["probes"]["ready"], "/health/ready");
    }
}
