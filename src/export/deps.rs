//! Which files a change touches (issue 15): every planned document gets a key, a hash of exactly
//! what its bytes are made of, and the manifest keeps the keys of the last export. A document
//! whose key is unchanged, and whose file is still on disk, is kept without being rendered: an
//! edit of one post renders its page and Note, the listing pages that show it, the sitemap, and
//! the few documents that show anything at all (the home page, the feed, the outbox's total).
//!
//! What each kind of document (`plan::Dep`) is keyed on:
//!
//! | `Dep`     | key                                                                             |
//! |-----------|---------------------------------------------------------------------------------|
//! | `Any`     | the site's files and both generation numbers: any write a page can show         |
//! | `Static`  | the site's files (the binary holds `static/`)                                   |
//! | `Profile` | the site's files, the "site tables", followers and following                    |
//! | `Post`    | the site's files, the site tables, the post, its interactions, the linked posts |
//! | `Gone`    | the site's files and the post's row                                             |
//! | `Listing` | the site's files, the site tables, the page number, the last page, each post on it |
//! | `Outbox`  | the site's files, the site tables, the page number, the total, each item on it  |
//! | `Sitemap` | the site's files, each public post in order, the public tags                    |
//! | `Nodeinfo`| the site's files, the number of posts in the outbox                             |
//!
//! - "the site's files": hortus.toml, the binary, `media/` and the options (`fingerprint`).
//! - "a post": its row (but the HTML, rendered from the file it names by hash), how its
//!   mentions resolve (`remote_actors`).
//! - "its interactions": the likes and boosts of it, the remote replies in its thread and the
//!   quotes of it (with their authors' names), its reply setting.
//! - "the linked posts": the row and interactions of every post of the owner that answers or
//!   quotes another: such a post and the replies to it show on the page of what it answers.
//! - "the site tables": every other table migration 18's triggers watch (blocks, the federation
//!   policy, account moves, keys, quote consent, the owner's boosts…), whole. They are read from
//!   the triggers themselves, so a table added to those triggers is covered without a change here.
//!
//! A wrong key can only make a document render when it need not; a missing dependency would keep
//! a stale file, which `tests/export_incremental.rs` checks against a full export for each kind
//! of change.

use std::collections::HashMap;

use openssl::sha::Sha256;
use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::plan::{Dep, Doc, Plan};
use super::tree::Key;
use crate::posts::{self, Listing};
use crate::timeline::shown::{OutboxSlot, outbox_order};

/// Read per post (`post` and `interactions` below), not whole.
const PER_POST: &[&str] = &[
    "posts",
    "post_tags",
    "reactions",
    "remote_notes",
    "remote_actors",
    "reply_settings_post",
];
/// Only counts on the actor's collections and the home page show these.
const RELATIONS: &[&str] = &["followers", "following"];

/// Each planned document's key, in the plan's order.
pub type Keys = Vec<Key>;

/// The content type a kept file is assumed to have unless its `Kept` says otherwise.
pub fn guess_type(file: &str) -> &'static str {
    if file.ends_with(".json") {
        crate::activitypub::CONTENT_TYPE
    } else {
        "text/html; charset=utf-8"
    }
}

/// A hash of fields and rows, gathered and hashed once at the end: most are a few bytes, and a
/// SHA-256 update per field was most of the keys' time (issue 15). Nothing added hashes to zeros.
#[derive(Default)]
struct Hash(Vec<u8>);

impl Hash {
    fn field(&mut self, bytes: &[u8]) {
        // Length-prefixed, so two fields never run into each other.
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
    }
    fn row(&mut self, row: &rusqlite::Row, from: usize, to: usize) -> rusqlite::Result<()> {
        crate::db::digest::row_bytes(&mut self.0, row, from, to)
    }
    fn finish(self) -> [u8; 32] {
        if self.0.is_empty() {
            [0; 32]
        } else {
            // The context API, not one-shot `sha256` (see `db::digest::short_sha256`).
            let mut h = Sha256::new();
            h.update(&self.0);
            h.finish()
        }
    }
}

/// The same bytes as [`Hash::field`] of each part, hashed as they come: one is made per document,
/// so no buffer.
fn key_of(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finish()
}

/// A post's row and how its mentions resolve; whether it answers or quotes another.
fn post_hashes(conn: &Connection) -> rusqlite::Result<HashMap<i64, ([u8; 32], bool)>> {
    // Every column but the HTML: `hortus publish` renders it from the file (`source_hash`) with
    // the binary and hortus.toml (the site's files), so it changes only when they do; hashing
    // it would read and hash the whole site's text on every export.
    let all: Vec<String> = conn
        .prepare("SELECT * FROM posts LIMIT 0")?
        .column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let names: Vec<String> = all.into_iter().filter(|n| n != "content_html").collect();
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let mut stmt = conn.prepare(&format!("SELECT {} FROM posts", quoted.join(", ")))?;
    let at = |name: &str| names.iter().position(|n| n == name);
    let (Some(id_at), Some(mentions_at)) = (at("id"), at("mentions")) else {
        return Err(rusqlite::Error::InvalidColumnName("posts.id".into()));
    };
    let linking: Vec<usize> = ["in_reply_to", "quote"]
        .iter()
        .filter_map(|n| at(n))
        .collect();
    let mut resolved: HashMap<String, Option<(String, bool)>> = HashMap::new();
    let mut out = HashMap::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut h = Hash::default();
        h.row(row, 0, names.len())?;
        let mentions: Option<String> = row.get(mentions_at).ok();
        if let Some(m) = mentions.filter(|m| m.len() > 2) {
            // As `posts::store` shows them: each `@user@host` looked up among known actors.
            let list: Vec<serde_json::Value> = serde_json::from_str(&m).unwrap_or_default();
            for name in list.iter().filter_map(|v| v.get("name")?.as_str()) {
                let handle = name.trim_start_matches('@').to_string();
                if !resolved.contains_key(&handle) {
                    let found = crate::actors::id_by_handle(conn, &handle)?;
                    resolved.insert(handle.clone(), found);
                }
                let found = &resolved[&handle];
                h.field(format!("{handle}\0{found:?}").as_bytes());
            }
        }
        let links = linking
            .iter()
            .any(|&i| !matches!(row.get_ref(i), Ok(ValueRef::Null)));
        out.insert(row.get(id_at)?, (h.finish(), links));
    }
    Ok(out)
}

/// What others did with each post, as its page shows it (`conversation::view`).
///
/// One SHA-256 state per post, fed row by row: remote replies and quotes carry `content_html`
/// and `raw` sized by remote servers, so the rows are never gathered whole. Each state is fed
/// exactly the bytes a [`Hash`] of the same rows would gather, so the keys are the same.
fn interaction_hashes(conn: &Connection) -> rusqlite::Result<HashMap<i64, [u8; 32]>> {
    let mut by_post: HashMap<i64, Sha256> = HashMap::new();
    // One row's bytes at a time, reused.
    let mut bytes = Vec::new();
    let mut add = |sql: &str, keys: usize| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare(sql)?;
        let n = stmt.column_count();
        let tag = sql.as_bytes().get(..8).unwrap_or_default();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            bytes.clear();
            // As `Hash::field` of the query's first bytes, then `Hash::row`.
            bytes.extend_from_slice(&(tag.len() as u64).to_le_bytes());
            bytes.extend_from_slice(tag);
            crate::db::digest::row_bytes(&mut bytes, row, keys, n)?;
            for k in 0..keys {
                if let Some(post) = row.get::<_, Option<i64>>(k)? {
                    by_post.entry(post).or_default().update(&bytes);
                }
            }
        }
        Ok(())
    };
    add("SELECT post_id, * FROM reactions", 1)?;
    add("SELECT post_id, * FROM reply_settings_post", 1)?;
    // Replies in the post's thread and quotes of it, with what the page shows of their authors.
    add(
        "SELECT n.thread_post_id, n.quote_post_id, n.*, a.name, a.handle, a.url
         FROM remote_notes n LEFT JOIN remote_actors a ON a.id = n.actor_id
         WHERE n.thread_post_id IS NOT NULL OR n.quote_post_id IS NOT NULL",
        2,
    )?;
    Ok(by_post.into_iter().map(|(k, h)| (k, h.finish())).collect())
}

/// The key of every document in `plan`, given the site's fingerprint of files (`fingerprint`).
pub fn keys(conn: &Connection, plan: &Plan, per_page: u32, files: &str) -> rusqlite::Result<Keys> {
    // One snapshot for every read below.
    let tx = conn.unchecked_transaction()?;
    let conn = &*tx;
    let generations: (i64, i64) = conn.query_row(
        "SELECT (SELECT n FROM page_generation WHERE id = 1),
                (SELECT n FROM posts_generation WHERE id = 1)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let any = key_of(&[
        files.as_bytes(),
        &generations.0.to_le_bytes(),
        &generations.1.to_le_bytes(),
    ]);
    let statik = key_of(&[files.as_bytes()]);

    let watched = crate::db::digest::page_tables(conn)?;
    let (relations, site): (Vec<String>, Vec<String>) = watched
        .into_iter()
        .filter(|t| !PER_POST.contains(&t.as_str()))
        .partition(|t| RELATIONS.contains(&t.as_str()));
    let tables = |names: &[String]| -> rusqlite::Result<[u8; 32]> {
        let mut h = Sha256::new();
        crate::db::digest::tables(conn, names, &mut h)?;
        Ok(h.finish())
    };
    let site = key_of(&[files.as_bytes(), &tables(&site)?]);
    let profile = key_of(&[&site, &tables(&relations)?]);

    let posts = post_hashes(conn)?;
    let interactions = interaction_hashes(conn)?;
    let none = [0u8; 32];
    let post_of = |id: i64| posts.get(&id).map_or(none, |p| p.0);
    let interactions_of = |id: i64| interactions.get(&id).copied().unwrap_or(none);
    let mut linked: Vec<i64> = posts
        .iter()
        .filter(|(_, p)| p.1)
        .map(|(id, _)| *id)
        .collect();
    linked.sort_unstable();
    let mut h = Hash::default();
    for id in linked {
        h.field(&id.to_le_bytes());
        h.field(&post_of(id));
        h.field(&interactions_of(id));
    }
    let linked = h.finish();

    // Listings in order, read once each (ids only), for the pages that ask.
    let mut listings: HashMap<Option<String>, Vec<i64>> = HashMap::new();
    let mut outbox: Option<Vec<OutboxSlot>> = None;
    let mut out = Keys::with_capacity(plan.docs.len());
    for doc in &plan.docs {
        let class = match &doc.dep {
            Dep::Any => any,
            Dep::Static => statik,
            Dep::Profile => profile,
            Dep::Post(id) => key_of(&[&site, &post_of(*id), &interactions_of(*id), &linked]),
            Dep::Gone(id) => key_of(&[files.as_bytes(), &post_of(*id)]),
            Dep::Listing { tag, page } => {
                let ids = listing_ids(conn, &mut listings, tag)?;
                let mut h = Hash::default();
                h.field(&site);
                h.field(tag.as_deref().unwrap_or_default().as_bytes());
                h.field(&page.to_le_bytes());
                h.field(&crate::activitypub::last_page(ids.len() as u64, per_page).to_le_bytes());
                for id in slice(ids, *page, per_page) {
                    h.field(&id.to_le_bytes());
                    h.field(&post_of(*id));
                }
                h.finish()
            }
            Dep::Sitemap => {
                let ids = listing_ids(conn, &mut listings, &None)?;
                let mut h = Hash::default();
                h.field(files.as_bytes());
                for id in ids {
                    h.field(&id.to_le_bytes());
                    h.field(&post_of(*id));
                }
                for tag in crate::web::sitemap::public_tags(conn)? {
                    h.field(tag.as_bytes());
                }
                h.finish()
            }
            Dep::Nodeinfo => {
                let count = posts::count(conn, Listing::Outbox)?;
                key_of(&[files.as_bytes(), &count.to_le_bytes()])
            }
            Dep::Outbox(page) => {
                if outbox.is_none() {
                    outbox = Some(outbox_order(conn, u64::MAX)?);
                }
                let items = outbox.as_deref().unwrap_or_default();
                let mut h = Hash::default();
                h.field(&site);
                h.field(&page.to_le_bytes());
                h.field(&(items.len() as u64).to_le_bytes());
                for item in slice(items, *page, crate::web::COLLECTION_PAGE_SIZE) {
                    match item {
                        OutboxSlot::Post(id) => {
                            h.field(&id.to_le_bytes());
                            h.field(&post_of(*id));
                        }
                        OutboxSlot::Boost(b) => h.field(b.to_string().as_bytes()),
                    }
                }
                h.finish()
            }
        };
        out.push(key_for(doc, &class));
    }
    tx.finish()?;
    Ok(out)
}

/// A listing's post ids in order (the public one for `None`), read once per export.
fn listing_ids<'a>(
    conn: &Connection,
    listings: &'a mut HashMap<Option<String>, Vec<i64>>,
    tag: &Option<String>,
) -> rusqlite::Result<&'a [i64]> {
    if !listings.contains_key(tag) {
        let listing = tag.as_deref().map_or(Listing::Public, Listing::Tag);
        let ids = posts::list_keys(conn, listing, 0, u32::MAX)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        listings.insert(tag.clone(), ids);
    }
    Ok(listings.get(tag).map_or(&[], Vec::as_slice))
}

/// Page `page` (from 1) of `items`, `per_page` each.
fn slice<T>(items: &[T], page: u32, per_page: u32) -> &[T] {
    let per = per_page.max(1) as usize;
    let start = (page.max(1) as usize - 1)
        .saturating_mul(per)
        .min(items.len());
    &items[start..(start + per).min(items.len())]
}

/// The class key, tied to the request the document answers.
fn key_for(doc: &Doc, class: &[u8; 32]) -> Key {
    let k = key_of(&[
        doc.url.as_bytes(),
        doc.accept.header().as_bytes(),
        &doc.status.to_le_bytes(),
        class,
    ]);
    // 128 bits are plenty to tell two states of one file apart, and keep the manifest small.
    crate::db::digest::short(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_slice_like_offsets() {
        let items: Vec<u32> = (1..=45).collect();
        assert_eq!(slice(&items, 1, 20), &items[..20]);
        assert_eq!(slice(&items, 3, 20), &items[40..]);
        assert!(slice(&items, 4, 20).is_empty());
    }

    /// The keys before the streaming states: every row gathered per post, then hashed.
    fn gathered(conn: &Connection) -> HashMap<i64, [u8; 32]> {
        let mut by_post: HashMap<i64, Hash> = HashMap::new();
        let queries = [
            ("SELECT post_id, * FROM reactions", 1),
            ("SELECT post_id, * FROM reply_settings_post", 1),
            (
                "SELECT n.thread_post_id, n.quote_post_id, n.*, a.name, a.handle, a.url
         FROM remote_notes n LEFT JOIN remote_actors a ON a.id = n.actor_id
         WHERE n.thread_post_id IS NOT NULL OR n.quote_post_id IS NOT NULL",
                2,
            ),
        ];
        for (sql, keys) in queries {
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                for k in 0..keys {
                    if let Some(post) = row.get::<_, Option<i64>>(k).unwrap() {
                        let h = by_post.entry(post).or_default();
                        h.field(sql.as_bytes().get(..8).unwrap_or_default());
                        h.row(row, keys, n).unwrap();
                    }
                }
            }
        }
        by_post.into_iter().map(|(k, h)| (k, h.finish())).collect()
    }

    /// Streaming the rows into one state per post gives the keys gathering them did, so the
    /// manifests of earlier exports stay valid; a change of any row changes its post's key.
    #[test]
    fn interaction_keys_stream_to_what_gathering_gave() {
        let conn = crate::db::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let big = "長い返信 ".repeat(20_000);
        let note = |id: &str, thread: Option<i64>, quote: Option<i64>, html: &str| {
            conn.execute(
                "INSERT INTO remote_notes (id, actor_id, host, object_type, thread_post_id,
                     quote_post_id, visibility, content_html, published, raw, received_at)
                 VALUES (?1, 'https://b.example/u/مريم', 'b.example', 'Note', ?2, ?3,
                     'public', ?4, '2026-01-01', ?4, '2026-01-01')",
                rusqlite::params![id, thread, quote, html],
            )
            .unwrap();
        };
        note("https://b.example/n/1", Some(1), None, &big);
        note(
            "https://b.example/n/2",
            Some(1),
            Some(2),
            "<p>引用 👍🏽 é</p>",
        );
        note("https://b.example/n/3", None, Some(3), "<p>مرحبا</p>");
        for (kind, actor, post) in [("like", "a", 1), ("boost", "a", 1), ("like", "ß", 2)] {
            conn.execute(
                "INSERT INTO reactions (kind, actor_id, post_id, activity_id, raw, created_at)
                 VALUES (?1, ?2, ?3, ?2 || ?1, '{\"type\":\"Like\"}', '2026-01-02')",
                rusqlite::params![kind, actor, post],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO reply_settings_post (post_id, replies_off) VALUES (2, 1)",
            [],
        )
        .unwrap();
        let streamed = interaction_hashes(&conn).unwrap();
        assert_eq!(streamed, gathered(&conn));
        assert_eq!(streamed.len(), 3);
        conn.execute(
            "UPDATE remote_notes SET content_html = '<p>編集</p>' WHERE id LIKE '%/2'",
            [],
        )
        .unwrap();
        let after = interaction_hashes(&conn).unwrap();
        assert_eq!(after, gathered(&conn));
        assert_ne!(after[&1], streamed[&1]);
        assert_ne!(after[&2], streamed[&2]);
        assert_eq!(after[&3], streamed[&3]);
    }
}
