//! The timeline tables (migrations/12-timeline): `timeline_entries` (what the home timeline
//! shows) and `timeline_actions` (the owner's likes, boosts and bookmarks). Plain functions over
//! a `&Connection`; every write is idempotent. The posts themselves are `remote_notes`, owned by
//! `conversation::store`.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::conversation::note::{Attachment, Poll};

/// The statements on the inbox path (checked by `inbox::query_plans`).
pub(crate) const ADD_POST: &str =
    "INSERT INTO timeline_entries (kind, note_id, object_id, created_at)
     VALUES ('post', ?1, ?1, ?2) ON CONFLICT DO NOTHING";
pub(crate) const ADD_BOOST: &str = "INSERT INTO timeline_entries
         (kind, note_id, object_id, booster_id, activity_id, refused, created_at)
     VALUES ('boost', ?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING";
pub(crate) const REMOVE_BOOST: &str = "DELETE FROM timeline_entries
     WHERE kind = 'boost' AND booster_id = ?1 AND (activity_id = ?2 OR object_id = ?3)";

/// A followed account's post enters the timeline once (unique per post).
pub fn add_post(conn: &Connection, note_id: &str, now: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(ADD_POST)?
        .execute(params![note_id, now])?;
    Ok(n > 0)
}

/// A boost by `booster` of `object_id` (stored as `note_id`, or `None` when its server is
/// refused and only its link is kept). One entry per booster and post: a repeat changes nothing.
pub fn add_boost(
    conn: &Connection,
    booster: &str,
    object_id: &str,
    note_id: Option<&str>,
    activity_id: &str,
    now: &str,
) -> rusqlite::Result<bool> {
    let n = conn.prepare_cached(ADD_BOOST)?.execute(params![
        note_id,
        object_id,
        booster,
        activity_id,
        note_id.is_none(),
        now
    ])?;
    Ok(n > 0)
}

/// Undo of a boost by its booster: by the Announce's id, or by what it boosted.
pub fn remove_boost(
    conn: &Connection,
    booster: &str,
    activity_id: Option<&str>,
    object_id: Option<&str>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(REMOVE_BOOST)?
        .execute(params![booster, activity_id, object_id])
}

/// One line of the timeline, as read back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub kind: String,
    /// The post's id (for a refused boost: the link the Announce named).
    pub object_id: String,
    /// Set on boosts.
    pub booster: Option<Actor>,
    /// The post's server is refused by the policy: nothing of it was fetched.
    pub refused: bool,
    pub received_at: String,
    /// `None` for a refused boost.
    pub post: Option<PostView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Actor {
    pub id: String,
    pub handle: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PostView {
    pub author: Actor,
    pub server: String,
    pub object_type: String,
    pub visibility: String,
    pub url: Option<String>,
    pub summary: Option<String>,
    /// Sanitised HTML; shown as plain text (`text`).
    pub content_html: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub poll: Option<Poll>,
    pub published: String,
    pub updated: Option<String>,
    pub replies: Option<i64>,
    pub likes: Option<i64>,
    pub boosts: Option<i64>,
    /// What the owner did with it: `like`, `boost`, `bookmark`.
    pub mine: Vec<String>,
    /// What it quotes (not the owner's posts), and whether the quoted author's stamp grants it
    /// (FEP-044f, `timeline::quotes`).
    pub quote: Option<String>,
    pub quote_authorized: bool,
}

/// Newest first, `limit` entries with an id below `before`, by accounts the owner follows now
/// (`graph::following::ACCEPTED_IDS`: an unfollow empties the timeline of them at once). Posts
/// of accounts the owner blocked or muted (`graph::accounts::SILENCED_IDS`), and their boosts, are left
/// out; so are deleted and hidden posts.
fn page_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT e.id, e.kind, e.object_id, e.booster_id, b.handle, e.refused, e.created_at,
                   n.id, n.actor_id, a.handle, n.host, n.object_type, n.visibility, n.url,
                   n.summary, n.content_html, n.attachments, n.poll, n.published, n.updated,
                   n.replies_count, n.likes_count, n.boosts_count,
                   (SELECT group_concat(t.kind) FROM timeline_actions t WHERE t.object_id = n.id),
                   n.quoted, n.quote_authorization IS NOT NULL
            FROM timeline_entries e
            LEFT JOIN remote_notes n ON n.id = e.note_id
            LEFT JOIN remote_actors a ON a.id = n.actor_id
            LEFT JOIN remote_actors b ON b.id = e.booster_id
            WHERE (?1 IS NULL OR e.id < ?1)
              AND (e.note_id IS NULL OR (n.id IS NOT NULL AND n.deleted_at IS NULL AND n.hidden = 0))
              AND COALESCE(e.booster_id, n.actor_id) IN ({})
              AND COALESCE(n.actor_id, '') NOT IN ({silenced})
              AND COALESCE(e.booster_id, '') NOT IN ({silenced})
            ORDER BY e.id DESC LIMIT ?2",
            crate::graph::following::ACCEPTED_IDS,
            silenced = crate::graph::accounts::SILENCED_IDS,
        )
    })
}

/// The id of the `n`th timeline entry after `after` (in the order they arrived, shown or not),
/// when there are at least `n`: the end of a window that holds at most `n` entries.
pub fn window_end(conn: &Connection, after: i64, n: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT id FROM timeline_entries WHERE id > ?1 ORDER BY id LIMIT 1 OFFSET ?2",
    )?
    .query_row(params![after, n - 1], |r| r.get(0))
    .optional()
}

pub fn page(conn: &Connection, before: Option<i64>, limit: usize) -> rusqlite::Result<Vec<Entry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(page_sql())?;
    let rows = stmt.query_map(params![before, limit], |r| {
        let booster_id: Option<String> = r.get(3)?;
        let note_id: Option<String> = r.get(7)?;
        let post = match note_id {
            None => None,
            Some(_) => Some({
                let content_html: String = r.get(15)?;
                PostView {
                    author: Actor {
                        id: r.get(8)?,
                        handle: r.get(9)?,
                    },
                    server: r.get(10)?,
                    object_type: r.get(11)?,
                    visibility: r.get(12)?,
                    url: r.get(13)?,
                    summary: r.get(14)?,
                    text: crate::text::text_of(&content_html, 5000),
                    content_html,
                    attachments: serde_json::from_str(&r.get::<_, String>(16)?).unwrap_or_default(),
                    poll: r
                        .get::<_, Option<String>>(17)?
                        .and_then(|p| serde_json::from_str(&p).ok()),
                    published: r.get(18)?,
                    updated: r.get(19)?,
                    replies: r.get(20)?,
                    likes: r.get(21)?,
                    boosts: r.get(22)?,
                    mine: r
                        .get::<_, Option<String>>(23)?
                        .map(|s| s.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    quote: r.get(24)?,
                    quote_authorized: r.get::<_, Option<bool>>(25)?.unwrap_or(false),
                }
            }),
        };
        Ok(Entry {
            id: r.get(0)?,
            kind: r.get(1)?,
            object_id: r.get(2)?,
            booster: match booster_id {
                Some(id) => Some(Actor {
                    id,
                    handle: r.get(4)?,
                }),
                None => None,
            },
            refused: r.get(5)?,
            received_at: r.get(6)?,
            post,
        })
    })?;
    rows.collect()
}

/// What remote post `id` quotes, and the stamp that grants it (`None`: not granted).
pub fn set_quote(
    conn: &Connection,
    id: &str,
    quoted: &str,
    authorization: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE remote_notes SET quoted = ?2, quote_authorization = ?3 WHERE id = ?1",
        params![id, quoted, authorization],
    )?;
    Ok(())
}

/// What the owner did with a remote post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Like,
    Boost,
    Bookmark,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Like => "like",
            ActionKind::Boost => "boost",
            ActionKind::Bookmark => "bookmark",
        }
    }
}

/// Records an action; `false` when it was already recorded (nothing changes).
pub fn add_action(
    conn: &Connection,
    kind: ActionKind,
    object_id: &str,
    author: &str,
    activity: Option<&Value>,
    now: &str,
) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT INTO timeline_actions (kind, object_id, author_id, activity, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![
            kind.as_str(),
            object_id,
            author,
            activity.map(Value::to_string),
            now
        ],
    )?;
    Ok(n > 0)
}

/// Removes an action; returns the activity it sent (what the Undo embeds), `None` when there
/// was no such action. A bookmark returns `Some(Value::Null)`.
pub fn take_action(
    conn: &Connection,
    kind: ActionKind,
    object_id: &str,
) -> rusqlite::Result<Option<Value>> {
    let activity: Option<Option<String>> = conn
        .query_row(
            "DELETE FROM timeline_actions WHERE kind = ?1 AND object_id = ?2 RETURNING activity",
            params![kind.as_str(), object_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(activity.map(|a| {
        a.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }))
}

pub fn has_action(conn: &Connection, kind: ActionKind, object_id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM timeline_actions WHERE kind = ?1 AND object_id = ?2",
        params![kind.as_str(), object_id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The Announces the owner sent, newest first (`offset`, `limit`): the outbox and the profile
/// page list them as Mastodon does.
pub fn own_boosts(conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = conn.prepare_cached(
        "SELECT activity FROM timeline_actions WHERE kind = 'boost' AND activity IS NOT NULL
         ORDER BY created_at DESC, object_id LIMIT ?2 OFFSET ?1",
    )?;
    let rows = stmt.query_map(
        params![
            i64::try_from(offset).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| r.get::<_, String>(0),
    )?;
    let mut out = Vec::new();
    for row in rows {
        if let Ok(v) = serde_json::from_str(&row?) {
            out.push(v);
        }
    }
    Ok(out)
}

pub fn own_boost_count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM timeline_actions WHERE kind = 'boost' AND activity IS NOT NULL",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
}

/// What the owner did with a remote post: `like`, `boost`, `bookmark` (the client API's
/// `favourited`, `reblogged`, `bookmarked`).
pub fn actions_on(conn: &Connection, object_id: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT kind FROM timeline_actions WHERE object_id = ?1")?
        .query_map([object_id], |r| r.get(0))?
        .collect()
}

/// When the owner did `kind` to `object_id` (where a page of likes or bookmarks starts).
pub fn action_at(
    conn: &Connection,
    kind: ActionKind,
    object_id: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT created_at FROM timeline_actions WHERE kind = ?1 AND object_id = ?2",
    )?
    .query_row(params![kind.as_str(), object_id], |r| r.get(0))
    .optional()
}

/// The posts the owner liked or bookmarked (still stored, not deleted), newest first: below
/// `older` and above `newer`, each a (time, post id) from [`action_at`].
pub fn acted_page(
    conn: &Connection,
    kind: ActionKind,
    older: Option<(&str, &str)>,
    newer: Option<(&str, &str)>,
    limit: u32,
) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT t.object_id FROM timeline_actions t
         JOIN remote_notes n ON n.id = t.object_id AND n.deleted_at IS NULL
         WHERE t.kind = ?1
           AND (?2 IS NULL OR (t.created_at, t.object_id) < (?2, ?3))
           AND (?4 IS NULL OR (t.created_at, t.object_id) > (?4, ?5))
         ORDER BY t.created_at DESC, t.object_id DESC LIMIT ?6",
    )?
    .query_map(
        params![
            kind.as_str(),
            older.map(|o| o.0),
            older.map(|o| o.1),
            newer.map(|n| n.0),
            newer.map(|n| n.1),
            limit
        ],
        |r| r.get(0),
    )?
    .collect()
}

/// The timeline entry of a followed account's post (`kind = 'post'`), by the post's id.
pub fn post_entry(conn: &Connection, note_id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM timeline_entries WHERE kind = 'post' AND note_id = ?1")?
        .query_row([note_id], |r| r.get(0))
        .optional()
}

/// A boost entry whose post is stored: (booster, received at, the post's id).
pub fn boost_entry(
    conn: &Connection,
    entry_id: i64,
) -> rusqlite::Result<Option<(String, String, String)>> {
    conn.prepare_cached(
        "SELECT booster_id, created_at, note_id FROM timeline_entries
         WHERE id = ?1 AND kind = 'boost' AND note_id IS NOT NULL",
    )?
    .query_row([entry_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()
}

/// Posts the owner liked, boosted or bookmarked that their author edited afterwards: (post
/// id, author, edited at), newest edit first, at most `limit` (the client API's `update`
/// notifications).
pub fn edited_after_action(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<(String, String, String)>> {
    conn.prepare_cached(
        "SELECT n.id, n.actor_id, n.updated FROM remote_notes n
         WHERE n.updated IS NOT NULL AND n.deleted_at IS NULL AND n.hidden = 0
           AND n.updated > (SELECT MIN(t.created_at) FROM timeline_actions t WHERE t.object_id = n.id)
         ORDER BY n.updated DESC LIMIT ?1",
    )?
    .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?
    .collect()
}

/// What one prune did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub entries: usize,
    pub posts: usize,
}

/// Entries received before `cutoff` leave the timeline, unless the owner liked, boosted,
/// bookmarked or answered their post; posts no entry, action or answer needs any more are
/// forgotten (`conversation::store::forget_unconcerned` keeps those that concern the owner).
/// At most `batch` entries per call, so one prune never holds the database for long.
pub fn prune(conn: &Connection, cutoff: &str, batch: usize) -> rusqlite::Result<Pruned> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let doomed: Vec<(i64, Option<String>)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT e.id, e.note_id FROM timeline_entries e
             WHERE e.created_at < ?1
               AND NOT EXISTS (SELECT 1 FROM timeline_actions t WHERE t.object_id = e.object_id)
               AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.in_reply_to = e.object_id AND p.deleted_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM reply_targets r WHERE r.object_id = e.object_id)
             ORDER BY e.created_at LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![cutoff, i64::try_from(batch).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut pruned = Pruned::default();
    for (id, note) in doomed {
        pruned.entries += tx
            .prepare_cached("DELETE FROM timeline_entries WHERE id = ?1")?
            .execute([id])?;
        let Some(note) = note else { continue };
        let still_needed: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM timeline_entries WHERE note_id = ?1)
                     OR EXISTS (SELECT 1 FROM timeline_actions WHERE object_id = ?1)",
            )?
            .query_row([&note], |r| r.get(0))?;
        if !still_needed {
            pruned.posts += crate::conversation::store::forget_unconcerned(&tx, &note)?;
        }
    }
    // Posts fetched for an action that was later undone (or refused) have no entry at all.
    let orphans: Vec<String> = {
        let mut stmt = tx.prepare_cached(
            "SELECT n.id FROM remote_notes n
             WHERE n.received_at < ?1 AND n.thread_post_id IS NULL AND n.quote_post_id IS NULL
               AND n.mentions_owner = 0
               AND NOT EXISTS (SELECT 1 FROM timeline_entries e WHERE e.note_id = n.id)
               AND NOT EXISTS (SELECT 1 FROM timeline_actions t WHERE t.object_id = n.id)
               AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.in_reply_to = n.id AND p.deleted_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM reply_targets r WHERE r.object_id = n.id)
             LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![cutoff, i64::try_from(batch).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for id in orphans {
        pruned.posts += crate::conversation::store::forget_unconcerned(&tx, &id)?;
    }
    tx.commit()?;
    Ok(pruned)
}

#[cfg(test)]
mod tests;
