//! Who follows the owner (`followers`): one row per remote actor, with the id of its Follow and
//! its state (`pending` until the owner approves, `accepted`, or `suspended` by the policy).

use rusqlite::{Connection, OptionalExtension, params};

/// A follower as `hortus followers` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follower {
    pub actor_id: String,
    pub state: String,
    pub created_at: String,
    /// `user@host`, when the actor is in the cache.
    pub handle: Option<String>,
}

/// A follower found to be answered: the Follow to answer and the inbox the answer goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerRef {
    pub actor_id: String,
    pub follow_id: String,
    pub state: String,
    pub inbox: String,
}

/// A follower's state, read before a Follow is answered (shared with the query-plan test).
pub(crate) const STATE_OF: &str = "SELECT state FROM followers WHERE actor_id = ?1";
/// Undo of a Follow named by id: only the Follow we stored for this follower.
pub(crate) const REMOVE_FOLLOW: &str =
    "DELETE FROM followers WHERE actor_id = ?1 AND follow_id = ?2";

/// Followers in the order they came, all or those in `state`.
pub fn list(conn: &Connection, state: Option<&str>) -> rusqlite::Result<Vec<Follower>> {
    let mut stmt = conn.prepare(
        "SELECT f.actor_id, f.state, f.created_at, a.handle FROM followers f
         LEFT JOIN remote_actors a ON a.id = f.actor_id
         WHERE ?1 IS NULL OR f.state = ?1 ORDER BY f.created_at",
    )?;
    stmt.query_map([state], |r| {
        Ok(Follower {
            actor_id: r.get(0)?,
            state: r.get(1)?,
            created_at: r.get(2)?,
            handle: r.get(3)?,
        })
    })?
    .collect()
}

/// Every follower with its profile URL (for notifications), in no particular order.
pub fn all_with_profiles(conn: &Connection) -> rusqlite::Result<Vec<(Follower, Option<String>)>> {
    let mut stmt = conn.prepare(
        "SELECT f.actor_id, f.state, f.created_at, a.handle, a.url FROM followers f
         LEFT JOIN remote_actors a ON a.id = f.actor_id",
    )?;
    stmt.query_map([], |r| {
        Ok((
            Follower {
                actor_id: r.get(0)?,
                state: r.get(1)?,
                created_at: r.get(2)?,
                handle: r.get(3)?,
            },
            r.get(4)?,
        ))
    })?
    .collect()
}

/// The follower whose actor id or `user@host` handle (any case) is `who`.
pub fn find(conn: &Connection, who: &str) -> rusqlite::Result<Option<FollowerRef>> {
    conn.query_row(
        "SELECT f.actor_id, f.follow_id, f.state, a.inbox FROM followers f JOIN remote_actors a ON a.id = f.actor_id
         WHERE f.actor_id = ?1 OR lower(a.handle) = lower(?1)",
        [who],
        |r| {
            Ok(FollowerRef {
                actor_id: r.get(0)?,
                follow_id: r.get(1)?,
                state: r.get(2)?,
                inbox: r.get(3)?,
            })
        },
    )
    .optional()
}

/// The state of `actor_id`'s follow, if it follows.
pub fn state_of(conn: &Connection, actor_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(STATE_OF, [actor_id], |r| r.get(0))
        .optional()
}

/// Records a Follow (a repeated one replaces the Follow id and the state, keeps `created_at`).
pub fn upsert(
    conn: &Connection,
    actor_id: &str,
    follow_id: &str,
    state: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO followers (actor_id, follow_id, state, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (actor_id) DO UPDATE SET follow_id = ?2, state = ?3",
        params![actor_id, follow_id, state, now],
    )
}

/// The owner approved a pending follower.
pub fn accept(conn: &Connection, actor_id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE followers SET state = 'accepted' WHERE actor_id = ?1",
        [actor_id],
    )
}

/// Removes `actor_id` from the followers, whatever its state. Returns the rows removed.
pub fn remove(conn: &Connection, actor_id: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM followers WHERE actor_id = ?1", [actor_id])
}

/// Removes `actor_id`'s follow if it was made by `follow_id` (a NULL id matches nothing).
pub fn remove_follow(
    conn: &Connection,
    actor_id: &str,
    follow_id: Option<&str>,
) -> rusqlite::Result<usize> {
    conn.execute(REMOVE_FOLLOW, params![actor_id, follow_id])
}

/// Removes the followers whose own inbox is `inbox` (not a shared inbox: that is a server's).
pub fn remove_by_inbox(conn: &Connection, inbox: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM followers WHERE actor_id IN (SELECT id FROM remote_actors WHERE inbox = ?1)",
        [inbox],
    )
}

/// Every inbox the accepted followers are reached at (shared inbox preferred), each once, in a
/// stable order.
pub fn accepted_inboxes(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT DISTINCT COALESCE(NULLIF(a.shared_inbox, ''), a.inbox)
             FROM followers f JOIN remote_actors a ON a.id = f.actor_id
             WHERE f.state = 'accepted'
             ORDER BY 1",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// Moves the follow of `old` to `new` (same Follow id and state, `created_at` now) unless `new`
/// already follows, and removes `old`'s. Returns (rows added, rows removed). Call it inside a
/// transaction: the two statements belong together.
pub fn move_to(
    conn: &Connection,
    old: &str,
    new: &str,
    now: &str,
) -> rusqlite::Result<(usize, usize)> {
    let added = conn.execute(
        "INSERT INTO followers (actor_id, follow_id, state, created_at)
         SELECT ?2, follow_id, state, ?3 FROM followers WHERE actor_id = ?1
         ON CONFLICT (actor_id) DO NOTHING",
        params![old, new, now],
    )?;
    let removed = remove(conn, old)?;
    Ok((added, removed))
}

/// Whether `actor_id` follows the owner, in any state.
pub fn is_follower(conn: &Connection, actor_id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM followers WHERE actor_id = ?1",
        [actor_id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Accepted followers with their handle when cached, ordered by handle (else actor id).
pub fn accepted_with_handles(conn: &Connection) -> rusqlite::Result<Vec<(String, Option<String>)>> {
    let mut stmt = conn.prepare(
        "SELECT f.actor_id, a.handle FROM followers f LEFT JOIN remote_actors a ON a.id = f.actor_id
         WHERE f.state = 'accepted' ORDER BY COALESCE(a.handle, f.actor_id)",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Followers the policy may suspend (pending or accepted): actor id, state, and the cached
/// host, which the policy uses when the actor id's own host cannot be read.
pub fn active_with_hosts(
    conn: &Connection,
) -> rusqlite::Result<Vec<(String, String, Option<String>)>> {
    let mut stmt = conn.prepare(
        "SELECT f.actor_id, f.state, r.host FROM followers f
             LEFT JOIN remote_actors r ON r.id = f.actor_id
             WHERE f.state IN ('pending', 'accepted')",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}

/// A number that moves whenever `followers` changes, in the changing transaction: migration 18's
/// `page_generation`, which that table's triggers bump (with other tables'; `web::cache` reads
/// the same row, from a layer above). A copy of the followers kept beside it stays exact.
pub fn generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT n FROM page_generation WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

/// Every accepted follower's actor id.
pub fn accepted_ids(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT actor_id FROM followers WHERE state = 'accepted'")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Accepted followers whose id starts with `origin` and a `/` (`https://host[:port]`): the
/// followers on one server, for FEP-8fcf's digest and partial collection. Compared with substr,
/// not LIKE: a host's `_` is not a wildcard.
pub fn accepted_on_origin(conn: &Connection, origin: &str) -> rusqlite::Result<Vec<String>> {
    let prefix = format!("{origin}/");
    let mut stmt = conn.prepare_cached(
        "SELECT actor_id FROM followers WHERE state = 'accepted'
             AND substr(actor_id, 1, length(?1)) = ?1 ORDER BY created_at, actor_id",
    )?;
    stmt.query_map([prefix], |r| r.get(0))?.collect()
}
