//! The cache of remote actors (`remote_actors`): what was fetched, keyed by actor id and by key
//! id. Parsing network JSON into an actor stays in `activitypub::fetch`; storing, reading and
//! forgetting rows is here, the only module that writes this table (`tests/layers.rs`).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use url::Url;

/// A remote actor as cached in `remote_actors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteActor {
    pub id: String,
    pub host: String,
    pub inbox: String,
    pub shared_inbox: Option<String>,
    pub handle: Option<String>,
    pub name: Option<String>,
    pub url: Option<String>,
    pub public_key_id: Option<String>,
    pub public_key_pem: Option<String>,
}

impl RemoteActor {
    /// Where deliveries for this actor go: the shared inbox when it has one.
    pub fn delivery_inbox(&self) -> &str {
        self.shared_inbox.as_deref().unwrap_or(&self.inbox)
    }
}

/// Why an actor was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the key {key} already belongs to {owner}; a key id cannot change owner")]
    KeyTaken { key: String, owner: String },
    #[error("the key {key} is not on the server of {actor}")]
    KeyElsewhere { key: String, actor: String },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

/// Stores (or refreshes) an actor. Its key id must be on its own origin and belong to no other
/// actor: the inbox finds signers by key id (`cached_by_key`), so a key id that changed owner
/// would let one server sign as another (issue 9). The unique index of migration 08 says the
/// same to any other writer.
pub fn store_actor(conn: &Connection, actor: &RemoteActor, raw: &Value) -> Result<(), StoreError> {
    if let Some(key) = &actor.public_key_id {
        let on_origin = match (Url::parse(key), Url::parse(&actor.id)) {
            (Ok(k), Ok(a)) => k.origin() == a.origin(),
            _ => false,
        };
        if !on_origin {
            return Err(StoreError::KeyElsewhere {
                key: key.clone(),
                actor: actor.id.clone(),
            });
        }
        let owner: Option<String> = conn
            .prepare_cached("SELECT id FROM remote_actors WHERE public_key_id = ?1 AND id <> ?2")?
            .query_row(params![key, actor.id], |r| r.get(0))
            .optional()?;
        if let Some(owner) = owner {
            return Err(StoreError::KeyTaken {
                key: key.clone(),
                owner,
            });
        }
    }
    conn.execute(
        "INSERT INTO remote_actors (id, host, inbox, shared_inbox, handle, name, url, public_key_id,
             public_key_pem, raw, fetched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (id) DO UPDATE SET host = ?2, inbox = ?3, shared_inbox = ?4, handle = ?5,
             name = ?6, url = ?7, public_key_id = ?8, public_key_pem = ?9, raw = ?10, fetched_at = ?11",
        params![
            actor.id,
            actor.host,
            actor.inbox,
            actor.shared_inbox,
            actor.handle,
            actor.name,
            actor.url,
            actor.public_key_id,
            actor.public_key_pem,
            raw.to_string(),
            crate::times::now(),
        ],
    )?;
    Ok(())
}

const ACTOR_COLUMNS: &str =
    "id, host, inbox, shared_inbox, handle, name, url, public_key_id, public_key_pem";

fn row_to_actor(r: &rusqlite::Row) -> rusqlite::Result<RemoteActor> {
    Ok(RemoteActor {
        id: r.get(0)?,
        host: r.get(1)?,
        inbox: r.get(2)?,
        shared_inbox: r.get(3)?,
        handle: r.get(4)?,
        name: r.get(5)?,
        url: r.get(6)?,
        public_key_id: r.get(7)?,
        public_key_pem: r.get(8)?,
    })
}

pub fn cached_actor(conn: &Connection, id: &str) -> rusqlite::Result<Option<RemoteActor>> {
    conn.query_row(
        &format!("SELECT {ACTOR_COLUMNS} FROM remote_actors WHERE id = ?1"),
        [id],
        row_to_actor,
    )
    .optional()
}

pub fn cached_by_key(conn: &Connection, key_id: &str) -> rusqlite::Result<Option<RemoteActor>> {
    conn.query_row(
        &format!("SELECT {ACTOR_COLUMNS} FROM remote_actors WHERE public_key_id = ?1"),
        [key_id],
        row_to_actor,
    )
    .optional()
}

/// The cached actor a mention's `user@host` names (any case; the newest fetch if several
/// claim it): its id, and whether it is a Group (FEP-1b12: a post to a group addresses it).
pub fn id_by_handle(conn: &Connection, handle: &str) -> rusqlite::Result<Option<(String, bool)>> {
    conn.prepare_cached(
        "SELECT id, CASE WHEN json_valid(raw)
                    THEN COALESCE(json_extract(raw, '$.type') = 'Group', 0) ELSE 0 END
         FROM remote_actors WHERE lower(handle) = lower(?1) ORDER BY fetched_at DESC LIMIT 1",
    )?
    .query_row([handle], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// The inbox (shared inbox preferred) of a mentioned actor: by its id when the mention has
/// one, else by the newest cached actor with that handle. Never by a profile URL: any server
/// can claim any `url` (issue 9).
pub fn inbox_for(
    conn: &Connection,
    actor_id: Option<&str>,
    handle: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT COALESCE(NULLIF(shared_inbox, ''), inbox) FROM remote_actors
         WHERE id = COALESCE(?1, (SELECT id FROM remote_actors
                                  WHERE handle IS NOT NULL AND lower(handle) = lower(?2)
                                  ORDER BY fetched_at DESC LIMIT 1))",
    )?
    .query_row(params![actor_id, handle], |r| r.get(0))
    .optional()
}

/// The handle and profile URL of a cached actor; `None` if it is not cached.
pub fn handle_and_url(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<(Option<String>, Option<String>)>> {
    conn.query_row(
        "SELECT handle, url FROM remote_actors WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// The actor's own inbox, never its server's shared one: what is meant for that actor alone
/// (a reply waiting for its approval) must not reach others on its server through the shared
/// inbox, which delivers to everyone there the addressing names.
pub fn personal_inbox(conn: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT inbox FROM remote_actors WHERE id = ?1 AND inbox != ''",
        [id],
        |r| r.get(0),
    )
    .optional()
}

/// A cached actor with the document it was read from (the client API shows its profile).
pub fn with_document(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<(RemoteActor, String)>> {
    conn.query_row(
        &format!("SELECT {ACTOR_COLUMNS}, raw FROM remote_actors WHERE id = ?1"),
        [id],
        |r| Ok((row_to_actor(r)?, r.get(9)?)),
    )
    .optional()
}

/// Drops an actor from the cache (it deleted itself). Returns the rows removed.
pub fn forget(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM remote_actors WHERE id = ?1", [id])
}

/// The `followers` collection a cached actor document names, if it names one as a string.
pub fn followers_collection(conn: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT json_extract(raw, '$.followers') FROM remote_actors WHERE id = ?1 AND json_valid(raw)",
        [id],
        |r| r.get::<_, Option<rusqlite::types::Value>>(0),
    )
    .optional()
    .map(|v| match v.flatten() {
        Some(rusqlite::types::Value::Text(s)) => Some(s),
        _ => None,
    })
}
