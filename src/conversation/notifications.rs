//! `hortus inbox`: what happened around the owner, newest first. Read from the tables that
//! hold the things themselves (followers, remote posts, reactions, knocks, moves), so an undone
//! like or a deleted reply is gone from the list too.

use std::fmt::Write as _;

use rusqlite::Connection;
use serde::Serialize;

use super::note::parse_time;
use crate::urls::Urls;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Notification {
    /// follower, follow_request, reply, mention, quote, quote_request, reply_approval, like,
    /// boost, knock, move, problem
    pub kind: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// The actor's id (a host, for knocks).
    pub actor: String,
    /// `user@host` when known.
    pub account: Option<String>,
    /// Our post it is about.
    pub post: Option<String>,
    pub post_url: Option<String>,
    /// The remote object or activity id.
    pub object: Option<String>,
    /// Where a person reads it.
    pub url: Option<String>,
    /// An excerpt of the text, or what happened, in words.
    pub text: Option<String>,
    /// Private replies and mentions are never shown on a page.
    pub private: bool,
    /// The owner hid it from the page.
    pub hidden: bool,
    /// For a problem: the server whose request was refused, the check that refused it and how
    /// often within the hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

impl Notification {
    fn new(kind: &str, at: String, actor: String) -> Notification {
        Notification {
            kind: kind.to_string(),
            at,
            actor,
            account: None,
            post: None,
            post_url: None,
            object: None,
            url: None,
            text: None,
            private: false,
            hidden: false,
            server: None,
            check: None,
            count: None,
        }
    }
}

fn followers(conn: &Connection, out: &mut Vec<Notification>) -> rusqlite::Result<()> {
    for (f, url) in crate::graph::followers::all_with_profiles(conn)? {
        let state = f.state;
        let kind = if state == "pending" {
            "follow_request"
        } else {
            "follower"
        };
        let mut n = Notification::new(kind, f.created_at, f.actor_id);
        n.account = f.handle;
        n.url = url;
        if state == "suspended" {
            n.text = Some("suspended: their server is not allowed".into());
        } else if state == "pending" {
            n.text = Some("waiting: hortus followers approve ACCOUNT".into());
        }
        out.push(n);
    }
    Ok(())
}

fn remote_posts(
    conn: &Connection,
    urls: &Urls,
    out: &mut Vec<Notification>,
) -> rusqlite::Result<()> {
    // A quote without a standing stamp (FEP-044f) is listed as a plain mention.
    let authorised = super::consent::authorised("n");
    let mut stmt = conn.prepare(&format!(
        "SELECT n.id, n.actor_id, n.received_at, n.url, n.content_html, n.visibility, n.hidden,
                n.quote_post_id IS NOT NULL AND {authorised}, n.thread_post_id IS NOT NULL, a.handle,
                COALESCE(q.slug, t.slug)
         FROM remote_notes n
         LEFT JOIN remote_actors a ON a.id = n.actor_id
         LEFT JOIN posts q ON q.id = n.quote_post_id
         LEFT JOIN posts t ON t.id = n.thread_post_id
         WHERE n.deleted_at IS NULL
           -- Posts kept only for the home timeline (src/timeline) are not notifications.
           AND (n.thread_post_id IS NOT NULL OR n.quote_post_id IS NOT NULL OR n.mentions_owner = 1)
         ORDER BY n.received_at DESC, n.rowid DESC"
    ))?;
    let rows = stmt.query_map([], |r| {
        let kind = if r.get::<_, bool>(7)? {
            "quote"
        } else if r.get::<_, bool>(8)? {
            "reply"
        } else {
            "mention"
        };
        let mut n = Notification::new(kind, r.get(2)?, r.get(1)?);
        n.object = Some(r.get(0)?);
        n.url = r.get(3)?;
        n.text = Some(crate::text::text_of(&r.get::<_, String>(4)?, 120));
        n.private = r.get::<_, String>(5)? == "private";
        n.hidden = r.get(6)?;
        n.account = r.get(9)?;
        let slug: Option<String> = r.get(10)?;
        n.post_url = slug.as_deref().map(|s| urls.post_page(s));
        n.post = slug;
        Ok(n)
    })?;
    for row in rows {
        out.push(row?);
    }
    Ok(())
}

fn reactions(conn: &Connection, urls: &Urls, out: &mut Vec<Notification>) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT r.kind, r.actor_id, r.created_at, r.activity_id, a.handle, p.slug
         FROM reactions r JOIN posts p ON p.id = r.post_id
         LEFT JOIN remote_actors a ON a.id = r.actor_id
         ORDER BY r.created_at DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        let mut n = Notification::new(&r.get::<_, String>(0)?, r.get(2)?, r.get(1)?);
        n.object = Some(r.get(3)?);
        n.account = r.get(4)?;
        let slug: String = r.get(5)?;
        n.post_url = Some(urls.post_page(&slug));
        n.post = Some(slug);
        Ok(n)
    })?;
    for row in rows {
        out.push(row?);
    }
    Ok(())
}

fn moves(conn: &Connection, out: &mut Vec<Notification>) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT old_actor, new_actor, activity_id, outcome, created_at FROM account_moves",
    )?;
    let rows = stmt.query_map([], |r| {
        let mut n = Notification::new("move", r.get(4)?, r.get(0)?);
        n.url = Some(r.get(1)?);
        n.object = Some(r.get(2)?);
        n.text = Some(format!(
            "moved to {}: {}",
            r.get::<_, String>(1)?,
            r.get::<_, String>(3)?
        ));
        Ok(n)
    })?;
    for row in rows {
        out.push(row?);
    }
    Ok(())
}

/// Quote requests waiting for the owner (`[site] quotes_need_approval`, FEP-044f).
fn quote_requests(
    conn: &Connection,
    urls: &Urls,
    out: &mut Vec<Notification>,
) -> rusqlite::Result<()> {
    for (q, slug) in super::consent::pending(conn)? {
        let mut n = Notification::new("quote_request", q.received_at, q.actor_id);
        n.object = Some(q.quoting.clone());
        n.url = Some(q.quoting.clone());
        n.text = Some(format!(
            "waiting: hortus quotes approve {0} (or reject {0})",
            q.quoting
        ));
        n.post_url = Some(urls.post_page(&slug));
        n.post = Some(slug);
        out.push(n);
    }
    Ok(())
}

/// The owner's replies to posts that ask for approval (GoToSocial): waiting, approved or
/// refused by the author.
fn reply_approvals(
    conn: &Connection,
    urls: &Urls,
    out: &mut Vec<Notification>,
) -> rusqlite::Result<()> {
    for r in super::approvals::all(conn)? {
        let author = super::replying::known_author(conn, urls, &r.target)?;
        let mut n = Notification::new(
            "reply_approval",
            r.updated_at,
            author.unwrap_or_else(|| r.target.clone()),
        );
        n.text = Some(match r.state.as_str() {
            "pending" => format!(
                "your reply is pending approval by the author of {}",
                r.target
            ),
            "approved" => format!("your reply to {} was approved by its author", r.target),
            _ => format!("your reply to {} was refused by its author", r.target),
        });
        n.object = Some(r.target.clone());
        n.url = Some(r.target);
        n.post_url = Some(urls.post_page(&r.slug));
        n.post = Some(r.slug);
        out.push(n);
    }
    Ok(())
}

/// Requests from allowed servers that the inbox refused (`activitypub::refusal`): one entry per
/// server, check and reason per hour, with its count.
fn problems(conn: &Connection, limit: usize, out: &mut Vec<Notification>) -> rusqlite::Result<()> {
    for r in crate::activitypub::refusal::recent(conn, limit)? {
        let mut n = Notification::new("problem", r.last_at, r.actor_id.unwrap_or(r.host.clone()));
        let what = r.activity_type.as_deref().unwrap_or("request");
        let times = if r.count > 1 {
            format!(" ({}× since {})", r.count, r.first_at)
        } else {
            String::new()
        };
        n.text = Some(format!(
            "{what} from {} refused at the {} check{times}: {}",
            r.host, r.check, r.reason
        ));
        n.object = r.key_id;
        n.server = Some(r.host);
        n.check = Some(r.check);
        n.count = Some(r.count);
        out.push(n);
    }
    Ok(())
}

/// Every notification, newest first, at most `limit`.
pub fn list(conn: &Connection, urls: &Urls, limit: usize) -> Result<Vec<Notification>, String> {
    let mut out = Vec::new();
    let db = |e: rusqlite::Error| e.to_string();
    followers(conn, &mut out).map_err(db)?;
    remote_posts(conn, urls, &mut out).map_err(db)?;
    reactions(conn, urls, &mut out).map_err(db)?;
    moves(conn, &mut out).map_err(db)?;
    quote_requests(conn, urls, &mut out).map_err(db)?;
    reply_approvals(conn, urls, &mut out).map_err(db)?;
    problems(conn, limit, &mut out).map_err(db)?;
    for k in crate::federation::knocks(conn, limit).map_err(|e| e.to_string())? {
        let types: Vec<String> = k
            .sample_types
            .iter()
            .map(|(t, n)| format!("{t}×{n}"))
            .collect();
        let mut n = Notification::new("knock", k.last_seen, k.host.clone());
        n.text = Some(format!(
            "{} refused request(s) {}; allow with: hortus allow add {}",
            k.count,
            types.join(", "),
            k.host.split(':').next().unwrap_or(&k.host)
        ));
        n.account = k.sample_actors.first().cloned();
        out.push(n);
    }
    // What blocked or muted accounts did or said stays out (it is kept, not deleted); refusals
    // of a blocked account's activities are the block working, not a federation problem.
    let silenced = crate::graph::accounts::silenced(conn).map_err(db)?;
    out.retain(|n| {
        !silenced.contains(&n.actor)
            && n.check.as_deref() != Some(crate::activitypub::refusal::ACCOUNT_BLOCK_CHECK)
    });
    // Times come from several tables and precisions: compare them as times. The sort is stable
    // and each table was read newest first, so ties within a second keep that order.
    out.sort_by(|a, b| {
        let ta = parse_time(&a.at);
        let tb = parse_time(&b.at);
        tb.cmp(&ta).then_with(|| b.at.cmp(&a.at))
    });
    out.truncate(limit);
    // Every field may come from a peer; JSON readers get the same clean text (issue 9.4).
    for n in &mut out {
        n.clean();
    }
    Ok(out)
}

impl Notification {
    fn clean(&mut self) {
        let safe = crate::text::strip_controls;
        for field in [&mut self.kind, &mut self.at, &mut self.actor] {
            *field = safe(field);
        }
        for field in [
            &mut self.account,
            &mut self.post,
            &mut self.post_url,
            &mut self.object,
            &mut self.url,
            &mut self.text,
        ]
        .into_iter()
        .flatten()
        {
            *field = safe(field);
        }
    }
}

/// One line per notification, for the terminal.
pub fn render(list: &[Notification]) -> String {
    let mut out = String::new();
    if list.is_empty() {
        out.push_str("Nothing yet.\n");
    }
    for n in list {
        // Every field may come from a peer: one line each, no control characters (issue 9.4).
        let safe = crate::text::strip_controls;
        let when = safe(n.at.get(..16).unwrap_or(&n.at)).replace('T', " ");
        let who = safe(n.account.as_deref().unwrap_or(&n.actor));
        let _ = write!(out, "{when}  {:<14} {who}", n.kind);
        if let Some(post) = &n.post {
            let _ = write!(out, "  on {}", safe(post));
        }
        if n.private {
            out.push_str("  [private]");
        }
        if n.hidden {
            out.push_str("  [hidden]");
        }
        out.push('\n');
        if let Some(text) = n.text.as_deref().filter(|t| !t.is_empty()) {
            let _ = writeln!(out, "    {}", safe(text));
        }
        if let Some(url) = n.url.as_deref().or(n.object.as_deref()) {
            let _ = writeln!(out, "    {}", safe(url));
        }
    }
    out
}
