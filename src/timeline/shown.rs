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

/// Newest first, `limit` items after `offset`, posts and boosts merged by time.
pub fn outbox_page(
    conn: &Connection,
    offset: u64,
    limit: u32,
) -> rusqlite::Result<Vec<OutboxItem>> {
    let want = offset.saturating_add(u64::from(limit));
    let slots = if super::store::own_boost_count(conn)? == 0 {
        // Posts only: the page straight from the outbox index, nothing to merge.
        posts::list_keys(conn, Listing::Outbox, offset, limit)?
            .into_iter()
            .map(|(id, _)| OutboxSlot::Post(id))
            .collect()
    } else {
        outbox_order(conn, want)?
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .collect::<Vec<_>>()
    };
    let mut page = Vec::with_capacity(limit as usize);
    for slot in slots {
        match slot {
            OutboxSlot::Post(id) => {
                if let Some(p) = posts::by_id(conn, id)? {
                    page.push(OutboxItem::Post(Box::new(p)));
                }
            }
            OutboxSlot::Boost(b) => page.push(OutboxItem::Boost(b)),
        }
    }
    Ok(page)
}

/// Where an outbox item comes from: a post's id, or an Announce as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxSlot {
    Post(i64),
    Boost(Value),
}

/// The first `want` items of the outbox in order, without reading whole posts: what the pages
/// show, and what the export compares to know which pages moved (`export::deps`). Each list is
/// read up to `want` (the outbox of one person is small; pages are 20).
pub fn outbox_order(conn: &Connection, want: u64) -> rusqlite::Result<Vec<OutboxSlot>> {
    // Ids and times of the posts first, whole rows only for the page: reading `want` whole
    // posts made outbox page n cost n pages of rows (a 10,000-post export spent most of its
    // time there, issue 15).
    let keys = posts::list_keys(
        conn,
        Listing::Outbox,
        0,
        u32::try_from(want).unwrap_or(u32::MAX),
    )?;
    let boosts = super::store::own_boosts(conn, 0, want)?;
    let mut items: Vec<(String, OutboxSlot)> = Vec::with_capacity(keys.len() + boosts.len());
    for (id, published) in keys {
        items.push((crate::times::rfc3339(published), OutboxSlot::Post(id)));
    }
    for b in boosts {
        let at = b
            .get("published")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        items.push((at, OutboxSlot::Boost(b)));
    }
    // Stable: equal times keep posts before boosts, as read.
    items.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(items.into_iter().map(|(_, slot)| slot).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages read through ids and times equal the whole merge of posts and boosts, at every
    /// page, with equal times keeping posts first.
    #[test]
    fn outbox_pages_merge_posts_and_boosts_by_time() {
        let conn = crate::db::open_in_memory().unwrap();
        let at = |minute: u32| format!("2026-11-29T{:02}:{:02}:00Z", 8 + minute / 60, minute % 60);
        let mut expected: Vec<(String, u8, String)> = Vec::new();
        for i in 0..57u32 {
            let (slug, minute) = (format!("p{i}"), i * 2);
            conn.execute(
                "INSERT INTO posts (slug, source_path, source_hash, content_html, visibility, published)
                 VALUES (?1, ?1, 'h', '<p>投稿</p>', ?2, ?3)",
                (&slug, if i % 5 == 0 { "unlisted" } else { "public" }, at(minute)),
            )
            .unwrap();
            expected.push((at(minute), 0, slug));
        }
        for j in 0..13u32 {
            // Every third boost at the very time of a post: the post comes first.
            let minute = if j % 3 == 0 { j * 8 } else { j * 8 + 1 };
            let id = format!("https://m.example/announce/{j}");
            let activity =
                serde_json::json!({"id": id, "type": "Announce", "published": at(minute)});
            conn.execute(
                "INSERT INTO timeline_actions (kind, object_id, author_id, activity, created_at)
                 VALUES ('boost', ?1, 'https://m.example/u', ?2, ?3)",
                (
                    format!("https://m.example/n/{j}"),
                    activity.to_string(),
                    at(minute),
                ),
            )
            .unwrap();
            expected.push((at(minute), 1, id));
        }
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let names = |items: Vec<OutboxItem>| -> Vec<String> {
            items
                .into_iter()
                .map(|item| match item {
                    OutboxItem::Post(p) => p.slug,
                    OutboxItem::Boost(b) => b["id"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        };
        let mut all = Vec::new();
        for page in 0..4u64 {
            all.extend(names(outbox_page(&conn, page * 20, 20).unwrap()));
        }
        let want: Vec<String> = expected.into_iter().map(|(_, _, n)| n).collect();
        assert_eq!(all, want);
    }
}
