//! The owner's home timeline: what the accounts the owner follows post and boost, and what the
//! owner does with it (issue 12). Sits between the HTTP layers (`web`, `inbox`, `api`) and
//! `conversation` in the layer picture (README, Development).
//!
//! - [`receive`]: Create and Announce (and Undo of Announce) from followed accounts, called by
//!   `inbox::effects`; posts are stored once, in `remote_notes`, through `conversation`, which
//!   also applies their edits and deletions;
//! - [`store`]: the SQL of `timeline_entries` and `timeline_actions` (migrations/12-timeline),
//!   and retention;
//! - [`act`]: like / boost / bookmark and their undos, through the delivery queue;
//! - [`quotes`]: quotes of others' posts, shown as quotes only with a stamp that checks out;
//! - [`show`]: `hortus timeline`; [`shown`]: the owner's boosts in the outbox and on the
//!   profile page (`web` and `export` call it).
//!
//! Only allowed servers get here; a boost of a post on a refused server keeps the link only and
//! that server is never contacted.

pub mod act;
pub mod quotes;
pub mod receive;
pub mod show;
pub mod shown;
pub mod store;

use crate::context::Context;

/// Entries pruned per transaction: the hourly prune loops until none is left.
const PRUNE_BATCH: usize = 500;

/// Retention (`[timeline] keep_days`): run by the hourly maintenance of `hortus serve`.
pub async fn prune(ctx: &Context) -> Result<store::Pruned, crate::db::DbError> {
    let keep = time::Duration::days(i64::from(ctx.config.timeline.keep_days));
    let cutoff = crate::times::rfc3339(time::OffsetDateTime::now_utc() - keep);
    let mut total = store::Pruned::default();
    loop {
        let c = cutoff.clone();
        let p = ctx
            .db
            .call(move |conn| store::prune(conn, &c, PRUNE_BATCH).map_err(crate::db::DbError::from))
            .await?;
        total.entries += p.entries;
        total.posts += p.posts;
        if p.entries < PRUNE_BATCH {
            return Ok(total);
        }
    }
}
