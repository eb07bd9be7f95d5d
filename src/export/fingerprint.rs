//! What an export's output depends on, as one hash kept in the manifest: when nothing it covers
//! changed, the files on disk are already this export's, and `export` stops after reading the
//! manifest instead of rendering 20,000 documents to find they are equal (issue 15).
//!
//! Covered: migration 16's `page_generation` (every table a page or document reads, the keys
//! included, moves it in the writer's transaction), hortus.toml, the running binary (templates
//! and `static/` are built into it), the site's `media/` (names, sizes, modification times) and
//! the options that shape the web-server configurations.

use std::path::Path;

use rusqlite::Connection;

use crate::config::CONFIG_FILE;

/// The hash, hex (`options`: the export's options, as text); `None` when an input cannot be read (then the export renders everything).
pub fn of_site(conn: &Connection, site_dir: &Path, options: &str) -> Option<String> {
    let mut h = openssl::sha::Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefixed, so two fields never run into each other.
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&crate::web::cache::generation_of(conn).ok()?.to_le_bytes());
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
    Some(h.finish().iter().map(|b| format!("{b:02x}")).collect())
}

fn mtime_nanos(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}
