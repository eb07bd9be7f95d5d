//! The owner's federation commands: who may talk to the garden, who knocked, who follows, and
//! whom the owner follows. Each returns text for the terminal; the CLI only prints it.

pub mod accounts;

use std::fmt::Write as _;

use rusqlite::Connection;

use crate::activitypub::{self as ap, fetch};
use crate::config::FederationMode;
use crate::context::Context;
use crate::federation::{self, List, ListChange, SuspendedFollower};
use crate::graph::{followers, following};

#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error(transparent)]
    Federation(#[from] federation::FederationError),
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    #[error("database error: {0}")]
    Db(String),
    #[error("{0}")]
    Usage(String),
    #[error("queueing the activity failed: {0}")]
    Queue(String),
}

impl From<rusqlite::Error> for OwnerError {
    fn from(e: rusqlite::Error) -> Self {
        OwnerError::Db(e.to_string())
    }
}

impl From<crate::db::DbError> for OwnerError {
    fn from(e: crate::db::DbError) -> Self {
        OwnerError::Db(e.to_string())
    }
}

fn describe_suspended(out: &mut String, verb: &str, list: &[SuspendedFollower]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "{} follower(s) {verb}:", list.len());
    for f in list {
        let _ = writeln!(out, "  {}", safe(&f.actor_id));
    }
}

fn describe_change(what: &str, change: &ListChange) -> String {
    let mut out = String::new();
    if change.changed {
        let _ = writeln!(out, "{what} {}", change.pattern);
    } else {
        let _ = writeln!(out, "nothing to do: {} {what} already", change.pattern);
    }
    describe_suspended(&mut out, "suspended from deliveries", &change.suspended);
    if !change.still_suspended.is_empty() {
        describe_suspended(&mut out, "still suspended", &change.still_suspended);
        let _ = writeln!(
            out,
            "  they are not restored silently: run `hortus followers restore {}` to restore them",
            change.pattern
        );
    }
    out
}

pub fn list_add(conn: &Connection, list: List, entry: &str) -> Result<String, OwnerError> {
    Ok(match list {
        List::Allow => describe_change("allowed", &federation::allow_add(conn, entry)?),
        List::Block => describe_change("blocked", &federation::block_add(conn, entry)?),
    })
}

pub fn list_remove(
    conn: &Connection,
    mode: FederationMode,
    list: List,
    entry: &str,
) -> Result<String, OwnerError> {
    Ok(match list {
        List::Allow => describe_change(
            "removed from the allowlist:",
            &federation::allow_remove(conn, mode, entry)?,
        ),
        List::Block => describe_change("unblocked", &federation::block_remove(conn, entry)?),
    })
}

pub fn list_show(conn: &Connection, list: List) -> Result<String, OwnerError> {
    let entries = match list {
        List::Allow => federation::allow_list(conn)?,
        List::Block => federation::block_list(conn)?,
    };
    let mut out = String::new();
    if entries.is_empty() {
        let _ = writeln!(out, "(empty)");
    }
    for e in entries {
        let _ = writeln!(out, "{}\t{}", e.pattern, e.created_at);
    }
    Ok(out)
}

pub fn list_import(conn: &Connection, list: List, text: &str) -> Result<String, OwnerError> {
    let r = federation::import_domains(conn, list, text)?;
    let mut out = format!(
        "imported ({:?}): {} added, {} already present, {} skipped\n",
        r.format,
        r.added.len(),
        r.already_present,
        r.skipped.len()
    );
    for s in &r.skipped {
        let _ = writeln!(out, "  line {}: {} ({})", s.line, s.text, s.reason);
    }
    describe_suspended(&mut out, "suspended from deliveries", &r.suspended);
    Ok(out)
}

/// A remote string in a line of the owner's terminal (issue 9.4): rows written before fields
/// were cleaned on the way in, and peers' handles and ids, pass through the same filter.
fn safe(remote: &str) -> String {
    crate::text::strip_controls(remote)
}

pub fn knocks(conn: &Connection, limit: usize) -> Result<String, OwnerError> {
    let knocks = federation::knocks(conn, limit)?;
    let mut out = String::new();
    if knocks.is_empty() {
        let _ = writeln!(out, "No one has knocked.");
    }
    for k in knocks {
        let types: Vec<String> = k
            .sample_types
            .iter()
            .map(|(t, n)| format!("{t}×{n}"))
            .collect();
        let _ = writeln!(
            out,
            "{}\t{} request(s), last {}\t{}\n  actors: {}\n  allow with: hortus allow add {}",
            safe(&k.host),
            k.count,
            k.last_seen,
            safe(&types.join(", ")),
            if k.sample_actors.is_empty() {
                "(unknown)".into()
            } else {
                safe(&k.sample_actors.join(", "))
            },
            safe(k.host.split(':').next().unwrap_or(&k.host)),
        );
    }
    Ok(out)
}

pub fn followers(conn: &Connection, state_filter: Option<&str>) -> Result<String, OwnerError> {
    let mut out = String::new();
    for follower in followers::list(conn, state_filter)? {
        let followers::Follower {
            actor_id: id,
            state,
            created_at: created,
            handle,
        } = follower;
        let _ = writeln!(
            out,
            "{state}\t{}\t{}\tsince {created}",
            safe(&handle.unwrap_or_default()),
            safe(&id)
        );
    }
    if out.is_empty() {
        out.push_str("(none)\n");
    }
    Ok(out)
}

/// Finds a follower by actor id or `user@host` handle.
fn find_follower(
    conn: &Connection,
    who: &str,
) -> Result<(String, String, String, String), OwnerError> {
    let who = who.trim().trim_start_matches('@');
    followers::find(conn, who)?
        .map(|f| (f.actor_id, f.follow_id, f.state, f.inbox))
        .ok_or_else(|| {
            OwnerError::Usage(format!("{who} is not a follower; see `hortus followers`"))
        })
}

/// Approves or rejects a pending follower: records the decision and queues the Accept/Reject,
/// which the running server delivers.
pub fn answer_follower(
    conn: &mut Connection,
    ctx: &Context,
    who: &str,
    approve: bool,
) -> Result<String, OwnerError> {
    let (actor, follow_id, current, inbox) = find_follower(conn, who)?;
    if current == "suspended" {
        return Err(OwnerError::Usage(format!(
            "{actor} is suspended because its server is not allowed; allow the server first"
        )));
    }
    let kind = if approve { "Accept" } else { "Reject" };
    let activity = ap::answer_follow(&ctx.urls, kind, &actor, &follow_id);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if approve {
        followers::accept(&tx, &actor)?;
    } else {
        followers::remove(&tx, &actor)?;
    }
    crate::delivery::enqueue(&tx, &activity, &[inbox])
        .map_err(|e| OwnerError::Queue(e.to_string()))?;
    tx.commit()?;
    Ok(format!(
        "{} {actor}; the {kind} is queued and goes out from `hortus serve`\n",
        if approve { "approved" } else { "rejected" }
    ))
}

pub fn restore(conn: &Connection, mode: FederationMode, entry: &str) -> Result<String, OwnerError> {
    let r = federation::restore_followers(conn, mode, entry)?;
    let mut out = String::new();
    describe_suspended(&mut out, "restored", &r.restored);
    describe_suspended(
        &mut out,
        "left suspended (their server is still refused)",
        &r.still_refused,
    );
    if out.is_empty() {
        out.push_str("no suspended followers match\n");
    }
    Ok(out)
}

/// Resolves `user@host` or an actor URL to a fetched, cached actor.
async fn resolve(ctx: &Context, account: &str) -> Result<fetch::RemoteActor, OwnerError> {
    let id = if account.starts_with("https://") || account.starts_with("http://") {
        account.to_string()
    } else {
        fetch::webfinger(&fetch::Remote::of(ctx), account).await?
    };
    Ok(fetch::actor(&fetch::Remote::of(ctx), &id, true).await?)
}

/// `hortus follow`: sends a Follow (through the queue); the Accept or Reject arrives in the inbox.
pub async fn follow(ctx: &Context, account: &str) -> Result<String, OwnerError> {
    let target = resolve(ctx, account).await?;
    let id = target.id.clone();
    let blocked = ctx
        .db
        .read(move |c| crate::graph::accounts::is_blocked(c, &id).map_err(OwnerError::from))
        .await?;
    if blocked {
        return Err(OwnerError::Usage(format!(
            "you blocked {}: `hortus block remove {}` first",
            safe(&target.id),
            safe(&target.id)
        )));
    }
    let follow_id = ap::new_activity_id(&ctx.urls);
    let activity = ap::follow(&ctx.urls, &follow_id, &target.id);
    let target_id = target.id.clone();
    let inbox = target.inbox.clone();
    ctx.db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            following::upsert_pending(&tx, &target_id, &follow_id, &crate::times::now())?;
            crate::delivery::enqueue(&tx, &activity, &[inbox])
                .map_err(|e| OwnerError::Queue(e.to_string()))?;
            tx.commit()?;
            Ok::<_, OwnerError>(())
        })
        .await?;
    Ok(format!(
        "Follow queued for {} ({}); it is delivered by `hortus serve`, and `hortus following` shows the answer\n",
        target.handle.as_deref().unwrap_or(&target.id),
        target.id
    ))
}

/// `hortus unfollow`: Undo with the whole Follow embedded (Threads needs it).
pub async fn unfollow(ctx: &Context, account: &str) -> Result<String, OwnerError> {
    let target = resolve(ctx, account).await?;
    let target_id = target.id.clone();
    let urls = ctx.urls.clone();
    let inbox = target.inbox.clone();
    ctx.db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let follow_id = following::follow_id(&tx, &target_id)?;
            let Some(follow_id) = follow_id else {
                return Err(OwnerError::Usage(format!("you do not follow {target_id}")));
            };
            let undo = ap::undo_follow(&urls, &follow_id, &target_id);
            following::remove(&tx, &target_id)?;
            crate::delivery::enqueue(&tx, &undo, &[inbox])
                .map_err(|e| OwnerError::Queue(e.to_string()))?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(format!("Undo(Follow) queued for {}\n", target.id))
}

pub fn following(conn: &Connection) -> Result<String, OwnerError> {
    let mut out = String::new();
    for followed in following::list(conn)? {
        let following::Followed {
            actor_id: id,
            state,
            handle,
            created_at: since,
        } = followed;
        let _ = writeln!(
            out,
            "{state}\t{}\t{}",
            safe(&handle.unwrap_or_default()),
            safe(&id)
        );
        if state != "pending" {
            continue;
        }
        // A follow stays pending when its Accept never arrived or was refused here: say which
        // (issue 10.4), matching the refused activity's actor to the account followed.
        if let Some(r) = crate::activitypub::refusal::latest_for_actor(conn, &id, &since)? {
            let what = match r.activity_type.as_deref() {
                Some("Accept") => "its Accept",
                _ => "a request from it",
            };
            let _ = writeln!(
                out,
                "    still pending: {what} was refused here at {} ({}× at the {} check): {}; see hortus inbox",
                r.last_at,
                r.count,
                safe(&r.check),
                safe(&r.reason)
            );
        }
    }
    if out.is_empty() {
        out.push_str("(none)\n");
    }
    Ok(out)
}

/// `user@host` handles mentioned in live posts that Hortus has not resolved to an actor yet.
pub fn unresolved_mentions(conn: &Connection) -> Result<Vec<String>, OwnerError> {
    Ok(crate::posts::store::unresolved_mentions(conn)?)
}

/// Looks mentioned accounts up over WebFinger so posts address them by actor id. Only servers
/// the policy allows are asked; the others stay unresolved (linked, never addressed). Returns
/// lines for the owner.
pub async fn resolve_mentions(ctx: &Context, handles: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut refused = 0;
    for handle in handles {
        let host = handle.rsplit_once('@').map_or("", |(_, h)| h);
        if !ctx.policy.decide(host).is_allowed() {
            refused += 1;
            continue;
        }
        let line = match fetch::webfinger(&fetch::Remote::of(ctx), handle).await {
            Ok(id) => match fetch::actor(&fetch::Remote::of(ctx), &id, true).await {
                Ok(actor) => format!("mention @{handle} → {}", actor.id),
                Err(e) => format!("mention @{handle} not resolved: {e}"),
            },
            Err(e) => format!("mention @{handle} not resolved: {e}"),
        };
        lines.push(line);
    }
    if refused > 0 {
        lines.push(format!(
            "{refused} mentioned account(s) on servers you have not allowed: linked, not notified"
        ));
    }
    lines
}
