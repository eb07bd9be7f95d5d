//! The social graph: who follows the owner (`followers`), whom the owner follows (`following`),
//! followers the federation policy suspended (`follower_suspensions`), and the accounts the
//! owner blocked or muted (`account_relations`, [`accounts`]). The only module with
//! SQL on these tables (`tests/layers.rs` checks it); the JOINs onto `remote_actors` for a
//! follower's handle, inbox or host live here too. Every function takes a `&Connection`, so a
//! caller's `Transaction` (which derefs to one) keeps its statements in the caller's transaction.

pub mod accounts;
pub mod followers;
pub mod following;
pub mod suspensions;

use rusqlite::Connection;

/// The two public collections of the actor that list accounts (ActivityPub §5.3, §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Followers,
    Following,
}

/// How many accounts a collection shows: accepted follows only.
pub fn count_accepted(conn: &Connection, collection: Collection) -> rusqlite::Result<u64> {
    let sql = match collection {
        Collection::Followers => "SELECT COUNT(*) FROM followers WHERE state = 'accepted'",
        Collection::Following => "SELECT COUNT(*) FROM following WHERE state = 'accepted'",
    };
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// One page of a collection's actor ids, oldest follow first (a stable order for paging).
pub fn page_accepted(
    conn: &Connection,
    collection: Collection,
    limit: u32,
    offset: i64,
) -> rusqlite::Result<Vec<String>> {
    // Two literal statements, never a table name put together at run time.
    let sql = match collection {
        Collection::Followers => {
            "SELECT actor_id FROM followers WHERE state = 'accepted' ORDER BY created_at, actor_id LIMIT ?1 OFFSET ?2"
        }
        Collection::Following => {
            "SELECT actor_id FROM following WHERE state = 'accepted' ORDER BY created_at, actor_id LIMIT ?1 OFFSET ?2"
        }
    };
    conn.prepare_cached(sql)?
        .query_map(rusqlite::params![limit, offset], |r| r.get::<_, String>(0))?
        .collect()
}
