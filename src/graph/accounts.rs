//! Accounts (not whole servers) the owner blocked or muted: `account_relations`
//! (migrations/11-account-relations). Keyed by actor id only, never by a handle or profile url:
//! any server can claim any handle or url (issue 9).
//!
//! Nothing an account said is deleted when it is blocked: readers ask [`blocked`] or
//! [`silenced`] and leave its rows out, so an unblock brings them back (hide, don't lose).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

/// One account the owner blocked or muted, as `hortus block show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub actor_id: String,
    pub blocked: bool,
    pub muted: bool,
    /// The Block sent to its server (`[federation] send_blocks`), for the Undo on unblock.
    pub block_activity_id: Option<String>,
    pub updated_at: String,
    /// `user@host`, when the actor is in the cache.
    pub handle: Option<String>,
}

/// Whether a write changed anything (a repeated block is "already blocked", not an error).
pub type Changed = bool;

/// Blocks `actor_id`, remembering the Block activity sent for it, if any.
pub fn block(
    conn: &Connection,
    actor_id: &str,
    block_activity_id: Option<&str>,
    now: &str,
) -> rusqlite::Result<Changed> {
    let n = conn.execute(
        "INSERT INTO account_relations (actor_id, blocked, muted, block_activity_id, updated_at)
         VALUES (?1, 1, 0, ?2, ?3)
         ON CONFLICT (actor_id) DO UPDATE SET blocked = 1, block_activity_id = ?2, updated_at = ?3
         WHERE blocked = 0",
        params![actor_id, block_activity_id, now],
    )?;
    Ok(n > 0)
}

/// Unblocks `actor_id`; returns the Block activity id that was sent for it (to undo it), or
/// `None` inside `Some` when the block was private. `None` when it was not blocked.
pub fn unblock(
    conn: &Connection,
    actor_id: &str,
    now: &str,
) -> rusqlite::Result<Option<Option<String>>> {
    let sent: Option<Option<String>> = conn
        .query_row(
            "SELECT block_activity_id FROM account_relations WHERE actor_id = ?1 AND blocked = 1",
            [actor_id],
            |r| r.get(0),
        )
        .optional()?;
    if sent.is_some() {
        conn.execute(
            "UPDATE account_relations SET blocked = 0, block_activity_id = NULL, updated_at = ?2
             WHERE actor_id = ?1",
            params![actor_id, now],
        )?;
        forget_empty(conn, actor_id)?;
    }
    Ok(sent)
}

/// Mutes or unmutes `actor_id`.
pub fn set_muted(
    conn: &Connection,
    actor_id: &str,
    muted: bool,
    now: &str,
) -> rusqlite::Result<Changed> {
    let was: bool = conn
        .query_row(
            "SELECT muted FROM account_relations WHERE actor_id = ?1",
            [actor_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false);
    if was == muted {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO account_relations (actor_id, blocked, muted, updated_at)
         VALUES (?1, 0, ?2, ?3)
         ON CONFLICT (actor_id) DO UPDATE SET muted = ?2, updated_at = ?3",
        params![actor_id, muted, now],
    )?;
    forget_empty(conn, actor_id)?;
    Ok(true)
}

/// A row with neither a block nor a mute says nothing: it goes.
fn forget_empty(conn: &Connection, actor_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM account_relations WHERE actor_id = ?1 AND blocked = 0 AND muted = 0",
        [actor_id],
    )?;
    Ok(())
}

/// Whether `?1` is blocked: asked by the inbox of every activity (shared with its query-plan
/// test).
pub(crate) const IS_BLOCKED: &str = "SELECT blocked FROM account_relations WHERE actor_id = ?1";

/// Whether the owner blocked `actor_id`.
pub fn is_blocked(conn: &Connection, actor_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(IS_BLOCKED)?
        .query_row([actor_id], |r| r.get::<_, bool>(0))
        .optional()
        .map(|b| b.unwrap_or(false))
}

/// The blocked actor ids, as a subquery for SQL elsewhere (`actor_id NOT IN (…)`), so the table
/// is read only from here.
pub const BLOCKED_IDS: &str = "SELECT actor_id FROM account_relations WHERE blocked = 1";
/// The blocked or muted actor ids, as a subquery (the owner's timeline leaves them out).
pub const SILENCED_IDS: &str =
    "SELECT actor_id FROM account_relations WHERE blocked = 1 OR muted = 1";

/// Every blocked actor id: what pages, exports and timelines leave out.
pub fn blocked(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    conn.prepare_cached(BLOCKED_IDS)?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// Every blocked or muted actor id: what the owner's notifications (and timeline) leave out.
pub fn silenced(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    conn.prepare_cached(SILENCED_IDS)?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// Every blocked or muted account, blocks first, then by when it was set.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Relation>> {
    let mut stmt = conn.prepare(
        "SELECT r.actor_id, r.blocked, r.muted, r.block_activity_id, r.updated_at, a.handle
         FROM account_relations r LEFT JOIN remote_actors a ON a.id = r.actor_id
         ORDER BY r.blocked DESC, r.updated_at, r.actor_id",
    )?;
    stmt.query_map([], |r| {
        Ok(Relation {
            actor_id: r.get(0)?,
            blocked: r.get(1)?,
            muted: r.get(2)?,
            block_activity_id: r.get(3)?,
            updated_at: r.get(4)?,
            handle: r.get(5)?,
        })
    })?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: &str = "https://m.example/users/bob";
    const T: &str = "2026-11-29T10:00:00Z";

    #[test]
    fn block_and_mute_are_independent_and_idempotent() {
        let conn = crate::db::open_in_memory().unwrap();
        assert!(!is_blocked(&conn, BOB).unwrap());
        assert!(block(&conn, BOB, Some("https://me.example/activities/1"), T).unwrap());
        assert!(!block(&conn, BOB, None, T).unwrap(), "already blocked");
        assert!(is_blocked(&conn, BOB).unwrap());
        assert!(set_muted(&conn, BOB, true, T).unwrap());
        assert!(!set_muted(&conn, BOB, true, T).unwrap());
        assert_eq!(blocked(&conn).unwrap(), HashSet::from([BOB.to_string()]));
        assert_eq!(
            unblock(&conn, BOB, T).unwrap(),
            Some(Some("https://me.example/activities/1".into()))
        );
        assert_eq!(
            unblock(&conn, BOB, T).unwrap(),
            None,
            "not blocked any more"
        );
        assert!(blocked(&conn).unwrap().is_empty());
        // Still muted: silenced, listed.
        assert_eq!(silenced(&conn).unwrap(), HashSet::from([BOB.to_string()]));
        let rows = list(&conn).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].muted && !rows[0].blocked);
        assert!(set_muted(&conn, BOB, false, T).unwrap());
        assert!(!set_muted(&conn, BOB, false, T).unwrap(), "never muted");
        assert!(list(&conn).unwrap().is_empty(), "an empty row is dropped");
    }

    #[test]
    fn a_private_block_unblocks_with_nothing_to_undo() {
        let conn = crate::db::open_in_memory().unwrap();
        block(&conn, BOB, None, T).unwrap();
        assert_eq!(unblock(&conn, BOB, T).unwrap(), Some(None));
    }
}
