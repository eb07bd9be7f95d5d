//! Knocks: requests the policy refused, kept so the owner can see who tried to reach them
//! (PROTOCOL.md §7) and decide whether to allow them.
//!
//! Storage is bounded whatever a peer sends: one row per (server, actor, activity type), at most
//! [`MAX_KNOCK_ROWS`] rows (the least recently seen go first), every field stripped of control
//! characters and truncated (so at most about 2.5 KB a row). How often a refused request may
//! write at all is [`super::knock_limit`]'s business.

use rusqlite::{Connection, params};
use time::OffsetDateTime;

use super::FederationError;
use super::domain::HostPort;
use crate::times::rfc3339 as timestamp;

/// Distinct (server, actor, type) rows kept.
pub const MAX_KNOCK_ROWS: i64 = 10_000;
const MAX_HOST_CHARS: usize = 260;
const MAX_ACTOR_CHARS: usize = 300;
const MAX_TYPE_CHARS: usize = 64;
/// Samples per server in [`knocks`].
const SAMPLES: i64 = 3;

/// Refused requests from one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knock {
    pub host: String,
    /// Requests refused, all actors and types together.
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
    /// Distinct actors seen (capped by the row limit).
    pub actors_seen: i64,
    /// The most recent actors (ids), at most three.
    pub sample_actors: Vec<String>,
    /// The most frequent activity types with their counts, at most three.
    pub sample_types: Vec<(String, i64)>,
}

/// Counts one refused request. `actor` is the claimed actor (keyId owner or `actor` of the
/// activity), `activity_type` e.g. `Follow`; either may be unknown.
pub fn record_knock(
    conn: &Connection,
    host: &str,
    actor: Option<&str>,
    activity_type: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), FederationError> {
    record_knock_capped(conn, host, actor, activity_type, now, MAX_KNOCK_ROWS)
}

fn record_knock_capped(
    conn: &Connection,
    host: &str,
    actor: Option<&str>,
    activity_type: Option<&str>,
    now: OffsetDateTime,
    cap: i64,
) -> Result<(), FederationError> {
    let host = match HostPort::parse(host) {
        Ok(h) => h.to_string(),
        Err(_) => field(host, MAX_HOST_CHARS).to_lowercase(),
    };
    let host = field(&host, MAX_HOST_CHARS);
    let actor = field(actor.unwrap_or(""), MAX_ACTOR_CHARS);
    let activity_type = field(activity_type.unwrap_or(""), MAX_TYPE_CHARS);
    let now = timestamp(now);
    let count: i64 = conn
        .prepare_cached(
            "INSERT INTO knocks (host, actor, activity_type, count, first_seen, last_seen)
             VALUES (?1, ?2, ?3, 1, ?4, ?4)
             ON CONFLICT (host, actor, activity_type) DO UPDATE
                 SET count = count + 1, last_seen = max(last_seen, excluded.last_seen)
             RETURNING count",
        )?
        .query_row(params![host, actor, activity_type, now], |r| r.get(0))?;
    // Only a new row can push the table over the cap.
    if count == 1 {
        let rows: i64 = conn
            .prepare_cached("SELECT count(*) FROM knocks")?
            .query_row([], |r| r.get(0))?;
        if rows > cap {
            conn.prepare_cached(
                "DELETE FROM knocks WHERE rowid IN
                     (SELECT rowid FROM knocks ORDER BY last_seen, rowid LIMIT ?1)",
            )?
            .execute([rows - cap])?;
        }
    }
    Ok(())
}

/// Servers that knocked, most recent first, at most `limit`.
pub fn knocks(conn: &Connection, limit: usize) -> Result<Vec<Knock>, FederationError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare(
        "SELECT host, sum(count), min(first_seen), max(last_seen) AS last, count(DISTINCT actor)
         FROM knocks GROUP BY host ORDER BY last DESC, host LIMIT ?1",
    )?;
    let mut out: Vec<Knock> = stmt
        .query_map([limit], |r| {
            Ok(Knock {
                host: r.get(0)?,
                count: r.get(1)?,
                first_seen: r.get(2)?,
                last_seen: r.get(3)?,
                actors_seen: r.get(4)?,
                sample_actors: Vec::new(),
                sample_types: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut actors = conn.prepare(
        "SELECT actor FROM knocks WHERE host = ?1 AND actor != ''
         GROUP BY actor ORDER BY max(last_seen) DESC, actor LIMIT ?2",
    )?;
    let mut types = conn.prepare(
        "SELECT activity_type, sum(count) AS n FROM knocks WHERE host = ?1 AND activity_type != ''
         GROUP BY activity_type ORDER BY n DESC, activity_type LIMIT ?2",
    )?;
    for knock in &mut out {
        knock.sample_actors = actors
            .query_map(params![knock.host, SAMPLES], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        knock.sample_types = types
            .query_map(params![knock.host, SAMPLES], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
    }
    Ok(out)
}

/// A field as stored: attacker-chosen, so without control characters (they would reach the
/// owner's terminal) and at most `max_chars` characters of at most 4 bytes each.
fn field(value: &str, max_chars: usize) -> String {
    let clean = crate::text::strip_controls(value);
    crate::text::truncate_chars(clean.trim(), max_chars).to_string()
}

/// Forgets the knocks of one server (e.g. once it is allowed), or all with `None`.
pub fn forget_knocks(conn: &Connection, host: Option<&str>) -> Result<usize, FederationError> {
    Ok(match host {
        Some(host) => {
            let host = HostPort::parse(host).map_or_else(|_| host.to_string(), |h| h.to_string());
            conn.execute("DELETE FROM knocks WHERE host = ?1", [host])?
        }
        None => conn.execute("DELETE FROM knocks", [])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::open_in_memory;
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM knocks", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn knocks_are_counted_and_grouped_per_server() {
        let conn = open_in_memory().unwrap();
        let bob = "https://Spam.Example/users/bob";
        for i in 0..3 {
            let at = T0 + Duration::minutes(i);
            record_knock(&conn, "Spam.Example", Some(bob), Some("Follow"), at).unwrap();
        }
        record_knock(
            &conn,
            "spam.example",
            Some("https://spam.example/users/eve"),
            Some("Create"),
            T0,
        )
        .unwrap();
        record_knock(&conn, "spam.example", None, None, T0).unwrap();
        record_knock(
            &conn,
            "quiet.example:8443",
            None,
            Some("Like"),
            T0 + Duration::hours(1),
        )
        .unwrap();

        let k = knocks(&conn, 10).unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].host, "quiet.example:8443");
        let spam = &k[1];
        assert_eq!(spam.host, "spam.example");
        assert_eq!(spam.count, 5);
        assert_eq!(spam.first_seen, "2026-03-01T12:00:00Z");
        assert_eq!(spam.last_seen, "2026-03-01T12:02:00Z");
        assert_eq!(spam.sample_actors[0], bob);
        assert_eq!(spam.sample_types[0], ("Follow".to_string(), 3));
        assert_eq!(knocks(&conn, 1).unwrap().len(), 1);

        assert_eq!(forget_knocks(&conn, Some("SPAM.example")).unwrap(), 3);
        assert_eq!(knocks(&conn, 10).unwrap().len(), 1);
    }

    #[test]
    fn fields_are_truncated() {
        let conn = open_in_memory().unwrap();
        let long = format!("https://x.example/{}", "é".repeat(5000));
        record_knock(
            &conn,
            &"h".repeat(5000),
            Some(&long),
            Some(&"T".repeat(500)),
            T0,
        )
        .unwrap();
        let (h, a, t): (String, String, String) = conn
            .query_row("SELECT host, actor, activity_type FROM knocks", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert!(h.chars().count() <= MAX_HOST_CHARS);
        assert_eq!(a.chars().count(), MAX_ACTOR_CHARS);
        assert_eq!(t.chars().count(), MAX_TYPE_CHARS);
    }

    #[test]
    fn control_characters_never_reach_the_table() {
        let conn = open_in_memory().unwrap();
        let actor =
            "https://東京.example/users/\x1b]0;pwned\x07ユーザー\u{202e}txt.exe\u{2066}\u{9b}2J";
        record_knock(
            &conn,
            "東京.example",
            Some(actor),
            Some("Fol\nlow\u{202d}"),
            T0,
        )
        .unwrap();
        let k = knocks(&conn, 10).unwrap();
        assert_eq!(
            k[0].sample_actors,
            ["https://東京.example/users/]0;pwnedユーザーtxt.exe2J"]
        );
        assert_eq!(k[0].sample_types, [("Follow".to_string(), 1)]);
        assert_eq!(k[0].host, "xn--1lqs71d.example");
    }

    #[test]
    fn a_flood_keeps_the_table_at_the_cap_and_evicts_the_oldest() {
        let conn = open_in_memory().unwrap();
        record_knock(
            &conn,
            "old.example",
            Some("https://old.example/u"),
            None,
            T0,
        )
        .unwrap();
        // One transaction only to keep the test quick; record_knock does not need one.
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..50_000 {
            let actor = format!("https://flood.example/users/{i}");
            let at = T0 + Duration::seconds(1 + i);
            record_knock(&conn, "flood.example", Some(&actor), Some("Create"), at).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        assert_eq!(rows(&conn), MAX_KNOCK_ROWS);
        let k = knocks(&conn, 10).unwrap();
        assert_eq!(k.len(), 1, "the oldest server was evicted");
        assert_eq!(k[0].host, "flood.example");
        assert_eq!(k[0].count, MAX_KNOCK_ROWS);
        assert_eq!(k[0].sample_actors[0], "https://flood.example/users/49999");
    }

    #[test]
    fn cap_holds_for_small_caps_too() {
        let conn = open_in_memory().unwrap();
        for i in 0..100 {
            let at = T0 + Duration::seconds(i);
            record_knock_capped(&conn, &format!("h{i}.example"), None, None, at, 10).unwrap();
            assert!(rows(&conn) <= 10);
        }
        let k = knocks(&conn, 100).unwrap();
        assert_eq!(k.first().map(|k| k.host.as_str()), Some("h99.example"));
        assert_eq!(k.last().map(|k| k.host.as_str()), Some("h90.example"));
    }
}
