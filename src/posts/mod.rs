//! Posts: Markdown files under `content/` synced into the database. The files are the source of
//! truth; the database holds what was published, so ids, dates and tombstones survive edits.
//!
//! `source` turns files into drafts, `sync` writes drafts into the `posts` table (its only
//! writer, `tests/layers.rs` checks it), `store` reads posts back; `post` is the post itself.
//! This file only declares and re-exports: children never import from it what it defines.

mod error;
pub mod front_matter;
pub mod markdown;
mod post;
mod source;
pub mod store;
mod sync;
#[cfg(test)]
mod tests;

pub use error::{PostError, Problem};
pub use front_matter::Visibility;
pub use markdown::Mention;
pub use post::{Attachment, Post, QuoteConsent, ReplyApproval, hex_sha256, slugify};
pub use source::{
    Draft, Loaded, content_files, load_drafts, map_on_all_cores, parse_file, source_hash,
};
pub use store::{Listing, by_id, by_slug, count, list, list_ids, list_keys, list_lastmod};
pub use sync::{MASTODON_MAX_MEDIA, SyncReport, live_hashes, publish, sync};
