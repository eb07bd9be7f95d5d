//! The manifest's bytes (`.hortus/manifest.bin`): what the last export wrote, read at the start
//! of every export and written at its end (`tree`).
//!
//! Binary, because on a 10,000-post site it has 21,000 rows and a one-edit export must stay far
//! below 0.2 s (issue 15): the JSON rows before it (2.8 MB, hashes as hex) took about a third of
//! such an export to parse and write again. This layout is about half the size and is read with
//! one allocation per path.
//!
//! ```text
//! "HORTUS-EXPORT-MANIFEST\n"  u32 version  u32 n  header (n bytes of JSON: base_url, site)
//! u32 rows, then each row:    u16 p  path (p bytes, UTF-8)  u16 r  rest (r bytes)
//! rest, version 3:            u64 len  hash[16]  u8 flags  key[16] if flags & 1
//!                             content type (the remaining bytes) if flags & 2
//! ```
//!
//! Integers are little-endian. A row says its own length, so a later version can add fields to
//! `rest` and this one still finds every path (they stay ours to remove, as with the JSON
//! layouts before). Every read is bounds-checked: a damaged manifest (a full disk, a copy cut
//! short) is never a panic and never a refusal: the paths of its complete rows stay ours, nothing
//! else in it is trusted, and the export renders everything again. A path that could leave the
//! output directory is dropped here, before anything could follow it.

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;

/// A file's bytes, as far as telling two versions apart goes: its length and the first 128 bits
/// of its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub hash: [u8; 16],
    pub len: u64,
}

impl Entry {
    pub fn of(bytes: &[u8]) -> Entry {
        Entry {
            hash: crate::db::digest::short_sha256(bytes),
            len: bytes.len() as u64,
        }
    }
}

/// A document's key (`deps`): 128 bits of a hash of what it is made of.
pub type Key = [u8; 16];

/// What the last export wrote at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Old {
    pub entry: Entry,
    /// What the document was rendered from; `None` for media, host files, and documents
    /// rendered when the keys could not be computed.
    pub key: Option<Key>,
    /// Its content type, when the file's name does not say it (`deps::guess_type`).
    pub content_type: Option<String>,
    /// The file is on disk now (`tree::mark_present`).
    pub present: bool,
}

impl Old {
    /// A path of an earlier layout or another site: nothing about it can be trusted.
    pub fn unknown() -> Old {
        Old {
            entry: Entry {
                hash: [0; 16],
                len: u64::MAX,
            },
            key: None,
            content_type: None,
            present: false,
        }
    }
}

const MAGIC: &[u8] = b"HORTUS-EXPORT-MANIFEST\n";
pub const VERSION: u32 = 3;
const HAS_KEY: u8 = 1;
const HAS_TYPE: u8 = 2;

#[derive(Serialize, Deserialize)]
struct Header {
    base_url: String,
    /// What the files were rendered from (`fingerprint`).
    site: Option<Fingerprint>,
}

/// A manifest as read.
#[derive(Debug)]
pub struct Read {
    pub version: u32,
    pub base_url: String,
    pub site: Option<Fingerprint>,
    /// Every file with what is known of it: for another version or a damaged manifest, only
    /// the path (`Old::unknown`).
    pub files: Vec<(String, Old)>,
    /// What was wrong with it, if anything: then nothing but the paths in `files` is trusted.
    pub damage: Option<String>,
    /// The rows dropped because their path could leave the output directory, with why.
    pub dropped: Vec<String>,
}

/// One row to write.
pub struct Row<'a> {
    pub path: &'a str,
    pub entry: Entry,
    pub key: Option<&'a Key>,
    pub content_type: Option<&'a str>,
}

/// The manifest's bytes. Fails only on a path or content type longer than 65,535 bytes, which
/// no file system and no handler produces.
pub fn encode<'a>(
    base_url: &str,
    site: Option<&Fingerprint>,
    rows: impl ExactSizeIterator<Item = Row<'a>>,
) -> Result<Vec<u8>, String> {
    let header = serde_json::to_vec(&HeaderRef { base_url, site }).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(64 + header.len() + rows.len() * 96);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&u32_len(header.len(), "the header")?.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&u32_len(rows.len(), "the row count")?.to_le_bytes());
    for row in rows {
        out.extend_from_slice(&u16_len(row.path.len(), row.path)?.to_le_bytes());
        out.extend_from_slice(row.path.as_bytes());
        let content_type = row.content_type.unwrap_or_default();
        let rest = 8 + 16 + 1 + row.key.map_or(0, |_| 16) + content_type.len();
        out.extend_from_slice(&u16_len(rest, row.path)?.to_le_bytes());
        out.extend_from_slice(&row.entry.len.to_le_bytes());
        out.extend_from_slice(&row.entry.hash);
        let flags = row.key.map_or(0, |_| HAS_KEY) | row.content_type.map_or(0, |_| HAS_TYPE);
        out.push(flags);
        if let Some(key) = row.key {
            out.extend_from_slice(key);
        }
        out.extend_from_slice(content_type.as_bytes());
    }
    Ok(out)
}

#[derive(Serialize)]
struct HeaderRef<'a> {
    base_url: &'a str,
    site: Option<&'a Fingerprint>,
}

fn u16_len(n: usize, what: &str) -> Result<u16, String> {
    u16::try_from(n).map_err(|_| format!("{what}: a row of {n} bytes"))
}

fn u32_len(n: usize, what: &str) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("{what}: {n} is too large"))
}

/// Whether `rel` is a path inside the output directory: no empty, `.` or `..` component, no
/// leading `/`, no backslash. The writer (`tree`) refuses any other, and a manifest's rows are held
/// to the same rule when read, so a crafted manifest never names a file to remove outside it.
pub fn is_safe_path(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Reads a manifest. Never fails: damage is reported in `damage`, with the paths of every row
/// read whole before it.
pub fn decode(bytes: &[u8]) -> Read {
    let mut read = Read {
        version: 0,
        base_url: String::new(),
        site: None,
        files: Vec::new(),
        damage: None,
        dropped: Vec::new(),
    };
    if let Err(e) = decode_into(bytes, &mut read) {
        read.damage = Some(e);
        for (_, old) in &mut read.files {
            *old = Old::unknown();
        }
        read.site = None;
    }
    read
}

fn decode_into(bytes: &[u8], read: &mut Read) -> Result<(), String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a Hortus export manifest".into());
    }
    let version = r.u32()?;
    let header_len = r.u32()? as usize;
    let header = r.take(header_len)?;
    if version == VERSION {
        let header: Header = serde_json::from_slice(header).map_err(|e| format!("header: {e}"))?;
        read.base_url = header.base_url;
        read.site = header.site;
    }
    // A later version's header may differ: its rows are still ours, its fields not read.
    read.version = version;
    let rows = r.u32()? as usize;
    // Each row is at least 4 bytes: a count beyond what the file holds is damage, not a
    // reason to reserve memory.
    read.files.reserve(rows.min(bytes.len() / 4));
    let mut bad_row = None;
    for at in 0..rows {
        let path_len = usize::from(r.u16()?);
        let path = std::str::from_utf8(r.take(path_len)?)
            .map_err(|_| format!("row {at}: the path is not UTF-8"))?
            .to_string();
        let rest_len = usize::from(r.u16()?);
        let rest = r.take(rest_len)?;
        if !is_safe_path(&path) {
            read.dropped.push(format!(
                "row {at}: {path:?} is not a path inside the output"
            ));
            continue;
        }
        let old = if version == VERSION {
            row_v3(rest).unwrap_or_else(|| {
                bad_row.get_or_insert_with(|| format!("{path}: a damaged row"));
                Old::unknown()
            })
        } else {
            Old::unknown()
        };
        read.files.push((path, old));
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes after the last row", bytes.len() - r.at));
    }
    bad_row.map_or(Ok(()), Err)
}

fn row_v3(rest: &[u8]) -> Option<Old> {
    let mut r = Reader { bytes: rest, at: 0 };
    let len = u64::from_le_bytes(r.take(8).ok()?.try_into().ok()?);
    let hash: [u8; 16] = r.take(16).ok()?.try_into().ok()?;
    let flags = *r.take(1).ok()?.first()?;
    let key = if flags & HAS_KEY != 0 {
        Some(r.take(16).ok()?.try_into().ok()?)
    } else {
        None
    };
    let tail = &rest[r.at..];
    let content_type = if flags & HAS_TYPE != 0 {
        // Served as a header by the configs the export writes: only what a header can hold.
        let text = std::str::from_utf8(tail).ok()?;
        actix_web::http::header::HeaderValue::from_str(text).ok()?;
        Some(text.to_string())
    } else if tail.is_empty() {
        None
    } else {
        return None;
    };
    Some(Old {
        entry: Entry { hash, len },
        key,
        content_type,
        present: false,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("cut short at byte {}", self.bytes.len()));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let key = [9u8; 16];
        let rows = vec![
            Row {
                path: "posts/木.html",
                entry: Entry::of("木の投稿".as_bytes()),
                key: Some(&key),
                content_type: None,
            },
            Row {
                path: "tags/عربي.html",
                entry: Entry::of("وسم".as_bytes()),
                key: Some(&key),
                content_type: Some("text/html; charset=utf-8; x=é"),
            },
            Row {
                path: "media/😀.png",
                entry: Entry::of(b"png"),
                key: None,
                content_type: None,
            },
        ];
        let site = Fingerprint {
            files: "ab".into(),
            page_generation: 3,
            posts_generation: -4,
        };
        encode("https://例え.example", Some(&site), rows.into_iter()).unwrap()
    }

    #[test]
    fn rows_round_trip() {
        let read = decode(&sample());
        assert_eq!(read.damage, None);
        assert_eq!(read.version, VERSION);
        assert_eq!(read.base_url, "https://例え.example");
        assert_eq!(read.site.unwrap().posts_generation, -4);
        let paths: Vec<&str> = read.files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["posts/木.html", "tags/عربي.html", "media/😀.png"]);
        let (_, first) = &read.files[0];
        assert_eq!(first.entry, Entry::of("木の投稿".as_bytes()));
        assert_eq!(first.key, Some([9; 16]));
        assert_eq!(first.content_type, None);
        let (_, second) = &read.files[1];
        assert_eq!(
            second.content_type.as_deref(),
            Some("text/html; charset=utf-8; x=é")
        );
        assert_eq!(read.files[2].1.key, None);
        assert_eq!(read.files[2].1.entry, Entry::of(b"png"));
    }

    /// Every truncation and every flipped length is damage or a different reading, never a
    /// panic or a huge allocation; a truncated manifest still names its complete rows, and
    /// trusts none of them.
    #[test]
    fn damage_is_reported_not_a_panic() {
        let bytes = sample();
        let whole = decode(&bytes);
        for cut in 0..bytes.len() {
            let read = decode(&bytes[..cut]);
            assert!(read.damage.is_some(), "cut at {cut}");
            assert!(read.site.is_none());
            for (i, (path, old)) in read.files.iter().enumerate() {
                assert_eq!(path, &whole.files[i].0);
                assert_eq!(old, &Old::unknown());
            }
        }
        // Cut in the third row: the first two are still named.
        let read = decode(&bytes[..bytes.len() - 3]);
        let paths: Vec<&str> = read.files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["posts/木.html", "tags/عربي.html"]);
        assert!(read.damage.unwrap().contains("cut short"));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).damage.is_some());
        for at in 0..bytes.len() {
            for v in [0x00, 0xff, 0x7f] {
                let mut b = bytes.clone();
                b[at] = v;
                let _ = decode(&b);
            }
        }
    }

    /// A row whose path could leave the output is dropped, whatever else the manifest says.
    #[test]
    fn unsafe_paths_are_dropped_when_read() {
        let entry = Entry::of(b"x");
        let bad = [
            "../victim",
            "/tmp/abs",
            "a/../../b",
            "a//b",
            "./a",
            "a\\..\\b",
            "",
        ];
        let mut paths = vec!["posts/良い.html"];
        paths.extend(bad);
        let rows = paths.iter().map(|p| Row {
            path: p,
            entry,
            key: None,
            content_type: None,
        });
        let read = decode(&encode("https://a.example", None, rows).unwrap());
        assert_eq!(read.damage, None);
        let kept: Vec<&str> = read.files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(kept, ["posts/良い.html"]);
        assert_eq!(read.dropped.len(), bad.len());
        assert!(read.dropped[0].contains("../victim"), "{:?}", read.dropped);
    }

    /// A content type no header can hold (a line break) makes the row, and so the manifest,
    /// untrusted.
    #[test]
    fn a_content_type_that_is_no_header_is_damage() {
        let key = [1u8; 16];
        let row = |content_type| Row {
            path: "a.json",
            entry: Entry::of(b"{}"),
            key: Some(&key),
            content_type: Some(content_type),
        };
        let good =
            decode(&encode("https://a.example", None, [row("text/x; q=é")].into_iter()).unwrap());
        assert_eq!(good.damage, None);
        let bad = encode(
            "https://a.example",
            None,
            [row("text/x\r\nSet-Cookie: a")].into_iter(),
        );
        let read = decode(&bad.unwrap());
        assert!(read.damage.is_some());
        assert_eq!(read.files[0].1, Old::unknown());
    }

    /// A later version's rows may carry more fields: their paths are still read.
    #[test]
    fn a_later_version_still_names_its_paths() {
        let mut bytes = sample();
        let at = MAGIC.len();
        bytes[at..at + 4].copy_from_slice(&(VERSION + 1).to_le_bytes());
        let read = decode(&bytes);
        assert_eq!(read.damage, None);
        assert_eq!(read.files.len(), 3);
        assert!(read.files.iter().all(|(_, o)| o.key.is_none()));
        assert_eq!(read.files[1].0, "tags/عربي.html");
    }
}
