//! Hashes of what rows hold, for knowing whether something changed without keeping a copy of it
//! (the export's manifest keeps such hashes, `export::deps`). `db` owns the database as a whole,
//! so reading any table by a name known only at run time happens here.

use openssl::sha::Sha256;
use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// The first 128 bits of a SHA-256: plenty to tell two states of one thing apart (a file, a
/// document's inputs, a post's HTML), and half the bytes to keep.
pub fn short(full: [u8; 32]) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// [`short`] of the SHA-256 of `bytes`. The context API, not `openssl::sha::sha256`: OpenSSL
/// 3's one-shot `SHA256()` looks the algorithm up on every call (`EVP_Q_digest`), several times
/// the cost of hashing a small page (issue 15).
pub fn short_sha256(bytes: &[u8]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(bytes);
    short(h.finish())
}

/// Columns `from..to` of `row` as bytes to hash, appended to `out`: each with its type and
/// length, so two rows hash alike only when they hold the same values. Gathered, not hashed
/// here: a SHA-256 update per column was most of the export's keys (issue 15).
pub fn row_bytes(
    out: &mut Vec<u8>,
    row: &rusqlite::Row,
    from: usize,
    to: usize,
) -> rusqlite::Result<()> {
    for i in from..to {
        let (kind, bytes): (u8, &[u8]) = match row.get_ref(i)? {
            ValueRef::Null => (0, &[]),
            ValueRef::Integer(n) => {
                push(out, 1, &n.to_le_bytes());
                continue;
            }
            ValueRef::Real(x) => {
                push(out, 2, &x.to_le_bytes());
                continue;
            }
            ValueRef::Text(t) => (3, t),
            ValueRef::Blob(b) => (4, b),
        };
        push(out, kind, bytes);
    }
    Ok(())
}

fn push(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Every table public pages read: those migration 18's `page_generation_*` triggers watch.
pub fn page_tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT tbl_name FROM sqlite_master
         WHERE type = 'trigger' AND name LIKE 'page_generation\\_%' ESCAPE '\\' ORDER BY 1",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for name in names {
        let name = name?;
        // The names go into SQL: only plain identifiers (all of the schema's are).
        if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(name);
        }
    }
    Ok(out)
}

/// Adds the whole contents of `tables` to `h`, table by table.
pub fn tables(conn: &Connection, tables: &[String], h: &mut Sha256) -> rusqlite::Result<()> {
    for t in tables {
        if !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        h.update(&(t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\""))?;
        let n = stmt.column_count();
        let mut rows = stmt.query([])?;
        let mut bytes = Vec::new();
        while let Some(r) = rows.next()? {
            row_bytes(&mut bytes, r, 0, n)?;
            // Hashed in batches: one update per column was most of the time.
            if bytes.len() >= 1 << 16 {
                h.update(&bytes);
                bytes.clear();
            }
        }
        h.update(&bytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_row_changes_the_hash_and_page_tables_are_found() {
        let conn = crate::db::open_in_memory().unwrap();
        let watched = page_tables(&conn).unwrap();
        for t in ["posts", "reactions", "followers", "account_relations"] {
            assert!(watched.iter().any(|w| w == t), "{t} in {watched:?}");
        }
        let digest = |conn: &Connection| {
            let mut h = Sha256::new();
            tables(conn, &["reply_settings_site".to_string()], &mut h).unwrap();
            h.finish()
        };
        let before = digest(&conn);
        assert_eq!(before, digest(&conn));
        conn.execute("UPDATE reply_settings_site SET replies_off = 1", [])
            .unwrap();
        assert_ne!(before, digest(&conn));
    }
}
