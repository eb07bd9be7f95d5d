//! Render once, serve bytes (issue 15): public pages and documents are kept as rendered bytes,
//! with gzip and brotli copies and a strong `ETag` per coding, until something they show
//! changes. A copy is made the first time a client asks for that coding, not with the page: a
//! miss then costs the render and at most one compression, none for a client that asks for
//! none, and a page nobody asks compressed holds no copy.
//!
//! What "changes" means is migration 18's `page_generation`: triggers move it in the same
//! transaction as any write to a table a cached page reads, whichever process writes (`hortus
//! publish` runs beside `hortus serve`). Checking it costs `PRAGMA data_version` on a connection
//! kept for that (a read of SQLite's shared memory: has any other connection committed?), and
//! the one-row read only when something was committed. An entry is served only at the
//! generation it was rendered at, so a publish, an edit, a delete, a reply shown or hidden, a
//! like, a follower or a block is never served stale, and the delivery queue's writes (which
//! no page shows) do not empty the cache.
//!
//! Entries are keyed by path and representation (HTML, ActivityPub JSON, Atom): negotiation
//! picks the representation before the lookup, so one URL never answers with the other's
//! bytes. Nothing that depends on who asks is stored: the signed-fetch gate runs before the
//! lookup, and errors, redirects and refusals are never kept.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use rusqlite::{Connection, OpenFlags};

mod encoding;

use encoding::Coding;

/// Bodies smaller than this are not worth a compressed copy (headers cost more than the saving).
const COMPRESS_FROM: usize = 860;
/// Bodies from this size are compressed on the blocking pool, not on the worker thread that
/// serves other requests meanwhile (gzip at its best and brotli take milliseconds for a large
/// page; a post's few kilobytes take less than the hand-off's wake-ups).
const COMPRESS_ASIDE_FROM: usize = 16 * 1024;

/// The form one URL answers in; part of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr {
    Html,
    ActivityJson,
    Atom,
}

type Key = (Repr, String);

/// Bytes kept are bounded by `[site] page_cache_mb` (4 MiB by default: the pages a site is read
/// by — home pages, recent posts, the actor — many times over), bodies and compressed copies
/// together.
pub struct PageCache {
    /// The connection `page_generation` is read on; `None` (tests in memory, a database that
    /// cannot be opened) turns the cache off rather than risk a stale page.
    conn: Option<Mutex<Connection>>,
    inner: Mutex<Inner>,
    limit: usize,
    /// `Cache-Control` for JSON: `private` when fetches are signed, so a shared cache never
    /// hands a gated document to a client that did not sign.
    json_control: HeaderValue,
}

#[derive(Default)]
struct Inner {
    /// SQLite's `data_version` at the last check, and the generation read then.
    data_version: i64,
    generation: i64,
    entries: HashMap<Key, Arc<Entry>>,
    /// Insertion order, for eviction past the byte limit.
    order: VecDeque<Key>,
    bytes: usize,
}

struct Entry {
    headers: HeaderMap,
    body: Bytes,
    /// Large enough for compressed copies ([`COMPRESS_FROM`]).
    compressible: bool,
    /// Made when first asked for; `None` inside when the copy was no smaller than the body.
    gzip: OnceLock<Option<Bytes>>,
    br: OnceLock<Option<Bytes>>,
    /// Strong validators differ per coding: the bytes differ (RFC 9110 §8.8.3).
    etag: HeaderValue,
    etag_gzip: HeaderValue,
    etag_br: HeaderValue,
}

impl Entry {
    /// What the entry holds, for the byte limit.
    fn size(&self) -> usize {
        let copy =
            |c: &OnceLock<Option<Bytes>>| c.get().and_then(Option::as_ref).map_or(0, Bytes::len);
        self.body.len() + copy(&self.gzip) + copy(&self.br)
    }

    fn copy(&self, coding: Coding) -> Option<&OnceLock<Option<Bytes>>> {
        match coding {
            Coding::Gzip => Some(&self.gzip),
            Coding::Brotli => Some(&self.br),
            Coding::Identity => None,
        }
    }
}

impl PageCache {
    /// A cache reading the generation of the database at `db_path` (read-only connection).
    pub fn open(db_path: &Path, limit: usize, signed_fetch: bool) -> PageCache {
        let conn = Connection::open_with_flags(
            db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(c)
        });
        let conn = match conn {
            Ok(c) => Some(Mutex::new(c)),
            Err(e) => {
                tracing::warn!(error = %e, "page cache off: cannot open the database to watch it");
                None
            }
        };
        PageCache {
            conn,
            inner: Mutex::new(Inner {
                data_version: -1,
                generation: -1,
                ..Inner::default()
            }),
            limit,
            json_control: HeaderValue::from_static(if signed_fetch {
                "private, no-cache"
            } else {
                "public, no-cache"
            }),
        }
    }

    /// No caching at all (in-memory test sites).
    pub fn off() -> PageCache {
        PageCache {
            conn: None,
            inner: Mutex::new(Inner::default()),
            limit: 0,
            json_control: HeaderValue::from_static("no-cache"),
        }
    }

    /// The current generation, emptying the cache when it moved; `None` when the cache is off
    /// or the database cannot be read (then nothing is served from or kept in the cache).
    fn generation(&self) -> Option<i64> {
        let conn = self.conn.as_ref()?.lock().ok()?;
        let version: i64 = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .ok()?;
        let mut inner = self.inner.lock().ok()?;
        if version == inner.data_version {
            return Some(inner.generation);
        }
        let generation = generation_of(&conn).ok()?;
        if generation != inner.generation {
            inner.entries.clear();
            inner.order.clear();
            inner.bytes = 0;
            inner.generation = generation;
        }
        inner.data_version = version;
        Some(generation)
    }

    fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.inner.lock().ok()?.entries.get(key).cloned()
    }

    fn put(&self, key: Key, generation: i64, entry: Arc<Entry>) {
        let size = entry.size();
        if size > self.limit / 4 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        // Rendered from a snapshot at least as new as `generation`; if the cache has moved on
        // since, this entry may already be stale: drop it.
        if inner.generation != generation {
            return;
        }
        if let Some(old) = inner.entries.insert(key.clone(), entry) {
            inner.bytes -= old.size();
        } else {
            inner.order.push_back(key);
        }
        inner.bytes += size;
        self.evict(&mut inner);
    }

    /// Drops the oldest entries until the bytes held are within the limit.
    fn evict(&self, inner: &mut Inner) {
        while inner.bytes > self.limit {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.entries.remove(&oldest) {
                inner.bytes -= old.size();
            }
        }
    }

    /// Makes `entry`'s copy in `coding` if it has none yet. The copy is counted in the bytes
    /// held when `entry` is still the one kept under `key`; it is set under the same lock that
    /// eviction subtracts sizes under, so the count stays exact.
    async fn compress(&self, key: &Key, entry: &Arc<Entry>, coding: Coding) {
        let Some(cell) = entry.copy(coding) else {
            return;
        };
        if cell.get().is_some() || !entry.compressible {
            return;
        }
        let body = entry.body.clone();
        let encode = move || {
            let copy = match coding {
                Coding::Gzip => encoding::gzip(&body),
                Coding::Brotli => encoding::brotli(&body),
                Coding::Identity => None,
            };
            copy.filter(|c| c.len() < body.len())
        };
        let copy = if entry.body.len() >= COMPRESS_ASIDE_FROM {
            actix_web::web::block(encode).await.ok().flatten()
        } else {
            encode()
        };
        let added = copy.as_ref().map_or(0, Bytes::len);
        let Ok(mut inner) = self.inner.lock() else {
            let _ = cell.set(copy);
            return;
        };
        let kept = inner
            .entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(e, entry));
        // Another request may have made the same copy meanwhile: only the first is counted.
        if cell.set(copy).is_ok() && kept {
            inner.bytes += added;
            self.evict(&mut inner);
        }
    }

    /// `entry`'s answer to `req`, making the copy in the coding it prefers first.
    async fn answer(&self, req: &HttpRequest, key: &Key, entry: &Arc<Entry>) -> HttpResponse {
        let c = entry.compressible;
        let coding = encoding::preferred(req, c, c);
        if !entry.not_modified(req) {
            self.compress(key, entry, coding).await;
        }
        entry.answer(req, coding)
    }

    /// Bytes held (bodies and compressed copies), for tests and the memory report.
    pub fn held_bytes(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.bytes)
    }

    /// Answers `req` from the cache, or renders with `render` and keeps a 200 answer.
    pub async fn serve<F, E>(
        &self,
        req: &HttpRequest,
        repr: Repr,
        render: F,
    ) -> Result<HttpResponse, E>
    where
        F: Future<Output = Result<HttpResponse, E>>,
    {
        let Some(generation) = self.generation() else {
            return render.await;
        };
        let key = (repr, req.path().to_string());
        if let Some(entry) = self.get(&key) {
            return Ok(self.answer(req, &key, &entry).await);
        }
        let response = render.await?;
        if response.status() != StatusCode::OK {
            return Ok(response);
        }
        let (head, body) = response.into_parts();
        // Handlers answer with whole bodies; a streamed one is passed on, not kept.
        let body = match body.try_into_bytes() {
            Ok(bytes) => bytes,
            Err(body) => return Ok(head.set_body(body)),
        };
        let mut headers = head.headers().clone();
        headers.remove(header::CONTENT_LENGTH);
        let control = match repr {
            Repr::ActivityJson => self.json_control.clone(),
            Repr::Html | Repr::Atom => HeaderValue::from_static("public, no-cache"),
        };
        headers.insert(header::CACHE_CONTROL, control);
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Encoding"),
        );
        let entry = Arc::new(Entry::new(headers, body));
        self.put(key.clone(), generation, entry.clone());
        Ok(self.answer(req, &key, &entry).await)
    }
}

impl Entry {
    fn new(headers: HeaderMap, body: Bytes) -> Entry {
        let digest = crate::db::digest::short_sha256(&body);
        let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let etag = |suffix: &str| {
            HeaderValue::from_str(&format!("\"{tag}{suffix}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"x\""))
        };
        Entry {
            etag: etag(""),
            etag_gzip: etag("-gz"),
            etag_br: etag("-br"),
            compressible: body.len() >= COMPRESS_FROM,
            headers,
            body,
            gzip: OnceLock::new(),
            br: OnceLock::new(),
        }
    }

    /// Does `req` hold a validator of this entry, in any coding?
    fn not_modified(&self, req: &HttpRequest) -> bool {
        if_none_match(req, &[&self.etag, &self.etag_gzip, &self.etag_br])
    }

    /// The answer in `coding`: its copy, made before a 200 (identity when the copy came out no
    /// smaller). A 304 names the validator a 200 would carry, made or not.
    fn answer(&self, req: &HttpRequest, coding: Coding) -> HttpResponse {
        let not_modified = self.not_modified(req);
        let copy = |cell: &OnceLock<Option<Bytes>>| match cell.get() {
            Some(Some(bytes)) => Some(bytes.clone()),
            Some(None) => None,
            None if not_modified && self.compressible => Some(Bytes::new()),
            None => None,
        };
        let (body, etag, name) = match coding {
            Coding::Brotli => copy(&self.br).map(|b| (b, &self.etag_br, Some("br"))),
            Coding::Gzip => copy(&self.gzip).map(|b| (b, &self.etag_gzip, Some("gzip"))),
            Coding::Identity => None,
        }
        .unwrap_or_else(|| (self.body.clone(), &self.etag, None));
        let mut response = if not_modified {
            HttpResponse::with_body(StatusCode::NOT_MODIFIED, BoxBody::new(()))
        } else {
            HttpResponse::with_body(StatusCode::OK, BoxBody::new(body))
        };
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        headers.insert(header::ETAG, etag.clone());
        if let Some(name) = name.filter(|_| !not_modified) {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        } else if !not_modified && req.headers().contains_key(header::ACCEPT_ENCODING) {
            // Decided here: the compression middleware would otherwise encode the body under
            // the identity body's strong ETag (it leaves an answer with an encoding alone).
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        response
    }
}

/// Migration 18's number: moves with every write to a table a page or document reads (the
/// export's fingerprint takes it too).
pub fn generation_of(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT n FROM page_generation WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

/// Moves the generation by hand, for what every page shows but lives outside the database: the
/// profile in hortus.toml, changed by an app (`api::profile`). Every process's cache renders
/// afresh on its next request.
pub fn invalidate_all(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute("UPDATE page_generation SET n = n + 1 WHERE id = 1", [])?;
    Ok(())
}

/// Does `If-None-Match` name one of `tags` (or `*`)? Weak comparison, as RFC 9110 §13.1.2 asks.
fn if_none_match(req: &HttpRequest, tags: &[&HeaderValue]) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || tags.iter().any(|tag| tag.as_bytes() == t.as_bytes()))
}

#[cfg(test)]
mod tests;
