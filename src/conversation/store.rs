//! The conversation tables (migrations/05-conversation): plain functions over a `&Connection`.
//! Every write is idempotent: the same activity applied twice leaves the same rows.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;

use super::note::RemoteNote;
use crate::posts::{self, Post};
use crate::urls::Urls;

/// What a stored write did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    Updated,
    /// Not about the owner, already deleted, older than what is stored, or not the sender's.
    Ignored,
    Deleted,
}

/// The slug of our post that `url` names: its object id (`/posts/SLUG.json`) or its page
/// (`/posts/SLUG`), with or without a fragment.
pub fn local_post_slug(urls: &Urls, url: &str) -> Option<String> {
    let prefix = urls.post_page("");
    let rest = url.split('#').next()?.strip_prefix(&prefix)?;
    let slug = rest.strip_suffix(".json").unwrap_or(rest);
    (!slug.is_empty() && !slug.contains(['/', '?'])).then(|| slug.to_string())
}

/// Our post (not deleted) that `url` names.
pub fn local_post(conn: &Connection, urls: &Urls, url: &str) -> rusqlite::Result<Option<Post>> {
    let Some(slug) = local_post_slug(urls, url) else {
        return Ok(None);
    };
    Ok(posts::by_slug(conn, &slug)?.filter(|p| p.deleted_at.is_none()))
}

/// How a remote post concerns the owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relevance {
    pub thread_post_id: Option<i64>,
    pub quote_post_id: Option<i64>,
    pub mentions_owner: bool,
}

impl Relevance {
    pub fn concerns_owner(&self) -> bool {
        self.thread_post_id.is_some() || self.quote_post_id.is_some() || self.mentions_owner
    }
}

/// Whether `target` names the remote note `id` whose page is `url`: its id, or its page URL
/// when that is on the note's own server. A `url` elsewhere is only what the note's server
/// says, and may name another server's post (issue 9): never an identity.
pub fn names_note(id: &str, url: Option<&str>, target: &str) -> bool {
    if id == target {
        return true;
    }
    url == Some(target) && crate::urls::same_origin(id, target)
}

/// The remote note (not deleted) that `target` names, by [`names_note`]: `(actor_id,
/// thread_post_id)`.
pub fn remote_note_named(
    conn: &Connection,
    target: &str,
) -> rusqlite::Result<Option<(String, Option<i64>)>> {
    let mut stmt = conn.prepare_cached(REMOTE_NOTE_NAMED)?;
    let rows = stmt.query_map([target], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    })?;
    for row in rows {
        let (id, url, actor, thread) = row?;
        if names_note(&id, url.as_deref(), target) {
            return Ok(Some((actor, thread)));
        }
    }
    Ok(None)
}

/// Remote posts `?1` may name, by id or by url (index `remote_notes_url`); [`names_note`]
/// decides which of them it really names.
pub(crate) const REMOTE_NOTE_NAMED: &str =
    "SELECT id, url, actor_id, thread_post_id FROM remote_notes
     WHERE (id = ?1 OR url = ?1) AND deleted_at IS NULL";
/// What is stored of remote post `?1`, before an edit is taken.
pub(crate) const EXISTING_NOTE: &str =
    "SELECT actor_id, updated, deleted_at IS NOT NULL FROM remote_notes WHERE id = ?1";
/// Replies that arrived before their parent `?2` (id) or `?3` (url) join its thread `?1`.
pub(crate) const ADOPT_EARLIER_REPLIES: &str = "UPDATE remote_notes SET thread_post_id = ?1
     WHERE thread_post_id IS NULL AND (in_reply_to = ?2 OR (?3 IS NOT NULL AND in_reply_to = ?3))";
/// An actor's posts become tombstones when the actor is deleted.
pub(crate) const FORGET_ACTOR_NOTES: &str =
    "UPDATE remote_notes SET deleted_at = ?2, content_html = '', summary = NULL,
     attachments = '[]', url = NULL, raw = '{}'
     WHERE actor_id = ?1 AND deleted_at IS NULL";

/// The thread a remote post belongs to: our post it answers, the thread of the remote post it
/// answers, or the thread of our post that answers someone (a local reply).
fn thread_of(conn: &Connection, urls: &Urls, in_reply_to: &str) -> rusqlite::Result<Option<i64>> {
    if let Some(post) = local_post(conn, urls, in_reply_to)? {
        return Ok(Some(post.id));
    }
    Ok(remote_note_named(conn, in_reply_to)?.and_then(|(_, thread)| thread))
}

pub fn classify(conn: &Connection, urls: &Urls, note: &RemoteNote) -> rusqlite::Result<Relevance> {
    let thread_post_id = match &note.in_reply_to {
        Some(parent) => thread_of(conn, urls, parent)?,
        None => None,
    };
    let mut quote_post_id = None;
    for q in &note.quotes {
        if let Some(post) = local_post(conn, urls, q)? {
            quote_post_id = Some(post.id);
            break;
        }
    }
    Ok(Relevance {
        thread_post_id,
        quote_post_id,
        mentions_owner: note.mentions_actor(&urls.actor()),
    })
}

struct Existing {
    actor_id: String,
    updated: Option<String>,
    deleted: bool,
}

fn existing(conn: &Connection, id: &str) -> rusqlite::Result<Option<Existing>> {
    conn.query_row(EXISTING_NOTE, [id], |r| {
        Ok(Existing {
            actor_id: r.get(0)?,
            updated: r.get(1)?,
            deleted: r.get(2)?,
        })
    })
    .optional()
}

/// Stores a remote post sent by `sender` (a Create, or an Update: edits overwrite). Only posts
/// that concern the owner are kept; the caller has checked that `sender` wrote it.
///
/// One IMMEDIATE transaction: what is stored decides whether the upsert runs (an older edit
/// never wins, a tombstone stays), so nothing may be written between that read and the
/// upsert. Without it, a newer edit stored by another connection in between was overwritten
/// (a lost update); a deferred transaction would fail with SQLITE_BUSY_SNAPSHOT instead.
/// Fails if `conn` is already inside a transaction.
pub fn receive_note(
    conn: &Connection,
    urls: &Urls,
    note: &RemoteNote,
    raw: &Value,
    sender_host: &str,
    now: &str,
) -> rusqlite::Result<Outcome> {
    receive_note_kept(conn, urls, note, raw, sender_host, now, false)
}

/// [`receive_note`], storing the post even when it does not concern the owner when `keep`:
/// the home timeline's posts (by followed accounts, or boosted by them) live in the same table,
/// so an edit, a deletion, a reply and a timeline entry all see the one row.
pub fn receive_note_kept(
    conn: &Connection,
    urls: &Urls,
    note: &RemoteNote,
    raw: &Value,
    sender_host: &str,
    now: &str,
    keep: bool,
) -> rusqlite::Result<Outcome> {
    receive_note_then(conn, urls, note, raw, sender_host, now, keep, |_, _| Ok(()))
}

/// [`receive_note_kept`], then `then` in the same transaction (the timeline adds its entry
/// there, so a post and its entry are stored together or not at all).
#[allow(clippy::too_many_arguments)]
pub fn receive_note_then(
    conn: &Connection,
    urls: &Urls,
    note: &RemoteNote,
    raw: &Value,
    sender_host: &str,
    now: &str,
    keep: bool,
    then: impl FnOnce(&Connection, Outcome) -> rusqlite::Result<()>,
) -> rusqlite::Result<Outcome> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let outcome = receive_note_in(&tx, urls, note, raw, sender_host, now, keep)?;
    then(&tx, outcome)?;
    tx.commit()?;
    Ok(outcome)
}

fn receive_note_in(
    conn: &Connection,
    urls: &Urls,
    note: &RemoteNote,
    raw: &Value,
    sender_host: &str,
    now: &str,
    keep: bool,
) -> rusqlite::Result<Outcome> {
    let Some(actor) = note.attributed_to.as_deref() else {
        return Ok(Outcome::Ignored);
    };
    let before = existing(conn, &note.id)?;
    if let Some(e) = &before {
        // A tombstone stays a tombstone; only the author edits; an older version never wins.
        if e.deleted || e.actor_id != actor {
            return Ok(Outcome::Ignored);
        }
        let incoming = note.updated.map(crate::times::rfc3339);
        if let (Some(stored), Some(incoming)) = (&e.updated, &incoming)
            && incoming < stored
        {
            return Ok(Outcome::Ignored);
        }
    }
    let rel = classify(conn, urls, note)?;
    if before.is_none() && !rel.concerns_owner() && !keep {
        return Ok(Outcome::Ignored);
    }
    let attachments = serde_json::to_string(&note.attachments).unwrap_or_else(|_| "[]".into());
    let published = note.published.map(crate::times::rfc3339);
    let updated = note.updated.map(crate::times::rfc3339);
    let poll = note
        .poll
        .as_ref()
        .and_then(|p| serde_json::to_string(p).ok());
    // On an edit without `updated`, the time it reached us stands in, so the page says "edited".
    conn.execute(
        "INSERT INTO remote_notes (id, actor_id, host, object_type, in_reply_to, thread_post_id,
             quote_post_id, mentions_owner, visibility, url, summary, content_html, attachments,
             published, updated, raw, received_at, poll, replies_count, likes_count, boosts_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, COALESCE(?14, ?17), ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21)
         ON CONFLICT (id) DO UPDATE SET object_type = ?4, in_reply_to = ?5,
             thread_post_id = COALESCE(?6, thread_post_id), quote_post_id = COALESCE(?7, quote_post_id),
             mentions_owner = MAX(?8, mentions_owner), visibility = ?9, url = ?10, summary = ?11,
             updated = COALESCE(?15, CASE WHEN content_html != ?12 THEN ?17 ELSE updated END),
             content_html = ?12, attachments = ?13, published = COALESCE(?14, published), raw = ?16,
             poll = ?18, replies_count = ?19, likes_count = ?20, boosts_count = ?21",
        params![
            note.id,
            actor,
            sender_host,
            note.object_type,
            note.in_reply_to,
            rel.thread_post_id,
            rel.quote_post_id,
            rel.mentions_owner,
            note.visibility.as_str(),
            note.url,
            note.summary,
            note.content_html,
            attachments,
            published,
            updated,
            raw.to_string(),
            now,
            poll,
            note.counts.replies,
            note.counts.likes,
            note.counts.boosts,
        ],
    )?;
    if let Some(thread) = rel.thread_post_id {
        // Replies to this post that arrived before it (and were kept as mentions) join the thread.
        let own_url = note
            .url
            .as_deref()
            .filter(|u| names_note(&note.id, Some(u), u));
        conn.execute(ADOPT_EARLIER_REPLIES, params![thread, note.id, own_url])?;
    }
    Ok(if before.is_some() {
        Outcome::Updated
    } else {
        Outcome::Stored
    })
}

/// A Delete of a remote post by its author: content and raw JSON go, a tombstone stays.
pub fn delete_note(
    conn: &Connection,
    id: &str,
    sender: &str,
    raw: &Value,
    now: &str,
) -> rusqlite::Result<Outcome> {
    let n = conn.execute(
        "UPDATE remote_notes SET deleted_at = ?3, content_html = '', summary = NULL,
             attachments = '[]', url = NULL, raw = ?4
         WHERE id = ?1 AND actor_id = ?2 AND deleted_at IS NULL",
        params![id, sender, now, raw.to_string()],
    )?;
    Ok(if n > 0 {
        Outcome::Deleted
    } else {
        Outcome::Ignored
    })
}

/// Forgets remote post `id` when nothing about the owner needs it (not in a thread under our
/// post, not quoting or mentioning the owner): the timeline's retention calls this for posts
/// that left the timeline. Returns the rows removed.
pub fn forget_unconcerned(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM remote_notes WHERE id = ?1 AND thread_post_id IS NULL
             AND quote_post_id IS NULL AND mentions_owner = 0",
    )?
    .execute([id])
}

/// An actor that deleted itself: its posts and reactions go too.
pub fn forget_actor(conn: &Connection, actor: &str, now: &str) -> rusqlite::Result<()> {
    conn.execute(FORGET_ACTOR_NOTES, params![actor, now])?;
    conn.execute("DELETE FROM reactions WHERE actor_id = ?1", [actor])?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReactionKind {
    Like,
    Boost,
}

impl ReactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReactionKind::Like => "like",
            ReactionKind::Boost => "boost",
        }
    }
    /// The activity types that make each kind (Pleroma's EmojiReact counts as a like).
    pub fn of_activity(kind: &str) -> Option<ReactionKind> {
        match kind {
            "Like" | "EmojiReact" => Some(ReactionKind::Like),
            "Announce" => Some(ReactionKind::Boost),
            _ => None,
        }
    }
}

/// A like or boost of our post; a repeat by the same actor replaces the first.
pub fn add_reaction(
    conn: &Connection,
    kind: ReactionKind,
    actor: &str,
    post_id: i64,
    activity_id: &str,
    raw: &Value,
    now: &str,
) -> rusqlite::Result<Outcome> {
    let n = conn.execute(
        "INSERT INTO reactions (kind, actor_id, post_id, activity_id, raw, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (kind, actor_id, post_id) DO UPDATE SET activity_id = ?4, raw = ?5
         WHERE activity_id != ?4",
        params![
            kind.as_str(),
            actor,
            post_id,
            activity_id,
            raw.to_string(),
            now
        ],
    )?;
    Ok(if n > 0 {
        Outcome::Stored
    } else {
        Outcome::Ignored
    })
}

/// Undo of a reaction, by the activity's id, or by what it reacted to when the Undo embeds an
/// activity whose id we never saw. Only the actor's own reactions.
pub fn remove_reaction(
    conn: &Connection,
    actor: &str,
    activity_id: Option<&str>,
    target: Option<(ReactionKind, i64)>,
) -> rusqlite::Result<usize> {
    let mut n = 0;
    if let Some(id) = activity_id {
        n = conn.execute(
            "DELETE FROM reactions WHERE activity_id = ?1 AND actor_id = ?2",
            params![id, actor],
        )?;
    }
    if n == 0
        && let Some((kind, post_id)) = target
    {
        n = conn.execute(
            "DELETE FROM reactions WHERE kind = ?1 AND actor_id = ?2 AND post_id = ?3",
            params![kind.as_str(), actor, post_id],
        )?;
    }
    Ok(n)
}

/// The owner hides (or shows again) one remote reply, by its id or page URL.
pub fn set_hidden(conn: &Connection, id_or_url: &str, hidden: bool) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE remote_notes SET hidden = ?2 WHERE id = ?1 OR url = ?1",
        params![id_or_url, hidden],
    )
}

/// Replies off (or on) for one post.
pub fn set_post_replies(conn: &Connection, post_id: i64, off: bool) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO reply_settings_post (post_id, replies_off) VALUES (?1, ?2)
         ON CONFLICT (post_id) DO UPDATE SET replies_off = ?2",
        params![post_id, off],
    )?;
    Ok(())
}

/// Replies off (or on) everywhere.
pub fn set_site_replies(conn: &Connection, off: bool) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE reply_settings_site SET replies_off = ?1 WHERE id = 1",
        [off],
    )?;
    Ok(())
}

pub fn site_replies_off(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT replies_off FROM reply_settings_site WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

pub fn post_replies_off(conn: &Connection, post_id: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT replies_off FROM reply_settings_post WHERE post_id = ?1")?
        .query_row([post_id], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

#[cfg(test)]
mod tests;
