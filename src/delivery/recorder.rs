//! The recorder: one task that writes the workers' attempts to the queue, in one transaction
//! for all that finished together (group commit, gathered for a few milliseconds).

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::DeliveryError;
use super::queue::{self, AttemptResult, Claimed, Recorded};
use super::schedule::Backoff;
use crate::db::Db;

/// An attempt to record, the time it finished, and who waits for the outcome.
pub(super) type ToRecord = (
    Claimed,
    AttemptResult,
    SystemTime,
    oneshot::Sender<Result<Recorded, DeliveryError>>,
);

/// At most this many attempts in one recording transaction.
const RECORD_BATCH: usize = 256;

/// How long the recorder waits for more attempts to join a small batch. A fan-out's answers come
/// back one by one; a transaction per handful wrote the same pages (the deliveries' leaf and
/// index pages, the attempts' page) to the WAL again at every commit: gathered for a few
/// milliseconds, a commit carries tens of attempts. A delivery keeps its lease meanwhile.
const RECORD_GATHER: Duration = Duration::from_millis(12);

/// Records attempts as they finish: whatever has queued up while the last transaction ran goes
/// into the next one (group commit), so a busy fan-out commits once per batch and an idle one
/// records each attempt at once. Until its batch commits a delivery keeps its lease, so a crash
/// loses nothing (the lease expires or is recovered, and it is sent again) and a delivery is
/// marked done only once (`record` skips a row no longer pending). Ends when the pool is dropped.
pub(super) async fn record_batches(
    db: Db,
    backoff: Backoff,
    mut to_record: mpsc::UnboundedReceiver<ToRecord>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while to_record.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let until = tokio::time::Instant::now() + RECORD_GATHER;
        while batch.len() < RECORD_BATCH {
            let room = RECORD_BATCH - batch.len();
            match tokio::time::timeout_at(until, to_record.recv_many(&mut batch, room)).await {
                Ok(n) if n > 0 => {}
                // The time is up, or the pool is gone: record what there is.
                _ => break,
            }
        }
        let (items, waiting): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .map(|(claimed, result, now, done)| ((claimed, result, now), done))
            .unzip();
        let backoff = backoff.clone();
        let outcome = db
            .call(move |c| {
                let refs: Vec<_> = items.iter().map(|(c, r, now)| (c, r, *now)).collect();
                match queue::record_batch(c, &refs, &backoff) {
                    Ok(all) => Ok(all.into_iter().map(Ok).collect::<Vec<_>>()),
                    // One row that cannot be recorded must not hold back (and have sent again)
                    // all that finished with it: each goes on its own then.
                    Err(_) if refs.len() > 1 => Ok(refs
                        .iter()
                        .map(|one| {
                            queue::record_batch(c, std::slice::from_ref(one), &backoff)
                                .map(|v| v.into_iter().next().unwrap_or(queue::Recorded::Stale))
                        })
                        .collect()),
                    Err(e) => Err(e),
                }
            })
            .await;
        match outcome {
            Ok(outcomes) => {
                for (done, recorded) in waiting.into_iter().zip(outcomes) {
                    let _ = done.send(recorded);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for done in waiting {
                    let _ = done.send(Err(DeliveryError::Worker(message.clone())));
                }
            }
        }
    }
}
