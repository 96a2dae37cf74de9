//! `forten registry list`.

use std::sync::Arc;

use forten_shared::client::{AuthHeaderProvider, StaticAuthHeader};
use forten_shared::discovery::{
    DiscoveryError, RegistryToken, list_registry, render_registry_table,
};
use forten_shared::{ServiceAuth, ServiceAuthConfig};

use super::CliError;
use crate::cli::RegistryArgs;

pub(crate) async fn list(args: RegistryArgs) -> Result<(), CliError> {
    let auth: Option<Arc<dyn AuthHeaderProvider>> = match (&args.token, &args.jwt_secret) {
        (Some(token), _) => {
            Some(Arc::new(StaticAuthHeader::bearer(token).map_err(|e| {
                CliError::Usage(format!("--token / FORTEN_TOKEN: {e}"))
            })?))
        }
        (None, Some(secret)) => {
            let auth = ServiceAuth::new(ServiceAuthConfig::shared_secret("forten-cli", secret))
                .map_err(|e| CliError::Usage(e.to_string()))?;
            Some(Arc::new(RegistryToken::new(auth)))
        }
        (None, None) => None,
    };
    let services = list_registry(&args.registry_url, auth)
        .await
        .map_err(|e| match e {
            DiscoveryError::Unreachable(_) => {
                CliError::Unavailable(format!("registry at {}: {e}", args.registry_url))
            }
            DiscoveryError::Config(_) => CliError::Usage(e.to_string()),
            other => CliError::Failed(other.to_string()),
        })?;
    print!("{}", render_registry_table(&services, chrono::Utc::now()));
    Ok(())
}
