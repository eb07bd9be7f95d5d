use rusqlite::{Connection, params};
use url::Url;

use super::*;
use crate::config::FederationMode;
use crate::db::open_in_memory;
use crate::federation::*;

fn add_follower(conn: &Connection, actor_id: &str, state: &str) {
    let host = Url::parse(actor_id)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    conn.execute(
        "INSERT INTO remote_actors (id, host, inbox, raw, fetched_at)
             VALUES (?1, ?2, ?1 || '/inbox', '{}', '2026-01-01T00:00:00Z')",
        params![actor_id, host],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO followers (actor_id, follow_id, state, created_at)
             VALUES (?1, ?1 || '#follow', ?2, '2026-01-01T00:00:00Z')",
        params![actor_id, state],
    )
    .unwrap();
}

fn state(conn: &Connection, actor_id: &str) -> String {
    conn.query_row(
        "SELECT state FROM followers WHERE actor_id = ?1",
        [actor_id],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn add_list_remove_report_what_changed() {
    let conn = open_in_memory().unwrap();
    let c = allow_add(&conn, "Example.NET.").unwrap();
    assert_eq!((c.pattern.as_str(), c.changed), ("example.net", true));
    assert!(!allow_add(&conn, "example.net").unwrap().changed);
    block_add(&conn, ".bad.example").unwrap();
    let allow: Vec<_> = allow_list(&conn)
        .unwrap()
        .into_iter()
        .map(|e| e.pattern)
        .collect();
    let block: Vec<_> = block_list(&conn)
        .unwrap()
        .into_iter()
        .map(|e| e.pattern)
        .collect();
    assert_eq!(allow, ["example.net"]);
    assert_eq!(block, ["*.bad.example"]);
    assert!(contains(&conn, List::Block, "*.bad.example").unwrap());
    assert!(
        allow_remove(&conn, FederationMode::Allowlist, "example.net")
            .unwrap()
            .changed
    );
    assert!(!block_remove(&conn, "bad.example").unwrap().changed);
    assert!(block_remove(&conn, "*.bad.example").unwrap().changed);
    assert!(allow_add(&conn, "not a domain").is_err());
}

#[test]
fn blocking_suspends_and_only_an_explicit_restore_brings_back() {
    let conn = open_in_memory().unwrap();
    add_follower(&conn, "https://example.net/users/a", "accepted");
    add_follower(&conn, "https://a.example.net/users/b", "pending");
    add_follower(&conn, "https://other.example/users/c", "accepted");
    allow_add(&conn, "*.example.net").unwrap();

    let c = block_add(&conn, "*.example.net").unwrap();
    assert_eq!(c.suspended.len(), 2);
    assert_eq!(state(&conn, "https://example.net/users/a"), "suspended");
    assert_eq!(state(&conn, "https://a.example.net/users/b"), "suspended");
    assert_eq!(state(&conn, "https://other.example/users/c"), "accepted");
    // Idempotent: nobody is suspended twice.
    assert!(
        block_add(&conn, "*.example.net")
            .unwrap()
            .suspended
            .is_empty()
    );

    // Unblocking does not restore, but tells who is waiting.
    let c = block_remove(&conn, "*.example.net").unwrap();
    assert_eq!(c.still_suspended.len(), 2);
    assert_eq!(state(&conn, "https://example.net/users/a"), "suspended");
    assert_eq!(suspended_followers(&conn, "example.net").unwrap().len(), 1);
    assert_eq!(
        suspended_followers(&conn, "*.example.net").unwrap().len(),
        2
    );

    let r = restore_followers(&conn, FederationMode::Allowlist, "*.example.net").unwrap();
    assert_eq!(r.restored.len(), 2);
    assert!(r.still_refused.is_empty());
    assert_eq!(state(&conn, "https://example.net/users/a"), "accepted");
    assert_eq!(state(&conn, "https://a.example.net/users/b"), "pending");
    assert!(
        suspended_followers(&conn, "*.example.net")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn leaving_the_allowlist_suspends_only_in_allowlist_mode() {
    let conn = open_in_memory().unwrap();
    add_follower(&conn, "https://example.net/users/a", "accepted");
    add_follower(&conn, "https://a.example.net/users/b", "accepted");
    allow_add(&conn, "example.net").unwrap();
    allow_add(&conn, "*.example.net").unwrap();

    let c = allow_remove(&conn, FederationMode::Blocklist, "*.example.net").unwrap();
    assert!(c.suspended.is_empty());
    allow_add(&conn, "*.example.net").unwrap();

    // example.net stays allowed by its exact entry; a.example.net loses its only one.
    let c = allow_remove(&conn, FederationMode::Allowlist, "*.example.net").unwrap();
    let who: Vec<_> = c.suspended.iter().map(|s| s.actor_id.as_str()).collect();
    assert_eq!(who, ["https://a.example.net/users/b"]);
    assert!(c.suspended[0].reason.contains("allowlist"));

    // Restoring while still refused leaves them suspended.
    let r = restore_followers(&conn, FederationMode::Allowlist, "*.example.net").unwrap();
    assert!(r.restored.is_empty());
    assert_eq!(r.still_refused.len(), 1);
    let c = allow_add(&conn, "a.example.net").unwrap();
    assert_eq!(c.still_suspended.len(), 1);
    assert_eq!(state(&conn, "https://a.example.net/users/b"), "suspended");
    let r = restore_followers(&conn, FederationMode::Allowlist, "a.example.net").unwrap();
    assert_eq!(r.restored.len(), 1);
    assert_eq!(state(&conn, "https://a.example.net/users/b"), "accepted");
}

#[test]
fn enforce_policy_suspends_everyone_refused() {
    let conn = open_in_memory().unwrap();
    add_follower(&conn, "https://example.net/users/a", "accepted");
    add_follower(&conn, "http://127.0.0.3:41234/users/b", "accepted");
    allow_add(&conn, "127.0.0.3:41234").unwrap();
    let policy = Policy::load(&conn, FederationMode::Allowlist, None).unwrap();
    let s = enforce_policy(&conn, &policy).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].host, "example.net");
    assert_eq!(state(&conn, "http://127.0.0.3:41234/users/b"), "accepted");
    assert!(enforce_policy(&conn, &policy).unwrap().is_empty());
}

#[test]
fn suspension_record_goes_with_the_follower() {
    let conn = open_in_memory().unwrap();
    add_follower(&conn, "https://example.net/users/a", "accepted");
    block_add(&conn, "example.net").unwrap();
    conn.execute("DELETE FROM followers", []).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM follower_suspensions", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn import_plain_lines() {
    let conn = open_in_memory().unwrap();
    allow_add(&conn, "already.example").unwrap();
    let text = "# my friends\n\
                    example.net\n\
                    \n\
                    *.Social.Example   # with subdomains\n\
                    already.example\n\
                    not a domain\n\
                    ex*mple.org\n\
                    127.0.0.3:41234\n\
                    example.net\n";
    let r = import_domains(&conn, List::Allow, text).unwrap();
    assert_eq!(r.format, ImportFormat::Lines);
    assert_eq!(
        r.added,
        ["example.net", "*.social.example", "127.0.0.3:41234"]
    );
    assert_eq!(r.already_present, 2);
    let lines: Vec<_> = r.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [6, 7]);
    assert!(r.skipped[1].reason.contains("wildcard"), "{:?}", r.skipped);
}

#[test]
fn import_mastodon_csv() {
    let conn = open_in_memory().unwrap();
    add_follower(&conn, "https://sub.spam.example/users/x", "accepted");
    let text = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\r\n\
                    spam.example,suspend,true,true,\"Spam, lots of it\",false\r\n\
                    loud.example,silence,false,false,,false\r\n\
                    meh.example,noop,false,false,,false\r\n\
                    ha*sh.example,suspend,false,false,,true\r\n\
                    multi.example,suspend,false,false,\"一行目, \"\"引用\"\"\nسطر 2 👩‍👩‍👧\",false\r\n\
                    bad domain,suspend,false,false,,false\r\n\
                    spam.example,suspend,false,false,,false\r\n";
    let r = import_domains(&conn, List::Block, text).unwrap();
    assert_eq!(r.format, ImportFormat::MastodonCsv);
    assert_eq!(
        r.added,
        ["*.spam.example", "*.loud.example", "*.multi.example"]
    );
    assert_eq!(r.already_present, 1);
    let skipped: Vec<_> = r
        .skipped
        .iter()
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(skipped[0].0, 4);
    assert!(skipped[0].1.contains("noop"));
    assert_eq!(skipped[1].0, 5);
    assert!(skipped[1].1.contains("obfuscated"));
    assert_eq!(skipped[2].0, 8, "line count survives a quoted newline");
    assert_eq!(r.suspended.len(), 1);
    assert_eq!(
        state(&conn, "https://sub.spam.example/users/x"),
        "suspended"
    );
    let notes: Vec<_> = block_list(&conn)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.note)
        .collect();
    assert!(notes.contains(&"Spam, lots of it".to_string()), "{notes:?}");
    assert!(
        notes.contains(&"一行目, \"引用\"\nسطر 2 👩‍👩‍👧".to_string()),
        "{notes:?}"
    );
}

#[test]
fn import_mastodon_allow_export_stays_exact() {
    let conn = open_in_memory().unwrap();
    let r = import_domains(&conn, List::Allow, "#domain\nfriend.example\n").unwrap();
    assert_eq!(r.format, ImportFormat::MastodonCsv);
    assert_eq!(r.added, ["friend.example"]);
}
