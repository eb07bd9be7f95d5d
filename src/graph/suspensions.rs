//! Followers the federation policy suspended (`follower_suspensions`): when a server stops
//! being allowed, its followers are set to `suspended` and the state they had is kept here, so
//! `hortus followers restore` can put them back. Which hosts are refused is decided in
//! `federation`; this module only stores the outcome.

use rusqlite::{Connection, params};

/// A suspended follower as stored, with the cached host of its actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspendedRow {
    pub actor_id: String,
    /// `remote_actors.host`, when the actor is cached.
    pub host: Option<String>,
    pub previous_state: String,
    pub reason: String,
    pub suspended_at: String,
}

/// Suspends `actor_id`, remembering `previous_state` (a second suspension replaces the record).
/// Call it inside a transaction: the two statements belong together.
pub fn suspend(
    conn: &Connection,
    actor_id: &str,
    previous_state: &str,
    reason: &str,
    now: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO follower_suspensions (actor_id, previous_state, reason, suspended_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (actor_id) DO UPDATE SET previous_state = excluded.previous_state,
                 reason = excluded.reason, suspended_at = excluded.suspended_at",
        params![actor_id, previous_state, reason, now],
    )?;
    conn.execute(
        "UPDATE followers SET state = 'suspended' WHERE actor_id = ?1",
        [actor_id],
    )?;
    Ok(())
}

/// Every follower that is suspended now, by actor id.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<SuspendedRow>> {
    let mut stmt = conn.prepare(
        "SELECT s.actor_id, r.host, s.previous_state, s.reason, s.suspended_at
         FROM follower_suspensions s
         JOIN followers f ON f.actor_id = s.actor_id AND f.state = 'suspended'
         LEFT JOIN remote_actors r ON r.id = s.actor_id
         ORDER BY s.actor_id",
    )?;
    stmt.query_map([], |r| {
        Ok(SuspendedRow {
            actor_id: r.get(0)?,
            host: r.get(1)?,
            previous_state: r.get(2)?,
            reason: r.get(3)?,
            suspended_at: r.get(4)?,
        })
    })?
    .collect()
}

/// Puts a suspended follower back into `previous_state` and drops its suspension record.
/// Call it inside a transaction.
pub fn restore(conn: &Connection, actor_id: &str, previous_state: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE followers SET state = ?2 WHERE actor_id = ?1 AND state = 'suspended'",
        params![actor_id, previous_state],
    )?;
    conn.execute(
        "DELETE FROM follower_suspensions WHERE actor_id = ?1",
        [actor_id],
    )?;
    Ok(())
}
