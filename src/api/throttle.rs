//! Failed sign-ins, per client address: after [`MAX_FAILURES`] within [`WINDOW`], the sign-in
//! page and the token endpoint answer 429 with `Retry-After` until the oldest failure leaves the
//! window, before any password is hashed. Each failure is also a problem in `hortus inbox`
//! (`activitypub::refusal`, one entry per address and reason per hour with a count).

use std::net::IpAddr;

use actix_web::HttpRequest;
use rusqlite::{Connection, params};
use time::{Duration, OffsetDateTime};

use crate::activitypub::refusal::{self, NewRefusal};
use crate::times::rfc3339;

pub const MAX_FAILURES: i64 = 5;
pub const WINDOW: Duration = Duration::minutes(15);

/// The address a sign-in is counted against: the TCP peer; behind a reverse proxy on this
/// machine (a loopback peer), the address that proxy appended last to `X-Forwarded-For` (what
/// a client writes there itself comes before it). IPv6 counts per /64.
pub fn client_address(req: &HttpRequest) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let forwarded = || {
        req.headers()
            .get("x-forwarded-for")?
            .to_str()
            .ok()?
            .rsplit(',')
            .next()?
            .trim()
            .parse::<IpAddr>()
            .ok()
    };
    let ip = match peer {
        Some(p) if p.is_loopback() => forwarded().unwrap_or(p),
        Some(p) => p,
        None => return "unknown".into(),
    };
    crate::federation::knock_limit::network_of(ip).to_string()
}

/// `Err(seconds to wait)` when `address` has used up its failures.
pub fn check(
    conn: &Connection,
    address: &str,
    now: OffsetDateTime,
) -> rusqlite::Result<Result<(), u64>> {
    let since = rfc3339(now - WINDOW);
    let (count, oldest): (i64, Option<String>) = conn.query_row(
        "SELECT count(*), min(at) FROM api_signin_failures WHERE address = ?1 AND at > ?2",
        params![address, since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if count < MAX_FAILURES {
        return Ok(Ok(()));
    }
    let oldest = oldest
        .and_then(|t| {
            OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
        })
        .unwrap_or(now);
    let wait = (oldest + WINDOW - now).whole_seconds().max(1);
    Ok(Err(u64::try_from(wait).unwrap_or(1)))
}

/// Counts a failed sign-in from `address` and records it for `hortus inbox`.
pub fn failed(
    conn: &Connection,
    address: &str,
    reason: &str,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    let at = rfc3339(now);
    // Rows older than the window count for nothing: keep the table small.
    conn.execute(
        "DELETE FROM api_signin_failures WHERE at <= ?1",
        [rfc3339(now - WINDOW)],
    )?;
    conn.execute(
        "INSERT INTO api_signin_failures (address, at) VALUES (?1, ?2)",
        params![address, at],
    )?;
    refusal::record(conn, &NewRefusal::sign_in(address, reason), now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_fifteen_minutes_close_the_door_until_the_first_leaves_the_window() {
        let conn = crate::db::open_in_memory().unwrap();
        let t0 = time::macros::datetime!(2026-11-29 10:00:00 UTC);
        for i in 0..5 {
            assert_eq!(
                check(&conn, "203.0.113.9", t0 + Duration::minutes(i)).unwrap(),
                Ok(())
            );
            failed(
                &conn,
                "203.0.113.9",
                "wrong password",
                t0 + Duration::minutes(i),
            )
            .unwrap();
        }
        let at = t0 + Duration::minutes(5);
        assert_eq!(check(&conn, "203.0.113.9", at).unwrap(), Err(600));
        // Another address has its own budget.
        assert_eq!(check(&conn, "203.0.113.10", at).unwrap(), Ok(()));
        // Once the first failure is 15 minutes old, one more try is allowed.
        assert_eq!(
            check(&conn, "203.0.113.9", t0 + WINDOW + Duration::seconds(1)).unwrap(),
            Ok(())
        );
        // The owner sees it in `hortus inbox`: one problem row counting the five.
        let problems = refusal::recent(&conn, 10).unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].count, 5);
        assert_eq!(problems[0].check, "sign-in");
    }
}
