//! The queue at a glance, for `hortus queue`: totals, and each server that needs attention.

use std::time::SystemTime;

use rusqlite::Connection;

use super::DeliveryError;
use super::schedule::unix_ms;

/// The queue at a glance, for `hortus queue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// Waiting for their first attempt.
    pub pending: u64,
    /// Tried at least once, will be tried again.
    pub retrying: u64,
    pub failed: u64,
    pub done: u64,
    /// Servers with something pending or failed, or a failure streak; worst first.
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    pub host: String,
    pub pending: u64,
    pub retrying: u64,
    pub failed: u64,
    pub consecutive_failures: u64,
    /// Paused (circuit open) until this time, Unix ms, when in the future.
    pub paused_until_ms: Option<i64>,
    /// The last error recorded for one of its deliveries or for the server.
    pub last_error: Option<String>,
    /// When the next attempt is due, Unix ms.
    pub next_attempt_ms: Option<i64>,
}

pub fn status(conn: &Connection, now: SystemTime) -> Result<QueueStatus, DeliveryError> {
    let now_ms = unix_ms(now);
    let mut st = QueueStatus::default();
    conn.query_row(
        "SELECT COALESCE(SUM(state = 'pending' AND attempts = 0), 0),
                COALESCE(SUM(state = 'pending' AND attempts > 0), 0),
                COALESCE(SUM(state = 'failed'), 0), COALESCE(SUM(state = 'done'), 0)
         FROM deliveries",
        [],
        |r| {
            st.pending = r.get::<_, i64>(0)? as u64;
            st.retrying = r.get::<_, i64>(1)? as u64;
            st.failed = r.get::<_, i64>(2)? as u64;
            st.done = r.get::<_, i64>(3)? as u64;
            Ok(())
        },
    )?;
    let mut stmt = conn.prepare(
        "WITH per AS (
             SELECT host,
                    SUM(state = 'pending' AND attempts = 0) AS pending,
                    SUM(state = 'pending' AND attempts > 0) AS retrying,
                    SUM(state = 'failed') AS failed,
                    MIN(CASE WHEN state = 'pending' THEN next_attempt_ms END) AS next_ms
             FROM deliveries GROUP BY host
         ),
         hosts AS (SELECT host FROM per WHERE pending + retrying + failed > 0
                   UNION SELECT host FROM delivery_servers WHERE consecutive_failures > 0
                                                          OR paused_until_ms > ?1)
         SELECT h.host, COALESCE(p.pending, 0), COALESCE(p.retrying, 0), COALESCE(p.failed, 0),
                COALESCE(s.consecutive_failures, 0),
                CASE WHEN s.paused_until_ms > ?1 THEN s.paused_until_ms END,
                COALESCE((SELECT last_error FROM deliveries d WHERE d.host = h.host
                            AND d.last_error IS NOT NULL AND d.state != 'done'
                          ORDER BY COALESCE(d.finished_ms, d.next_attempt_ms) DESC LIMIT 1),
                         s.last_error),
                p.next_ms
         FROM hosts h LEFT JOIN per p ON p.host = h.host
                      LEFT JOIN delivery_servers s ON s.host = h.host
         ORDER BY (s.paused_until_ms > ?1) DESC, COALESCE(s.consecutive_failures, 0) DESC,
                  COALESCE(p.failed, 0) DESC, h.host",
    )?;
    let rows = stmt.query_map([now_ms], |r| {
        Ok(ServerStatus {
            host: r.get(0)?,
            pending: r.get::<_, i64>(1)? as u64,
            retrying: r.get::<_, i64>(2)? as u64,
            failed: r.get::<_, i64>(3)? as u64,
            consecutive_failures: r.get::<_, i64>(4)? as u64,
            paused_until_ms: r.get(5)?,
            last_error: r.get(6)?,
            next_attempt_ms: r.get(7)?,
        })
    })?;
    for row in rows {
        st.servers.push(row?);
    }
    Ok(st)
}

/// The queue's gauges for the metrics endpoint: every pending delivery (first try or retry),
/// when the oldest was queued, and how many servers are paused now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueGauges {
    pub pending: u64,
    pub oldest_created_ms: Option<i64>,
    pub paused_servers: u64,
}

pub fn gauges(conn: &Connection, now: SystemTime) -> Result<QueueGauges, DeliveryError> {
    let (pending, oldest_created_ms): (i64, Option<i64>) = conn.query_row(
        "SELECT COUNT(*), MIN(created_ms) FROM deliveries WHERE state = 'pending'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let paused: i64 = conn.query_row(
        "SELECT COUNT(*) FROM delivery_servers WHERE paused_until_ms > ?1",
        [unix_ms(now)],
        |r| r.get(0),
    )?;
    Ok(QueueGauges {
        pending: pending.max(0) as u64,
        oldest_created_ms,
        paused_servers: paused.max(0) as u64,
    })
}
