//! Whom the owner follows (`following`): one row per remote actor, with the id of the owner's
//! Follow and its state (`pending` until the Accept or Reject arrives).

use rusqlite::{Connection, OptionalExtension, params};

/// An account the owner follows, as `hortus following` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    pub actor_id: String,
    pub state: String,
    /// `user@host`, when the actor is in the cache.
    pub handle: Option<String>,
    pub created_at: String,
}

/// An Accept or Reject of the owner's Follow; a NULL Follow id (an answer naming no Follow)
/// answers the one Follow we have for that actor. Shared with the query-plan test.
pub(crate) const SET_STATE: &str =
    "UPDATE following SET state = ?3 WHERE actor_id = ?1 AND (follow_id = ?2 OR ?2 IS NULL)";

/// Records the owner's Follow of `actor_id` as pending (a repeated one replaces the Follow id).
pub fn upsert_pending(
    conn: &Connection,
    actor_id: &str,
    follow_id: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO following (actor_id, follow_id, state, created_at) VALUES (?1, ?2, 'pending', ?3)
                 ON CONFLICT (actor_id) DO UPDATE SET follow_id = ?2, state = 'pending'",
        params![actor_id, follow_id, now],
    )
}

/// The id of the owner's Follow of `actor_id`, if the owner follows it.
pub fn follow_id(conn: &Connection, actor_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT follow_id FROM following WHERE actor_id = ?1",
        [actor_id],
        |r| r.get(0),
    )
    .optional()
}

/// Forgets the owner's follow of `actor_id`. Returns the rows removed.
pub fn remove(conn: &Connection, actor_id: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM following WHERE actor_id = ?1", [actor_id])
}

/// Every account the owner follows, oldest first.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Followed>> {
    let mut stmt = conn.prepare(
        "SELECT f.actor_id, f.state, a.handle, f.created_at FROM following f LEFT JOIN remote_actors a ON a.id = f.actor_id ORDER BY f.created_at",
    )?;
    stmt.query_map([], |r| {
        Ok(Followed {
            actor_id: r.get(0)?,
            state: r.get(1)?,
            handle: r.get(2)?,
            created_at: r.get(3)?,
        })
    })?
    .collect()
}

/// Sets the state of the owner's Follow of `actor_id` (see [`SET_STATE`]). Returns the rows
/// changed: 0 for an answer to no Follow of ours.
pub fn set_state(
    conn: &Connection,
    actor_id: &str,
    follow_id: Option<&str>,
    state: &str,
) -> rusqlite::Result<usize> {
    conn.execute(SET_STATE, params![actor_id, follow_id, state])
}

/// Whether the owner follows `actor_id` or asked to (a rejected Follow does not count).
pub fn is_following(conn: &Connection, actor_id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM following WHERE actor_id = ?1 AND state != 'rejected'",
        [actor_id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The accounts the owner follows (accepted), as a subquery: the home timeline shows only their
/// posts and boosts, so an unfollow empties it of them at once, as Mastodon's home feed does.
pub const ACCEPTED_IDS: &str = "SELECT actor_id FROM following WHERE state = 'accepted'";

/// Shared with the query-plan test: every Create and Announce asks it.
pub(crate) const IS_ACCEPTED: &str =
    "SELECT COUNT(*) FROM following WHERE actor_id = ?1 AND state = 'accepted'";

/// Whether `actor_id` accepted the owner's Follow: what lets its posts into the timeline.
pub fn is_accepted(conn: &Connection, actor_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(IS_ACCEPTED)?
        .query_row([actor_id], |r| r.get::<_, i64>(0))
        .map(|n| n > 0)
}

/// The state of the owner's Follow of `actor_id` (`pending`, `accepted`, `rejected`), if any.
pub fn state_of(conn: &Connection, actor_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT state FROM following WHERE actor_id = ?1",
        [actor_id],
        |r| r.get(0),
    )
    .optional()
}
