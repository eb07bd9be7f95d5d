//! FEP-8fcf, followers collection synchronisation: the `Collection-Synchronization` header and
//! the partial followers collection it points to.
//!
//! A delivery addressed to the owner's followers tells the receiving server which of its accounts
//! Hortus counts as followers: `collectionId` (the followers collection), `url` (the partial
//! collection listing only that server's followers, served only to a signer on that server) and
//! `digest`, the XOR of the SHA-256 of each follower id, hex encoded. "That server" is the
//! origin (scheme, host, port) of the inbox, and a follower is on it when its id starts with
//! that origin and a `/`, as Mastodon (the FEP's first implementation) matches it.

use std::collections::HashMap;

use serde_json::{Value, json};
use url::Url;

use super::AS_CONTEXT;
use crate::graph::followers;
use crate::urls::Urls;

/// A header longer than this is refused unread: three URLs and 64 hex digits fit many times.
pub const MAX_HEADER_LEN: usize = 4096;

/// `scheme://host[:port]` of `url`, the unit the FEP's partial collections are cut by.
pub fn origin_of(url: &Url) -> Option<String> {
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Whether `actor_id` lives on `origin` (as [`origin_of`] gives it).
pub fn is_on(actor_id: &str, origin: &str) -> bool {
    actor_id
        .strip_prefix(origin)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The FEP's digest: SHA-256 of each id, XORed together, as 64 lower-case hex digits. The XOR
/// makes it independent of order; no ids give 64 zeros.
pub fn digest<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut acc = [0u8; 32];
    for id in ids {
        let h = openssl::sha::sha256(id.as_bytes());
        for (a, b) in acc.iter_mut().zip(h) {
            *a ^= b;
        }
    }
    acc.iter().map(|b| format!("{b:02x}")).collect()
}

/// The header value for a delivery to a server whose followers (ids) are `ids`.
pub fn header<'a>(urls: &Urls, ids: impl IntoIterator<Item = &'a str>) -> String {
    format!(
        "collectionId=\"{}\", url=\"{}\", digest=\"{}\"",
        urls.followers(),
        urls.followers_synchronization(),
        digest(ids)
    )
}

/// The partial followers collection answered to one server.
pub fn partial_collection(urls: &Urls, ids: &[String]) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": urls.followers_synchronization(),
        "type": "OrderedCollection",
        "totalItems": ids.len(),
        "orderedItems": ids,
    })
}

/// Whether an activity is addressed to the owner's followers collection (`to`, `cc`, `bto`,
/// `bcc`): only those deliveries carry the header (Mastodon sends it the same way).
pub fn addressed_to_followers(activity: &Value, followers: &str) -> bool {
    ["to", "cc", "bto", "bcc"]
        .iter()
        .any(|k| match &activity[*k] {
            Value::String(s) => s == followers,
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some(followers)),
            _ => false,
        })
}

/// Each origin's header, kept by the delivery workers between claims while the followers stay
/// as they were ([`followers::generation`]): a fan-out claims a batch many times, and reading
/// and hashing every accepted follower at each claim cost more than the claim itself (with 9,000
/// followers, a tenth of the fan-out's CPU).
#[derive(Default)]
pub struct HeaderCache {
    generation: Option<i64>,
    /// Accepted followers by origin (the part of the id before its third `/`).
    on: HashMap<String, Vec<String>>,
    headers: HashMap<String, String>,
}

impl HeaderCache {
    /// The header for deliveries to `origin`, with the followers read at `generation`.
    fn header(
        &mut self,
        conn: &rusqlite::Connection,
        urls: &Urls,
        generation: i64,
        origin: &str,
    ) -> rusqlite::Result<String> {
        if self.generation != Some(generation) {
            self.on.clear();
            self.headers.clear();
            for id in followers::accepted_ids(conn)? {
                // `is_on(id, origin)` holds exactly when the id up to its third `/` is the
                // origin (an origin has no `/` after `scheme://`).
                let cut = id.match_indices('/').nth(2).map_or(id.len(), |(i, _)| i);
                self.on.entry(id[..cut].to_string()).or_default().push(id);
            }
            self.generation = Some(generation);
        }
        if let Some(h) = self.headers.get(origin) {
            return Ok(h.clone());
        }
        let ids = self.on.get(origin).map(Vec::as_slice).unwrap_or_default();
        let h = header(urls, ids.iter().map(String::as_str));
        self.headers.insert(origin.to_string(), h.clone());
        Ok(h)
    }
}

/// The headers of a batch of deliveries `(body, inbox)`, in order: `None` for an activity not
/// addressed to the owner's followers. The delivery workers call it once per claimed batch, in
/// the claim's transaction, so the hot path holds no SQL: each distinct activity is parsed once,
/// and the accepted followers are read only when they changed since `cache` read them.
pub fn delivery_headers(
    conn: &rusqlite::Connection,
    urls: &Urls,
    batch: &[(&str, &str)],
    cache: &mut HeaderCache,
) -> rusqlite::Result<Vec<Option<String>>> {
    let followers_url = urls.followers();
    let mut addressed: HashMap<&str, bool> = HashMap::new();
    for (body, _) in batch {
        addressed.entry(body).or_insert_with(|| {
            serde_json::from_str::<Value>(body)
                .is_ok_and(|a| addressed_to_followers(&a, &followers_url))
        });
    }
    // The origin of each delivery that carries the header.
    let origins: Vec<Option<String>> = batch
        .iter()
        .map(|(body, inbox)| {
            if !addressed.get(body).copied().unwrap_or(false) {
                return None;
            }
            Url::parse(inbox).ok().as_ref().and_then(origin_of)
        })
        .collect();
    if origins.iter().all(Option::is_none) {
        return Ok(vec![None; batch.len()]);
    }
    let generation = followers::generation(conn)?;
    origins
        .iter()
        .map(|o| match o {
            Some(o) => cache.header(conn, urls, generation, o).map(Some),
            None => Ok(None),
        })
        .collect()
}

/// A `Collection-Synchronization` header a peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncHeader {
    pub collection_id: String,
    pub url: String,
    pub digest: String,
}

/// Parses `collectionId="…", url="…", digest="…"` strictly: every key once, quoted values
/// without quotes or backslashes inside, both URLs http(s), the digest 64 hex digits.
pub fn parse_header(value: &str) -> Result<SyncHeader, &'static str> {
    if value.len() > MAX_HEADER_LEN {
        return Err("Collection-Synchronization header too long");
    }
    let (mut collection_id, mut url, mut digest) = (None, None, None);
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or("a parameter without '='")?;
        let after = after
            .strip_prefix('"')
            .ok_or("a parameter value not quoted")?;
        let (val, after) = after
            .split_once('"')
            .ok_or("an unterminated quoted value")?;
        if val.contains('\\') {
            return Err("an escaped quoted value");
        }
        let slot = match key.trim() {
            "collectionId" => &mut collection_id,
            "url" => &mut url,
            "digest" => &mut digest,
            _ => return Err("an unknown parameter"),
        };
        if slot.replace(val.to_string()).is_some() {
            return Err("a parameter given twice");
        }
        let after = after.trim_start();
        rest = match after.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if after.is_empty() => after,
            None => return Err("parameters not separated by ','"),
        };
    }
    let (Some(collection_id), Some(url), Some(digest)) = (collection_id, url, digest) else {
        return Err("collectionId, url or digest missing");
    };
    for u in [&collection_id, &url] {
        let parsed = Url::parse(u).map_err(|_| "collectionId or url is not a URL")?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("collectionId or url is not http(s)");
        }
    }
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("digest is not 64 hex digits");
    }
    Ok(SyncHeader {
        collection_id,
        url,
        digest: digest.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_order_free_and_zero_when_empty() {
        assert_eq!(digest([]), "0".repeat(64));
        let a = digest(["https://a.example/users/ä", "https://a.example/users/日本"]);
        let b = digest(["https://a.example/users/日本", "https://a.example/users/ä"]);
        assert_eq!(a, b);
        // x XOR x = 0: one id twice cancels out.
        assert_eq!(
            digest(["https://a.example/u/1", "https://a.example/u/1"]),
            "0".repeat(64)
        );
    }

    #[test]
    fn origin_matching_needs_a_slash() {
        let inbox = Url::parse("https://a.example:8443/inbox").unwrap();
        let origin = origin_of(&inbox).unwrap();
        assert_eq!(origin, "https://a.example:8443");
        assert!(is_on("https://a.example:8443/users/x", &origin));
        assert!(!is_on("https://a.example:84430/users/x", &origin));
        assert!(!is_on("https://a.example/users/x", &origin));
    }

    /// The batch form gives each delivery the header the per-origin query gives, reading the
    /// followers once: ports, a host that is a prefix of another, pending followers, and an
    /// activity not addressed to followers (no header).
    #[test]
    fn batch_headers_match_the_per_origin_query() {
        let conn = crate::db::open_in_memory().unwrap();
        let urls = Urls::new(&Url::parse("https://me.example").unwrap(), "me");
        for (id, state) in [
            ("https://a.example/users/ä", "accepted"),
            ("https://a.example/users/日本", "accepted"),
            ("https://a.example.org/users/x", "accepted"),
            ("https://a.example:8443/users/y", "accepted"),
            ("https://a.example/users/waiting", "pending"),
            ("https://b.example/users/z", "accepted"),
        ] {
            conn.execute(
                "INSERT INTO remote_actors (id, host, inbox, raw, fetched_at)
                 VALUES (?1, 'x', ?1 || '/inbox', '{}', '2026-01-01T00:00:00Z')",
                [id],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO followers (actor_id, follow_id, state, created_at)
                 VALUES (?1, ?1 || '#f', ?2, '2026-01-01T00:00:00Z')",
                [id, state],
            )
            .unwrap();
        }
        let to_followers = json!({"id": "https://me.example/p/1#c", "type": "Create",
                                  "cc": [urls.followers()]})
        .to_string();
        let direct = json!({"id": "https://me.example/p/2#c", "type": "Create",
                            "to": ["https://b.example/users/z"]})
        .to_string();
        let inboxes = [
            "https://a.example/inbox",
            "https://a.example:8443/inbox",
            "https://a.example.org/users/x/inbox",
            "https://c.example/inbox",
        ];
        let mut batch: Vec<(&str, &str)> = inboxes
            .iter()
            .map(|i| (to_followers.as_str(), *i))
            .collect();
        batch.push((direct.as_str(), "https://b.example/inbox"));
        let mut cache = HeaderCache::default();
        let check = |cache: &mut HeaderCache| {
            let got = delivery_headers(&conn, &urls, &batch, cache).unwrap();
            for (i, inbox) in inboxes.iter().enumerate() {
                let origin = origin_of(&Url::parse(inbox).unwrap()).unwrap();
                let ids = followers::accepted_on_origin(&conn, &origin).unwrap();
                let want = header(&urls, ids.iter().map(String::as_str));
                assert_eq!(got[i].as_deref(), Some(want.as_str()), "{inbox}");
            }
            assert_eq!(got[4], None);
            got
        };
        let first = check(&mut cache);
        assert!(first[0].as_ref().unwrap() != first[3].as_ref().unwrap());
        // The cache follows every change to the followers: one accepted on a.example, one of
        // its followers gone, one removed on c.example's neighbour — each claim after a change
        // gives the new digest, never the kept one.
        conn.execute(
            "UPDATE followers SET state = 'accepted' WHERE actor_id = 'https://a.example/users/waiting'",
            [],
        )
        .unwrap();
        let second = check(&mut cache);
        assert_ne!(first[0], second[0]);
        assert_eq!(first[1], second[1]);
        conn.execute(
            "DELETE FROM followers WHERE actor_id = 'https://a.example/users/日本'",
            [],
        )
        .unwrap();
        let third = check(&mut cache);
        assert_ne!(second[0], third[0]);
        assert_eq!(check(&mut cache), third);
    }

    #[test]
    fn header_round_trips_and_bad_ones_are_refused() {
        let d = "ab".repeat(32);
        let v = format!(
            "collectionId=\"https://p.example/u/b/followers\", url=\"https://p.example/u/b/fs\", digest=\"{d}\""
        );
        let h = parse_header(&v).unwrap();
        assert_eq!(h.collection_id, "https://p.example/u/b/followers");
        assert_eq!(h.url, "https://p.example/u/b/fs");
        assert_eq!(h.digest, d);
        for bad in [
            "",
            "collectionId=\"https://p.example/f\", url=\"https://p.example/s\"",
            &format!("collectionId=\"https://p.example/f\", url=\"javascript:x\", digest=\"{d}\""),
            &format!(
                "collectionId=\"https://p.example/f\", url=\"https://p.example/s\", digest=\"{d}0\""
            ),
            &format!("url=\"https://p.example/s\", url=\"https://p.example/s\", digest=\"{d}\""),
            &format!(
                "collectionId=https://p.example/f, url=\"https://p.example/s\", digest=\"{d}\""
            ),
            &"x".repeat(MAX_HEADER_LEN + 1),
        ] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
    }
}
