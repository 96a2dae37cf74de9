//! `forten events tail|publish`.

use std::io::Write;
use std::time::Duration;

use forten_shared::events::EventData;
use forten_shared::{EventBuilder, EventType};

use super::{CliError, connect};
use crate::cli::EventsCommand;

pub(crate) async fn run(cmd: EventsCommand) -> Result<(), CliError> {
    match cmd {
        EventsCommand::Tail {
            pattern,
            format,
            count,
            broker,
        } => {
            let bus = connect(&broker, "forten-cli").await?;
            let mut tail = bus.tail(&pattern).await?;
            let mut seen = 0usize;
            let mut out = std::io::stdout();
            loop {
                let next = tokio::select! {
                    t = tail.next() => t,
                    _ = tokio::signal::ctrl_c() => None,
                };
                let Some(tapped) = next else { break };
                let line = match (&tapped.event, format.as_str()) {
                    (Ok(e), "pretty") => format!(
                        "{} {:<20} {:<20} {} {}",
                        e.time.format("%H:%M:%S%.3f"),
                        e.event_type(),
                        e.source,
                        e.subject.as_deref().unwrap_or("-"),
                        e.id
                    ),
                    (Ok(_), _) => String::from_utf8_lossy(&tapped.body).into_owned(),
                    (Err(err), _) => format!(
                        "{{\"invalid\":{},\"body\":{}}}",
                        serde_json::Value::String(err.to_string()),
                        serde_json::Value::String(
                            String::from_utf8_lossy(&tapped.body).into_owned()
                        )
                    ),
                };
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    break; // stdout closed (e.g. piped into head)
                }
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    break;
                }
            }
            bus.shutdown(Duration::from_secs(1)).await;
            Ok(())
        }
        EventsCommand::Publish {
            event_type,
            data,
            source,
            subject,
            broker,
        } => {
            let ty: EventType = event_type.parse().map_err(|e| {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                CliError::Usage(format!("{e}; known types: {}", known.join(", ")))
            })?;
            let data =
                EventData::from_json(ty, &data).map_err(|e| CliError::Usage(e.to_string()))?;
            let mut builder = EventBuilder::new(data, source);
            if let Some(s) = subject {
                builder = builder.subject(s);
            }
            let event = builder.build();
            let bus = connect(&broker, "forten-cli").await?;
            let published = bus.publish(&event).await;
            bus.shutdown(Duration::from_secs(1)).await;
            published?;
            let json = event
                .to_vec()
                .map_err(|e| CliError::Failed(e.to_string()))?;
            println!("{}", String::from_utf8_lossy(&json));
            Ok(())
        }
    }
}
