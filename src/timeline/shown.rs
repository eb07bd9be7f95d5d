//! The owner's boosts where the public sees them, as Mastodon shows reblogs: as `Announce` items
//! in the outbox, between the owner's posts by time, and on the profile page.

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::posts::{self, Listing, Post};

/// One item of the outbox: a post (the caller wraps it in its Create) or an Announce as sent.
pub enum OutboxItem {
    Post(Box<Post>),
    Boost(Value),
}

/// The outbox's size: public and unlisted posts, and the owner's boosts.
pub fn outbox_total(conn: &Connection) -> rusqlite::Result<u64> {
    Ok(posts::count(conn, Listing::Outbox)? + super::store::own_boost_count(conn)?)
}

/// Newest first, `limit` items after `offset`, posts and boosts merged by time. Each list is
/// read up to `offset + limit` (the outbox of one person is small; pages are 20).
pub fn outbox_page(
    conn: &Connection,
    offset: u64,
    limit: u32,
) -> rusqlite::Result<Vec<OutboxItem>> {
    let want = offset.saturating_add(u64::from(limit));
    let posts = posts::list(
        conn,
        Listing::Outbox,
        u32::try_from(want).unwrap_or(u32::MAX),
        0,
    )?;
    let boosts = super::store::own_boosts(conn, 0, want)?;
    let mut items: Vec<(String, OutboxItem)> = Vec::with_capacity(posts.len() + boosts.len());
    for p in posts {
        items.push((
            crate::times::rfc3339(p.published),
            OutboxItem::Post(Box::new(p)),
        ));
    }
    for b in boosts {
        let at = b
            .get("published")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        items.push((at, OutboxItem::Boost(b)));
    }
    // Stable: equal times keep posts before boosts, as read.
    items.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(items
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .map(|(_, item)| item)
        .collect())
}

/// A boost on the profile page: the boosted post's link, author and opening words.
#[derive(Debug, Clone)]
pub struct BoostShown {
    pub url: String,
    pub author: String,
    pub excerpt: String,
    pub at: String,
}

/// The owner's latest boosts for the profile page. Only posts still there (not deleted) and not
/// by an account the owner blocked; excerpts are plain text of sanitised HTML.
pub fn recent_boosts(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<BoostShown>> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT COALESCE(n.url, n.id), COALESCE(a.handle, n.actor_id), n.content_html, t.created_at
         FROM timeline_actions t JOIN remote_notes n ON n.id = t.object_id
         LEFT JOIN remote_actors a ON a.id = n.actor_id
         WHERE t.kind = 'boost' AND n.deleted_at IS NULL
           AND n.visibility IN ('public', 'unlisted')
           AND n.actor_id NOT IN ({})
         ORDER BY t.created_at DESC LIMIT ?1",
            crate::graph::accounts::BLOCKED_IDS
        )
    });
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![limit], |r| {
        let html: String = r.get(2)?;
        Ok(BoostShown {
            url: r.get(0)?,
            author: crate::text::plain_text(&r.get::<_, String>(1)?, 200),
            excerpt: crate::text::text_of(&html, 200),
            at: r.get(3)?,
        })
    })?;
    rows.collect()
}
