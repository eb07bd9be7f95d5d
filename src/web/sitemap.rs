//! `/sitemap.xml` (robots.txt points at it): the public pages a search engine should index —
//! the home page, every public post, every tag page and the two policy pages. Unlisted and
//! followers-only posts are left out, as they are from the home page and the feed.
//! <https://www.sitemaps.org/protocol.html>

use actix_web::HttpResponse;
use actix_web::http::header;
use rusqlite::Connection;

use super::state::{State, WebError, WebResult};
use crate::posts::markdown::escape;
use crate::posts::{self, Listing};

/// The protocol's limit per file; beyond it a sitemap index would be needed.
const MAX_URLS: u32 = 50_000;

/// Lower-cased tags that have at least one public post: the tag pages that exist.
/// The filter is `posts::Listing::Tag`'s (`public = 1`, kept by migration 19's trigger), for
/// every tag at once: one walk of its index, not a lookup of each tag row's post.
pub fn public_tags(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT tag FROM post_tags INDEXED BY post_tags_listing
         WHERE public = 1 ORDER BY tag",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

fn url_entry(out: &mut String, loc: &str, lastmod: Option<&str>) {
    out.push_str("  <url><loc>");
    out.push_str(&escape(loc));
    out.push_str("</loc>");
    if let Some(m) = lastmod {
        out.push_str("<lastmod>");
        out.push_str(m);
        out.push_str("</lastmod>");
    }
    out.push_str("</url>\n");
}

pub async fn sitemap(state: State) -> WebResult {
    // Slugs and times only, from the listing index: the sitemap of a 10,000-post site read
    // every post's HTML before (most of an incremental export's time, issue 15).
    let (posts, tags) = state
        .db
        .read(|c| {
            let posts = posts::list_lastmod(c, Listing::Public, MAX_URLS)?
                .into_iter()
                .map(|(slug, lastmod)| (slug, crate::times::rfc3339(lastmod)))
                .collect::<Vec<_>>();
            Ok::<_, WebError>((posts, public_tags(c)?))
        })
        .await?;
    let u = &state.urls;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    // Newest first, so the home page's lastmod is the first post's.
    url_entry(&mut out, &u.home(), posts.first().map(|(_, m)| m.as_str()));
    let room = (MAX_URLS as usize).saturating_sub(3 + tags.len());
    for (slug, lastmod) in posts.iter().take(room) {
        url_entry(&mut out, &u.post_page(slug), Some(lastmod));
    }
    for tag in &tags {
        url_entry(&mut out, &u.tag(tag), None);
    }
    url_entry(&mut out, &u.privacy(), None);
    url_entry(&mut out, &u.children(), None);
    out.push_str("</urlset>\n");
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/xml; charset=utf-8"))
        .body(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sitemap's light reads give what reading whole posts and joining tags to posts gave.
    #[test]
    fn light_reads_match_whole_posts() {
        let dir = tempfile::tempdir().unwrap();
        let posts_dir = dir.path().join("content/posts");
        std::fs::create_dir_all(&posts_dir).unwrap();
        let write = |name: &str, text: &str| std::fs::write(posts_dir.join(name), text).unwrap();
        let urls = crate::urls::Urls::new(&url::Url::parse("https://example.net").unwrap(), "a");
        let mut conn = crate::db::open_in_memory().unwrap();
        for (n, (vis, tag)) in [
            ("public", "Garten"),
            ("unlisted", "花"),
            ("public", "花"),
            ("followers", "секрет"),
            ("public", "حديقة"),
        ]
        .into_iter()
        .enumerate()
        {
            write(
                &format!("p{n}.md"),
                &format!(
                    "+++\ndate = 2026-01-0{}T03:04:05Z\nvisibility = \"{vis}\"\ntags = [\"{tag}\"]\n+++\nNr. {n} 🌱 e\u{301}",
                    n + 1
                ),
            );
        }
        crate::posts::publish(&mut conn, dir.path(), &urls).unwrap();
        // An edit sets `updated`; a deleted post leaves every listing.
        write(
            "p2.md",
            "+++\ndate = 2026-01-03T03:04:05Z\ntags = [\"花\"]\n+++\n変更",
        );
        std::fs::remove_file(posts_dir.join("p4.md")).unwrap();
        crate::posts::publish(&mut conn, dir.path(), &urls).unwrap();

        let whole: Vec<(String, String)> = posts::list(&conn, Listing::Public, 100, 0)
            .unwrap()
            .into_iter()
            .map(|p| {
                (
                    p.slug,
                    crate::times::rfc3339(p.updated.unwrap_or(p.published)),
                )
            })
            .collect();
        let light: Vec<(String, String)> = posts::list_lastmod(&conn, Listing::Public, 100)
            .unwrap()
            .into_iter()
            .map(|(s, t)| (s, crate::times::rfc3339(t)))
            .collect();
        assert_eq!(light, whole);
        assert_eq!(light.len(), 2);
        assert!(
            light.iter().any(|(_, t)| !t.starts_with("2026-01-0")),
            "edited: {light:?}"
        );

        let joined: Vec<String> = conn
            .prepare(
                "SELECT DISTINCT t.tag FROM post_tags t JOIN posts p ON p.id = t.post_id
                 WHERE p.deleted_at IS NULL AND p.visibility = 'public' ORDER BY t.tag",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(public_tags(&conn).unwrap(), joined);
        assert_eq!(joined, vec!["garten".to_string(), "花".to_string()]);
    }
}
