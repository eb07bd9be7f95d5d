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
//! - "a post": its row and how its mentions resolve (`remote_actors`): its `row_v` in
//!   migration 22's `post_versions`, which triggers move in the writer's transaction.
//! - "its interactions": the likes and boosts of it, the remote replies in its thread and the
//!   quotes of it (with their authors' names, handles and URLs), its reply setting: its
//!   `talk_v`, moved by triggers on those tables.
//! - "the linked posts": the versions of every post of the owner that answers or quotes
//!   another: such a post and the replies to it show on the page of what it answers.
//! - "the site tables": every other table migration 18's triggers watch (blocks, the federation
//!   policy, account moves, keys, quote consent, the owner's boosts…), whole. They are read from
//!   the triggers themselves, so a table added to those triggers is covered without a change here.
//!
//! The versions are random numbers, not hashes of the rows: an export reads one narrow row per
//! post (issue 15: reading and hashing every post's row and interaction was half of a one-edit
//! export's CPU). A trigger a migration forgets would keep a stale file:
//! `tests/export_incremental.rs` (`each_input_a_trigger_versions_renders_what_shows_it`) moves
//! each input and checks against a full export.
//!
//! A wrong key can only make a document render when it need not; a missing dependency would keep
//! a stale file, which `tests/export_incremental.rs` checks against a full export for each kind
//! of change.

use std::collections::HashMap;

use openssl::sha::Sha256;
use rusqlite::Connection;

use super::plan::{Dep, Doc, Plan};
use super::tree::Key;
use crate::posts::{self, Listing};
use crate::timeline::shown::{OutboxSlot, outbox_order};

/// Keyed per post by migration 22's versions (`versions` below), not read whole.
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

/// What the database keeps of one post for the keys (migration 22's `post_versions`).
#[derive(Clone, Copy)]
struct Version {
    /// Moves with the post's row and how its mentions resolve.
    row: i64,
    /// Moves with what others did with it (likes, boosts, replies, quotes, its reply setting).
    talk: i64,
    /// It answers or quotes another post.
    links: bool,
}

/// Every post's versions: one narrow row each, kept by triggers in the writer's transaction,
/// instead of reading and hashing every post's row and every interaction (issue 15: that was
/// half of a one-edit export's CPU).
fn versions(conn: &Connection) -> rusqlite::Result<HashMap<i64, Version>> {
    let mut stmt = conn.prepare("SELECT post_id, row_v, talk_v, links FROM post_versions")?;
    let mut rows = stmt.query([])?;
    let mut out = HashMap::new();
    while let Some(row) = rows.next()? {
        out.insert(
            row.get(0)?,
            Version {
                row: row.get(1)?,
                talk: row.get(2)?,
                links: row.get(3)?,
            },
        );
    }
    Ok(out)
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

    let versions = versions(conn)?;
    // A post without versions (none: the triggers add one with every post) keys as zeros, and
    // a deleted row's documents leave the plan anyway.
    let none = [0u8; 8];
    let post_of = |id: i64| versions.get(&id).map_or(none, |v| v.row.to_le_bytes());
    let interactions_of = |id: i64| versions.get(&id).map_or(none, |v| v.talk.to_le_bytes());
    let mut linked: Vec<i64> = versions
        .iter()
        .filter(|(_, v)| v.links)
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
        listings.insert(tag.clone(), posts::list_ids(conn, listing)?);
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
}
