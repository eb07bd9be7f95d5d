//! Why an incoming request is refused ([`InboxError`], with the HTTP status the peer gets), and
//! the record of refusals the owner sees. Below the inbox because what the inbox calls
//! (conversation, fetching) refuses with it, and `hortus inbox`/`following` read the record.
//!
//! Refusals the owner can see (issue 10.4) and the one log line per refused request (10.5).
//!
//! A request from a server the policy refuses is a knock (`federation::knocks`), expected and
//! shown as such. A request from an *allowed* server that the inbox still refuses — its
//! signature does not verify, its key cannot be fetched or has a shape Hortus does not read,
//! its actor is not the signer, its JSON is bad — is a federation bug between two servers that
//! mean to talk: it is recorded here and shown by `hortus inbox` as a problem, and `hortus
//! following` names it when it is why a follow is still pending (GoToSocial's refused Accept).
//!
//! Storage is bounded whatever peers send: one row per (server, check, reason) per hour, a repeat
//! counted on that row; at most [`MAX_ROWS`] rows, the least recently seen removed first; every
//! text stripped of control characters and truncated by characters.

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::httpsig::VerifyError;
use crate::text::plain_text;

/// Mastodon caps inbound JSON at 1 MiB as well.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("unsupported content type; send application/activity+json")]
    ContentType,
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("signature: {0}")]
    Signature(#[from] crate::httpsig::VerifyError),
    #[error("cannot verify: {0}")]
    Key(String),
    #[error("the server {0} is not allowed to federate here")]
    Refused(String),
    #[error("the signer is not the activity's actor")]
    ActorMismatch,
    /// The owner blocked this account (`hortus block add user@host`): per actor, after its
    /// signature verified, whatever its server.
    #[error("the account {0} is blocked here")]
    AccountBlocked(String),
    #[error("the request is addressed to {0}, not to this server")]
    NotAddressedHere(String),
    #[error("bad activity: {0}")]
    BadActivity(String),
    #[error("bad activity: {0}")]
    Parse(#[from] crate::activitypub::incoming::ParseError),
    #[error("internal error")]
    Internal(String),
}

impl InboxError {
    pub fn status(&self) -> u16 {
        match self {
            InboxError::ContentType => 415,
            InboxError::TooLarge => 413,
            InboxError::Signature(_)
            | InboxError::Key(_)
            | InboxError::ActorMismatch
            | InboxError::NotAddressedHere(_) => 401,
            InboxError::Refused(_) | InboxError::AccountBlocked(_) => 403,
            InboxError::BadActivity(_) | InboxError::Parse(_) => 400,
            InboxError::Internal(_) => 500,
        }
    }
}

impl From<crate::db::DbError> for InboxError {
    fn from(e: crate::db::DbError) -> Self {
        InboxError::Internal(e.to_string())
    }
}

impl From<super::fetch::StoreError> for InboxError {
    fn from(e: super::fetch::StoreError) -> Self {
        match e {
            super::fetch::StoreError::Db(e) => InboxError::Internal(e.to_string()),
            refused => InboxError::BadActivity(refused.to_string()),
        }
    }
}

impl From<rusqlite::Error> for InboxError {
    fn from(e: rusqlite::Error) -> Self {
        InboxError::Internal(e.to_string())
    }
}

/// Distinct rows kept.
pub const MAX_ROWS: i64 = 1_000;
/// A repeat of the same refusal within this long counts on the same entry.
pub const DEDUPE_WINDOW: time::Duration = time::Duration::hours(1);
const MAX_HOST_CHARS: usize = 260;
const MAX_REASON_CHARS: usize = 300;
const MAX_ID_CHARS: usize = 300;
const MAX_TYPE_CHARS: usize = 64;

/// Which check of the inbox refused a request, in the words of the README's order of checks.
pub fn check_of(e: &InboxError) -> &'static str {
    use VerifyError as V;
    match e {
        InboxError::ContentType => "content type",
        InboxError::TooLarge => "size",
        InboxError::Refused(_) => "policy",
        InboxError::Signature(v) => match v {
            V::MissingSignature
            | V::MalformedSignature(_)
            | V::MalformedSignatureInput(_)
            | V::UnsupportedAlgorithm(_)
            | V::PseudoHeaderNeedsHs2019
            | V::UnsupportedComponent(_)
            | V::MissingSignedHeader(_)
            | V::UnsignableHeaderValue(_) => "signature syntax",
            V::InsufficientCoverage(_) => "coverage",
            V::MissingDigest | V::MalformedDigest(_) | V::UnsupportedDigest | V::DigestMismatch => {
                "digest"
            }
            V::MalformedDate | V::TooOld(_) | V::InFuture(_) | V::Expired => "clock",
            _ => "signature",
        },
        InboxError::Key(_) => "key fetch",
        InboxError::NotAddressedHere(_) => "host",
        InboxError::ActorMismatch => "actor mismatch",
        InboxError::AccountBlocked(_) => ACCOUNT_BLOCK_CHECK,
        InboxError::BadActivity(_) | InboxError::Parse(_) => "JSON",
        InboxError::Internal(_) => "internal",
    }
}

/// The check that refuses a blocked account's activities (`InboxError::AccountBlocked`).
pub const ACCOUNT_BLOCK_CHECK: &str = "account block";

/// A keyId as it may appear in a log line or the owner's list: no control characters (a peer
/// cannot forge log lines), bounded length.
pub fn clean_key_id(key_id: &str) -> String {
    plain_text(key_id, MAX_ID_CHARS)
}

/// The one log line for a refused request: the check that failed, the keyId, the status.
pub fn log(e: &InboxError, key_id: Option<&str>) {
    let check = check_of(e);
    let key_id = key_id.map(clean_key_id).unwrap_or_default();
    let status = e.status();
    let error = plain_text(&e.to_string(), MAX_REASON_CHARS);
    if status >= 500 {
        tracing::error!(check, key_id, status, error, "inbox failed");
    } else {
        tracing::info!(check, key_id, status, error, "inbox refused a request");
    }
}

/// One refused request from an allowed server, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub host: String,
    pub check: String,
    pub reason: String,
    pub key_id: Option<String>,
    pub actor_id: Option<String>,
    pub activity_type: Option<String>,
    pub count: i64,
    pub first_at: String,
    pub last_at: String,
}

/// Whether a refusal is worth the owner's attention: the server was allowed (policy refusals are
/// knocks) and the fault is the exchange's, not Hortus's own (internal errors are logged).
pub fn worth_recording(e: &InboxError) -> bool {
    !matches!(
        e,
        InboxError::Refused(_) | InboxError::Internal(_) | InboxError::ContentType
    )
}

/// A refused request about to be recorded, its fields already cleaned.
#[derive(Debug, Clone)]
pub struct NewRefusal {
    host: String,
    check: &'static str,
    reason: String,
    key_id: Option<String>,
    actor_id: Option<String>,
    activity_type: Option<String>,
}

impl NewRefusal {
    /// `host` is the keyId's server; `actor` and `activity_type` are what the body claims, if
    /// it could be read.
    pub fn new(
        host: &str,
        e: &InboxError,
        key_id: Option<&str>,
        actor: Option<&str>,
        activity_type: Option<&str>,
    ) -> NewRefusal {
        let text = |s: &str, max| Some(plain_text(s, max)).filter(|s| !s.is_empty());
        NewRefusal {
            host: plain_text(host, MAX_HOST_CHARS).to_lowercase(),
            check: check_of(e),
            reason: plain_text(&e.to_string(), MAX_REASON_CHARS),
            key_id: key_id.and_then(|k| text(k, MAX_ID_CHARS)),
            actor_id: actor.and_then(|a| text(a, MAX_ID_CHARS)),
            activity_type: activity_type.and_then(|t| text(t, MAX_TYPE_CHARS)),
        }
    }
}

impl NewRefusal {
    /// A failed sign-in to the client API (`api::throttle`): not the inbox's, but a problem the
    /// owner must see the same way, in `hortus inbox`. `address` is the client's.
    pub fn sign_in(address: &str, reason: &str) -> NewRefusal {
        NewRefusal {
            host: plain_text(address, MAX_HOST_CHARS),
            check: "sign-in",
            reason: plain_text(reason, MAX_REASON_CHARS),
            key_id: None,
            actor_id: None,
            activity_type: Some("sign-in".into()),
        }
    }
}

/// Counts one refused request; returns its entry's count (1 for a new entry).
pub fn record(conn: &Connection, r: &NewRefusal, now: OffsetDateTime) -> rusqlite::Result<i64> {
    record_capped(conn, r, now, MAX_ROWS)
}

fn record_capped(
    conn: &Connection,
    r: &NewRefusal,
    now: OffsetDateTime,
    cap: i64,
) -> rusqlite::Result<i64> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let at = crate::times::rfc3339(now);
    let since = crate::times::rfc3339(now - DEDUPE_WINDOW);
    let tx = conn.unchecked_transaction()?;
    let updated: Option<i64> = tx
        .prepare_cached(
            "UPDATE inbox_refusals
                SET count = count + 1, last_at = max(last_at, ?5),
                    key_id = COALESCE(?6, key_id), actor_id = COALESCE(?7, actor_id),
                    activity_type = COALESCE(?8, activity_type)
              WHERE id = (SELECT id FROM inbox_refusals
                          WHERE host = ?1 AND check_name = ?2 AND reason = ?3 AND first_at > ?4
                          ORDER BY first_at DESC LIMIT 1)
             RETURNING count",
        )?
        .query_row(
            params![
                r.host,
                r.check,
                r.reason,
                since,
                at,
                r.key_id,
                r.actor_id,
                r.activity_type
            ],
            |row| row.get(0),
        )
        .optional()?;
    let count = match updated {
        Some(n) => n,
        None => {
            tx.prepare_cached(
                "INSERT INTO inbox_refusals
                     (host, check_name, reason, key_id, actor_id, activity_type, count, first_at, last_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
            )?
            .execute(params![
                r.host,
                r.check,
                r.reason,
                r.key_id,
                r.actor_id,
                r.activity_type,
                at
            ])?;
            // Only a new row can push the table over the cap.
            tx.execute(
                "DELETE FROM inbox_refusals WHERE id NOT IN
                     (SELECT id FROM inbox_refusals ORDER BY last_at DESC, id DESC LIMIT ?1)",
                [cap],
            )?;
            1
        }
    };
    tx.commit()?;
    Ok(count)
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Refusal> {
    Ok(Refusal {
        host: r.get(0)?,
        check: r.get(1)?,
        reason: r.get(2)?,
        key_id: r.get(3)?,
        actor_id: r.get(4)?,
        activity_type: r.get(5)?,
        count: r.get(6)?,
        first_at: r.get(7)?,
        last_at: r.get(8)?,
    })
}

const COLUMNS: &str =
    "host, check_name, reason, key_id, actor_id, activity_type, count, first_at, last_at";

/// The most recent refusals, newest first, at most `limit`.
pub fn recent(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Refusal>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM inbox_refusals ORDER BY last_at DESC, id DESC LIMIT ?1"
    ))?;
    stmt.query_map([limit], row)?.collect()
}

/// The latest refusal of a request whose actor was `actor_id`, seen at or after `since`: why a
/// follow of that actor may still be pending.
pub fn latest_for_actor(
    conn: &Connection,
    actor_id: &str,
    since: &str,
) -> rusqlite::Result<Option<Refusal>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM inbox_refusals WHERE actor_id = ?1 AND last_at >= ?2
         ORDER BY last_at DESC, id DESC LIMIT 1"
    ))?
    .query_row(params![actor_id, since], row)
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_sig() -> InboxError {
        InboxError::Signature(VerifyError::BadSignature)
    }

    #[test]
    fn checks_are_named() {
        assert_eq!(check_of(&bad_sig()), "signature");
        assert_eq!(
            check_of(&InboxError::Signature(VerifyError::DigestMismatch)),
            "digest"
        );
        assert_eq!(
            check_of(&InboxError::Signature(VerifyError::TooOld(3600))),
            "clock"
        );
        assert_eq!(
            check_of(&InboxError::Signature(VerifyError::InsufficientCoverage(
                "digest"
            ))),
            "coverage"
        );
        assert_eq!(
            check_of(&InboxError::Signature(VerifyError::MissingSignature)),
            "signature syntax"
        );
        assert_eq!(check_of(&InboxError::Key("x".into())), "key fetch");
        assert_eq!(check_of(&InboxError::ActorMismatch), "actor mismatch");
        assert_eq!(check_of(&InboxError::BadActivity("x".into())), "JSON");
        assert_eq!(check_of(&InboxError::Refused("h".into())), "policy");
        assert!(!worth_recording(&InboxError::Refused("h".into())));
        assert!(worth_recording(&bad_sig()));
    }

    #[test]
    fn a_repeat_within_the_hour_counts_on_one_entry() {
        let conn = crate::db::open_in_memory().unwrap();
        let t0 = OffsetDateTime::now_utc();
        let gwen = "https://gts.example/users/gwen";
        let actor = Some(gwen);
        let key = Some("https://gts.example/users/gwen/main-key");
        let seen = NewRefusal::new("GTS.example", &bad_sig(), key, actor, Some("Accept"));
        let rec = |at| record(&conn, &seen, at);
        assert_eq!(rec(t0).unwrap(), 1);
        assert_eq!(rec(t0 + time::Duration::minutes(59)).unwrap(), 2);
        // Past the hour that began with the first one: a new entry.
        assert_eq!(rec(t0 + time::Duration::minutes(61)).unwrap(), 1);
        // Another reason from the same server is its own entry.
        let other = InboxError::Key("no key".into());
        let seen = NewRefusal::new("gts.example", &other, key, actor, None);
        assert_eq!(record(&conn, &seen, t0).unwrap(), 1);
        let all = recent(&conn, 10).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|r| r.host == "gts.example"));
        let found = latest_for_actor(&conn, gwen, "1970-01-01T00:00:00Z")
            .unwrap()
            .unwrap();
        assert_eq!(found.activity_type.as_deref(), Some("Accept"));
    }

    #[test]
    fn fields_are_stripped_truncated_and_rows_bounded() {
        let conn = crate::db::open_in_memory().unwrap();
        let now = OffsetDateTime::now_utc();
        let hostile = format!("https://x.example/\u{1b}[31m\n{}", "长🌱".repeat(400));
        for i in 0..5 {
            let e = InboxError::Key(format!("{i} {hostile}"));
            let h = Some(hostile.as_str());
            let seen = NewRefusal::new("x.example", &e, h, h, h);
            record_capped(&conn, &seen, now, 3).unwrap();
        }
        let all = recent(&conn, 100).unwrap();
        assert_eq!(all.len(), 3);
        for r in all {
            for field in [Some(&r.reason), r.key_id.as_ref(), r.actor_id.as_ref()] {
                let s = field.unwrap();
                assert!(!s.chars().any(char::is_control), "{s:?}");
                assert!(s.chars().count() <= MAX_REASON_CHARS, "{}", s.len());
            }
            assert!(r.activity_type.unwrap().chars().count() <= MAX_TYPE_CHARS);
        }
    }
}
