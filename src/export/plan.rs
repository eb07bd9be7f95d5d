//! What an export contains: every public URL `hortus serve` answers, the Accept header to ask
//! for it with, the status it must answer, and the file it becomes.
//!
//! The layout turns URLs into files a plain static host can serve, and that never collide
//! (`/users/alice` is both a document and the prefix of `/users/alice/outbox`):
//!
//! | URL                                   | file                                        |
//! |---------------------------------------|---------------------------------------------|
//! | `/`                                   | `index.html`                                |
//! | a page `/X` (`/page/2`, `/tags/t`, `/privacy`, `/posts/s`…) | `X.html`              |
//! | an ActivityPub document `/X` (`/users/alice`, `…/outbox/page/1`, `/actor`) | `X.json` |
//! | `/posts/s.json` (the Note's id)       | `posts/s.json`, the same name               |
//! | `/.well-known/webfinger?resource=…`   | `.well-known/webfinger/acct_USER@DOMAIN.json` |
//! | `/.well-known/host-meta`, `/.well-known/nodeinfo`, `/nodeinfo/2.x` | `….xml`, `….json` |
//! | `/feed.xml`, `/sitemap.xml`, `/robots.txt`, `/static/*`, `/media/*` | the same name |
//! | not found (for browsers / for servers) | `404.html`, `404.json`                     |
//! | a deleted post `/posts/s`, `/posts/s.json` (410) | `_gone/posts/s.html`, `_gone/posts/s.json` |
//! | a revoked stamp `/quote-authorizations/t` (410) | `_gone/quote-authorizations/t.json`     |
//!
//! What is gone (every URL `hortus serve` answers 410) lives under `_gone/` so that a host
//! without the generated configuration answers 404 for it, never 200 with a Tombstone.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::Connection;

use crate::config::Config;
use crate::posts::{self, Attachment, Listing, Visibility};
use crate::urls::Urls;
use crate::web::sitemap::public_tags;

/// How a document is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// What a browser sends: gets pages.
    Browser,
    /// What Mastodon sends: gets ActivityPub JSON where the URL negotiates.
    Activity,
}

impl Accept {
    pub fn header(self) -> &'static str {
        match self {
            Accept::Browser => "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            Accept::Activity => {
                "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\", text/html;q=0.1"
            }
        }
    }
}

/// One URL to fetch from the site and the file its body becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// Path and query, percent-encoded, exactly as a client sends them.
    pub url: String,
    pub accept: Accept,
    /// What `hortus serve` must answer; anything else stops the export.
    pub status: u16,
    /// Relative path under the output directory, `/`-separated.
    pub file: String,
    /// What its bytes depend on, so that an export renders it only when that changed.
    pub dep: Dep,
}

/// What a document shows, as far as knowing when it changes goes (`deps` turns each into a key
/// the manifest keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dep {
    /// Anything at all: rendered again on any change (the home page with its profile and
    /// counts, the feed, the outbox's total).
    Any,
    /// The built-in files: only the binary.
    Static,
    /// The configuration, keys, account moves, blocks, policy and followers, but no post: actors,
    /// collections' counts, discovery, the 404 and privacy pages.
    Profile,
    /// A live post's page or Note: its row, what others did with it (replies, likes, boosts,
    /// quotes, its reply setting), and the owner's posts that answer or quote any.
    Post(i64),
    /// A deleted post's 410: its row.
    Gone(i64),
    /// Page `page` of the public listing (`None`) or of a tag's.
    Listing { tag: Option<String>, page: u32 },
    /// Page `page` of the owner's outbox.
    Outbox(u32),
    /// The sitemap: every public post's slug and time, the public tags.
    Sitemap,
    /// NodeInfo: the configuration and how many posts the outbox holds.
    Nodeinfo,
}

impl Doc {
    fn new(url: impl Into<String>, accept: Accept, status: u16, file: impl Into<String>) -> Doc {
        Doc {
            url: url.into(),
            accept,
            status,
            file: file.into(),
            dep: Dep::Any,
        }
    }
    fn on(mut self, dep: Dep) -> Doc {
        self.dep = dep;
        self
    }
    fn page(url: &str) -> Doc {
        Doc::new(url, Accept::Browser, 200, page_file(url))
    }
    fn json(url: &str) -> Doc {
        Doc::new(url, Accept::Activity, 200, json_file(url))
    }
}

/// A WebFinger answer the site gives: the account it names and the file holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webfinger {
    /// `user@domain`, canonical case.
    pub account: String,
    /// Other resources that name the same account (actor URL, profile URL…).
    pub urls: Vec<String>,
    pub file: String,
}

/// A URL `hortus serve` answers 410 Gone, and where the export keeps that answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// URL path, as asked (`/posts/s`, `/posts/s.json`, `/quote-authorizations/t`).
    pub path: String,
    /// The file under `_gone/` without its extension: `STEM.json` holds the Tombstone, and
    /// `STEM.html` the Gone page when [`Gone::page`] is set.
    pub stem: String,
    /// The URL negotiates on Accept (a post's URL): browsers get `STEM.html`, servers
    /// `STEM.json`. Otherwise everyone gets `STEM.json`.
    pub page: bool,
}

impl Gone {
    pub fn json_file(&self) -> String {
        format!("{}.json", self.stem)
    }
}

/// Everything one export writes, before any of it is fetched.
#[derive(Debug, Default)]
pub struct Plan {
    pub docs: Vec<Doc>,
    /// Files to copy from the site's `media/` (relative to it, `/`-separated).
    pub media: Vec<String>,
    /// URLs that answer 410 Gone: deleted posts, revoked stamps.
    pub gone: Vec<Gone>,
    pub webfinger: Vec<Webfinger>,
    /// Pages of the owner's outbox (`…/outbox/page/1..=n`).
    pub outbox_pages: u32,
}

/// `/` → `index.html`, `/a/b` → `a/b.html`. Percent-escapes are decoded: the file is named as
/// the web server sees the path.
pub fn page_file(url_path: &str) -> String {
    match url_path.trim_start_matches('/') {
        "" => "index.html".to_string(),
        p => percent_decode(p) + ".html",
    }
}

/// `/a/b` → `a/b.json`.
pub fn json_file(url_path: &str) -> String {
    percent_decode(url_path.trim_start_matches('/')) + ".json"
}

pub fn webfinger_file(account: &str) -> String {
    format!(".well-known/webfinger/acct_{account}.json")
}

pub fn gone_file(slug: &str, json: bool) -> String {
    format!("_gone/posts/{slug}.{}", if json { "json" } else { "html" })
}

/// Encodes a path segment: everything but RFC 3986 unreserved characters.
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    // Most paths (every post's slug) have no escape: no byte-by-byte copy (issue 15).
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The tag names a tag page accepts (`web/pages.rs` `render_tag`); anything else would answer 404.
fn valid_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.len() <= 100 && tag.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// A post as far as the export cares.
struct PostRow {
    id: i64,
    slug: String,
    visibility: Visibility,
    deleted: bool,
    attachments: Vec<Attachment>,
}

/// Every post ever published, deleted ones included (they keep their row for the 410).
fn post_rows(conn: &Connection) -> rusqlite::Result<Vec<PostRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, slug, visibility, deleted_at IS NOT NULL, attachments FROM posts ORDER BY id",
    )?;
    stmt.query_map([], |r| {
        let visibility: String = r.get(2)?;
        let attachments: String = r.get(4)?;
        Ok(PostRow {
            id: r.get(0)?,
            slug: r.get(1)?,
            // An unknown value is treated as the most private, as `posts` does.
            visibility: Visibility::parse(&visibility).unwrap_or(Visibility::Followers),
            deleted: r.get(3)?,
            attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        })
    })?
    .collect()
}

/// `media/x.png`, `/media/x.png` or `x.png` → `x.png`.
fn media_key(path: &str) -> String {
    path.trim_start_matches('/')
        .trim_start_matches("media/")
        .to_string()
}

/// Files under `media/`, skipping dot-files, sorted.
pub(crate) fn media_files(media_dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{prefix}{name}");
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path(), &format!("{rel}/"), out)?;
            } else if kind.is_file() || (kind.is_symlink() && entry.path().is_file()) {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if media_dir.is_dir() {
        walk(media_dir, "", &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// Builds the plan from the database and the config. Followers-only posts never enter it, not
/// even as a 410: a Tombstone would confirm that a slug existed.
pub fn plan(
    conn: &Connection,
    config: &Config,
    urls: &Urls,
    site_dir: &Path,
) -> Result<Plan, PlanError> {
    let mut p = Plan::default();
    let path_of = |url: String| url[urls.base().len()..].to_string();
    let docs = &mut p.docs;

    // Pages for people.
    docs.push(Doc::page("/"));
    let per_page = config.site.posts_per_page;
    let home_pages = crate::activitypub::last_page(posts::count(conn, Listing::Public)?, per_page);
    for n in 2..=home_pages {
        docs.push(Doc::page(&path_of(urls.home_page(n))).on(Dep::Listing { tag: None, page: n }));
    }
    for tag in public_tags(conn)?.into_iter().filter(|t| valid_tag(t)) {
        let pages =
            crate::activitypub::last_page(posts::count(conn, Listing::Tag(&tag))?, per_page);
        for n in 1..=pages {
            let url = path_of(urls.tag_page(&tag, n));
            let encoded = url.replacen(&tag, &percent_encode(&tag), 1);
            docs.push(
                Doc::new(encoded, Accept::Browser, 200, page_file(&url)).on(Dep::Listing {
                    tag: Some(tag.clone()),
                    page: n,
                }),
            );
        }
    }
    for url in [urls.privacy(), urls.children()] {
        docs.push(Doc::page(&path_of(url)).on(Dep::Profile));
    }
    for (url, dep) in [
        (urls.feed(), Dep::Any),
        (format!("{}/sitemap.xml", urls.base()), Dep::Sitemap),
    ] {
        let path = path_of(url);
        docs.push(Doc::new(&path, Accept::Browser, 200, &path[1..]).on(dep));
    }
    docs.push(Doc::new("/robots.txt", Accept::Browser, 200, "robots.txt").on(Dep::Profile));
    for file in crate::web::static_files() {
        docs.push(
            Doc::new(
                format!("/static/{file}"),
                Accept::Browser,
                200,
                format!("static/{file}"),
            )
            .on(Dep::Static),
        );
    }
    // Any unknown URL answers the not-found page, or JSON for servers.
    docs.push(Doc::new("/404", Accept::Browser, 404, "404.html").on(Dep::Profile));
    docs.push(Doc::new("/404", Accept::Activity, 404, "404.json").on(Dep::Profile));

    // Posts: a page and a Note each; deleted ones a Gone page and a Tombstone.
    let rows = post_rows(conn)?;
    for row in &rows {
        match (row.deleted, row.visibility) {
            (_, Visibility::Followers) => {}
            (false, _) => {
                docs.push(Doc::page(&path_of(urls.post_page(&row.slug))).on(Dep::Post(row.id)));
                let note = path_of(urls.post_object(&row.slug));
                docs.push(Doc::new(&note, Accept::Activity, 200, &note[1..]).on(Dep::Post(row.id)));
            }
            (true, _) => {
                let page = path_of(urls.post_page(&row.slug));
                docs.push(
                    Doc::new(page, Accept::Browser, 410, gone_file(&row.slug, false))
                        .on(Dep::Gone(row.id)),
                );
                let note = path_of(urls.post_object(&row.slug));
                docs.push(
                    Doc::new(note, Accept::Activity, 410, gone_file(&row.slug, true))
                        .on(Dep::Gone(row.id)),
                );
                let stem = gone_file(&row.slug, true)
                    .trim_end_matches(".json")
                    .to_string();
                p.gone.push(Gone {
                    path: path_of(urls.post_page(&row.slug)),
                    stem: stem.clone(),
                    page: true,
                });
                p.gone.push(Gone {
                    path: path_of(urls.post_object(&row.slug)),
                    stem,
                    page: false,
                });
            }
        }
    }

    // ActivityPub documents.
    docs.push(Doc::json(&path_of(urls.actor())).on(Dep::Profile));
    docs.push(Doc::json(&path_of(urls.instance_actor())).on(Dep::Profile));
    docs.push(Doc::json(&path_of(urls.instance_outbox())).on(Dep::Profile));
    // FEP-044f stamps the owner granted: quoting servers dereference them to check consent.
    for token in crate::conversation::consent::standing_tokens(conn)? {
        let stamp = crate::activitypub::interaction::stamp_url(urls, &token);
        docs.push(Doc::json(&path_of(stamp)));
    }
    // A revoked stamp answers 410 with a Tombstone, as `serve` does (FEP-044f: the quoting
    // server re-checks it and drops the quote).
    for token in crate::conversation::consent::revoked_tokens(conn)? {
        let path = path_of(crate::activitypub::interaction::stamp_url(urls, &token));
        let gone = Gone {
            stem: format!("_gone{path}"),
            path,
            page: false,
        };
        docs.push(Doc::new(
            &gone.path,
            Accept::Activity,
            410,
            gone.json_file(),
        ));
        p.gone.push(gone);
    }
    // Followers and following: the counts only. Their pages list other people's accounts;
    // the generated configurations pass them to `hortus serve`, where `signed_fetch` applies.
    docs.push(Doc::json(&path_of(urls.outbox())));
    for url in [urls.followers(), urls.following()] {
        docs.push(Doc::json(&path_of(url)).on(Dep::Profile));
    }
    p.outbox_pages = crate::activitypub::last_page(
        crate::timeline::shown::outbox_total(conn)?,
        crate::web::COLLECTION_PAGE_SIZE,
    );
    for n in 1..=p.outbox_pages {
        docs.push(Doc::json(&path_of(Urls::collection_page(&urls.outbox(), n))).on(Dep::Outbox(n)));
    }

    // Discovery.
    let owner = config.handle();
    let instance = format!("{0}@{0}", config.domain);
    for (account, aliases) in [
        (
            owner,
            vec![urls.actor(), urls.home(), urls.base().to_string()],
        ),
        (instance, vec![urls.instance_actor()]),
    ] {
        let file = webfinger_file(&account);
        docs.push(
            Doc::new(
                format!(
                    "/.well-known/webfinger?resource={}",
                    percent_encode(&format!("acct:{account}"))
                ),
                Accept::Activity,
                200,
                &file,
            )
            .on(Dep::Profile),
        );
        p.webfinger.push(Webfinger {
            account,
            urls: aliases,
            file,
        });
    }
    docs.push(
        Doc::new(
            "/.well-known/host-meta",
            Accept::Browser,
            200,
            ".well-known/host-meta.xml",
        )
        .on(Dep::Profile),
    );
    docs.push(Doc::json("/.well-known/nodeinfo").on(Dep::Profile));
    for v in ["2.0", "2.1"] {
        docs.push(Doc::json(&path_of(urls.nodeinfo(v))).on(Dep::Nodeinfo));
    }

    // Media: everything under media/ except what only unpublished posts use.
    let mut shown: HashSet<String> = HashSet::new();
    let mut hidden: HashSet<String> = HashSet::new();
    for row in &rows {
        let set = if row.deleted || row.visibility == Visibility::Followers {
            &mut hidden
        } else {
            &mut shown
        };
        set.extend(row.attachments.iter().map(|a| media_key(&a.path)));
    }
    shown.extend(
        [&config.user.avatar, &config.user.header]
            .into_iter()
            .flatten()
            .map(|p| media_key(p)),
    );
    let media_dir = site_dir.join("media");
    p.media = media_files(&media_dir)
        .map_err(|reason| PlanError::Media {
            dir: media_dir.clone(),
            reason,
        })?
        .into_iter()
        .filter(|f| shown.contains(f) || !hidden.contains(f))
        .collect();
    Ok(p)
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("reading the database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot list {dir}: {reason}")]
    Media {
        dir: std::path::PathBuf,
        reason: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_files_that_never_collide() {
        assert_eq!(page_file("/"), "index.html");
        assert_eq!(page_file("/page/2"), "page/2.html");
        assert_eq!(page_file("/tags/caf%C3%A9"), "tags/café.html");
        assert_eq!(json_file("/users/alice"), "users/alice.json");
        assert_eq!(
            json_file("/users/alice/outbox/page/3"),
            "users/alice/outbox/page/3.json"
        );
        assert_eq!(json_file("/nodeinfo/2.0"), "nodeinfo/2.0.json");
        assert_eq!(
            webfinger_file("alice@example.net"),
            ".well-known/webfinger/acct_alice@example.net.json"
        );
        assert_eq!(gone_file("old", true), "_gone/posts/old.json");
    }

    #[test]
    fn percent_encoding_round_trips() {
        assert_eq!(percent_encode("acct:a@b.c"), "acct%3Aa%40b.c");
        assert_eq!(percent_encode("café"), "caf%C3%A9");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn media_keys_ignore_the_folder_prefix() {
        assert_eq!(media_key("media/cat.jpg"), "cat.jpg");
        assert_eq!(media_key("/media/a/b.png"), "a/b.png");
        assert_eq!(media_key("cat.jpg"), "cat.jpg");
    }
}
