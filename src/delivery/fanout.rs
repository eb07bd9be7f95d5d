//! From posts to deliveries: which activity a post change makes, and whose inboxes it goes to.
//!
//! `post_federation` remembers what followers were last told about each post, so this step
//! compares the posts table with it rather than trusting one publish run's report: a publish
//! that crashed after syncing posts but before queueing is completed by the next one, and a
//! re-run finds nothing to send. Activity ids are derived from the post, never random:
//!
//! | change                     | activity | id                                      |
//! |----------------------------|----------|-----------------------------------------|
//! | new post                   | Create   | `{object}#create`                       |
//! | edited post                | Update   | `{object}#update-{unix updated}-{hash}` |
//! | removed post               | Delete   | `{object}#delete-{hash}` (Tombstone)    |
//! | removed post put back      | Create   | `{object}#create-{unix updated}`        |
//!
//! (`hash` is the start of the file's hash, so two edits within one second differ; for a
//! Delete, of the id of what followers were last sent, so removing a post that was put back
//! makes a new Delete rather than one receivers and the queue have already seen.)
//!
//! Recipients, resolved when the activity is queued (the policy is checked again at sending):
//! every follower in state `accepted`, one delivery per shared inbox (or the actor's inbox when
//! it has none), for every visibility — followers-only posts go to followers only. Mentioned
//! accounts are added when they are known actors in `remote_actors` (matched on actor id,
//! profile URL or `user@host` handle): the Markdown renderer only guesses a mention's href, and
//! Hortus never delivers to a guess.
//!
//! A caller above this layer may narrow a post's audience ([`Narrow`]): GoToSocial's reply
//! approvals (PROTOCOL.md §9, `conversation::replying::audience`) send a reply that waits for
//! its author's approval to that author alone, and to followers only once it carries
//! `approvedBy`.

use rusqlite::{Connection, params};
use serde_json::Value;
use std::time::SystemTime;

use super::{DeliveryError, queue, unix_ms};
use crate::activitypub::{self as ap, Site};
use crate::posts::{self, Post};

/// What one call of [`federate_posts`] queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Federated {
    /// (activity type, activity id) in the order they were queued.
    pub activities: Vec<(String, String)>,
    pub deliveries: usize,
}

/// Who a post's activity goes to instead of [`recipients`], when not everyone: `Ok(None)` for
/// the usual audience, `Ok(Some(inboxes))` for exactly those inboxes (possibly none).
pub type Narrow<'a> = &'a dyn Fn(&Connection, &Post) -> rusqlite::Result<Option<Vec<String>>>;

/// The audience of every post is the usual one.
pub fn everyone(_: &Connection, _: &Post) -> rusqlite::Result<Option<Vec<String>>> {
    Ok(None)
}

/// Queues an activity for every post whose state differs from what followers were last told,
/// in one transaction with the record of having told them.
pub fn federate_posts(
    conn: &mut Connection,
    site: &Site,
    now: SystemTime,
    narrow: Narrow,
) -> Result<Federated, DeliveryError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    type Changed = (i64, String, bool, Option<String>, Option<String>);
    let changed: Vec<Changed> = {
        let mut stmt = tx.prepare(
            "SELECT p.id, p.source_hash, p.deleted_at IS NOT NULL, f.state, f.activity_id
             FROM posts p LEFT JOIN post_federation f ON f.post_id = p.id
             WHERE f.post_id IS NULL
                OR (p.deleted_at IS NULL) != (f.state = 'created')
                OR (p.deleted_at IS NULL AND f.source_hash != p.source_hash)
             ORDER BY p.published, p.id",
        )?;
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?
    };
    // Per batch: load the changed posts and decide each one's activity (type and id) and its
    // inboxes (SQL, on this connection), build the bodies of those that go to someone on all
    // cores (the teaser's HTML parse was a third of a first publish: issue 15), then queue
    // them in order on this thread. A body nobody receives is not built: a first publish
    // before anyone follows spent a quarter of its time making 10,000 Creates that
    // `enqueue_at` then dropped. Batches bound the posts held in memory at once.
    const BATCH: usize = 1024;
    // Who follows does not change within this transaction: read once, not once per post.
    let followers = crate::graph::followers::accepted_inboxes(&tx)?;
    let mut report = Federated::default();
    for batch in changed.chunks(BATCH) {
        let mut planned = Vec::with_capacity(batch.len());
        for (post_id, hash, deleted, told, last_sent) in batch {
            let Some(post) = posts::by_id(&tx, *post_id)? else {
                continue;
            };
            let head = activity_head(
                site,
                &post,
                hash,
                *deleted,
                told.as_deref(),
                last_sent.as_deref(),
            );
            let inboxes = match head {
                Some(_) => match narrow(&tx, &post)? {
                    Some(only) => only,
                    None => recipients_among(&tx, &followers, &post)?,
                },
                None => Vec::new(),
            };
            planned.push((post, hash, *deleted, head, inboxes));
        }
        let bodies = posts::map_on_all_cores(&planned, |(post, _, _, head, inboxes)| match head {
            Some(head) if !inboxes.is_empty() => Some(activity_body(site, post, head)),
            _ => None,
        });
        for ((post, hash, deleted, head, inboxes), body) in planned.iter().zip(bodies) {
            let activity_id = match head {
                Some(head) => {
                    if let Some(activity) = &body {
                        report.deliveries += queue::enqueue_at(&tx, activity, inboxes, now)?;
                    }
                    report
                        .activities
                        .push((head.kind.as_str().to_string(), head.id.clone()));
                    head.id.clone()
                }
                None => String::new(),
            };
            tx.prepare_cached(
                "INSERT INTO post_federation (post_id, state, source_hash, activity_id, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (post_id) DO UPDATE SET state = ?2, source_hash = ?3,
                     activity_id = ?4, updated_ms = ?5",
            )?
            .execute(params![
                post.id,
                if *deleted { "deleted" } else { "created" },
                hash,
                activity_id,
                unix_ms(now)
            ])?;
        }
    }
    tx.commit()?;
    if report.deliveries > 0 {
        super::wake_workers();
    }
    Ok(report)
}

/// Which kind of activity tells followers of a post's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    /// A Create again, for a removed post put back.
    Recreate,
    Update,
    Delete,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Create | Kind::Recreate => "Create",
            Kind::Update => "Update",
            Kind::Delete => "Delete",
        }
    }
}

/// An activity's type and id, decided before (and without) building its body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    kind: Kind,
    id: String,
}

/// The activity that tells followers of a post's change, given what they were last `told` (and
/// the id `last_sent`); none for a post removed before anyone heard of it.
fn activity_head(
    site: &Site,
    post: &Post,
    hash: &str,
    deleted: bool,
    told: Option<&str>,
    last_sent: Option<&str>,
) -> Option<Head> {
    let object = site.urls.post_object(&post.slug);
    let (kind, id) = match (told, deleted) {
        // Removed before anyone heard of it: nothing to take back.
        (None, true) => return None,
        // The id `ap::create` gives too (for the Note's own `replies`/quote references).
        (None, false) => (Kind::Create, format!("{object}#create")),
        (Some("deleted"), false) => (
            Kind::Recreate,
            format!("{object}#create-{}", unix_seconds(post)),
        ),
        (Some(_), true) => {
            let sent = openssl::sha::sha256(last_sent.unwrap_or_default().as_bytes());
            let tag: String = sent[..4].iter().map(|b| format!("{b:02x}")).collect();
            (Kind::Delete, format!("{object}#delete-{tag}"))
        }
        (Some(_), false) => (
            Kind::Update,
            format!(
                "{object}#update-{}-{}",
                unix_seconds(post),
                &hash[..hash.len().min(8)]
            ),
        ),
    };
    Some(Head { kind, id })
}

/// The activity [`activity_head`] decided, whole.
fn activity_body(site: &Site, post: &Post, head: &Head) -> Value {
    match head.kind {
        // The id recorded is the one sent, from one place ([`activity_head`]).
        Kind::Create | Kind::Recreate => {
            let mut a = ap::create(site, post);
            a["id"] = Value::String(head.id.clone());
            a
        }
        Kind::Update => ap::update(site, post, &head.id),
        Kind::Delete => ap::delete(site, post, &head.id),
    }
}

/// The time of the post's last change, in whole seconds: what makes Update ids unique per edit.
fn unix_seconds(post: &Post) -> i64 {
    post.updated.unwrap_or(post.published).unix_timestamp()
}

/// Every inbox a post's activity goes to: accepted followers (shared inbox preferred) and
/// mentioned accounts Hortus knows, each inbox once, in a stable order.
pub fn recipients(conn: &Connection, post: &Post) -> Result<Vec<String>, DeliveryError> {
    let followers = crate::graph::followers::accepted_inboxes(conn)?;
    recipients_among(conn, &followers, post)
}

/// [`recipients`], given the followers' inboxes (`accepted_inboxes`) already read.
fn recipients_among(
    conn: &Connection,
    followers: &[String],
    post: &Post,
) -> Result<Vec<String>, DeliveryError> {
    let mut inboxes = followers.to_vec();
    // By actor id (resolved over WebFinger, or from the handle, which is derived from the actor
    // id's own host), never by `href`/`url`: any server can claim any profile URL (issue 9).
    for m in &post.mentions {
        let handle = m.name.trim_start_matches('@');
        let inbox = crate::actors::inbox_for(conn, m.actor.as_deref(), handle)?;
        if let Some(inbox) = inbox
            && !inboxes.contains(&inbox)
        {
            inboxes.push(inbox);
        }
    }
    Ok(inboxes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::urls::Urls;

    fn site_parts() -> (crate::config::Config, Urls) {
        let text = "domain = \"example.net\"\nbase_url = \"https://example.net\"\n[user]\nname = \"alice\"\n";
        let config: crate::config::Config = toml::from_str(text).unwrap();
        let urls = Urls::new(&config.base_url, &config.user.name);
        (config, urls)
    }

    fn follower(conn: &Connection, id: &str, inbox: &str, shared: Option<&str>, state: &str) {
        conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, shared_inbox, handle, url, raw, fetched_at)
             VALUES (?1, 'h', ?2, ?3, NULL, NULL, '{}', '2026-01-01T00:00:00Z')",
            params![id, inbox, shared],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO followers (actor_id, follow_id, state, created_at)
             VALUES (?1, ?1 || '#follow', ?2, '2026-01-01T00:00:00Z')",
            params![id, state],
        )
        .unwrap();
    }

    fn inboxes_of(conn: &Connection, activity: &str) -> Vec<String> {
        conn.prepare("SELECT inbox FROM deliveries WHERE activity_id = ?1 ORDER BY inbox")
            .unwrap()
            .query_map([activity], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn create_update_delete_each_once_to_each_shared_inbox() {
        let (config, urls) = site_parts();
        let site = Site {
            config: &config,
            urls: &urls,
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
        let post = dir.path().join("content/posts/hi.md");
        let mut conn = crate::db::open_in_memory().unwrap();
        follower(
            &conn,
            "https://a.example/u/1",
            "https://a.example/u/1/inbox",
            Some("https://a.example/inbox"),
            "accepted",
        );
        follower(
            &conn,
            "https://a.example/u/2",
            "https://a.example/u/2/inbox",
            Some("https://a.example/inbox"),
            "accepted",
        );
        follower(
            &conn,
            "https://b.example/u/3",
            "https://b.example/u/3/inbox",
            None,
            "accepted",
        );
        follower(
            &conn,
            "https://c.example/u/4",
            "https://c.example/u/4/inbox",
            None,
            "pending",
        );
        follower(
            &conn,
            "https://d.example/u/5",
            "https://d.example/u/5/inbox",
            None,
            "suspended",
        );
        let now = SystemTime::now();

        std::fs::write(&post, "Hello").unwrap();
        posts::publish(&mut conn, dir.path(), &urls).unwrap();
        let r = federate_posts(&mut conn, &site, now, &everyone).unwrap();
        let create = "https://example.net/posts/hi.json#create";
        assert_eq!(r.activities, [("Create".to_string(), create.to_string())]);
        assert_eq!(r.deliveries, 2);
        assert_eq!(
            inboxes_of(&conn, create),
            ["https://a.example/inbox", "https://b.example/u/3/inbox"]
        );
        // Nothing changed: nothing new, even though the report-free comparison runs again.
        assert_eq!(
            federate_posts(&mut conn, &site, now, &everyone).unwrap(),
            Federated::default()
        );

        std::fs::write(&post, "Hello, edited").unwrap();
        posts::publish(&mut conn, dir.path(), &urls).unwrap();
        let r = federate_posts(&mut conn, &site, now, &everyone).unwrap();
        assert_eq!(r.activities.len(), 1);
        let (kind, id) = &r.activities[0];
        assert_eq!(kind, "Update");
        assert!(
            id.starts_with("https://example.net/posts/hi.json#update-"),
            "{id}"
        );
        let body: String = conn
            .query_row(
                "SELECT body FROM outgoing_activities WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        let update: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(update["object"]["id"], "https://example.net/posts/hi.json");
        assert!(update["object"]["updated"].is_string());
        assert!(
            update["object"]["content"]
                .as_str()
                .unwrap()
                .contains("edited")
        );

        std::fs::remove_file(&post).unwrap();
        posts::publish(&mut conn, dir.path(), &urls).unwrap();
        let r = federate_posts(&mut conn, &site, now, &everyone).unwrap();
        assert_eq!(r.activities.len(), 1);
        let (kind, delete) = &r.activities[0];
        assert_eq!(kind, "Delete");
        assert!(delete.starts_with("https://example.net/posts/hi.json#delete-"));
        let body: String = conn
            .query_row(
                "SELECT body FROM outgoing_activities WHERE id = ?1",
                [delete.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        let del: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(del["object"]["type"], "Tombstone");
        assert_eq!(inboxes_of(&conn, delete).len(), 2);
        assert_eq!(
            federate_posts(&mut conn, &site, now, &everyone).unwrap(),
            Federated::default()
        );

        // Put back, then removed again (within the same second): a Create, then a Delete that
        // is new to the queue and to receivers, so followers lose the post again.
        std::fs::write(&post, "edited #Rust").unwrap();
        posts::publish(&mut conn, dir.path(), &urls).unwrap();
        let back = federate_posts(&mut conn, &site, now, &everyone).unwrap();
        assert_eq!(back.activities[0].0, "Create");
        assert_eq!(back.deliveries, 2);
        std::fs::remove_file(&post).unwrap();
        posts::publish(&mut conn, dir.path(), &urls).unwrap();
        let again = federate_posts(&mut conn, &site, now, &everyone).unwrap();
        assert_eq!(again.activities[0].0, "Delete");
        assert_ne!(&again.activities[0].1, delete);
        assert_eq!(again.deliveries, 2, "queued for both inboxes again");
    }

    #[test]
    fn followers_only_posts_reach_followers_and_known_mentions_only() {
        let (config, urls) = site_parts();
        let site = Site {
            config: &config,
            urls: &urls,
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
        let mut conn = crate::db::open_in_memory().unwrap();
        follower(
            &conn,
            "https://a.example/u/1",
            "https://a.example/u/1/inbox",
            None,
            "accepted",
        );
        conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, shared_inbox, handle, url, raw, fetched_at)
             VALUES ('https://m.example/users/bob', 'm.example', 'https://m.example/users/bob/inbox',
                     'https://m.example/inbox', 'bob@m.example', 'https://m.example/@bob', '{}', 'x')",
            [],
        )
        .unwrap();
        std::fs::write(
            dir.path().join("content/posts/secret.md"),
            "+++\nvisibility = \"followers\"\n+++\nHi @bob@m.example and @nobody@unknown.example",
        )
        .unwrap();
        posts::publish(&mut conn, dir.path(), &urls).unwrap();
        let r = federate_posts(&mut conn, &site, SystemTime::now(), &everyone).unwrap();
        assert_eq!(
            inboxes_of(&conn, &r.activities[0].1),
            ["https://a.example/u/1/inbox", "https://m.example/inbox"]
        );
    }

    #[test]
    fn a_crash_between_sync_and_queueing_is_completed_by_the_next_publish() {
        let (config, urls) = site_parts();
        let site = Site {
            config: &config,
            urls: &urls,
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
        let mut conn = crate::db::open_in_memory().unwrap();
        follower(
            &conn,
            "https://a.example/u/1",
            "https://a.example/u/1/inbox",
            None,
            "accepted",
        );
        std::fs::write(dir.path().join("content/posts/p.md"), "Post").unwrap();
        // The sync commits; the process dies before federate_posts runs.
        posts::publish(&mut conn, dir.path(), &urls).unwrap();
        // The next publish finds no file change, yet the post still goes out.
        assert!(
            posts::publish(&mut conn, dir.path(), &urls)
                .unwrap()
                .is_empty()
        );
        let r = federate_posts(&mut conn, &site, SystemTime::now(), &everyone).unwrap();
        assert_eq!(r.deliveries, 1);
    }
}
