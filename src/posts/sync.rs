//! Drafts → the `posts` table, in one transaction: new files are created, changed ones updated
//! (same id), missing ones tombstoned.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, params};
use time::OffsetDateTime;

use super::error::PostError;
use super::source::{Loaded, load_drafts};
use crate::times::rfc3339;
use crate::urls::Urls;

/// What a publish changed, by post id (for delivery) and slug (for the owner).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub created: Vec<(i64, String)>,
    pub updated: Vec<(i64, String)>,
    pub deleted: Vec<(i64, String)>,
    pub unchanged: usize,
    /// Things that publish but read worse elsewhere, for the owner (file: what and the fix).
    pub warnings: Vec<String>,
}

/// Attachments Mastodon shows on a post (PROTOCOL.md §5); the rest are dropped there.
pub const MASTODON_MAX_MEDIA: usize = 4;

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

/// Slug → source hash of every live post.
pub fn live_hashes(conn: &Connection) -> rusqlite::Result<HashMap<String, String>> {
    let mut stmt = conn.prepare("SELECT slug, source_hash FROM posts WHERE deleted_at IS NULL")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::now_utc())
}

/// Writes the drafts into the database in one transaction: new → created, changed → updated
/// (same id, `updated` bumped), missing → deleted (tombstoned). Unchanged posts are not touched.
pub fn sync(conn: &mut Connection, loaded: &[Loaded]) -> Result<SyncReport, PostError> {
    // Each INSERT here fires triggers (the generations, the tag rows), so SQLite keeps a
    // statement journal of every page it touches, to undo that statement alone. Past 64 KiB
    // that journal is a temporary file, written page by page for each statement: 15 % of a
    // first publish of 10,000 posts (`perf`: `subjournalPage` → `pwrite`, issue 15). With
    // `temp_store = MEMORY` it stays in memory (one statement's pages at a time). The setting
    // is the connection's, so it is put back as it was.
    let temp_store: i64 = conn.pragma_query_value(None, "temp_store", |r| r.get(0))?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    let synced = write_drafts(conn, loaded);
    // Putting it back must not turn a committed sync into an error (its posts would go
    // unfederated) nor hide the owner's error: a failure here is only logged.
    if let Err(e) = conn.pragma_update(None, "temp_store", temp_store) {
        tracing::warn!("could not restore temp_store after the sync: {e}");
    }
    synced
}

fn write_drafts(conn: &mut Connection, loaded: &[Loaded]) -> Result<SyncReport, PostError> {
    let now = now_utc();
    let now_s = rfc3339(now);
    // Immediate: a running server's watcher and `hortus publish` may sync at the same moment;
    // the second waits for the first (busy timeout) rather than failing on a stale read.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut existing: HashMap<String, (i64, String, bool)> = HashMap::new();
    {
        let mut stmt =
            tx.prepare("SELECT id, slug, source_hash, deleted_at IS NOT NULL FROM posts")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(1)?, (r.get(0)?, r.get(2)?, r.get(3)?)))
        })?;
        for row in rows {
            let (slug, v) = row?;
            existing.insert(slug, v);
        }
    }
    let mut report = SyncReport::default();
    let mut present = std::collections::HashSet::new();
    for entry in loaded {
        present.insert(entry.slug());
        let d = match entry {
            Loaded::Changed(d) => d,
            Loaded::Unchanged { .. } => {
                report.unchanged += 1;
                continue;
            }
        };
        if d.attachments.len() > MASTODON_MAX_MEDIA {
            report.warnings.push(format!(
                "{}: {} images, but Mastodon shows only the first {MASTODON_MAX_MEDIA}\n  fix: keep the {MASTODON_MAX_MEDIA} that matter most, or link the others",
                d.source_path,
                d.attachments.len()
            ));
        }
        let tags = serde_json::to_string(&d.tags).unwrap_or_else(|_| "[]".into());
        let mentions = serde_json::to_string(&d.mentions).unwrap_or_else(|_| "[]".into());
        let attachments = serde_json::to_string(&d.attachments).unwrap_or_else(|_| "[]".into());
        // A new post has no tags yet: nothing to delete before inserting them.
        let (id, new) = match existing.get(&d.slug) {
            Some((_, hash, false)) if *hash == d.source_hash => {
                report.unchanged += 1;
                continue;
            }
            Some((id, _, _)) => {
                tx.prepare_cached(
                    "UPDATE posts SET source_path=?2, source_hash=?3, title=?4, summary=?5, content_html=?6,
                        visibility=?7, language=?8, in_reply_to=?9, sensitive=?10, tags=?11, mentions=?12,
                        attachments=?13, published=COALESCE(?14, published), updated=?15, deleted_at=NULL,
                        quote=?16, quotes=?17
                     WHERE id=?1",
                )?
                .execute(params![
                        id, d.source_path, d.source_hash, d.title, d.summary, d.content_html,
                        d.visibility.as_str(), d.language, d.in_reply_to, d.sensitive, tags, mentions,
                        attachments, d.date.map(rfc3339), now_s, d.quote, d.quotes.map(|q| q.as_str())
                    ])?;
                report.updated.push((*id, d.slug.clone()));
                (*id, false)
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO posts (slug, source_path, source_hash, title, summary, content_html,
                        visibility, language, in_reply_to, sensitive, tags, mentions, attachments, published,
                        quote, quotes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )?
                .execute(params![
                        d.slug, d.source_path, d.source_hash, d.title, d.summary, d.content_html,
                        d.visibility.as_str(), d.language, d.in_reply_to, d.sensitive, tags, mentions,
                        attachments, rfc3339(d.date.unwrap_or(now)), d.quote, d.quotes.map(|q| q.as_str())
                    ])?;
                let id = tx.last_insert_rowid();
                report.created.push((id, d.slug.clone()));
                (id, true)
            }
        };
        if !new {
            tx.prepare_cached("DELETE FROM post_tags WHERE post_id = ?1")?
                .execute([id])?;
        }
        let mut seen_tags = std::collections::HashSet::new();
        for tag in &d.tags {
            let lower = tag.to_lowercase();
            if seen_tags.insert(lower.clone()) {
                // With the post's time and whether it is listed (migration 19's tag listing).
                tx.prepare_cached(
                    "INSERT INTO post_tags (post_id, tag, published, public)
                     SELECT id, ?2, published, visibility = 'public' AND deleted_at IS NULL
                     FROM posts WHERE id = ?1",
                )?
                .execute(params![id, lower])?;
            }
        }
    }
    for (slug, (id, _, deleted)) in &existing {
        if !deleted && !present.contains(slug.as_str()) {
            tx.prepare_cached("UPDATE posts SET deleted_at = ?2 WHERE id = ?1")?
                .execute(params![id, now_s])?;
            tx.prepare_cached("DELETE FROM post_tags WHERE post_id = ?1")?
                .execute([id])?;
            report.deleted.push((*id, slug.clone()));
        }
    }
    report.deleted.sort();
    tx.commit()?;
    Ok(report)
}

/// Parses the site's content folder and syncs it: the whole of `hortus publish`.
pub fn publish(
    conn: &mut Connection,
    site_dir: &Path,
    urls: &Urls,
) -> Result<SyncReport, PostError> {
    let live = live_hashes(conn)?;
    let loaded = load_drafts(site_dir, urls, &live)?;
    sync(conn, &loaded)
}
