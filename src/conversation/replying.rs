//! The owner answers: a post whose front matter says `in_reply_to = "URL"` federates as a reply
//! (and one that says `quote = "URL"` as a quote: its author is found, mentioned and delivered
//! to the same way; `activitypub::quote` writes the quote itself).
//! `ap::note` already writes `inReplyTo`; this module makes the reply reach and notify the
//! author: the author is added to the post's mentions, which gives the Note a `Mention` tag and
//! puts the author in `cc` (Mastodon needs both, PROTOCOL.md §5), and `delivery::fanout` then
//! delivers to the author's inbox as to any known mentioned account.
//!
//! Finding the author takes no network when the post answers a reply stored here (the usual
//! case: answering someone under one's own post). Otherwise [`resolve_targets`] fetches the
//! object once, before publishing (`hortus publish` runs it), and remembers it in
//! `reply_targets`. A server the policy refuses is never fetched nor delivered to.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use url::Url;

use crate::activitypub::fetch::{self, id_of};
use crate::activitypub::interaction::Permission;
use crate::context::Context;
use crate::federation::Decision;
use crate::posts::{self, Mention};
use crate::times::rfc3339;
use crate::urls::Urls;

/// The author of what `url` names, if known here without the network.
pub(super) fn known_author(
    conn: &Connection,
    urls: &Urls,
    url: &str,
) -> rusqlite::Result<Option<String>> {
    if super::store::local_post_slug(urls, url).is_some() {
        // Answering oneself: nobody to notify.
        return Ok(None);
    }
    // By id, or by a page URL on the note's own server: a note's `url` elsewhere may name a
    // post on a server the owner never allowed (issue 9).
    let stored = super::store::remote_note_named(conn, url)?.map(|(actor, _)| actor);
    if stored.is_some() {
        return Ok(stored);
    }
    conn.query_row(
        "SELECT actor_id FROM reply_targets WHERE url = ?1",
        [url],
        |r| r.get(0),
    )
    .optional()
}

/// Adds the author of each reply's target, and of each quoted post, to the post's mentions,
/// when known and cached in `remote_actors`. Runs after every sync and before federating
/// (`Site::publish_and_federate`); idempotent. Returns how many posts changed.
pub fn link_reply_mentions(conn: &Connection, urls: &Urls) -> rusqlite::Result<usize> {
    let replies = posts::store::replies_with_mentions(conn)?;
    let mut changed = 0;
    // A post that answers one post and quotes another comes twice in a row: the second round
    // starts from the first's list, not from the row read before it.
    let mut previous: Option<(i64, Vec<Mention>)> = None;
    for (id, target, mentions) in replies {
        let mut list: Vec<Mention> = match previous.take() {
            Some((last, list)) if last == id => list,
            _ => serde_json::from_str(&mentions).unwrap_or_default(),
        };
        if let Some(mention) = author_mention(conn, urls, &target, &list)? {
            let name = mention.name.clone();
            // The same account written in the text as @user@host: it gets its actor id.
            list.retain(|m| !m.name.eq_ignore_ascii_case(&name));
            list.push(mention);
            posts::store::set_mentions(
                conn,
                id,
                &serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()),
            )?;
            changed += 1;
        }
        previous = Some((id, list));
    }
    Ok(changed)
}

/// The mention of the author of `target`, unless unknown, not cached, or already mentioned.
fn author_mention(
    conn: &Connection,
    urls: &Urls,
    target: &str,
    list: &[Mention],
) -> rusqlite::Result<Option<Mention>> {
    let Some(author) = known_author(conn, urls, target)? else {
        return Ok(None);
    };
    let Some((handle, profile)) = crate::actors::handle_and_url(conn, &author)? else {
        // Not cached: fanout could not deliver to it anyway.
        return Ok(None);
    };
    if list
        .iter()
        .any(|m| m.actor.as_deref() == Some(author.as_str()))
    {
        return Ok(None);
    }
    let name = match handle {
        Some(h) => format!("@{h}"),
        None => author.clone(),
    };
    Ok(Some(Mention {
        name,
        href: profile
            .and_then(|p| crate::sanitize::http_url(&p))
            .unwrap_or_else(|| author.clone()),
        actor: Some(author),
        // The author a reply answers or a quote quotes: never addressed as a group post.
        group: false,
    }))
}

/// The first id in an `attributedTo` (a string, an object, or an array of either).
pub fn author_of(doc: &Value) -> Option<&str> {
    match doc.get("attributedTo")? {
        Value::Array(a) => a.iter().find_map(id_of),
        other => id_of(other),
    }
}

/// What published posts answer whose author is not known yet (and not the owner).
pub fn unresolved_targets(conn: &Connection, urls: &Urls) -> rusqlite::Result<Vec<String>> {
    let targets = posts::store::reply_targets(conn)?;
    let mut unknown = Vec::new();
    for t in targets {
        if super::store::local_post_slug(urls, &t).is_none()
            && known_author(conn, urls, &t)?.is_none()
        {
            unknown.push(t);
        }
    }
    Ok(unknown)
}

/// Fetches the objects that published posts answer when their author is not yet known, and
/// remembers each author. Run after syncing posts and before federating them (`hortus
/// publish`). Returns one line per problem, for the owner; nothing here stops a publish.
pub async fn resolve_targets(ctx: &Context) -> Vec<String> {
    let urls = ctx.urls.clone();
    let unknown = ctx
        .db
        .call(move |c| unresolved_targets(c, &urls).map_err(crate::db::DbError::from))
        .await;
    let unknown = match unknown {
        Ok(u) => u,
        Err(e) => return vec![format!("cannot read the posts that answer someone: {e}")],
    };
    let mut problems = Vec::new();
    for url in unknown {
        if let Err(e) = resolve_one(ctx, &url).await {
            problems.push(format!(
                "{url}: {e}; the post that answers or quotes it is published, but its author is \
                 not notified"
            ));
        }
    }
    problems
}

/// The author of what `url` names, for `hortus reply`: `Ok(None)` for the owner's own post;
/// else from what is stored here, or fetched once (from an allowed server only; any other is
/// never contacted) and remembered like [`resolve_targets`] does.
pub async fn author_of_target(ctx: &Context, url: &str) -> Result<Option<String>, String> {
    if super::store::local_post_slug(&ctx.urls, url).is_some() {
        return Ok(None);
    }
    if let Some(author) = stored_author(ctx, url).await? {
        return Ok(Some(author));
    }
    resolve_one(ctx, url).await?;
    match stored_author(ctx, url).await? {
        Some(author) => Ok(Some(author)),
        None => Err("its author could not be found".into()),
    }
}

/// Whether the remote post `url` names has an `interactionPolicy` rule (`canQuote`,
/// `canReply`, `canLike`, `canAnnounce`) that leaves the owner out, from the post as it came
/// here or as fetched (`reply_targets`). No rule, or an unknown post: `false`. The one check
/// behind `hortus publish` (replies and quotes), `hortus reply|like|boost` and the client API.
pub fn forbidden_by_policy(
    conn: &Connection,
    urls: &Urls,
    url: &str,
    rule: &str,
) -> rusqlite::Result<bool> {
    Ok(permission(conn, urls, url, rule)? == Some(Permission::Refused))
}

/// Replies not sent yet whose target's author leaves the owner out of `canReply` (as fetched
/// when the author was looked up, or as the post came here): `(source_path, in_reply_to)`.
/// `hortus publish` refuses these, as `hortus reply` does before it writes anything.
pub fn forbidden_replies(
    conn: &Connection,
    urls: &Urls,
) -> rusqlite::Result<Vec<(String, String)>> {
    let todo: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT p.source_path, p.in_reply_to FROM posts p
             WHERE p.in_reply_to IS NOT NULL AND p.deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM post_federation f WHERE f.post_id = p.id)
             ORDER BY p.id",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for (path, target) in todo {
        if forbidden_by_policy(conn, urls, &target, "canReply")? {
            out.push((path, target));
        }
    }
    Ok(out)
}

/// How the remote post `url` names lets the owner do what `rule` covers ([`forbidden_by_policy`]);
/// `None` when the post or its rule is unknown here.
pub fn permission(
    conn: &Connection,
    urls: &Urls,
    url: &str,
    rule: &str,
) -> rusqlite::Result<Option<Permission>> {
    let Some(author) = known_author(conn, urls, url)? else {
        return Ok(None);
    };
    let path = format!("$.interactionPolicy.{rule}");
    let stored: Option<String> = conn
        .query_row(
            "SELECT json_extract(raw, ?2) FROM remote_notes WHERE id = ?1 AND deleted_at IS NULL",
            params![url, path],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let stored = match stored {
        Some(s) => Some(s),
        None => conn
            .query_row(
                "SELECT json_extract(interaction_policy, ?2) FROM reply_targets WHERE url = ?1",
                params![url, format!("$.{rule}")],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten(),
    };
    let Some(rule) = stored.and_then(|s| serde_json::from_str::<Value>(&s).ok()) else {
        return Ok(None);
    };
    let follows = crate::graph::following::is_accepted(conn, &author)?;
    Ok(Some(crate::activitypub::interaction::permission(
        &rule,
        &urls.actor(),
        follows,
    )))
}

/// Who the owner's post may reach while it answers a post that asks for approval
/// ([`crate::delivery::fanout::Narrow`]): GoToSocial delivers a pending reply to the answered
/// author alone, and to followers only once it carries `approvedBy` (the `Update` that
/// `approvals::answered` queues). A refused reply never reaches followers: its edits and its `Delete`
/// go to the author, who is the only one who heard of it. `None`: not such a reply, or
/// approved — the usual audience.
pub fn audience(
    conn: &Connection,
    urls: &Urls,
    post: &crate::posts::Post,
) -> rusqlite::Result<Option<Vec<String>>> {
    let Some(target) = post.in_reply_to.as_deref() else {
        return Ok(None);
    };
    let state: Option<String> = conn
        .query_row(
            "SELECT state FROM own_reply_approvals WHERE post_id = ?1 AND target = ?2",
            params![post.id, target],
            |r| r.get(0),
        )
        .optional()?;
    let waits = match state.as_deref() {
        Some("approved") => false,
        Some(_) => true,
        // Not recorded yet (a new reply: `record_pending` runs after its Create is queued).
        None => {
            permission(conn, urls, target, "canReply")?
                == Some(crate::activitypub::interaction::Permission::Approval)
        }
    };
    if !waits {
        return Ok(None);
    }
    let author = known_author(conn, urls, target)?;
    let inbox = match author {
        Some(author) => crate::actors::personal_inbox(conn, &author)?,
        None => None,
    };
    Ok(Some(inbox.into_iter().collect()))
}

async fn stored_author(ctx: &Context, url: &str) -> Result<Option<String>, String> {
    let (urls, url) = (ctx.urls.clone(), url.to_string());
    ctx.db
        .read(move |c| known_author(c, &urls, &url).map_err(crate::db::DbError::from))
        .await
        .map_err(|e| e.to_string())
}

async fn resolve_one(ctx: &Context, url: &str) -> Result<(), String> {
    let parsed = Url::parse(url).map_err(|_| "not a URL".to_string())?;
    if let Decision::Refused(reason) = ctx.policy.decide_url(&parsed) {
        return Err(format!(
            "its server is not allowed ({reason}); `hortus allow add` it first"
        ));
    }
    let (from, doc) = fetch::get_document(&fetch::Remote::of(ctx), url)
        .await
        .map_err(|e| e.to_string())?;
    let object_id = id_of(&doc).ok_or("the document has no id")?.to_string();
    let author = author_of(&doc).ok_or("the document names no author")?;
    let same_origin = |a: &str, b: &Url| Url::parse(a).is_ok_and(|a| a.origin() == b.origin());
    if !same_origin(&object_id, &from) || !same_origin(author, &from) {
        return Err("the document speaks for another server".into());
    }
    let actor = fetch::actor(&fetch::Remote::of(ctx), author, false)
        .await
        .map_err(|e| e.to_string())?;
    let url = url.to_string();
    // Kept for `forbidden_by_policy` (PROTOCOL.md §9): who the author lets quote or answer it.
    let policy = doc.get("interactionPolicy").map(Value::to_string);
    ctx.db
        .call(move |c| {
            c.execute(
                "INSERT INTO reply_targets (url, object_id, actor_id, resolved_at, interaction_policy)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (url) DO UPDATE SET object_id = ?2, actor_id = ?3, resolved_at = ?4,
                     interaction_policy = ?5",
                params![
                    url,
                    object_id,
                    actor.id,
                    rfc3339(time::OffsetDateTime::now_utc()),
                    policy
                ],
            )
            .map_err(crate::db::DbError::from)
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Urls {
        Urls::new(&url::Url::parse("https://me.example").unwrap(), "alice")
    }

    #[test]
    fn a_post_that_answers_one_author_and_quotes_another_mentions_both() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
        std::fs::write(
            dir.path().join("content/posts/both.md"),
            "+++\nin_reply_to = \"https://a.example/notes/1\"\nquote = \"https://b.example/notes/2\"\n+++\nنعم 👍 はい",
        )
        .unwrap();
        let mut conn = crate::db::open_in_memory().unwrap();
        posts::publish(&mut conn, dir.path(), &urls()).unwrap();
        for (url, actor, host, handle) in [
            (
                "https://a.example/notes/1",
                "https://a.example/u/ann",
                "a.example",
                "ann@a.example",
            ),
            (
                "https://b.example/notes/2",
                "https://b.example/u/bo",
                "b.example",
                "bo@b.example",
            ),
        ] {
            conn.execute(
                "INSERT INTO reply_targets (url, object_id, actor_id, resolved_at)
                 VALUES (?1, ?1, ?2, '2026-01-01T00:00:00Z')",
                params![url, actor],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
                 VALUES (?1, ?2, ?1 || '/inbox', ?3, '{}', '2026-01-01T00:00:00Z')",
                params![actor, host, handle],
            )
            .unwrap();
        }
        assert_eq!(link_reply_mentions(&conn, &urls()).unwrap(), 2);
        let post = posts::by_slug(&conn, "both").unwrap().unwrap();
        let actors: Vec<_> = post
            .mentions
            .iter()
            .filter_map(|m| m.actor.clone())
            .collect();
        assert_eq!(
            actors,
            ["https://a.example/u/ann", "https://b.example/u/bo"]
        );
        assert_eq!(post.quote.as_deref(), Some("https://b.example/notes/2"));
        assert_eq!(
            link_reply_mentions(&conn, &urls()).unwrap(),
            0,
            "idempotent"
        );
    }
}
