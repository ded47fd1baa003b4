//! A [`Service`] that logs one line per operation that changes the
//! kernel or the stores: what it did (or why it was refused) and how long
//! it took. Reads (list, dumpxml, status) are not logged.

use std::time::Instant;

use nwfilter_service::json::Service;
use nwfilter_service::protocol::{Op, Reply};

/// Wraps a service with the operation log.
#[derive(Debug)]
pub struct Logged<S>(pub S);

/// The protocol's name of an operation that changes something, `None` for
/// reads.
fn changing(op: &Op) -> Option<&'static str> {
    Some(match op {
        Op::Define { .. } => "define",
        Op::Undefine { .. } => "undefine",
        Op::BindingCreate { .. } => "binding-create",
        Op::BindingDelete { .. } => "binding-delete",
        Op::Reload => "reload",
        Op::Net { .. } => "net",
        Op::Dumpxml { .. }
        | Op::List
        | Op::BindingList
        | Op::BindingDumpxml { .. }
        | Op::Status
        | Op::Explain { .. } => return None,
    })
}

impl<S: Service> Service for Logged<S> {
    fn handle(&self, op: Op) -> Result<Reply, String> {
        let Some(name) = changing(&op) else {
            return self.0.handle(op);
        };
        let start = Instant::now();
        let result = self.0.handle(op);
        let took = crate::logging::Took(start.elapsed());
        match &result {
            Ok(Reply::Done { message }) | Ok(Reply::Text { text: message }) => {
                let first = message.lines().next().unwrap_or_default();
                tracing::info!(%took, "{name}: {first}");
                // A reload lists its failures after the first line.
                for line in message.lines().skip(1) {
                    tracing::warn!("{name}: {line}");
                }
            }
            Ok(_) => tracing::info!(%took, "{name}: done"),
            Err(why) => tracing::warn!(%took, "{name} refused: {why}"),
        }
        result
    }
}
