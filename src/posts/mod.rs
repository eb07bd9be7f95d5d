//! Posts: Markdown files under `content/` synced into the database. The files are the source of
//! truth; the database holds what was published, so ids, dates and tombstones survive edits.

pub mod front_matter;
pub mod markdown;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use front_matter::Visibility;
pub use markdown::Mention;

use crate::urls::Urls;

/// Bumped when rendering changes, so the next publish re-renders every post.
const RENDER_VERSION: &str = "1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    /// Path under the site directory, e.g. `media/cat.jpg`; served at `/media/cat.jpg`.
    pub path: String,
    pub media_type: String,
    pub alt: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Post {
    pub id: i64,
    pub slug: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub content_html: String,
    pub visibility: Visibility,
    pub language: Option<String>,
    pub in_reply_to: Option<String>,
    pub sensitive: bool,
    pub tags: Vec<String>,
    pub mentions: Vec<Mention>,
    pub attachments: Vec<Attachment>,
    pub published: OffsetDateTime,
    pub updated: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
}

impl Post {
    pub fn is_public_listed(&self) -> bool {
        self.deleted_at.is_none() && self.visibility == Visibility::Public
    }
    /// Public or unlisted: may be shown on its permalink and served as JSON to anyone.
    pub fn is_world_readable(&self) -> bool {
        self.deleted_at.is_none() && self.visibility != Visibility::Followers
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{}", format_problems(.0))]
    Invalid(Vec<Problem>),
    #[error("cannot read {path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
}

impl From<crate::db::DbError> for PostError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Sqlite(e) => PostError::Db(e),
            other => PostError::Io {
                path: PathBuf::from("database"),
                reason: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// One mistake in one file: `content/posts/x.md:3: …` plus how to fix it.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
    pub fix: String,
}

fn format_problems(problems: &[Problem]) -> String {
    let mut out = format!(
        "{} problem(s) in posts; nothing was published:",
        problems.len()
    );
    for p in problems {
        out.push_str(&format!(
            "\n{}:{}: {}\n  fix: {}",
            p.path.display(),
            p.line,
            p.message,
            p.fix
        ));
    }
    out
}

/// A post file parsed and rendered, ready to store.
#[derive(Debug, Clone)]
pub struct Draft {
    pub slug: String,
    pub source_path: String,
    pub source_hash: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub content_html: String,
    pub visibility: Visibility,
    pub language: Option<String>,
    pub in_reply_to: Option<String>,
    pub sensitive: bool,
    pub tags: Vec<String>,
    pub mentions: Vec<Mention>,
    pub attachments: Vec<Attachment>,
    pub date: Option<OffsetDateTime>,
}

/// What a publish changed, by post id (for delivery) and slug (for the owner).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub created: Vec<(i64, String)>,
    pub updated: Vec<(i64, String)>,
    pub deleted: Vec<(i64, String)>,
    pub unchanged: usize,
    /// Things that publish but read worse elsewhere, for the owner (file: what and the fix).
    pub warnings: Vec<String>,
}

/// Attachments Mastodon shows on a post (PROTOCOL.md §5); the rest are dropped there.
pub const MASTODON_MAX_MEDIA: usize = 4;

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 80 {
            break;
        }
    }
    slug.trim_end_matches('-').to_string()
}

fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 120
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !slug.starts_with('-')
}

fn media_type(path: &str) -> Option<&'static str> {
    let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        _ => return None,
    })
}

pub fn hex_sha256(data: &[u8]) -> String {
    openssl::sha::sha256(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses a `date` front matter value: a TOML datetime or a string, RFC 3339 or `YYYY-MM-DD`.
fn parse_date(value: &toml::Value) -> Option<OffsetDateTime> {
    let text = match value {
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::String(s) => s.clone(),
        _ => return None,
    };
    if let Ok(d) = OffsetDateTime::parse(&text, &Rfc3339) {
        return Some(d.to_offset(time::UtcOffset::UTC));
    }
    let date = time::Date::parse(
        text.get(..10)?,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    (text.len() == 10).then(|| date.midnight().assume_utc())
}

/// Line (1-based) of the first line starting with `key` in the front matter, for messages.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map_or(1, |i| i + 1)
}

/// What identifies a version of a post file: its bytes and the renderer's version.
pub fn source_hash(text: &str) -> String {
    let mut hashed = Vec::with_capacity(text.len() + 8);
    hashed.extend_from_slice(RENDER_VERSION.as_bytes());
    hashed.push(0);
    hashed.extend_from_slice(text.as_bytes());
    hex_sha256(&hashed)
}

/// The slug a file publishes under, from its front matter alone (no rendering); `None` for
/// drafts and files whose front matter does not parse (the full parse reports those).
fn quick_slug(rel: &str, text: &str) -> Option<String> {
    let (fm, _) = front_matter::split(text).ok()?;
    if fm.draft {
        return None;
    }
    Some(fm.slug.unwrap_or_else(|| slug_from_path(rel)))
}

fn slug_from_path(rel: &str) -> String {
    let stem = Path::new(rel)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    slugify(stem)
}

/// A post file as publishing found it: rendered because it is new or changed, or known unchanged
/// (same bytes as the live post with its slug), which skips Markdown rendering and sanitising.
#[derive(Debug, Clone)]
pub enum Loaded {
    Changed(Box<Draft>),
    Unchanged { slug: String },
}

impl Loaded {
    pub fn slug(&self) -> &str {
        match self {
            Loaded::Changed(d) => &d.slug,
            Loaded::Unchanged { slug } => slug,
        }
    }
}

/// Parses and renders one post file. `rel` is its path relative to the site directory.
pub fn parse_file(
    site_dir: &Path,
    rel: &str,
    text: &str,
    urls: &Urls,
) -> Result<Option<Draft>, Vec<Problem>> {
    let path = PathBuf::from(rel);
    let problem = |line: usize, message: String, fix: &str| Problem {
        path: path.clone(),
        line,
        message,
        fix: fix.to_string(),
    };
    let (fm, body) = front_matter::split(text).map_err(|e| {
        vec![Problem {
            path: path.clone(),
            line: e.line,
            message: e.message,
            fix: e.fix,
        }]
    })?;
    if fm.draft {
        return Ok(None);
    }
    let mut problems = Vec::new();
    let slug = match &fm.slug {
        Some(s) => s.clone(),
        None => slug_from_path(rel),
    };
    if !valid_slug(&slug) {
        problems.push(problem(
            line_of(text, "slug"),
            format!("the slug {slug:?} cannot be used in a URL"),
            "use lower-case letters, digits and dashes, e.g. slug = \"my-first-post\"",
        ));
    }
    let date = match &fm.date {
        None => None,
        Some(v) => match parse_date(v) {
            Some(d) => Some(d),
            None => {
                problems.push(problem(
                    line_of(text, "date"),
                    format!("cannot read the date {v}"),
                    "write it as date = 2026-11-22T10:30:00Z or date = \"2026-11-22\"",
                ));
                None
            }
        },
    };
    if let Some(lang) = &fm.language
        && (lang.is_empty()
            || lang.len() > 35
            || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        problems.push(problem(
            line_of(text, "language"),
            format!("{lang:?} is not a language tag"),
            "use a BCP 47 tag such as \"en\" or \"pt-BR\"",
        ));
    }
    if let Some(reply) = &fm.in_reply_to
        && url::Url::parse(reply).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
    {
        problems.push(problem(
            line_of(text, "in_reply_to"),
            format!("in_reply_to {reply:?} is not an http(s) URL"),
            "paste the URL of the post you answer",
        ));
    }
    for tag in &fm.tags {
        if tag.is_empty()
            || !tag
                .trim_start_matches('#')
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_')
        {
            problems.push(problem(
                line_of(text, "tags"),
                format!("the tag {tag:?} has characters a hashtag cannot have"),
                "use letters, digits and underscores, e.g. tags = [\"rust\", \"fediverse\"]",
            ));
        }
    }
    let mut attachments = Vec::new();
    for image in &fm.images {
        let line =
            line_of(text, &format!("src = \"{}\"", image.src)).max(line_of(text, "[[images]]"));
        let clean = image.src.trim_start_matches('/');
        if clean.split('/').any(|c| c == ".." || c.is_empty()) || !clean.starts_with("media/") {
            problems.push(problem(
                line,
                format!("the image {:?} is not under media/", image.src),
                "put images in the site's media/ folder and write src = \"media/name.jpg\"",
            ));
            continue;
        }
        let Some(mt) = media_type(clean) else {
            problems.push(problem(
                line,
                format!(
                    "{:?} is not a JPEG, PNG, GIF, WebP or AVIF image",
                    image.src
                ),
                "convert it to one of those formats",
            ));
            continue;
        };
        let file = site_dir.join(clean);
        if !file.is_file() {
            problems.push(problem(
                line,
                format!("the image {} does not exist", file.display()),
                "check the file name, or copy the image into media/",
            ));
            continue;
        }
        if image.alt.trim().is_empty() {
            problems.push(problem(
                line,
                format!("the image {:?} has no alt text", image.src),
                "describe it for people who cannot see it: alt = \"…\"",
            ));
        }
        let size = imagesize::size(&file).ok();
        attachments.push(Attachment {
            path: clean.to_string(),
            media_type: mt.to_string(),
            alt: image.alt.chars().take(1500).collect(),
            width: size.as_ref().map(|s| s.width as u32),
            height: size.as_ref().map(|s| s.height as u32),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let rendered = markdown::render(body, urls);
    let mut tags = rendered.tags;
    for tag in &fm.tags {
        let tag = tag.trim_start_matches('#');
        if !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            tags.push(tag.to_string());
        }
    }
    Ok(Some(Draft {
        slug,
        source_path: rel.to_string(),
        source_hash: source_hash(text),
        title: fm.title.filter(|t| !t.trim().is_empty()),
        summary: fm.summary.filter(|s| !s.trim().is_empty()),
        content_html: rendered.html,
        visibility: fm.visibility,
        language: fm.language,
        in_reply_to: fm.in_reply_to,
        sensitive: fm.sensitive,
        tags,
        mentions: rendered.mentions,
        attachments,
        date,
    }))
}

/// Every `.md` file under `content/`, sorted, as paths relative to the site directory. Files and
/// folders starting with `.` or `_` are skipped.
pub fn content_files(site_dir: &Path) -> Result<Vec<String>, PostError> {
    let mut out = Vec::new();
    let root = site_dir.join("content");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == root => return Ok(out),
            Err(reason) => return Err(PostError::Io { path: dir, reason }),
        };
        for entry in entries {
            let entry = entry.map_err(|reason| PostError::Io {
                path: dir.clone(),
                reason,
            })?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".md")
                && let Ok(rel) = path.strip_prefix(site_dir)
            {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every post file and renders those that are new or changed: `live` maps the slugs of
/// live posts to their source hash. All problems are collected before anything is written.
pub fn load_drafts(
    site_dir: &Path,
    urls: &Urls,
    live: &HashMap<String, String>,
) -> Result<Vec<Loaded>, PostError> {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for rel in content_files(site_dir)? {
        let bytes = std::fs::read(site_dir.join(&rel)).map_err(|reason| PostError::Io {
            path: site_dir.join(&rel),
            reason,
        })?;
        let Ok(text) = String::from_utf8(bytes) else {
            problems.push(Problem {
                path: rel.into(),
                line: 1,
                message: "the file is not UTF-8 text".into(),
                fix: "save it as UTF-8".into(),
            });
            continue;
        };
        let entry = match quick_slug(&rel, &text) {
            Some(slug) if live.get(&slug) == Some(&source_hash(&text)) => {
                Loaded::Unchanged { slug }
            }
            _ => match parse_file(site_dir, &rel, &text, urls) {
                Ok(Some(draft)) => Loaded::Changed(Box::new(draft)),
                Ok(None) => continue,
                Err(mut p) => {
                    problems.append(&mut p);
                    continue;
                }
            },
        };
        if let Some(other) = seen.insert(entry.slug().to_string(), rel.clone()) {
            problems.push(Problem {
                path: rel.clone().into(),
                line: 1,
                message: format!("the slug {:?} is also used by {other}", entry.slug()),
                fix: "give one of them another slug = \"…\" in its front matter".into(),
            });
        }
        loaded.push(entry);
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(PostError::Invalid(problems))
    }
}

/// Slug → source hash of every live post.
pub fn live_hashes(conn: &Connection) -> rusqlite::Result<HashMap<String, String>> {
    let mut stmt = conn.prepare("SELECT slug, source_hash FROM posts WHERE deleted_at IS NULL")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::now_utc())
}

/// Whole seconds, UTC, as every table stores times: see [`crate::times`].
pub use crate::times::rfc3339 as format_time;

/// Writes the drafts into the database in one transaction: new → created, changed → updated
/// (same id, `updated` bumped), missing → deleted (tombstoned). Unchanged posts are not touched.
pub fn sync(conn: &mut Connection, loaded: &[Loaded]) -> Result<SyncReport, PostError> {
    let now = now_utc();
    let now_s = format_time(now);
    // Immediate: a running server's watcher and `hortus publish` may sync at the same moment;
    // the second waits for the first (busy timeout) rather than failing on a stale read.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut existing: HashMap<String, (i64, String, bool)> = HashMap::new();
    {
        let mut stmt =
            tx.prepare("SELECT id, slug, source_hash, deleted_at IS NOT NULL FROM posts")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(1)?, (r.get(0)?, r.get(2)?, r.get(3)?)))
        })?;
        for row in rows {
            let (slug, v) = row?;
            existing.insert(slug, v);
        }
    }
    let mut report = SyncReport::default();
    let mut present = std::collections::HashSet::new();
    for entry in loaded {
        present.insert(entry.slug());
        let d = match entry {
            Loaded::Changed(d) => d,
            Loaded::Unchanged { .. } => {
                report.unchanged += 1;
                continue;
            }
        };
        if d.attachments.len() > MASTODON_MAX_MEDIA {
            report.warnings.push(format!(
                "{}: {} images, but Mastodon shows only the first {MASTODON_MAX_MEDIA}\n  fix: keep the {MASTODON_MAX_MEDIA} that matter most, or link the others",
                d.source_path,
                d.attachments.len()
            ));
        }
        let tags = serde_json::to_string(&d.tags).unwrap_or_else(|_| "[]".into());
        let mentions = serde_json::to_string(&d.mentions).unwrap_or_else(|_| "[]".into());
        let attachments = serde_json::to_string(&d.attachments).unwrap_or_else(|_| "[]".into());
        let id = match existing.get(&d.slug) {
            Some((_, hash, false)) if *hash == d.source_hash => {
                report.unchanged += 1;
                continue;
            }
            Some((id, _, _)) => {
                tx.execute(
                    "UPDATE posts SET source_path=?2, source_hash=?3, title=?4, summary=?5, content_html=?6,
                        visibility=?7, language=?8, in_reply_to=?9, sensitive=?10, tags=?11, mentions=?12,
                        attachments=?13, published=COALESCE(?14, published), updated=?15, deleted_at=NULL
                     WHERE id=?1",
                    params![
                        id, d.source_path, d.source_hash, d.title, d.summary, d.content_html,
                        d.visibility.as_str(), d.language, d.in_reply_to, d.sensitive, tags, mentions,
                        attachments, d.date.map(format_time), now_s
                    ],
                )?;
                report.updated.push((*id, d.slug.clone()));
                *id
            }
            None => {
                tx.execute(
                    "INSERT INTO posts (slug, source_path, source_hash, title, summary, content_html,
                        visibility, language, in_reply_to, sensitive, tags, mentions, attachments, published)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    params![
                        d.slug, d.source_path, d.source_hash, d.title, d.summary, d.content_html,
                        d.visibility.as_str(), d.language, d.in_reply_to, d.sensitive, tags, mentions,
                        attachments, format_time(d.date.unwrap_or(now))
                    ],
                )?;
                let id = tx.last_insert_rowid();
                report.created.push((id, d.slug.clone()));
                id
            }
        };
        tx.execute("DELETE FROM post_tags WHERE post_id = ?1", [id])?;
        let mut seen_tags = std::collections::HashSet::new();
        for tag in &d.tags {
            let lower = tag.to_lowercase();
            if seen_tags.insert(lower.clone()) {
                tx.execute(
                    "INSERT INTO post_tags (post_id, tag) VALUES (?1, ?2)",
                    params![id, lower],
                )?;
            }
        }
    }
    for (slug, (id, _, deleted)) in &existing {
        if !deleted && !present.contains(slug.as_str()) {
            tx.execute(
                "UPDATE posts SET deleted_at = ?2 WHERE id = ?1",
                params![id, now_s],
            )?;
            tx.execute("DELETE FROM post_tags WHERE post_id = ?1", [id])?;
            report.deleted.push((*id, slug.clone()));
        }
    }
    report.deleted.sort();
    tx.commit()?;
    Ok(report)
}

/// Parses the site's content folder and syncs it: the whole of `hortus publish`.
pub fn publish(
    conn: &mut Connection,
    site_dir: &Path,
    urls: &Urls,
) -> Result<SyncReport, PostError> {
    let live = live_hashes(conn)?;
    let loaded = load_drafts(site_dir, urls, &live)?;
    sync(conn, &loaded)
}

const POST_COLUMNS: &str = "id, slug, title, summary, content_html, visibility, language, in_reply_to, \
     sensitive, tags, mentions, attachments, published, updated, deleted_at";

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
    })
}

/// Fills in each mention's actor id when Hortus knows the account (it follows, is followed, or
/// was looked up): Mastodon notifies only when a Mention's `href` is the actor id and the actor
/// is addressed. Unknown accounts are linked but not addressed.
fn resolve_mentions(conn: &Connection, post: &mut Post) -> rusqlite::Result<()> {
    if post.mentions.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, CASE WHEN json_valid(raw)
                    THEN COALESCE(json_extract(raw, '$.type') = 'Group', 0) ELSE 0 END
         FROM remote_actors WHERE lower(handle) = lower(?1) ORDER BY fetched_at DESC LIMIT 1",
    )?;
    for m in &mut post.mentions {
        let handle = m.name.trim_start_matches('@');
        let found: Option<(String, bool)> = stmt
            .query_row([handle], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
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
            Listing::Tag(_) => {
                "deleted_at IS NULL AND visibility = 'public' \
                 AND id IN (SELECT post_id FROM post_tags WHERE tag = :tag)"
            }
            Listing::Outbox => "deleted_at IS NULL AND visibility IN ('public', 'unlisted')",
        }
    }

    /// For `visibility IN (…)` SQLite's planner scans the table; the listing index answers both
    /// visibilities with two range searches (migration 06). Tags go through post_tags instead.
    fn source(&self) -> &'static str {
        match self {
            Listing::Tag(_) => "posts",
            Listing::Public | Listing::Outbox => "posts INDEXED BY posts_listing",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    fn urls() -> Urls {
        Urls::new(&url::Url::parse("https://example.net").unwrap(), "alice")
    }

    fn site() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
        dir
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join("content/posts").join(name), text).unwrap();
    }

    #[test]
    fn publish_creates_edits_deletes_and_is_idempotent() {
        let dir = site();
        let mut conn = db::open_in_memory().unwrap();
        write(
            dir.path(),
            "hello.md",
            "+++\ntitle = \"Hello\"\ndate = 2026-01-02T03:04:05Z\ntags = [\"Rust\"]\n+++\nHi #fediverse",
        );
        write(dir.path(), "second.md", "Second");
        let r = publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(r.created.len(), 2);
        let again = publish(&mut conn, dir.path(), &urls()).unwrap();
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(again.unchanged, 2);

        let before = by_slug(&conn, "hello").unwrap().unwrap();
        assert_eq!(format_time(before.published), "2026-01-02T03:04:05Z");
        assert_eq!(before.tags, vec!["fediverse", "Rust"]);
        write(
            dir.path(),
            "hello.md",
            "+++\ntitle = \"Hello again\"\ndate = 2026-01-02T03:04:05Z\n+++\nEdited",
        );
        let r = publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(r.updated, vec![(before.id, "hello".to_string())]);
        let after = by_slug(&conn, "hello").unwrap().unwrap();
        assert_eq!(after.id, before.id);
        assert!(after.updated.is_some());
        assert_eq!(after.title.as_deref(), Some("Hello again"));
        assert_eq!(count(&conn, Listing::Tag("rust")).unwrap(), 0);

        std::fs::remove_file(dir.path().join("content/posts/second.md")).unwrap();
        let r = publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(r.deleted.len(), 1);
        assert!(
            by_slug(&conn, "second")
                .unwrap()
                .unwrap()
                .deleted_at
                .is_some()
        );
        assert!(publish(&mut conn, dir.path(), &urls()).unwrap().is_empty());
    }

    #[test]
    fn one_bad_file_publishes_nothing_and_names_file_and_line() {
        let dir = site();
        let mut conn = db::open_in_memory().unwrap();
        write(dir.path(), "good.md", "fine");
        write(
            dir.path(),
            "bad.md",
            "+++\ntitle = \"x\"\nvisibility = \"everyone\"\n+++\n",
        );
        let err = publish(&mut conn, dir.path(), &urls())
            .unwrap_err()
            .to_string();
        assert!(err.contains("content/posts/bad.md:3:"), "{err}");
        assert!(err.contains("fix:"), "{err}");
        assert_eq!(count(&conn, Listing::Outbox).unwrap(), 0);
    }

    #[test]
    fn duplicate_slugs_are_refused() {
        let dir = site();
        let mut conn = db::open_in_memory().unwrap();
        write(dir.path(), "a.md", "+++\nslug = \"same\"\n+++\na");
        write(dir.path(), "b.md", "+++\nslug = \"same\"\n+++\nb");
        let err = publish(&mut conn, dir.path(), &urls())
            .unwrap_err()
            .to_string();
        assert!(err.contains("also used by"), "{err}");
    }

    #[test]
    fn listings_respect_visibility() {
        let dir = site();
        let mut conn = db::open_in_memory().unwrap();
        write(dir.path(), "pub.md", "+++\ntags=[\"x\"]\n+++\npublic");
        write(
            dir.path(),
            "unl.md",
            "+++\nvisibility = \"unlisted\"\ntags=[\"x\"]\n+++\nunlisted",
        );
        write(
            dir.path(),
            "fol.md",
            "+++\nvisibility = \"followers\"\ntags=[\"x\"]\n+++\nsecret",
        );
        publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(count(&conn, Listing::Public).unwrap(), 1);
        assert_eq!(count(&conn, Listing::Tag("X")).unwrap(), 1);
        assert_eq!(count(&conn, Listing::Outbox).unwrap(), 2);
        let outbox = list(&conn, Listing::Outbox, 10, 0).unwrap();
        assert!(outbox.iter().all(|p| p.visibility != Visibility::Followers));
    }

    #[test]
    fn remembered_counts_follow_every_change() {
        let dir = site();
        let db = dir.path().join("hortus.db");
        let mut conn = db::open(&db).unwrap();
        let other = db::open(&db).unwrap(); // a server's connection, beside `hortus publish`'s
        write(dir.path(), "a.md", "+++\ntags=[\"x\"]\n+++\na");
        publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(count(&other, Listing::Public).unwrap(), 1);
        assert_eq!(count(&other, Listing::Tag("x")).unwrap(), 1);
        write(dir.path(), "b.md", "+++\ntags=[\"x\"]\n+++\nb");
        publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(count(&other, Listing::Public).unwrap(), 2);
        assert_eq!(count(&other, Listing::Tag("X")).unwrap(), 2);
        // A retag changes only post_tags; a visibility change only a column.
        write(dir.path(), "b.md", "+++\ntags=[\"y\"]\n+++\nb");
        publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(count(&other, Listing::Tag("x")).unwrap(), 1);
        write(dir.path(), "a.md", "+++\nvisibility=\"unlisted\"\n+++\na");
        publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(count(&other, Listing::Public).unwrap(), 1);
        assert_eq!(count(&other, Listing::Outbox).unwrap(), 2);
        std::fs::remove_file(dir.path().join("content/posts/b.md")).unwrap();
        publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(count(&other, Listing::Public).unwrap(), 0);
        assert_eq!(count(&other, Listing::Outbox).unwrap(), 1);

        // And it is memory, not a recount: with the trigger gone, a change the generation does
        // not record stays unseen until the generation moves.
        conn.execute_batch("DROP TRIGGER posts_generation_update")
            .unwrap();
        conn.execute(
            "UPDATE posts SET visibility = 'public' WHERE deleted_at IS NULL",
            [],
        )
        .unwrap();
        assert_eq!(count(&other, Listing::Public).unwrap(), 0, "remembered");
        conn.execute("UPDATE posts_generation SET n = n + 1", [])
            .unwrap();
        assert_eq!(count(&other, Listing::Public).unwrap(), 1);
    }

    #[test]
    fn more_images_than_mastodon_shows_is_a_warning() {
        let dir = site();
        std::fs::create_dir_all(dir.path().join("media")).unwrap();
        let mut front = String::from("+++\n");
        for i in 0..5 {
            std::fs::write(
                dir.path().join(format!("media/{i}.png")),
                include_bytes!("../../static/avatar.png"),
            )
            .unwrap();
            front.push_str(&format!(
                "[[images]]\nsrc = \"media/{i}.png\"\nalt = \"image {i}\"\n"
            ));
        }
        write(dir.path(), "many.md", &format!("{front}+++\nMany pictures"));
        write(dir.path(), "few.md", "Few pictures");
        let mut conn = db::open_in_memory().unwrap();
        let report = publish(&mut conn, dir.path(), &urls()).unwrap();
        assert_eq!(report.created.len(), 2, "it still publishes");
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(
            report.warnings[0].contains("many.md: 5 images"),
            "{:?}",
            report.warnings
        );
    }

    #[test]
    fn images_need_alt_text_and_exist() {
        let dir = site();
        std::fs::create_dir_all(dir.path().join("media")).unwrap();
        let text = "+++\n[[images]]\nsrc = \"media/missing.png\"\nalt = \"a cat\"\n+++\nhi";
        let err = parse_file(dir.path(), "content/posts/x.md", text, &urls()).unwrap_err();
        assert!(err[0].message.contains("does not exist"), "{err:?}");
        assert_eq!(err[0].line, 3);
    }

    #[test]
    fn known_accounts_are_mentioned_by_actor_id() {
        let dir = site();
        let mut conn = db::open_in_memory().unwrap();
        write(
            dir.path(),
            "hi.md",
            "Hello @Bob@Example.org and @carol@elsewhere.net",
        );
        publish(&mut conn, dir.path(), &urls()).unwrap();
        conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
             VALUES ('https://example.org/users/bob', 'example.org', 'https://example.org/users/bob/inbox',
                     'bob@example.org', '{}', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
        let post = by_slug(&conn, "hi").unwrap().unwrap();
        assert_eq!(
            post.mentions[0].actor.as_deref(),
            Some("https://example.org/users/bob")
        );
        assert_eq!(
            post.mentions[0].href, "https://example.org/@Bob",
            "the link stays a link"
        );
        assert_eq!(
            post.mentions[1].actor, None,
            "unknown accounts stay unresolved"
        );
        let listed = list(&conn, Listing::Outbox, 10, 0).unwrap();
        assert_eq!(
            listed[0].mentions[0].actor.as_deref(),
            Some("https://example.org/users/bob")
        );
        assert!(!post.mentions[0].group, "raw without a type is no group");

        // A community (its stored actor JSON says Group) is marked so the post is addressed to
        // it (FEP-1b12); garbage in `raw` is no group and no error.
        conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
             VALUES ('https://elsewhere.net/c/carol', 'elsewhere.net', 'https://elsewhere.net/inbox',
                     'carol@elsewhere.net', '{\"type\":\"Group\"}', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
        conn.execute(
            "UPDATE remote_actors SET raw = 'not json' WHERE id = 'https://example.org/users/bob'",
            [],
        )
        .unwrap();
        let post = by_slug(&conn, "hi").unwrap().unwrap();
        assert!(post.mentions[1].group, "{:?}", post.mentions[1]);
        assert!(!post.mentions[0].group, "{:?}", post.mentions[0]);
    }

    #[test]
    fn slugify_makes_url_safe_slugs() {
        assert_eq!(slugify("Hello, World! Ça va?"), "hello-world-a-va");
        assert_eq!(slugify("2026-11-22 note"), "2026-11-22-note");
    }
}
