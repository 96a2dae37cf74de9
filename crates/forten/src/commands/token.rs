//! `forten token --from A --to B --scope S`: mints a service token in shared-secret mode, or
//! asks the issuer (auth-service) for one in issuer mode.

use forten_shared::auth::{AuthError, ServiceAuth, ServiceAuthConfig};

use super::CliError;
use crate::cli::TokenArgs;

fn auth_error(e: AuthError) -> CliError {
    match e {
        // the issuer could not be reached: a dependency problem
        AuthError::Issuer(_) => CliError::Unavailable(e.to_string()),
        AuthError::Config(_) => CliError::Usage(e.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

pub(crate) async fn run(args: TokenArgs) -> Result<(), CliError> {
    let config = match args.mode.as_str() {
        "issuer" => {
            let secret = args.service_secret.ok_or_else(|| {
                CliError::Usage("issuer mode needs the calling service's secret: set SERVICE_SECRET or --service-secret".into())
            })?;
            ServiceAuthConfig::issuer(&args.from, secret, &args.issuer_url)
        }
        _ => {
            let secret = args.jwt_secret.ok_or_else(|| {
                CliError::Usage(
                    "shared-secret mode needs the signing secret: set JWT_SECRET or --jwt-secret"
                        .into(),
                )
            })?;
            ServiceAuthConfig::shared_secret(&args.from, secret)
        }
    };
    let auth = ServiceAuth::new(config).map_err(auth_error)?;
    let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();
    let token = auth
        .token_with_scopes(&args.to, &scopes)
        .await
        .map_err(auth_error)?;
    println!("{token}");
    Ok(())
}
