//! The owner blocks or mutes one account (`hortus block add user@host`, `hortus mute …`), as
//! opposed to a whole server (`owner::list_add`). The rows are `graph::accounts`'; what a block
//! hides is left out by each reader (pages and export, notifications, the inbox), never deleted.
//!
//! A block also ends the follows both ways: the account's follow of the owner is removed (and
//! its server told with a Reject of that Follow, as Mastodon's "remove follower" does, so it
//! stops believing it follows), and the owner's follow of it is undone (Undo(Follow)). `Block`
//! itself is sent only with `[federation] send_blocks = true`.

use serde_json::Value;
use url::Url;

use super::{OwnerError, safe};
use crate::activitypub::{self as ap, fetch};
use crate::actors::{self, RemoteActor};
use crate::context::Context;
use crate::graph::{accounts, followers, following};

/// Whether a `hortus block add` argument names an account (`user@host`, `@user@host`, an actor
/// URL) rather than a server (`example.net`, `*.example.net`).
pub fn is_account(entry: &str) -> bool {
    let e = entry.trim();
    if e.starts_with("https://") || e.starts_with("http://") {
        return true;
    }
    e.trim_start_matches('@')
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty() && !host.contains('@'))
}

/// An account named by the owner: its actor id, and the actor when cached or fetched.
struct Target {
    id: String,
    actor: Option<RemoteActor>,
}

impl Target {
    fn shown(&self) -> String {
        match self.actor.as_ref().and_then(|a| a.handle.as_deref()) {
            Some(h) => format!("{} ({})", safe(h), safe(&self.id)),
            None => safe(&self.id),
        }
    }
}

/// Finds the account: an actor URL is taken as its id (a block never needs the network); a
/// handle is looked up in the cache, else over WebFinger, and only on a server the policy
/// allows (any other server is never asked).
async fn resolve(ctx: &Context, account: &str) -> Result<Target, OwnerError> {
    let account = account.trim();
    let remote = fetch::Remote::of(ctx);
    let id = if account.starts_with("https://") || account.starts_with("http://") {
        let url = Url::parse(account)
            .map_err(|_| OwnerError::Usage(format!("{} is not a URL", safe(account))))?;
        url.to_string()
    } else {
        let handle = account.trim_start_matches('@').to_string();
        let h = handle.clone();
        let cached = ctx
            .db
            .read(move |c| actors::id_by_handle(c, &h).map_err(OwnerError::from))
            .await?;
        match cached {
            Some((id, _)) => id,
            None => {
                let host = handle.rsplit_once('@').map_or("", |(_, h)| h);
                if !ctx.policy.decide(host).is_allowed() {
                    return Err(OwnerError::Usage(format!(
                        "{} is not allowed, so Hortus does not ask it who {} is: give the \
                         account's actor URL instead, or block the whole server with `hortus \
                         block add {}`",
                        safe(host),
                        safe(&handle),
                        safe(host)
                    )));
                }
                fetch::webfinger(&remote, &handle).await?
            }
        }
    };
    if id == ctx.urls.actor() {
        return Err(OwnerError::Usage("that is your own account".into()));
    }
    let lookup = id.clone();
    let mut actor = ctx
        .db
        .read(move |c| actors::cached_actor(c, &lookup).map_err(OwnerError::from))
        .await?;
    if actor.is_none() && Url::parse(&id).is_ok_and(|u| ctx.policy.decide_url(&u).is_allowed()) {
        // For its inbox and handle (the block stands without them), and its real id when the
        // owner pasted a profile URL that serves the actor: rows are keyed by actor id, and
        // the fetch has checked that the document's id is on the server it came from.
        actor = match fetch::actor(&remote, &id, false).await {
            Ok(a) => Some(a),
            Err(_) => named_actor(&remote, &id).await,
        };
    }
    let id = actor.as_ref().map_or(id, |a| a.id.clone());
    if id == ctx.urls.actor() {
        return Err(OwnerError::Usage("that is your own account".into()));
    }
    Ok(Target { id, actor })
}

/// The actor a profile URL serves (Mastodon answers `/@bob` with the actor document whose id
/// is `/users/bob`), when that id is on the same server.
async fn named_actor(remote: &fetch::Remote<'_>, url: &str) -> Option<RemoteActor> {
    let (from, doc) = fetch::get_document(remote, url).await.ok()?;
    let real = fetch::id_of(&doc)?;
    let same_server = Url::parse(real).is_ok_and(|u| u.origin() == from.origin());
    if !same_server || real == url {
        return None;
    }
    fetch::actor(remote, real, false).await.ok()
}

fn queue(conn: &rusqlite::Connection, activity: &Value, inbox: &str) -> Result<(), OwnerError> {
    crate::delivery::enqueue(conn, activity, &[inbox.to_string()])
        .map_err(|e| OwnerError::Queue(e.to_string()))?;
    Ok(())
}

/// `hortus block add ACCOUNT`.
pub async fn block(ctx: &Context, account: &str) -> Result<String, OwnerError> {
    let target = resolve(ctx, account).await?;
    let urls = ctx.urls.clone();
    let send_blocks = ctx.config.federation.send_blocks;
    let id = target.id.clone();
    let inbox = target.actor.as_ref().map(|a| a.inbox.clone());
    let done = ctx
        .db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut done: Vec<String> = Vec::new();
            let block_activity = (send_blocks && inbox.is_some())
                .then(|| ap::block::block(&urls, &ap::new_activity_id(&urls), &id));
            let block_id = block_activity
                .as_ref()
                .and_then(|b| b["id"].as_str().map(str::to_string));
            if !accounts::block(&tx, &id, block_id.as_deref(), &crate::times::now())? {
                return Ok(None);
            }
            // Found with its inbox only while its actor is cached; removed either way.
            let found = followers::find(&tx, &id)?.filter(|f| f.actor_id == id);
            if followers::remove(&tx, &id)? > 0 {
                match found {
                    Some(f) => {
                        let reject = ap::answer_follow(&urls, "Reject", &id, &f.follow_id);
                        queue(&tx, &reject, &f.inbox)?;
                        done.push(
                            "removed from your followers (Reject of its Follow queued)".into(),
                        );
                    }
                    None => done.push("removed from your followers".into()),
                }
            }
            if let Some(follow_id) = following::follow_id(&tx, &id)? {
                following::remove(&tx, &id)?;
                match &inbox {
                    Some(inbox) => {
                        queue(&tx, &ap::undo_follow(&urls, &follow_id, &id), inbox)?;
                        done.push("unfollowed (Undo(Follow) queued)".into());
                    }
                    None => done.push("unfollowed (its inbox is unknown: nothing sent)".into()),
                }
            }
            match (&block_activity, &inbox) {
                (Some(b), Some(inbox)) => {
                    queue(&tx, b, inbox)?;
                    done.push("Block queued for its server ([federation] send_blocks)".into());
                }
                _ if send_blocks => {
                    done.push("Block not sent: its inbox is unknown".into());
                }
                _ => done.push("its server is not told (send_blocks = false)".into()),
            }
            tx.commit()?;
            Ok::<_, OwnerError>(Some(done))
        })
        .await?;
    crate::delivery::wake_workers();
    Ok(match done {
        None => format!("nothing to do: {} is blocked already\n", target.shown()),
        Some(done) => format!(
            "blocked {}: its replies, reactions and posts are hidden everywhere and its \
             activities refused; {}\n",
            target.shown(),
            done.join("; ")
        ),
    })
}

/// `hortus block remove ACCOUNT`: what it said shows again; an Undo(Block) goes out if a
/// Block did.
pub async fn unblock(ctx: &Context, account: &str) -> Result<String, OwnerError> {
    let target = resolve(ctx, account).await?;
    let urls = ctx.urls.clone();
    let id = target.id.clone();
    let inbox = target.actor.as_ref().map(|a| a.inbox.clone());
    let sent = ctx
        .db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(block_id) = accounts::unblock(&tx, &id, &crate::times::now())? else {
                return Ok(None);
            };
            let undone = match (block_id, inbox) {
                (Some(block_id), Some(inbox)) => {
                    queue(&tx, &ap::block::undo_block(&urls, &block_id, &id), &inbox)?;
                    "; Undo(Block) queued for its server"
                }
                (Some(_), None) => "; its inbox is unknown: no Undo(Block) sent",
                (None, _) => "",
            };
            tx.commit()?;
            Ok::<_, OwnerError>(Some(undone))
        })
        .await?;
    crate::delivery::wake_workers();
    Ok(match sent {
        None => format!("nothing to do: {} is not blocked\n", target.shown()),
        Some(undone) => format!(
            "unblocked {}: what it said shows again{undone}; follows are not restored\n",
            target.shown()
        ),
    })
}

/// `hortus mute|unmute ACCOUNT`: out of the owner's notifications and timeline, still on pages.
pub async fn mute(ctx: &Context, account: &str, muted: bool) -> Result<String, OwnerError> {
    let target = resolve(ctx, account).await?;
    let id = target.id.clone();
    let changed = ctx
        .db
        .call(move |c| {
            accounts::set_muted(c, &id, muted, &crate::times::now()).map_err(OwnerError::from)
        })
        .await?;
    Ok(match (changed, muted) {
        (true, true) => format!(
            "muted {}: out of `hortus inbox` and your timeline; its replies still show on your pages\n",
            target.shown()
        ),
        (true, false) => format!("unmuted {}\n", target.shown()),
        (false, true) => format!("nothing to do: {} is muted already\n", target.shown()),
        (false, false) => format!("nothing to do: {} is not muted\n", target.shown()),
    })
}

/// `hortus block show`: the blocked servers, then the blocked and muted accounts, told apart.
pub fn block_show(conn: &rusqlite::Connection) -> Result<String, OwnerError> {
    let servers = super::list_show(conn, crate::federation::List::Block)?;
    let accounts = describe(conn)?;
    if accounts.is_empty() {
        return Ok(servers);
    }
    Ok(format!("servers:\n{servers}accounts:\n{accounts}"))
}

fn describe(conn: &rusqlite::Connection) -> Result<String, OwnerError> {
    use std::fmt::Write as _;
    let mut out = String::new();
    for r in accounts::list(conn)? {
        let kind = match (r.blocked, r.muted) {
            (true, true) => "blocked, muted",
            (true, false) => "blocked",
            _ => "muted",
        };
        let told = if r.block_activity_id.is_some() {
            "\tBlock sent"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{kind}\t{}\t{}\tsince {}{told}",
            safe(r.handle.as_deref().unwrap_or("-")),
            safe(&r.actor_id),
            r.updated_at
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_account;

    #[test]
    fn accounts_and_servers_are_told_apart() {
        for account in [
            "bob@example.social",
            "@bob@example.social",
            "https://example.social/users/bob",
            "http://127.0.0.3:8080/users/bob",
            "ボブ@例え.jp",
        ] {
            assert!(is_account(account), "{account}");
        }
        for server in [
            "example.social",
            "*.example.social",
            "@example.social",
            "a@b@c",
        ] {
            assert!(!is_account(server), "{server}");
        }
    }
}
