//! Fetching remote actors and keys: signed GETs (instance actor key), Mastodon's Accept header,
//! the federation guard on every URL, a size cap, and a cache in `remote_actors`.

use serde_json::Value;
use url::Url;

use super::public_keys::{self, PublishedKey};
use super::signature_forms;
use crate::config::FederationConfig;
use crate::context::Context;
use crate::db::Db;
use crate::federation::{self, Decision, PolicyHandle};
use crate::keys::KeyPair;

/// What Mastodon sends; peers answer it with JSON.
pub const ACCEPT: &str = "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";
/// An actor or key document is a few KiB; 1 MiB is generous and bounded.
pub const MAX_DOCUMENT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("not a valid URL: {0}")]
    BadUrl(String),
    #[error(transparent)]
    Refused(#[from] federation::RefusedFetch),
    #[error("request to {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is not an ActivityPub document: {reason}")]
    Invalid { url: String, reason: String },
    #[error("signing the request failed: {0}")]
    Sign(#[from] crate::httpsig::SignError),
    #[error("database error: {0}")]
    Db(String),
}

impl From<rusqlite::Error> for FetchError {
    fn from(e: rusqlite::Error) -> Self {
        FetchError::Db(e.to_string())
    }
}

impl From<crate::db::DbError> for FetchError {
    fn from(e: crate::db::DbError) -> Self {
        FetchError::Db(e.to_string())
    }
}

// The cache (its struct and its rows) lives in crate::actors; these paths stay for callers.
pub use crate::actors::{RemoteActor, StoreError, cached_actor, cached_by_key, store_actor};

/// `host[:port]` of a URL, the form the policy and the tables use.
pub fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub use super::incoming::id_of;

/// Threads puts `url` in an array of Links, one of them `threads://`: take the text/html one.
fn profile_url(v: &Value) -> Option<String> {
    match v.get("url")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some((s.as_str(), None)),
                other => str_field(other, "href").map(|h| (h, str_field(other, "mediaType"))),
            })
            .find(|(h, mt)| h.starts_with("http") && mt.is_none_or(|m| m == "text/html"))
            .map(|(h, _)| h.to_string()),
        other => str_field(other, "href").map(str::to_string),
    }
}

/// Parses an actor document fetched from (or signed for) `fetched_from`. The id's origin must be
/// the URL's origin: a server may only speak for its own actors. Its key is the first one it
/// publishes that it may own (see [`parse_actor_keyed`]).
pub fn parse_actor(doc: &Value, fetched_from: &Url) -> Result<RemoteActor, String> {
    parse_actor_keyed(doc, fetched_from, None)
}

/// [`parse_actor`], keeping the key whose id is `key_id` when given. A key is kept only when its
/// id is on the actor's origin and its `owner` (if it says one) is the actor: a server cannot
/// claim a key id on another server, nor an actor someone else's key (issue 9).
pub fn parse_actor_keyed(
    doc: &Value,
    fetched_from: &Url,
    key_id: Option<&str>,
) -> Result<RemoteActor, String> {
    let id = str_field(doc, "id").ok_or("no id")?;
    let id_url = Url::parse(id).map_err(|_| "id is not a URL")?;
    if id_url.origin() != fetched_from.origin() {
        return Err(format!("id {id} is not on {}", host_of(fetched_from)));
    }
    let kind = str_field(doc, "type").ok_or("no type")?;
    if !matches!(
        kind,
        "Person" | "Service" | "Application" | "Group" | "Organization"
    ) {
        return Err(format!("type {kind} is not an actor"));
    }
    let inbox = str_field(doc, "inbox").ok_or("no inbox")?;
    let same_origin = |u: &str| Url::parse(u).is_ok_and(|u| u.origin() == id_url.origin());
    if !same_origin(inbox) {
        return Err("inbox is on another server".into());
    }
    let shared_inbox = doc
        .get("endpoints")
        .and_then(|e| str_field(e, "sharedInbox"))
        .filter(|s| same_origin(s))
        .map(str::to_string);
    let own = |k: &PublishedKey| same_origin(&k.id) && k.owner.as_deref().is_none_or(|o| o == id);
    let mut keys = public_keys::published_keys(doc).into_iter();
    let key = match key_id {
        Some(want) => keys.find(|k| k.id == want),
        // The first one (an actor whose first key is not its own is refused below).
        None => keys.next(),
    };
    if let Some(k) = &key
        && !own(k)
    {
        return Err(format!(
            "its key {} is not its own (another server or another owner)",
            k.id.chars().take(200).collect::<String>()
        ));
    }
    let username = str_field(doc, "preferredUsername");
    Ok(RemoteActor {
        id: id.to_string(),
        host: host_of(&id_url),
        inbox: inbox.to_string(),
        shared_inbox,
        handle: username.map(|u| format!("{u}@{}", host_of(&id_url))),
        name: str_field(doc, "name").map(|n| n.chars().take(200).collect()),
        // Shown as the profile link only; never an identity (mentions and replies resolve by
        // actor id), since any server may put any URL here.
        url: profile_url(doc),
        public_key_id: key.as_ref().map(|k| k.id.clone()),
        public_key_pem: key.map(|k| k.pem),
    })
}

impl From<StoreError> for FetchError {
    fn from(e: StoreError) -> Self {
        let key = match &e {
            StoreError::Db(db) => return FetchError::Db(db.to_string()),
            StoreError::KeyTaken { key, .. } | StoreError::KeyElsewhere { key, .. } => key,
        };
        FetchError::Invalid {
            url: key.chars().take(200).collect(),
            reason: e.to_string(),
        }
    }
}

/// What fetching a remote document needs, and nothing else: taken from the [`Context`] by
/// [`Remote::of`].
pub struct Remote<'a> {
    /// The guarded client (`federation::http_client`).
    pub http: &'a crate::context::LazyClient,
    /// Every URL is checked against it before the request (and the client after redirects).
    pub policy: &'a PolicyHandle,
    pub limits: &'a FederationConfig,
    /// GETs are signed as the instance actor (`urls.instance_actor_key()`).
    pub key_id: String,
    pub key: &'a KeyPair,
    /// The remote-actor cache.
    pub db: &'a Db,
}

impl<'a> Remote<'a> {
    pub fn of(ctx: &'a Context) -> Remote<'a> {
        Remote {
            http: &ctx.http,
            policy: &ctx.policy,
            limits: &ctx.config.federation,
            key_id: ctx.urls.instance_actor_key(),
            key: &ctx.instance_key,
            db: &ctx.db,
        }
    }
}

/// A signed GET of an ActivityPub document. Every URL is checked against the policy and the
/// private-address guard first; the request is signed with the instance actor's key, in the
/// form its server accepts (`signature_forms`: draft-cavage, or RFC 9421 after a 401).
pub async fn get_document(remote: &Remote<'_>, url: &str) -> Result<(Url, Value), FetchError> {
    let parsed =
        Url::parse(url).map_err(|_| FetchError::BadUrl(url.chars().take(200).collect()))?;
    federation::check_url(&parsed, remote.limits, &remote.policy.current())?;
    let http_err = |e: &dyn std::fmt::Display| FetchError::Http {
        url: parsed.to_string(),
        reason: e.to_string(),
    };
    // Signed in the form the server accepts, as deliveries are (`signature_forms`).
    let signer = signature_forms::Signer {
        http: remote.http.get().map_err(|e| http_err(&e))?,
        db: remote.db,
        key_id: &remote.key_id,
        key: &remote.key.private,
    };
    let resp = signature_forms::get(&signer, &host_of(&parsed), &parsed, ACCEPT)
        .await
        .map_err(|e| match e {
            signature_forms::GetError::Sign(e) => FetchError::Sign(e),
            signature_forms::GetError::Db(e) => FetchError::from(e),
            signature_forms::GetError::Http(e) => http_err(&e),
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: parsed.to_string(),
            status: status.as_u16(),
        });
    }
    let final_url = resp.url().clone();
    let body = federation::read_capped(resp, MAX_DOCUMENT)
        .await
        .map_err(|e| http_err(&e))?;
    let doc: Value = serde_json::from_slice(&body).map_err(|e| FetchError::Invalid {
        url: parsed.to_string(),
        reason: format!("not JSON ({e})"),
    })?;
    Ok((final_url, doc))
}

/// The actor, from the cache unless `refresh` (or absent), fetched and stored otherwise.
pub async fn actor(
    remote: &Remote<'_>,
    id: &str,
    refresh: bool,
) -> Result<RemoteActor, FetchError> {
    if !refresh {
        let lookup = id.to_string();
        let cached = remote
            .db
            .read(move |c| cached_actor(c, &lookup).map_err(FetchError::from))
            .await?;
        if let Some(actor) = cached {
            return Ok(actor);
        }
    }
    fetch_actor(remote, id, None).await
}

/// The full actor `id`, fetched with a signed GET (GoToSocial answers actors only to those),
/// keeping the key `key_id` when given; stored.
async fn fetch_actor(
    remote: &Remote<'_>,
    id: &str,
    key_id: Option<&str>,
) -> Result<RemoteActor, FetchError> {
    let (from, doc) = get_document(remote, id).await?;
    let actor = parse_actor_keyed(&doc, &from, key_id).map_err(|reason| FetchError::Invalid {
        url: id.to_string(),
        reason,
    })?;
    if actor.id != id {
        return Err(FetchError::Invalid {
            url: id.to_string(),
            reason: format!("it names itself {}", actor.id),
        });
    }
    let stored = actor.clone();
    remote
        .db
        .call(move |c| store_actor(c, &stored, &doc).map_err(FetchError::from))
        .await?;
    Ok(actor)
}

/// The actor that owns `key_id`, with its key. The key URL may answer (PROTOCOL.md §3) the
/// full actor (`actor#main-key`: Mastodon, Threads, snac), a bare key document `{id, owner,
/// publicKeyPem}`, or GoToSocial's stub Person (`id` = the actor, `publicKey` = the key, no
/// `inbox`); the key may sit in `publicKey` (object or array) or be an FEP-521a Multikey. Only
/// the full actor is stored, and it must list the key: the owner named by a key document must
/// be on the key's origin, and a server cannot claim someone else's key.
pub async fn key_owner(
    remote: &Remote<'_>,
    key_id: &str,
    refresh: bool,
) -> Result<RemoteActor, FetchError> {
    if !refresh {
        let lookup = key_id.to_string();
        let cached = remote
            .db
            .read(move |c| cached_by_key(c, &lookup).map_err(FetchError::from))
            .await?;
        if let Some(actor) = cached.filter(|a| a.public_key_pem.is_some()) {
            return Ok(actor);
        }
    }
    let fetched = fetch_key_owner(remote, key_id).await;
    crate::metrics::key_fetch(if fetched.is_ok() { "ok" } else { "error" });
    fetched
}

/// [`key_owner`] over the network: the key's document, then its owner when it is not the actor.
async fn fetch_key_owner(remote: &Remote<'_>, key_id: &str) -> Result<RemoteActor, FetchError> {
    let invalid = |reason: String| FetchError::Invalid {
        url: key_id.chars().take(200).collect(),
        reason,
    };
    let key_url =
        Url::parse(key_id).map_err(|_| FetchError::BadUrl(key_id.chars().take(200).collect()))?;
    let mut doc_url = key_url.clone();
    doc_url.set_fragment(None);
    let (from, doc) = get_document(remote, doc_url.as_str()).await?;
    if from.origin() != key_url.origin() {
        return Err(invalid("the key URL answered from another server".into()));
    }
    let actor = if doc.get("inbox").is_some() {
        // The full actor itself.
        let actor = parse_actor_keyed(&doc, &from, Some(key_id)).map_err(invalid)?;
        let stored = actor.clone();
        remote
            .db
            .call(move |c| store_actor(c, &stored, &doc).map_err(FetchError::from))
            .await?;
        actor
    } else {
        // A key document or a stub: it names the owner, whose full actor is the authority.
        let key = public_keys::find_key(&doc, key_id).ok_or_else(|| {
            invalid("it publishes no key with this id (not an actor, key document or stub)".into())
        })?;
        let owner = match key.owner {
            Some(owner) => owner,
            // A stub Person without `owner` in its key: the stub's id is the actor.
            None => str_field(&doc, "id")
                .filter(|id| *id != key_id)
                .map(str::to_string)
                .ok_or_else(|| invalid("the key names no owner".into()))?,
        };
        let owner_url = Url::parse(&owner)
            .map_err(|_| FetchError::BadUrl(owner.chars().take(200).collect()))?;
        if owner_url.origin() != key_url.origin() {
            return Err(invalid("the key's owner is on another server".into()));
        }
        fetch_actor(remote, &owner, Some(key_id)).await?
    };
    if actor.public_key_id.as_deref() != Some(key_id) || actor.public_key_pem.is_none() {
        return Err(invalid(format!("{} does not list this key", actor.id)));
    }
    Ok(actor)
}

/// Resolves `user@host` (or `@user@host`, or `acct:`) over WebFinger to an actor id. Uses https
/// unless `allow_http` (then http, for loopback tests).
pub async fn webfinger(remote: &Remote<'_>, account: &str) -> Result<String, FetchError> {
    let acct = account
        .trim()
        .trim_start_matches("acct:")
        .trim_start_matches('@');
    let (user, host) = acct
        .rsplit_once('@')
        .filter(|(u, h)| !u.is_empty() && !h.is_empty() && !h.contains('/'))
        .ok_or_else(|| FetchError::BadUrl(format!("{account} is not user@host")))?;
    let scheme = if remote.limits.allow_http {
        "http"
    } else {
        "https"
    };
    let mut url = Url::parse(&format!("{scheme}://{host}/.well-known/webfinger"))
        .map_err(|_| FetchError::BadUrl(account.to_string()))?;
    url.query_pairs_mut()
        .append_pair("resource", &format!("acct:{user}@{host}"));
    if let Decision::Refused(reason) = remote.policy.decide_url(&url) {
        return Err(FetchError::Refused(federation::RefusedFetch::Policy {
            url: url.to_string(),
            reason,
        }));
    }
    federation::check_url(&url, remote.limits, &remote.policy.current())?;
    let http = remote.http.get().map_err(|e| FetchError::Http {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    let resp = http
        .get(url.clone())
        .header("Accept", "application/jrd+json, application/json")
        .send()
        .await
        .map_err(|e| FetchError::Http {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: resp.status().as_u16(),
        });
    }
    let body = federation::read_capped(resp, MAX_DOCUMENT)
        .await
        .map_err(|e| FetchError::Http {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let jrd: Value = serde_json::from_slice(&body).map_err(|e| FetchError::Invalid {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    webfinger_self(&jrd)
        .map(str::to_string)
        .ok_or_else(|| FetchError::Invalid {
            url: url.to_string(),
            reason: "no self link to an ActivityPub actor".into(),
        })
}

/// The actor id in a WebFinger answer: the `self` link typed as ActivityPub JSON.
pub fn webfinger_self(jrd: &Value) -> Option<&str> {
    jrd.get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|l| {
            str_field(l, "rel") == Some("self")
                && str_field(l, "type")
                    .is_some_and(|t| t.contains("activity+json") || t.contains("ld+json"))
        })
        .and_then(|l| str_field(l, "href"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;
    use serde_json::json;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_mastodon_and_threads_actors() {
        let doc = json!({
            "id": "https://threads.net/ap/users/17841/",
            "type": "Person",
            "preferredUsername": "zuck",
            "inbox": "https://threads.net/ap/users/17841/inbox/",
            "url": [{"type": "Link", "href": "threads://user?id=1"}, {"type": "Link", "href": "https://www.threads.net/@zuck", "mediaType": "text/html"}],
            "publicKey": {"id": "https://threads.net/ap/users/17841/#main-key", "publicKeyPem": "PEM"}
        });
        let a = parse_actor(&doc, &url("https://threads.net/ap/users/17841/")).unwrap();
        assert_eq!(a.url.as_deref(), Some("https://www.threads.net/@zuck"));
        assert_eq!(
            a.shared_inbox, None,
            "Threads has no shared inbox; optional"
        );
        assert_eq!(a.handle.as_deref(), Some("zuck@threads.net"));
        assert_eq!(
            a.delivery_inbox(),
            "https://threads.net/ap/users/17841/inbox/"
        );
    }

    #[test]
    fn refuses_actors_speaking_for_other_servers() {
        let doc = json!({"id": "https://evil.example/users/a", "type": "Person", "inbox": "https://evil.example/inbox"});
        assert!(parse_actor(&doc, &url("https://good.example/users/a")).is_err());
        let doc = json!({"id": "https://good.example/users/a", "type": "Person", "inbox": "https://evil.example/inbox"});
        assert!(parse_actor(&doc, &url("https://good.example/users/a")).is_err());
        let doc = json!({"id": "https://good.example/notes/1", "type": "Note", "inbox": "https://good.example/inbox"});
        assert!(parse_actor(&doc, &url("https://good.example/notes/1")).is_err());
    }

    #[test]
    fn cache_round_trips() {
        let conn = crate::db::open_in_memory().unwrap();
        let doc = json!({"id": "https://a.example/u/b", "type": "Person", "inbox": "https://a.example/u/b/inbox",
            "endpoints": {"sharedInbox": "https://a.example/inbox"},
            "publicKey": {"id": "https://a.example/u/b#main-key", "publicKeyPem": "PEM"}});
        let a = parse_actor(&doc, &url("https://a.example/u/b")).unwrap();
        store_actor(&conn, &a, &doc).unwrap();
        assert_eq!(
            cached_actor(&conn, "https://a.example/u/b").unwrap(),
            Some(a.clone())
        );
        assert_eq!(
            cached_by_key(&conn, "https://a.example/u/b#main-key").unwrap(),
            Some(a.clone())
        );
        assert_eq!(a.delivery_inbox(), "https://a.example/inbox");
    }

    #[test]
    fn a_key_id_belongs_to_one_actor_on_its_own_server() {
        let conn = crate::db::open_in_memory().unwrap();
        let actor = |id: &str, key: &str| {
            json!({"id": id, "type": "Person", "inbox": format!("{id}/inbox"),
                "publicKey": {"id": key, "owner": id, "publicKeyPem": "PEM"}})
        };
        let v = "https://v.example/users/ваня";
        let v_key = format!("{v}#main-key");
        let doc = actor(v, &v_key);
        store_actor(&conn, &parse_actor(&doc, &url(v)).unwrap(), &doc).unwrap();

        // Another server naming V's key id: not its own key.
        let e = "https://e.example/users/e";
        let err = parse_actor(&actor(e, &v_key), &url(e)).unwrap_err();
        assert!(err.contains("not its own"), "{err}");
        // Another actor on V's server, or a stored row written by hand: the key has an owner.
        let w = "https://v.example/users/w";
        let taken = parse_actor(&actor(w, &v_key), &url(w)).unwrap();
        assert!(matches!(
            store_actor(&conn, &taken, &Value::Null),
            Err(StoreError::KeyTaken { .. })
        ));
        let mut elsewhere = parse_actor(&actor(e, &format!("{e}#k")), &url(e)).unwrap();
        elsewhere.public_key_id = Some(v_key.clone());
        assert!(matches!(
            store_actor(&conn, &elsewhere, &Value::Null),
            Err(StoreError::KeyElsewhere { .. })
        ));
        // A key owned by somebody else in the document itself.
        let mut doc = actor(w, &format!("{w}#k"));
        doc["publicKey"]["owner"] = json!(v);
        assert!(parse_actor(&doc, &url(w)).is_err());
        assert_eq!(cached_by_key(&conn, &v_key).unwrap().unwrap().id, v);
    }

    #[test]
    fn migration_clears_shared_and_foreign_key_ids() {
        let conn = crate::db::open_in_memory().unwrap();
        // The index exists, and refuses a second owner whoever writes.
        let insert = |id: &str, host: &str, key: &str| {
            conn.execute(
                "INSERT INTO remote_actors (id, host, inbox, public_key_id, public_key_pem, raw, fetched_at)
                 VALUES (?1, ?2, ?1, ?3, 'PEM', '{}', '2026-01-01T00:00:00Z')",
                params![id, host, key],
            )
        };
        insert("https://a.example/u", "a.example", "https://a.example/u#k").unwrap();
        assert!(insert("https://b.example/u", "b.example", "https://a.example/u#k").is_err());
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM remote_actors WHERE public_key_id = 'x'",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("remote_actors_public_key_id"), "{plan}");
        // Before the index: duplicates and key ids on another host lose their key.
        conn.execute_batch("DROP INDEX remote_actors_public_key_id")
            .unwrap();
        insert("https://b.example/u", "b.example", "https://a.example/u#k").unwrap();
        insert(
            "https://c.example:8443/u",
            "c.example:8443",
            "https://c.example:8443/u#k",
        )
        .unwrap();
        insert("https://d.example/u", "d.example", "https://evil.example/k").unwrap();
        conn.execute_batch(include_str!("../../migrations/08-key-ids/up.sql"))
            .unwrap();
        let kept: Vec<String> = conn
            .prepare("SELECT id FROM remote_actors WHERE public_key_id IS NOT NULL ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kept, ["https://c.example:8443/u"]);
    }
}
