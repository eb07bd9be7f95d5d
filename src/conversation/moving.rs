//! Moving house. Outbound: `also_known_as` in hortus.toml publishes `alsoKnownAs` on the actor
//! (`ap::actor`); `hortus move ACCOUNT` checks that the new account lists us in its own
//! `alsoKnownAs` — as Mastodon does before it accepts a Move — and sends Move to every follower.
//! Inbound: a Move from a follower whose new account lists the old one, on a server the policy
//! allows, moves the follower to the new account. Plus the followers/follows CSV in Mastodon's
//! format (`Account address,Show boosts,Notify on new posts,Languages`).

use std::fmt::Write as _;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use url::Url;

use crate::activitypub::fetch::{self, RemoteActor, id_of};
use crate::activitypub::incoming::Activity;
use crate::activitypub::refusal::InboxError;
use crate::activitypub::{self as ap};
use crate::context::Context;
use crate::federation::Decision;
use crate::owner::OwnerError;
use crate::times::rfc3339;

/// The header Mastodon writes in `following_accounts.csv` and reads back on import.
pub const CSV_HEADER: &str = "Account address,Show boosts,Notify on new posts,Languages";

fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// Does the actor document list `id` in `alsoKnownAs`?
pub fn lists_alias(doc: &Value, id: &str) -> bool {
    match doc.get("alsoKnownAs") {
        Some(Value::Array(a)) => a.iter().any(|v| id_of(v) == Some(id)),
        Some(v) => id_of(v) == Some(id),
        None => false,
    }
}

/// Fetches an actor afresh (by URL or `user@host`), with its raw document.
async fn fetch_actor(ctx: &Context, account: &str) -> Result<(RemoteActor, Value), OwnerError> {
    let id = if account.starts_with("https://") || account.starts_with("http://") {
        account.to_string()
    } else {
        fetch::webfinger(&fetch::Remote::of(ctx), account).await?
    };
    let (from, doc) = fetch::get_document(&fetch::Remote::of(ctx), &id).await?;
    let actor = fetch::parse_actor(&doc, &from).map_err(|reason| {
        OwnerError::Fetch(fetch::FetchError::Invalid {
            url: id.clone(),
            reason,
        })
    })?;
    let (stored, raw) = (actor.clone(), doc.clone());
    ctx.db
        .call(move |c| {
            fetch::store_actor(c, &stored, &raw).map_err(|e| OwnerError::Fetch(e.into()))
        })
        .await?;
    Ok((actor, doc))
}

/// Every inbox the owner's followers are reached at, each once.
fn follower_inboxes(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    crate::graph::followers::accepted_inboxes(conn)
}

/// The Move activity: the owner's account moves to `target`.
pub fn move_activity(urls: &crate::urls::Urls, target: &str) -> Value {
    json!({
        "@context": ap::AS_CONTEXT,
        "id": ap::new_activity_id(urls),
        "type": "Move",
        "actor": urls.actor(),
        "object": urls.actor(),
        "target": target,
        "to": [urls.followers()],
    })
}

/// `hortus move ACCOUNT`.
pub async fn move_to(ctx: &Context, account: &str) -> Result<String, OwnerError> {
    let (target, doc) = fetch_actor(ctx, account).await?;
    let me = ctx.urls.actor();
    if target.id == me {
        return Err(OwnerError::Usage("that is this account".into()));
    }
    if !lists_alias(&doc, &me) {
        return Err(OwnerError::Usage(format!(
            "{} does not list {me} in its alsoKnownAs, so its server would ignore the Move\n  \
             fix: on the new account, add this account as an alias (Mastodon: Preferences → \
             Account → Moving from a different account), then run this again",
            target.id
        )));
    }
    let activity = move_activity(&ctx.urls, &target.id);
    let activity_id = activity["id"].as_str().unwrap_or_default().to_string();
    let target_id = target.id.clone();
    let queued = ctx
        .db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let inboxes = follower_inboxes(&tx)?;
            let n = crate::delivery::enqueue(&tx, &activity, &inboxes)
                .map_err(|e| OwnerError::Queue(e.to_string()))?;
            tx.execute(
                "INSERT INTO account_moves (old_actor, new_actor, activity_id, outcome, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (old_actor, new_actor) DO UPDATE SET activity_id = ?3, outcome = ?4, created_at = ?5",
                params![me, target_id, activity_id, format!("Move sent to {n} inbox(es)"), now()],
            )?;
            tx.commit()?;
            Ok::<_, OwnerError>(n)
        })
        .await?;
    crate::delivery::wake_workers();
    Ok(format!(
        "Move to {} queued for {queued} follower inbox(es); `hortus serve` delivers it.\n\
         Followers' servers now re-follow the new account. Keep this site up for a while.\n",
        target.handle.as_deref().unwrap_or(&target.id)
    ))
}

fn record(
    conn: &Connection,
    old: &str,
    new: &str,
    id: &str,
    outcome: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO account_moves (old_actor, new_actor, activity_id, outcome, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (old_actor, new_actor) DO UPDATE SET activity_id = ?3, outcome = ?4, created_at = ?5",
        params![old, new, id, outcome, now()],
    )?;
    Ok(())
}

/// Moves the follower row of `old` to `new`, keeping its state and Follow id.
fn move_follower(conn: &mut Connection, old: &str, new: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (n, removed) = crate::graph::followers::move_to(&tx, old, new, &now())?;
    tx.commit()?;
    Ok(n > 0 || removed > 0)
}

/// An inbound Move: `actor` = `object` = the old account (the signer), `target` the new one.
pub async fn receive(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    if id_of(&activity.object) != Some(signer.id.as_str()) {
        return Ok(());
    }
    let Some(new) = activity
        .raw
        .get("target")
        .and_then(id_of)
        .map(str::to_string)
    else {
        return Err(InboxError::BadActivity("Move without a target".into()));
    };
    let old = signer.id.clone();
    let id = activity.id.clone();
    let (is_follower, is_followed) = {
        let old = old.clone();
        ctx.db
            .call(move |c| {
                Ok::<_, InboxError>((
                    crate::graph::followers::is_follower(c, &old)?,
                    crate::graph::following::is_following(c, &old)?,
                ))
            })
            .await?
    };
    let outcome = if !is_follower && !is_followed {
        None
    } else {
        match check_target(ctx, &old, &new).await {
            Err(why) => Some(why),
            Ok(()) => {
                let mut done = Vec::new();
                if is_follower {
                    let (o, n) = (old.clone(), new.clone());
                    ctx.db
                        .call(move |c| move_follower(c, &o, &n).map_err(InboxError::from))
                        .await?;
                    done.push("the follower now follows from the new account".to_string());
                }
                if is_followed {
                    // As Mastodon does for the accounts its users follow: follow the new one.
                    done.push(match crate::owner::follow(ctx, &new).await {
                        Ok(_) => "a Follow of the new account is queued".to_string(),
                        Err(e) => format!("following the new account failed: {e}"),
                    });
                }
                Some(done.join("; "))
            }
        }
    };
    let Some(outcome) = outcome else {
        tracing::debug!(%old, "a Move from an account that does not follow us; ignored");
        return Ok(());
    };
    tracing::info!(%old, %new, %outcome, "Move");
    ctx.db
        .call(move |c| record(c, &old, &new, &id, &outcome).map_err(InboxError::from))
        .await
}

/// The new account must be on an allowed server and list the old one (fetched afresh, from its
/// own server: the Move's word is not enough).
async fn check_target(ctx: &Context, old: &str, new: &str) -> Result<(), String> {
    let url = Url::parse(new).map_err(|_| "refused: the target is not a URL".to_string())?;
    if let Decision::Refused(reason) = ctx.policy.decide_url(&url) {
        return Err(format!("refused: the new account's server is {reason}"));
    }
    let (from, doc) = fetch::get_document(&fetch::Remote::of(ctx), new)
        .await
        .map_err(|e| format!("refused: cannot fetch the new account ({e})"))?;
    let actor = fetch::parse_actor(&doc, &from)
        .map_err(|e| format!("refused: the new account is not valid ({e})"))?;
    if actor.id != new {
        return Err("refused: the new account names itself differently".into());
    }
    if !lists_alias(&doc, old) {
        return Err("refused: the new account does not list the old one in alsoKnownAs".into());
    }
    ctx.db
        .call(move |c| fetch::store_actor(c, &actor, &doc).map_err(fetch::FetchError::from))
        .await
        .map_err(|e| format!("refused: {e}"))
}

/// Where the owner's account moved to (`hortus move`), for the actor's `movedTo`.
pub fn moved_to(conn: &Connection, me: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT new_actor FROM account_moves WHERE old_actor = ?1 ORDER BY created_at DESC LIMIT 1",
        [me],
        |r| r.get(0),
    )
    .optional()
}

/// Adds `movedTo` to the owner's actor document once the owner has moved.
pub async fn add_moved_to(ctx: &Context, actor: &mut Value) -> Result<(), crate::db::DbError> {
    let me = ctx.urls.actor();
    if let Some(target) = ctx
        .db
        .call(move |c| moved_to(c, &me).map_err(crate::db::DbError::from))
        .await?
    {
        actor["movedTo"] = json!(target);
    }
    Ok(())
}

/// `hortus export-followers`: accepted followers as Mastodon's CSV (`user@host` per line),
/// written by the `csv` crate so a remote handle holding commas, quotes or line breaks stays one
/// quoted field.
pub fn export_followers(conn: &Connection) -> rusqlite::Result<String> {
    let rows = crate::graph::followers::accepted_with_handles(conn)?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut write = |record: &[&str]| {
        // Writing to memory fails only on allocation, which aborts anyway.
        let _ = csv.write_record(record);
    };
    write(&CSV_HEADER.split(',').collect::<Vec<_>>());
    for (id, handle) in rows {
        write(&[handle.as_deref().unwrap_or(&id), "true", "false", ""]);
    }
    let bytes = csv
        .into_inner()
        .map_err(|e| e.into_error())
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The accounts in a followers/following CSV: Mastodon's (with or without its header), or one
/// `user@host` (or actor URL) per line; `#` starts a comment line. Read with the `csv` crate;
/// a first field with white space or control characters in it is no account (it is a handle
/// someone chose to look like several).
pub fn parse_accounts_csv(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    for record in reader.records() {
        let Ok(record) = record else { continue };
        let first = record.get(0).unwrap_or_default().trim();
        let first = first.trim_start_matches('@');
        if first.is_empty()
            || first.eq_ignore_ascii_case("Account address")
            || first
                .chars()
                .any(|c| c.is_whitespace() || crate::text::is_unsafe_char(c) || c == '"')
        {
            continue;
        }
        let looks_like_account = first.starts_with("https://")
            || first.starts_with("http://")
            || first
                .split_once('@')
                .is_some_and(|(u, h)| !u.is_empty() && h.contains(['.', ':']));
        if looks_like_account && !out.iter().any(|a| a.eq_ignore_ascii_case(first)) {
            out.push(first.to_string());
        }
    }
    out
}

fn host_of_account(account: &str) -> Option<String> {
    if let Ok(u) = Url::parse(account)
        && matches!(u.scheme(), "http" | "https")
    {
        return Some(fetch::host_of(&u));
    }
    account.rsplit_once('@').map(|(_, h)| h.to_string())
}

/// `hortus import-follows FILE`: follows every account in the CSV whose server is allowed.
pub async fn import_follows(ctx: &Context, text: &str) -> String {
    let accounts = parse_accounts_csv(text);
    let mut out = String::new();
    let (mut queued, mut refused, mut failed) = (0, 0, 0);
    for account in &accounts {
        let allowed = host_of_account(account).is_some_and(|h| ctx.policy.decide(&h).is_allowed());
        if !allowed {
            refused += 1;
            let _ = writeln!(out, "  skipped {account}: its server is not allowed");
            continue;
        }
        match crate::owner::follow(ctx, account).await {
            Ok(_) => queued += 1,
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "  failed {account}: {e}");
            }
        }
    }
    format!(
        "{} account(s) read: {queued} Follow(s) queued, {refused} skipped (server not allowed), {failed} failed\n{out}",
        accounts.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mastodon_csv() {
        let text = "Account address,Show boosts,Notify on new posts,Languages\nbob@m.example,true,false,\n@carol@x.example:8443,false,false,en\nbob@m.example,true,false,\n\nnot an account\nhttps://g.example/users/d\n";
        assert_eq!(
            parse_accounts_csv(text),
            [
                "bob@m.example",
                "carol@x.example:8443",
                "https://g.example/users/d"
            ]
        );
        assert_eq!(
            host_of_account("carol@x.example:8443").as_deref(),
            Some("x.example:8443")
        );
        assert_eq!(
            host_of_account("https://g.example/users/d").as_deref(),
            Some("g.example")
        );
    }

    #[test]
    fn alias_lists() {
        let doc = json!({"alsoKnownAs": ["https://a.example/users/x"]});
        assert!(lists_alias(&doc, "https://a.example/users/x"));
        assert!(!lists_alias(&doc, "https://b.example/users/x"));
        assert!(lists_alias(
            &json!({"alsoKnownAs": "https://a.example/users/x"}),
            "https://a.example/users/x"
        ));
        assert!(!lists_alias(&json!({}), "https://a.example/users/x"));
    }

    #[test]
    fn follower_moves_keep_state() {
        let mut conn = crate::db::open_in_memory().unwrap();
        for id in ["https://a.example/u/old", "https://b.example/u/new"] {
            conn.execute(
                "INSERT INTO remote_actors (id, host, inbox, raw, fetched_at) VALUES (?1, 'h', ?1, '{}', 'x')",
                [id],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO followers (actor_id, follow_id, state, created_at) VALUES ('https://a.example/u/old', 'f1', 'accepted', 'x')",
            [],
        )
        .unwrap();
        assert!(
            move_follower(
                &mut conn,
                "https://a.example/u/old",
                "https://b.example/u/new"
            )
            .unwrap()
        );
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT actor_id, state FROM followers")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [(
                "https://b.example/u/new".to_string(),
                "accepted".to_string()
            )]
        );
        assert!(
            export_followers(&conn)
                .unwrap()
                .contains("https://b.example/u/new,true,false,")
        );
    }

    /// Issue 9.4: a remote handle holding a comma and a newline was written raw, adding a row
    /// that a later import followed.
    #[test]
    fn exported_handles_round_trip_as_one_row_each_and_import_no_extra_accounts() {
        let conn = crate::db::open_in_memory().unwrap();
        let evil = "ユーザー,true,false,\nmallory@evil.example";
        for (id, handle) in [
            ("https://xn--r8jz45g.example/u/1", "علي@xn--r8jz45g.example"),
            ("https://evil.example/u/2", evil),
            ("https://東京.example/u/3", "\"東京\"@xn--1lqs71d.example"),
        ] {
            conn.execute(
                "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
                 VALUES (?1, 'h', ?1, ?2, '{}', 'x')",
                [id, handle],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO followers (actor_id, follow_id, state, created_at)
                 VALUES (?1, ?1, 'accepted', 'x')",
                [id],
            )
            .unwrap();
        }
        let csv = export_followers(&conn).unwrap();
        let records: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes())
            .records()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records.len(), 3, "one row per follower: {csv}");
        assert!(records.iter().any(|r| &r[0] == evil), "{csv}");
        assert!(records.iter().all(|r| r.len() == 4), "{csv}");
        assert_eq!(
            parse_accounts_csv(&csv),
            ["علي@xn--r8jz45g.example"],
            "no account made of pieces of a name: {csv}"
        );
    }
}
