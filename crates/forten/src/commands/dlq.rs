//! `forten dlq list|show|replay|purge <queue>`.

use std::time::Duration;

use forten_shared::Event;

use super::{CliError, connect};
use crate::cli::DlqCommand;

pub(crate) async fn run(cmd: DlqCommand) -> Result<(), CliError> {
    match cmd {
        DlqCommand::List(args) => {
            let bus = connect(&args.broker, "forten-cli").await?;
            let letters = bus.dead_letters(&args.queue, args.limit).await;
            bus.shutdown(Duration::from_secs(1)).await;
            let letters = letters?;
            println!("{} dead letter(s) in {}.dlq", letters.len(), args.queue);
            for (i, d) in letters.iter().enumerate() {
                let id = Event::from_slice(&d.body)
                    .map(|e| e.id)
                    .unwrap_or_else(|_| "(invalid)".into());
                println!(
                    "{i:>4}  {:<20} attempts={:<3} last={}  id={id}  error={}",
                    d.routing_key, d.attempts, d.last_failure, d.error
                );
            }
            Ok(())
        }
        DlqCommand::Show(args) => {
            let bus = connect(&args.broker, "forten-cli").await?;
            let letters = bus.dead_letters(&args.queue, args.limit).await;
            bus.shutdown(Duration::from_secs(1)).await;
            for d in letters? {
                let body =
                    serde_json::from_slice::<serde_json::Value>(&d.body).unwrap_or_else(|_| {
                        serde_json::Value::String(String::from_utf8_lossy(&d.body).into_owned())
                    });
                let doc = serde_json::json!({
                    "error": d.error,
                    "attempts": d.attempts,
                    "originalRoutingKey": d.routing_key,
                    "firstFailure": d.first_failure,
                    "lastFailure": d.last_failure,
                    "body": body,
                });
                println!("{doc}");
            }
            Ok(())
        }
        DlqCommand::Replay(args) => {
            let bus = connect(&args.broker, "forten-cli").await?;
            let n = bus.replay_dead_letters(&args.queue, args.limit).await;
            bus.shutdown(Duration::from_secs(1)).await;
            println!(
                "replayed {} message(s) from {q}.dlq to {q}",
                n?,
                q = args.queue
            );
            Ok(())
        }
        DlqCommand::Purge { queue, broker } => {
            let bus = connect(&broker, "forten-cli").await?;
            let n = bus.purge_dead_letters(&queue).await;
            bus.shutdown(Duration::from_secs(1)).await;
            println!("purged {} message(s) from {queue}.dlq", n?);
            Ok(())
        }
    }
}
