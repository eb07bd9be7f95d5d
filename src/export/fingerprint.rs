//! What an export's output depends on, kept in the manifest (issue 15): when nothing changed, the
//! files on disk are already this export's, and `export` stops after reading the manifest instead
//! of rendering 20,000 documents to find they are equal. When something did, `deps` says which
//! documents it touches.
//!
//! Covered: migration 18's `page_generation` (every table a page or document reads, the keys
//! included, moves it in the writer's transaction) beside migration 07's `posts_generation`
//! (only posts and their tags move it: both move together for those, so their difference moves
//! exactly when something else did), hortus.toml, the running binary (templates and `static/`
//! are built into it), the site's `media/` (names, sizes, modification times) and the options.

use std::path::Path;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::config::CONFIG_FILE;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Everything but the database, hashed.
    pub files: String,
    pub page_generation: i64,
    pub posts_generation: i64,
}

/// `None` when an input cannot be read (then the export renders everything).
pub fn of_site(conn: &Connection, site_dir: &Path, options: &str) -> Option<Fingerprint> {
    let mut h = openssl::sha::Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefixed, so two fields never run into each other.
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&std::fs::read(site_dir.join(CONFIG_FILE)).ok()?);
    let exe = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(&exe.len().to_le_bytes());
    field(&mtime_nanos(&exe).to_le_bytes());
    let media = site_dir.join("media");
    for name in super::plan::media_files(&media).ok()? {
        let meta = std::fs::metadata(media.join(&name)).ok()?;
        field(name.as_bytes());
        field(&meta.len().to_le_bytes());
        field(&mtime_nanos(&meta).to_le_bytes());
    }
    field(options.as_bytes());
    let posts_generation = conn
        .query_row("SELECT n FROM posts_generation WHERE id = 1", [], |r| {
            r.get(0)
        })
        .ok()?;
    Some(Fingerprint {
        files: hex(&h.finish()),
        page_generation: crate::web::cache::generation_of(conn).ok()?,
        posts_generation,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mtime_nanos(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}
