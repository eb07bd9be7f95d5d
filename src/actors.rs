//! The cache of remote actors (`remote_actors`): what was fetched, keyed by actor id and by key
//! id. Parsing network JSON into an actor stays in `activitypub::fetch`; storing, reading and
//! forgetting rows is here, the only module that writes this table (`tests/layers.rs`).

use rusqlite::{Connection, OptionalExtension, params};

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

/// Drops an actor from the cache (it deleted itself). Returns the rows removed.
pub fn forget(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM remote_actors WHERE id = ?1", [id])
}
