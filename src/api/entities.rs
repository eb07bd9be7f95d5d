//! The JSON entities apps read (docs.joinmastodon.org/entities): the owner's Account, a Status
//! made from one of the owner's posts, a MediaAttachment. Built from what the site already has
//! (hortus.toml, the `posts` table, media/), never stored twice.

use rusqlite::{Connection, OptionalExtension as _};
use serde_json::{Value, json};

use crate::activitypub::media_url;
use crate::graph::{self, Collection};
use crate::posts::{self, Attachment, Post, Visibility};
use crate::times::rfc3339;
use crate::web::AppState;

/// The owner's account id. Remote accounts get their own ids with the timeline.
pub const OWNER_ID: &str = "1";

fn iso_date(t: time::OffsetDateTime) -> String {
    rfc3339(t).get(..10).unwrap_or_default().to_string()
}

/// The owner as an Account; `source` adds what `verify_credentials` shows the owner alone.
pub fn owner_account(conn: &Connection, state: &AppState, source: bool) -> rusqlite::Result<Value> {
    // As hortus.toml says now: an app that just changed the profile sees it.
    let cfg = state.live();
    let profile = state.profile();
    let fallback_avatar = format!(
        "{}/static/avatar.png",
        state.urls.base().trim_end_matches('/')
    );
    let avatar = profile.avatar_url.clone().unwrap_or(fallback_avatar);
    let header = profile.header_url.clone().unwrap_or_default();
    // `hortus init` writes `created`; a site made before it did is as old as its first post.
    let created = match cfg.user.created.clone() {
        Some(c) => c,
        None => posts::store::page_by_id(
            conn,
            posts::store::IdPage {
                min_id: Some(0),
                limit: 1,
                ..Default::default()
            },
        )?
        .first()
        .map_or_else(crate::times::now, |p| rfc3339(p.published)),
    };
    let last = posts::store::page_by_id(
        conn,
        posts::store::IdPage {
            limit: 1,
            ..Default::default()
        },
    )?;
    let mut account = json!({
        "id": OWNER_ID,
        "username": cfg.user.name,
        "acct": cfg.user.name,
        "url": state.urls.home(),
        "uri": state.urls.actor(),
        "display_name": cfg.display_name(),
        "note": profile.bio_html,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "locked": cfg.federation.manually_approves_followers,
        "fields": profile.fields.iter().map(|(name, value)| json!({
            "name": name, "value": value, "verified_at": null
        })).collect::<Vec<_>>(),
        "emojis": [],
        "bot": false,
        "group": false,
        "discoverable": cfg.user.discoverable,
        "indexable": cfg.user.indexable,
        "noindex": !cfg.user.indexable,
        "hide_collections": cfg.federation.hide_social_graph,
        "created_at": created,
        "last_status_at": last.first().map(|p| iso_date(p.published)),
        "statuses_count": posts::store::count_live(conn)?,
        "followers_count": graph::count_accepted(conn, Collection::Followers)?,
        "following_count": graph::count_accepted(conn, Collection::Following)?,
        "roles": [],
    });
    if source {
        let pending = crate::graph::followers::list(conn, Some("pending"))?.len();
        account["source"] = json!({
            "privacy": "public",
            "sensitive": false,
            "language": cfg.site.language,
            "note": cfg.user.bio,
            "fields": cfg.user.fields.iter().map(|f| json!({
                "name": f.name, "value": f.value, "verified_at": null
            })).collect::<Vec<_>>(),
            "follow_requests_count": pending,
        });
        account["role"] = json!({
            "id": "-99", "name": "", "permissions": "0", "color": "", "highlighted": false
        });
    }
    Ok(account)
}

pub fn visibility_name(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Unlisted => "unlisted",
        Visibility::Followers => "private",
    }
}

/// An image as a MediaAttachment; `id` is its upload's id when it came through the API.
pub fn media_attachment(state: &AppState, id: &str, a: &Attachment) -> Value {
    let url = media_url(&state.urls, &a.path);
    let meta = match (a.width, a.height) {
        (Some(w), Some(h)) if h > 0 => json!({ "original": {
            "width": w, "height": h, "size": format!("{w}x{h}"), "aspect": f64::from(w) / f64::from(h)
        }}),
        _ => json!({}),
    };
    json!({
        "id": id,
        "type": "image",
        "url": url,
        "preview_url": url,
        "remote_url": null,
        "preview_remote_url": null,
        "text_url": null,
        "meta": meta,
        "description": if a.alt.is_empty() { Value::Null } else { Value::String(a.alt.clone()) },
        "blurhash": null,
    })
}

/// One of the owner's posts as a Status. `account` is the owner's Account (built once per
/// answer); `reply_to` the id of the owner's post it answers, when it answers one.
pub fn status(
    conn: &Connection,
    state: &AppState,
    post: &Post,
    account: &Value,
) -> rusqlite::Result<Value> {
    let mut content = String::new();
    if let Some(title) = &post.title {
        content.push_str(&format!(
            "<p><strong>{}</strong></p>",
            posts::markdown::escape(title)
        ));
    }
    content.push_str(&post.content_html);
    let media: Vec<Value> = post
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let id = media_id_of(conn, &a.path)
                .ok()
                .flatten()
                .map_or_else(|| format!("{}0{}", post.id, i), |id| id.to_string());
            media_attachment(state, &id, a)
        })
        .collect();
    let reply_to: Option<(i64, String)> = match post.in_reply_to.as_deref() {
        Some(url) => match own_post_id(conn, state, url)? {
            Some(id) => Some((id, OWNER_ID.to_string())),
            None => known_remote(conn, url)?.map(|(s, a)| (s, a.to_string())),
        },
        None => None,
    };
    // The owner may like, boost and bookmark their own posts, as on Mastodon; the counts are
    // what others did (blocked accounts left out) and that.
    let object = state.urls.post_object(&post.slug);
    let mine = crate::timeline::store::actions_on(conn, &object)?;
    let did = |kind: &str| mine.iter().any(|m| m == kind);
    let reactions = |kind: &str| -> rusqlite::Result<i64> {
        conn.prepare_cached(&format!(
            "SELECT COUNT(*) FROM reactions WHERE post_id = ?1 AND kind = ?2
             AND actor_id NOT IN ({})",
            crate::graph::accounts::BLOCKED_IDS
        ))?
        .query_row(rusqlite::params![post.id, kind], |r| r.get(0))
    };
    // FEP-044f: the quoted author's consent, as the page shows it. A ShallowQuote here;
    // `quote::full` makes the outer one a Quote with the status.
    let quote = match &post.quote {
        None => Value::Null,
        Some(url) => {
            let quoted = match own_post_id(conn, state, url)? {
                Some(id) => Some(id),
                None => known_remote(conn, url)?.map(|(s, _)| s),
            };
            json!({
                "state": match post.quote_consent {
                    Some(posts::QuoteConsent::Pending) => "pending",
                    Some(posts::QuoteConsent::Refused) => "rejected",
                    _ => "accepted",
                },
                "quoted_status_id": quoted.map(|i| i.to_string()),
            })
        }
    };
    let favourites = reactions("like")? + i64::from(did("like"));
    let reblogs = reactions("boost")? + i64::from(did("boost"));
    Ok(json!({
        "id": post.id.to_string(),
        "uri": object,
        "url": state.urls.post_page(&post.slug),
        "created_at": rfc3339(post.published),
        "edited_at": post.updated.map(rfc3339),
        "account": account,
        "content": content,
        "visibility": visibility_name(post.visibility),
        "sensitive": post.sensitive || post.summary.is_some(),
        "spoiler_text": post.summary.clone().unwrap_or_default(),
        "language": post.language,
        "in_reply_to_id": reply_to.as_ref().map(|(id, _)| id.to_string()),
        "in_reply_to_account_id": reply_to.map(|(_, account)| account),
        "media_attachments": media,
        "mentions": post.mentions.iter().map(|m| json!({
            "id": m.actor.clone().unwrap_or_else(|| m.href.clone()),
            "username": m.name.trim_start_matches('@').split('@').next().unwrap_or_default(),
            "acct": m.name.trim_start_matches('@'),
            "url": m.href,
        })).collect::<Vec<_>>(),
        "tags": post.tags.iter().map(|t| json!({"name": t, "url": state.urls.tag(t)})).collect::<Vec<_>>(),
        "emojis": [],
        "reblogs_count": reblogs,
        "favourites_count": favourites,
        "replies_count": 0,
        "reblog": null,
        "quote": quote,
        "poll": null,
        "card": null,
        "application": null,
        "favourited": did("like"),
        "reblogged": did("boost"),
        "muted": false,
        "bookmarked": did("bookmark"),
        "pinned": false,
        "filtered": [],
    }))
}

/// The upload id of an image path, when it came through the API (`media`).
fn media_id_of(conn: &Connection, path: &str) -> rusqlite::Result<Option<i64>> {
    use rusqlite::OptionalExtension as _;
    conn.query_row("SELECT id FROM api_media WHERE path = ?1", [path], |r| {
        r.get(0)
    })
    .optional()
}

/// The id of the owner's post whose object or page URL this is.
pub fn own_post_id(
    conn: &Connection,
    state: &AppState,
    url: &str,
) -> rusqlite::Result<Option<i64>> {
    let base = state.urls.post_page("");
    let Some(slug) = url.strip_prefix(base.as_str()) else {
        return Ok(None);
    };
    let slug = slug.trim_end_matches(".json");
    Ok(posts::by_slug(conn, slug)?
        .filter(|p| p.deleted_at.is_none())
        .map(|p| p.id))
}

/// The status id and author's account id of a remote post that already has ids (read only:
/// the app that wrote an answer to it had its id, `remote_status`).
fn known_remote(conn: &Connection, note_id: &str) -> rusqlite::Result<Option<(i64, i64)>> {
    conn.query_row(
        "SELECT s.id, a.id FROM api_statuses s
         JOIN remote_notes n ON n.id = s.note_id
         JOIN api_accounts a ON a.actor_id = n.actor_id
         WHERE s.note_id = ?1",
        [note_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}
