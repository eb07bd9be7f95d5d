//! What a post's page shows of its conversation: the threaded replies (remote ones, and the
//! owner's own posts that answer them) and the counts of likes, boosts and quotes.
//!
//! Shown: public and unlisted replies that are neither deleted nor hidden. A hidden reply takes
//! its answers with it; a deleted one leaves its answers in its place. Private replies (a direct
//! mention, followers-only) are never on a page: `hortus inbox` lists them.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, params_from_iter};
use time::OffsetDateTime;

use super::note;
use super::store;
use crate::posts::{self, Post};
use crate::sanitize;
use crate::times::rfc3339;
use crate::urls::Urls;

/// Indentation stops here; deeper answers line up with the last level.
pub const MAX_DEPTH: usize = 4;
/// How many rounds of "the owner answered, someone answered the owner" are followed.
const MAX_ROUNDS: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct ConversationView {
    pub replies: Vec<ReplyView>,
    pub likes: u64,
    pub boosts: u64,
    pub quotes: u64,
    /// The owner turned replies off for this post or the whole site.
    pub replies_off: bool,
}

impl ConversationView {
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty() && self.likes == 0 && self.boosts == 0 && self.quotes == 0
    }
}

#[derive(Debug, Clone)]
pub struct Link {
    pub url: String,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct ReplyView {
    /// 0 for an answer to the post itself.
    pub depth: usize,
    /// The owner's own post (then `url` is its page here).
    pub local: bool,
    pub author_name: String,
    /// `@user@host`, or the actor's URL when the handle is unknown.
    pub author_handle: String,
    pub author_url: Option<String>,
    pub server: String,
    pub url: Option<String>,
    pub published_iso: String,
    pub published_human: String,
    pub updated_iso: Option<String>,
    pub updated_human: String,
    pub summary: Option<String>,
    /// Sanitised when it was stored (remote) or rendered (local).
    pub content_html: String,
    pub attachments: Vec<Link>,
}

/// Who the owner is, for their own replies.
pub struct Owner<'a> {
    pub name: &'a str,
    pub handle: &'a str,
    pub home: &'a str,
}

struct Node {
    keys: Vec<String>,
    parent: Option<String>,
    published: String,
    /// Not shown, nor anything under it.
    pruned: bool,
    /// Not shown; its answers take its place.
    deleted: bool,
    view: ReplyView,
}

pub fn human_time(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// Whether what an actor wrote or did may be shown: its server is allowed by the policy now.
/// A server blocked after it replied disappears from the page (and the next export) at once;
/// allowing it again brings its rows back, since nothing is deleted.
pub type Shown<'a> = &'a dyn Fn(&str) -> bool;

fn remote_nodes(
    conn: &Connection,
    thread_posts: &[i64],
    shown: Shown,
) -> rusqlite::Result<Vec<Node>> {
    if thread_posts.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; thread_posts.len()].join(",");
    let sql = format!(
        "SELECT n.id, n.url, n.in_reply_to, n.published, n.updated, n.hidden, n.deleted_at IS NOT NULL,
                n.visibility, n.summary, n.content_html, n.attachments, n.actor_id, n.host,
                a.name, a.handle, a.url
         FROM remote_notes n LEFT JOIN remote_actors a ON a.id = n.actor_id
         WHERE n.thread_post_id IN ({marks})
         ORDER BY n.published, n.id"
    );
    // Cached like every statement a page runs: parsing SQL was an eighth of a post page's time.
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(thread_posts), |r| {
        let id: String = r.get(0)?;
        let url: Option<String> = r.get(1)?;
        let published: String = r.get(3)?;
        let updated: Option<String> = r.get(4)?;
        let hidden: bool = r.get(5)?;
        let deleted: bool = r.get(6)?;
        let visibility: String = r.get(7)?;
        let attachments: String = r.get(10)?;
        let actor: String = r.get(11)?;
        let host: String = r.get(12)?;
        let name: Option<String> = r.get(13)?;
        let handle: Option<String> = r.get(14)?;
        let profile: Option<String> = r.get(15)?;
        let attachments: Vec<note::Attachment> =
            serde_json::from_str(&attachments).unwrap_or_default();
        let handle = handle.map(|h| format!("@{}", crate::text::plain_text(&h, 200)));
        let has_handle = handle.is_some();
        let name = name
            .map(|n| crate::text::plain_text(&n, 100))
            .filter(|n| !n.is_empty())
            .or_else(|| handle.clone())
            .unwrap_or_else(|| actor.clone());
        let mut keys = vec![id.clone()];
        keys.extend(url.clone());
        Ok(Node {
            keys,
            parent: r.get(2)?,
            published: published.clone(),
            pruned: hidden || visibility == "private" || !shown(&actor),
            deleted,
            view: ReplyView {
                depth: 0,
                local: false,
                author_name: name,
                author_handle: handle.unwrap_or_else(|| actor.clone()),
                author_url: profile
                    .as_deref()
                    .and_then(sanitize::http_url)
                    .or_else(|| sanitize::http_url(&actor)),
                // The handle names the server already; say it only when there is no handle.
                server: if has_handle { String::new() } else { host },
                url: url
                    .as_deref()
                    .and_then(sanitize::http_url)
                    .or_else(|| sanitize::http_url(&id)),
                published_human: note::parse_time(&published)
                    .map(human_time)
                    .unwrap_or_default(),
                published_iso: published,
                updated_human: updated
                    .as_deref()
                    .and_then(note::parse_time)
                    .map(human_time)
                    .unwrap_or_default(),
                updated_iso: updated,
                summary: r.get(8)?,
                content_html: r.get(9)?,
                attachments: attachments
                    .into_iter()
                    .map(|a| Link {
                        label: a
                            .name
                            .or(a.media_type)
                            .unwrap_or_else(|| "attachment".into()),
                        url: a.url,
                    })
                    .collect(),
            },
        })
    })?;
    rows.collect()
}

fn local_node(post: &Post, urls: &Urls, owner: &Owner) -> Node {
    Node {
        keys: vec![urls.post_object(&post.slug), urls.post_page(&post.slug)],
        parent: post.in_reply_to.clone(),
        published: crate::times::rfc3339(post.published),
        pruned: false,
        deleted: false,
        view: ReplyView {
            depth: 0,
            local: true,
            author_name: owner.name.to_string(),
            author_handle: format!("@{}", owner.handle),
            author_url: Some(owner.home.to_string()),
            server: String::new(),
            url: Some(urls.post_page(&post.slug)),
            published_iso: rfc3339(post.published),
            published_human: human_time(post.published),
            updated_iso: post.updated.map(rfc3339),
            updated_human: post.updated.map(human_time).unwrap_or_default(),
            summary: post.summary.clone(),
            content_html: post.content_html.clone(),
            attachments: Vec::new(),
        },
    }
}

/// How many rows `sql` (selecting actor ids) gives for the post, from servers still shown.
fn count(conn: &Connection, sql: &str, post_id: i64, shown: Shown) -> rusqlite::Result<u64> {
    let mut n = 0;
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([post_id])?;
    while let Some(row) = rows.next()? {
        if shown(row.get_ref(0)?.as_str().unwrap_or_default()) {
            n += 1;
        }
    }
    Ok(n)
}

/// Everything the page of `post` shows under it.
pub fn load(
    conn: &Connection,
    urls: &Urls,
    post: &Post,
    owner: &Owner,
    shown: Shown,
) -> rusqlite::Result<ConversationView> {
    let likes = count(
        conn,
        "SELECT actor_id FROM reactions WHERE post_id = ?1 AND kind = 'like'",
        post.id,
        shown,
    )?;
    let boosts = count(
        conn,
        "SELECT actor_id FROM reactions WHERE post_id = ?1 AND kind = 'boost'",
        post.id,
        shown,
    )?;
    // FEP-044f: only quotes with a standing stamp count (`consent`).
    let quotes = count(
        conn,
        &format!(
            "SELECT actor_id FROM remote_notes WHERE quote_post_id = ?1 AND deleted_at IS NULL
             AND hidden = 0 AND {}",
            super::consent::authorised("remote_notes")
        ),
        post.id,
        shown,
    )?;
    let replies_off = store::site_replies_off(conn)? || store::post_replies_off(conn, post.id)?;
    let replies = if replies_off {
        Vec::new()
    } else {
        thread(conn, urls, post, owner, shown)?
    };
    Ok(ConversationView {
        replies,
        likes,
        boosts,
        quotes,
        replies_off,
    })
}

fn thread(
    conn: &Connection,
    urls: &Urls,
    post: &Post,
    owner: &Owner,
    shown: Shown,
) -> rusqlite::Result<Vec<ReplyView>> {
    let root_keys = [urls.post_object(&post.slug), urls.post_page(&post.slug)];
    let candidates = crate::posts::store::local_replies(conn)?;
    let mut nodes: Vec<Node> = Vec::new();
    let mut known: HashSet<String> = root_keys.iter().cloned().collect();
    let mut in_thread: HashSet<i64> = HashSet::from([post.id]);
    let mut frontier = vec![post.id];
    for _ in 0..MAX_ROUNDS {
        if frontier.is_empty() {
            break;
        }
        for n in remote_nodes(conn, &frontier, shown)? {
            known.extend(n.keys.iter().cloned());
            nodes.push(n);
        }
        // The owner's posts that answer anything in the thread join it, with their answers.
        frontier = Vec::new();
        let mut grew = true;
        while grew {
            grew = false;
            for (id, answers) in &candidates {
                if known.contains(answers)
                    && in_thread.insert(*id)
                    && let Some(p) = posts::by_id(conn, *id)?
                {
                    let n = local_node(&p, urls, owner);
                    known.extend(n.keys.iter().cloned());
                    nodes.push(n);
                    frontier.push(p.id);
                    grew = true;
                }
            }
        }
    }
    nodes.sort_by(|a, b| a.published.cmp(&b.published));

    // Parent → children, by index; answers to the post itself (or to something we do not
    // have) are at the top.
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for k in &n.keys {
            index_of.entry(k.as_str()).or_insert(i);
        }
    }
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let parent = n
            .parent
            .as_deref()
            .and_then(|p| index_of.get(p).copied())
            .filter(|&p| p != i);
        children.entry(parent).or_default().push(i);
    }
    let mut out = Vec::new();
    let mut visited = vec![false; nodes.len()];
    walk(&nodes, &children, None, 0, &mut visited, &mut out);
    Ok(out)
}

fn walk(
    nodes: &[Node],
    children: &HashMap<Option<usize>, Vec<usize>>,
    parent: Option<usize>,
    depth: usize,
    visited: &mut [bool],
    out: &mut Vec<ReplyView>,
) {
    for &i in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
        // A cycle (a peer that says A answers B and B answers A) is walked once.
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        let n = &nodes[i];
        if n.pruned {
            continue;
        }
        if n.deleted {
            walk(nodes, children, Some(i), depth, visited, out);
            continue;
        }
        let mut view = n.view.clone();
        view.depth = depth.min(MAX_DEPTH);
        out.push(view);
        walk(nodes, children, Some(i), depth + 1, visited, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    fn urls() -> Urls {
        Urls::new(&url::Url::parse("https://me.example").unwrap(), "alice")
    }

    /// A reply row: (id, in_reply_to, published second, hidden, deleted).
    fn insert(
        conn: &Connection,
        post_id: i64,
        id: &str,
        parent: &str,
        sec: u32,
        hidden: bool,
        deleted: bool,
    ) {
        conn.execute(
            "INSERT INTO remote_notes (id, actor_id, host, object_type, in_reply_to, thread_post_id,
                 visibility, content_html, published, hidden, deleted_at, raw, received_at)
             VALUES (?1, 'https://m.example/u/b', 'm.example', 'Note', ?2, ?3, 'public', ?1,
                 ?4, ?5, ?6, '{}', ?4)",
            params![
                id,
                parent,
                post_id,
                format!("2026-01-01T00:00:{sec:02}Z"),
                hidden,
                deleted.then_some("2026-01-02T00:00:00Z")
            ],
        )
        .unwrap();
    }

    #[test]
    fn threads_hide_subtrees_skip_deleted_and_survive_cycles() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
        std::fs::write(dir.path().join("content/posts/hi.md"), "Hello").unwrap();
        let mut conn = crate::db::open_in_memory().unwrap();
        posts::publish(&mut conn, dir.path(), &urls()).unwrap();
        let post = posts::by_slug(&conn, "hi").unwrap().unwrap();
        let root = "https://me.example/posts/hi.json";
        insert(&conn, post.id, "a", root, 1, false, false);
        insert(&conn, post.id, "a1", "a", 2, false, false);
        insert(&conn, post.id, "a11", "a1", 3, false, false);
        insert(&conn, post.id, "a111", "a11", 4, false, false);
        insert(&conn, post.id, "a1111", "a111", 5, false, false);
        insert(&conn, post.id, "a11111", "a1111", 6, false, false);
        insert(&conn, post.id, "h", root, 7, true, false);
        insert(&conn, post.id, "h1", "h", 8, false, false);
        insert(&conn, post.id, "d", root, 9, false, true);
        insert(&conn, post.id, "d1", "d", 10, false, false);
        // x and y answer each other: neither reaches the post, so neither shows.
        insert(&conn, post.id, "x", "y", 11, false, false);
        insert(&conn, post.id, "y", "x", 12, false, false);
        let owner = Owner {
            name: "Alice",
            handle: "alice@me.example",
            home: "https://me.example/",
        };
        let view = load(&conn, &urls(), &post, &owner, &|_| true).unwrap();
        let shown: Vec<(&str, usize)> = view
            .replies
            .iter()
            .map(|r| (r.content_html.as_str(), r.depth))
            .collect();
        assert_eq!(
            shown,
            [
                ("a", 0),
                ("a1", 1),
                ("a11", 2),
                ("a111", 3),
                ("a1111", 4),
                ("a11111", MAX_DEPTH),
                ("d1", 0)
            ]
        );
    }
}
