//! Reading posts back from the `posts` table: one by slug or id, and the listings pages and
//! collections show (home, tags, outbox), with their counts.

use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Visibility;
use super::post::Post;

const POST_COLUMNS: &str = "id, slug, title, summary, content_html, visibility, language, in_reply_to, \
     sensitive, tags, mentions, attachments, published, updated, deleted_at, quote, quotes, \
     (SELECT o.state FROM own_quote_requests o WHERE o.post_id = posts.id), \
     (SELECT o.authorization FROM own_quote_requests o WHERE o.post_id = posts.id), \
     (SELECT a.state FROM own_reply_approvals a WHERE a.post_id = posts.id), \
     (SELECT a.approved_by FROM own_reply_approvals a WHERE a.post_id = posts.id)";

fn parse_time(s: Option<String>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(&s, &Rfc3339).ok())
}

fn row_to_post(r: &rusqlite::Row) -> rusqlite::Result<Post> {
    let visibility: String = r.get(5)?;
    let tags: String = r.get(9)?;
    let mentions: String = r.get(10)?;
    let attachments: String = r.get(11)?;
    Ok(Post {
        id: r.get(0)?,
        slug: r.get(1)?,
        title: r.get(2)?,
        summary: r.get(3)?,
        content_html: r.get(4)?,
        visibility: Visibility::parse(&visibility).unwrap_or(Visibility::Followers),
        language: r.get(6)?,
        in_reply_to: r.get(7)?,
        sensitive: r.get(8)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        mentions: serde_json::from_str(&mentions).unwrap_or_default(),
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        published: parse_time(Some(r.get(12)?)).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        updated: parse_time(r.get(13)?),
        deleted_at: parse_time(r.get(14)?),
        quote: r.get(15)?,
        quotes: r
            .get::<_, Option<String>>(16)?
            .as_deref()
            .and_then(crate::config::QuotePolicy::parse),
        quote_consent: r
            .get::<_, Option<String>>(17)?
            .and_then(|s| super::post::QuoteConsent::from_row(&s, r.get(18).ok().flatten())),
        reply_approval: r
            .get::<_, Option<String>>(19)?
            .and_then(|s| super::post::ReplyApproval::from_row(&s, r.get(20).ok().flatten())),
    })
}

/// Fills in each mention's actor id when Hortus knows the account (it follows, is followed, or
/// was looked up): Mastodon notifies only when a Mention's `href` is the actor id and the actor
/// is addressed. Unknown accounts are linked but not addressed.
fn resolve_mentions(conn: &Connection, post: &mut Post) -> rusqlite::Result<()> {
    if post.mentions.is_empty() {
        return Ok(());
    }
    for m in &mut post.mentions {
        let handle = m.name.trim_start_matches('@');
        let found = crate::actors::id_by_handle(conn, handle)?;
        m.group = found.as_ref().is_some_and(|(_, group)| *group);
        m.actor = found.map(|(id, _)| id);
    }
    Ok(())
}

fn load_one(
    conn: &Connection,
    filter: &str,
    key: &dyn rusqlite::ToSql,
) -> rusqlite::Result<Option<Post>> {
    let sql = format!("SELECT {POST_COLUMNS} FROM posts WHERE {filter}");
    let found = conn
        .prepare_cached(&sql)?
        .query_row([key], row_to_post)
        .optional()?;
    let Some(mut post) = found else {
        return Ok(None);
    };
    resolve_mentions(conn, &mut post)?;
    Ok(Some(post))
}

/// A post by slug, deleted or not (the caller decides between 200, 404 and 410).
pub fn by_slug(conn: &Connection, slug: &str) -> rusqlite::Result<Option<Post>> {
    load_one(conn, "slug = ?1", &slug)
}

pub fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<Post>> {
    load_one(conn, "id = ?1", &id)
}

/// Which posts a listing shows.
#[derive(Debug, Clone, Copy)]
pub enum Listing<'a> {
    /// Home page and feed: public posts only.
    Public,
    /// Public posts with a tag.
    Tag(&'a str),
    /// The ActivityPub outbox: public and unlisted posts.
    Outbox,
}

impl Listing<'_> {
    /// The WHERE clause; a tag listing binds its tag as `:tag`.
    fn filter(&self) -> &'static str {
        match self {
            Listing::Public => "deleted_at IS NULL AND visibility = 'public'",
            Listing::Tag(_) => "public = 1 AND tag = :tag",
            Listing::Outbox => "deleted_at IS NULL AND visibility IN ('public', 'unlisted')",
        }
    }

    /// Each listing has its index in its order (migrations 06 and 19), so a page reads its rows
    /// and the ones before it from an index, and sorts nothing. A tag's rows are its post_tags
    /// rows, which carry the post's time and whether it is public and live.
    fn source(&self) -> &'static str {
        match self {
            Listing::Tag(_) => {
                "(SELECT post_id AS id, published, public, tag FROM post_tags \
                  INDEXED BY post_tags_listing)"
            }
            Listing::Public => "posts INDEXED BY posts_listing",
            Listing::Outbox => "posts INDEXED BY posts_outbox",
        }
    }

    /// The listing's own parameters, beside `extra` (e.g. limit and offset).
    fn bind<'p>(
        &self,
        tag: &'p dyn rusqlite::ToSql,
        extra: &[(&'p str, &'p dyn rusqlite::ToSql)],
    ) -> Vec<(&'p str, &'p dyn rusqlite::ToSql)> {
        let mut params = extra.to_vec();
        if matches!(self, Listing::Tag(_)) {
            params.push((":tag", tag));
        }
        params
    }

    /// Names the listing in [`count`]'s memory.
    fn key(&self) -> String {
        match self {
            Listing::Public => "public".into(),
            Listing::Outbox => "outbox".into(),
            Listing::Tag(t) => format!("tag:{}", t.to_lowercase()),
        }
    }

    fn tag(&self) -> String {
        match self {
            Listing::Tag(t) => t.to_lowercase(),
            _ => String::new(),
        }
    }
}

/// Newest first, `limit` posts after skipping `offset`.
pub fn list(
    conn: &Connection,
    listing: Listing,
    limit: u32,
    offset: u64,
) -> rusqlite::Result<Vec<Post>> {
    // The page's ids come from the listing index alone; whole rows are read only for them.
    // Sorting whole rows instead made every outbox page (two visibilities, so no index order)
    // read and sort the full table: most of a 10,000-post export went there.
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE id IN (\
           SELECT id FROM {} WHERE {} ORDER BY published DESC, id DESC \
           LIMIT :limit OFFSET :offset) \
         ORDER BY published DESC, id DESC",
        listing.source(),
        listing.filter()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let (tag, offset) = (listing.tag(), offset as i64);
    let params = listing.bind(&tag, &[(":limit", &limit), (":offset", &offset)]);
    let mut posts: Vec<Post> = stmt
        .query_map(params.as_slice(), row_to_post)?
        .collect::<Result<_, _>>()?;
    for post in &mut posts {
        resolve_mentions(conn, post)?;
    }
    Ok(posts)
}

/// `limit` posts of a listing after `offset`, as ids and publication times only: for merging with
/// other items by time (the outbox's boosts) without reading whole rows for every page before.
pub fn list_keys(
    conn: &Connection,
    listing: Listing,
    offset: u64,
    limit: u32,
) -> rusqlite::Result<Vec<(i64, OffsetDateTime)>> {
    let sql = format!(
        "SELECT id, published FROM {} WHERE {} ORDER BY published DESC, id DESC LIMIT :limit OFFSET :offset",
        listing.source(),
        listing.filter()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let (tag, offset) = (listing.tag(), i64::try_from(offset).unwrap_or(i64::MAX));
    let params = listing.bind(&tag, &[(":limit", &limit), (":offset", &offset)]);
    stmt.query_map(params.as_slice(), |r| {
        Ok((
            r.get(0)?,
            parse_time(Some(r.get(1)?)).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        ))
    })?
    .collect()
}

/// A whole listing's post ids in its order: [`list_keys`] without a time parsed per row (the
/// export keys each listing page by the ids on it, issue 15: the parsing was most of that).
pub fn list_ids(conn: &Connection, listing: Listing) -> rusqlite::Result<Vec<i64>> {
    let sql = format!(
        "SELECT id FROM {} WHERE {} ORDER BY published DESC, id DESC",
        listing.source(),
        listing.filter()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let tag = listing.tag();
    let params = listing.bind(&tag, &[]);
    stmt.query_map(params.as_slice(), |r| r.get(0))?.collect()
}

/// The first `limit` posts of a listing, as slugs and last-modified times (`updated`, else
/// `published`) only: the sitemap's rows. Whole rows (their HTML) would be read for nothing.
pub fn list_lastmod(
    conn: &Connection,
    listing: Listing,
    limit: u32,
) -> rusqlite::Result<Vec<(String, OffsetDateTime)>> {
    let sql = format!(
        "SELECT slug, published, updated FROM posts WHERE id IN (\
           SELECT id FROM {} WHERE {} ORDER BY published DESC, id DESC LIMIT :limit) \
         ORDER BY published DESC, id DESC",
        listing.source(),
        listing.filter()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let tag = listing.tag();
    let params = listing.bind(&tag, &[(":limit", &limit)]);
    stmt.query_map(params.as_slice(), |r| {
        let published = parse_time(Some(r.get(1)?)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok((r.get(0)?, parse_time(r.get(2)?).unwrap_or(published)))
    })?
    .collect()
}

/// How many posts a listing holds. Remembered per database file until posts or tags change
/// (migration 07's generation number), outside transactions only: what a transaction sees
/// before it commits must never be remembered.
pub fn count(conn: &Connection, listing: Listing) -> rusqlite::Result<u64> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Key = (String, String);
    static COUNTS: OnceLock<Mutex<HashMap<Key, (i64, u64)>>> = OnceLock::new();

    let path = conn.path().filter(|p| !p.is_empty());
    let (Some(path), true) = (path, conn.is_autocommit()) else {
        return count_now(conn, listing);
    };
    let generation: i64 = conn
        .prepare_cached("SELECT n FROM posts_generation WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    let key = (path.to_string(), listing.key());
    let counts = COUNTS.get_or_init(Default::default);
    if let Some(&(g, n)) = counts.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
        && g == generation
    {
        return Ok(n);
    }
    // Counted after reading the generation: a change committed in between makes the pair
    // stale-looking (older generation), never wrongly fresh.
    let n = count_now(conn, listing)?;
    let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
    if counts.len() >= 4096 {
        counts.clear(); // one entry per tag asked for: bounded, whatever crawlers request
    }
    counts.insert(key, (generation, n));
    Ok(n)
}

fn count_now(conn: &Connection, listing: Listing) -> rusqlite::Result<u64> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE {}",
        listing.source(),
        listing.filter()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let tag = listing.tag();
    let params = listing.bind(&tag, &[]);
    let n: i64 = stmt.query_row(params.as_slice(), |r| r.get(0))?;
    Ok(n as u64)
}

/// Every live reply or quote: its id, the post it answers or quotes, and its mentions as
/// stored (JSON). A post that does both comes twice, next to each other.
pub fn replies_with_mentions(conn: &Connection) -> rusqlite::Result<Vec<(i64, String, String)>> {
    conn.prepare(
        "SELECT id, in_reply_to, mentions FROM posts
             WHERE in_reply_to IS NOT NULL AND deleted_at IS NULL
         UNION ALL
         SELECT id, quote, mentions FROM posts WHERE quote IS NOT NULL AND deleted_at IS NULL
         ORDER BY 1",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

/// Replaces a post's mentions (JSON), e.g. with the author of the post it answers.
pub fn set_mentions(conn: &Connection, id: i64, mentions_json: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE posts SET mentions = ?2 WHERE id = ?1",
        rusqlite::params![id, mentions_json],
    )
}

/// What live posts answer or quote, each once, in order.
pub fn reply_targets(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare(
        "SELECT in_reply_to FROM posts WHERE in_reply_to IS NOT NULL AND deleted_at IS NULL
         UNION
         SELECT quote FROM posts WHERE quote IS NOT NULL AND deleted_at IS NULL ORDER BY 1",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// The `user@host` of every mention in a live post that no cached actor has (any case), each
/// once: what `hortus publish` looks up over WebFinger.
pub fn unresolved_mentions(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT substr(json_extract(m.value, '$.name'), 2) FROM posts p, json_each(p.mentions) m
         WHERE p.deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM remote_actors a
                           WHERE lower(a.handle) = lower(substr(json_extract(m.value, '$.name'), 2)))
         ORDER BY 1",
    )?;
    stmt.query_map([], |r| r.get::<_, String>(0))?.collect()
}

/// The owner's world-readable posts that answer something: (id, what it answers). Only these
/// two columns, so a site with many replies reads little per page.
pub fn local_replies(conn: &Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    conn.prepare_cached(
        "SELECT id, in_reply_to FROM posts WHERE in_reply_to IS NOT NULL AND deleted_at IS NULL
         AND visibility != 'followers'",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// A page of the owner's live posts of every visibility by id, as the client API pages them
/// (Mastodon's `max_id` / `since_id` / `min_id`): newest first, except that `min_id` asks for the
/// posts just after it, oldest first, so the caller reverses them.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdPage {
    pub max_id: Option<i64>,
    pub since_id: Option<i64>,
    pub min_id: Option<i64>,
    pub limit: u32,
    pub exclude_replies: bool,
    /// Public posts only (the API's public and tag timelines).
    pub public_only: bool,
}

pub fn page_by_id(conn: &Connection, page: IdPage) -> rusqlite::Result<Vec<Post>> {
    page_by_id_tagged(conn, page, None)
}

/// [`page_by_id`], only posts with `tag` (lower case) when given.
pub fn page_by_id_tagged(
    conn: &Connection,
    page: IdPage,
    tag: Option<&str>,
) -> rusqlite::Result<Vec<Post>> {
    let ascending = page.min_id.is_some() && page.max_id.is_none() && page.since_id.is_none();
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE deleted_at IS NULL \
           AND (?1 IS NULL OR id < ?1) AND (?2 IS NULL OR id > ?2) AND (?3 IS NULL OR id > ?3) \
           AND (?4 = 0 OR in_reply_to IS NULL) AND (?6 = 0 OR visibility = 'public') \
           AND (?7 IS NULL OR id IN (SELECT post_id FROM post_tags WHERE tag = ?7)) \
         ORDER BY id {} LIMIT ?5",
        if ascending { "ASC" } else { "DESC" }
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut posts: Vec<Post> = stmt
        .query_map(
            rusqlite::params![
                page.max_id,
                page.since_id,
                page.min_id,
                page.exclude_replies,
                page.limit,
                page.public_only,
                tag
            ],
            row_to_post,
        )?
        .collect::<Result<_, _>>()?;
    if ascending {
        posts.reverse();
    }
    for post in &mut posts {
        resolve_mentions(conn, post)?;
    }
    Ok(posts)
}

/// Live posts of every visibility (the API's `statuses_count`).
pub fn count_live(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT count(*) FROM posts WHERE deleted_at IS NULL",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
}

/// The file a post was published from (relative to the site), live or deleted.
pub fn source_path(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT source_path FROM posts WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()
}

/// Is the slug taken, by a live or a deleted post (a slug is never reused silently)?
pub fn slug_taken(conn: &Connection, slug: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM posts WHERE slug = ?1", [slug], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// The owner's live posts whose HTML holds `text` (any case), newest first (the API's search).
pub fn search_text(conn: &Connection, text: &str, limit: u32) -> rusqlite::Result<Vec<Post>> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE deleted_at IS NULL \
           AND instr(lower(content_html), lower(?1)) > 0 ORDER BY id DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut posts: Vec<Post> = stmt
        .query_map(rusqlite::params![text, limit], row_to_post)?
        .collect::<Result<_, _>>()?;
    for post in &mut posts {
        resolve_mentions(conn, post)?;
    }
    Ok(posts)
}

/// The owner's tags that start with `prefix` (lower case), most used first.
pub fn tags_starting(conn: &Connection, prefix: &str, limit: u32) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.tag FROM post_tags t JOIN posts p ON p.id = t.post_id
         WHERE p.deleted_at IS NULL AND substr(t.tag, 1, length(?1)) = ?1
         GROUP BY t.tag ORDER BY count(*) DESC, t.tag LIMIT ?2",
    )?;
    stmt.query_map(rusqlite::params![prefix, limit], |r| r.get(0))?
        .collect()
}

/// A post's id, `updated` and `deleted_at`, as [`changed_since`] finds them.
pub type Change = (i64, Option<String>, Option<String>);

/// Posts edited or deleted at or after `since` (RFC 3339) (the streaming API's `status.update`
/// and `delete` events).
pub fn changed_since(conn: &Connection, since: &str) -> rusqlite::Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, updated, deleted_at FROM posts WHERE updated >= ?1 OR deleted_at >= ?1",
    )?;
    stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}
