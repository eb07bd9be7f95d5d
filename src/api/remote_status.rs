//! Remote posts as apps see them. Status ids are one integer space with three ranges, so any id
//! says what it names without a lookup:
//!
//! - below [`REMOTE_BASE`]: the owner's posts (`posts.id`);
//! - from [`REMOTE_BASE`]: posts from other servers (`remote_notes`), numbered in `api_statuses`
//!   (migrations/16-api-statuses) on first sight, as `api_accounts` numbers accounts;
//! - from [`BOOST_BASE`]: a boost in the home timeline (a reblog Status wrapping the post),
//!   `BOOST_BASE + timeline_entries.id`.
//!
//! Everything here came from a peer and was sanitised when stored (`conversation`): content is
//! the stored HTML, names pass through `remote::account`.

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Value, json};

use super::entities::{OWNER_ID, own_post_id};
use super::note_tags::{self, Quoted};
use super::remote;
use crate::conversation::note::{Attachment, Poll};
use crate::web::AppState;

pub const REMOTE_BASE: i64 = 1_000_000_000_000;
pub const BOOST_BASE: i64 = 2_000_000_000_000;

/// What a status id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Own(i64),
    Remote(String),
    Boost(i64),
}

/// The status id of a stored remote post, given now if it has none (a write).
pub fn id_for(conn: &Connection, note_id: &str) -> rusqlite::Result<i64> {
    // Looked up first: an upsert that does nothing still uses up an AUTOINCREMENT number.
    let known = conn
        .prepare_cached("SELECT id FROM api_statuses WHERE note_id = ?1")?
        .query_row([note_id], |r| r.get(0))
        .optional()?;
    match known {
        Some(id) => Ok(id),
        None => conn
            .prepare_cached("INSERT INTO api_statuses (note_id) VALUES (?1) RETURNING id")?
            .query_row([note_id], |r| r.get(0)),
    }
}

/// What `id` names; `None` for an id no status has.
pub fn named(conn: &Connection, id: i64) -> rusqlite::Result<Option<Named>> {
    Ok(match id {
        i64::MIN..=0 => None,
        BOOST_BASE.. => Some(Named::Boost(id - BOOST_BASE)),
        REMOTE_BASE.. => conn
            .query_row(
                "SELECT note_id FROM api_statuses WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .map(Named::Remote),
        _ => Some(Named::Own(id)),
    })
}

/// An account id for any actor: the owner's, or one from `api_accounts`.
fn account_of(conn: &Connection, state: &AppState, actor: &str) -> rusqlite::Result<Value> {
    if actor == state.urls.actor() {
        return super::entities::owner_account(conn, state, false);
    }
    let id = remote::id_for(conn, actor)?;
    Ok(remote::account(conn, id, actor)?.unwrap_or_else(|| {
        // An author whose actor document is not cached (pruned): its id still works.
        let host = url::Url::parse(actor)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        json!({
            "id": id.to_string(), "username": "", "acct": format!("@{host}"), "url": actor,
            "uri": actor, "display_name": "", "note": "", "avatar": "", "avatar_static": "",
            "header": "", "header_static": "", "locked": false, "fields": [], "emojis": [],
            "bot": false, "group": false, "created_at": "1970-01-01T00:00:00Z",
            "last_status_at": null, "statuses_count": 0, "followers_count": 0,
            "following_count": 0,
        })
    }))
}

/// The status id (and its author's account id) of what `in_reply_to` names, when Hortus has it.
fn reply_ids(
    conn: &Connection,
    state: &AppState,
    in_reply_to: &str,
) -> rusqlite::Result<Option<(i64, String)>> {
    if let Some(id) = own_post_id(conn, state, in_reply_to)? {
        return Ok(Some((id, OWNER_ID.to_string())));
    }
    let author: Option<String> = conn
        .query_row(
            "SELECT actor_id FROM remote_notes WHERE id = ?1 AND deleted_at IS NULL",
            [in_reply_to],
            |r| r.get(0),
        )
        .optional()?;
    match author {
        Some(author) => Ok(Some((
            id_for(conn, in_reply_to)?,
            remote::id_for(conn, &author)?.to_string(),
        ))),
        None => Ok(None),
    }
}

fn media(a: &Attachment, i: usize, status_id: i64) -> Value {
    let kind = match a.media_type.as_deref().unwrap_or("").split('/').next() {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "unknown",
    };
    json!({
        "id": format!("{status_id}{i:02}"),
        "type": kind, "url": a.url, "preview_url": a.url, "remote_url": a.url,
        "preview_remote_url": null, "text_url": null, "meta": {},
        "description": a.name, "blurhash": null,
    })
}

/// The options the owner chose in a poll (`polls`), by index.
pub fn own_votes(conn: &Connection, note_id: &str) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached("SELECT choice FROM api_poll_votes WHERE note_id = ?1 ORDER BY choice")?
        .query_map([note_id], |r| r.get(0))?
        .collect()
}

/// Whether a poll takes no more votes: closed when received, or past its end now.
pub fn poll_expired(p: &Poll) -> bool {
    p.closed
        || p.ends.as_deref().is_some_and(|e| {
            crate::conversation::note::parse_time(e)
                .is_some_and(|t| t <= time::OffsetDateTime::now_utc())
        })
}

/// A Question's poll; its id is the status's (one poll per status).
fn poll(p: &Poll, status_id: i64, own: &[i64]) -> Value {
    let total: i64 = p.options.iter().filter_map(|o| o.votes).sum();
    json!({
        "id": status_id.to_string(), "expires_at": p.ends, "expired": poll_expired(p),
        "multiple": p.multiple, "votes_count": total, "voters_count": null,
        "options": p.options.iter().map(|o| json!({"title": o.name, "votes_count": o.votes})).collect::<Vec<_>>(),
        "emojis": [], "voted": !own.is_empty(), "own_votes": own,
    })
}

/// A stored remote post as a Status, with the counts its server gave and what the owner did with
/// it (`timeline_actions`); `None` when it is not stored, deleted or hidden.
pub fn status(
    conn: &Connection,
    state: &AppState,
    note_id: &str,
) -> rusqlite::Result<Option<Value>> {
    let row = conn
        .prepare_cached(
            "SELECT actor_id, in_reply_to, visibility, url, summary, content_html, attachments,
                    poll, published, updated, replies_count, likes_count, boosts_count, raw
             FROM remote_notes n WHERE id = ?1 AND deleted_at IS NULL AND hidden = 0",
        )?
        .query_row([note_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<String>>(9)?,
                [r.get::<_, Option<i64>>(10)?, r.get(11)?, r.get(12)?],
                r.get::<_, String>(13)?,
            ))
        })
        .optional()?;
    let Some((
        actor,
        reply,
        visibility,
        url,
        summary,
        html,
        attachments,
        p,
        published,
        updated,
        counts,
        raw,
    )) = row
    else {
        return Ok(None);
    };
    let id = id_for(conn, note_id)?;
    let reply = match reply {
        Some(r) => reply_ids(conn, state, &r)?,
        None => None,
    };
    let attachments: Vec<Attachment> = serde_json::from_str(&attachments).unwrap_or_default();
    let poll_v = match p.and_then(|p| serde_json::from_str::<Poll>(&p).ok()) {
        Some(p) => Some(poll(&p, id, &own_votes(conn, note_id)?)),
        None => None,
    };
    let mine = crate::timeline::store::actions_on(conn, note_id)?;
    let did = |kind: &str| mine.iter().any(|m| m == kind);
    let [replies, likes, boosts] = counts;
    let raw: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let quote = match note_tags::quote(conn, state, note_id, &actor, &raw)? {
        None => Value::Null,
        Some((quoted, accepted)) => json!({
            "state": match (&quoted, accepted) {
                (Quoted::Deleted, _) => "deleted",
                (_, true) => "accepted",
                (_, false) => "pending",
            },
            "quoted_status_id": match quoted {
                Quoted::Own(id) => Some(id.to_string()),
                Quoted::Stored(note) => Some(id_for(conn, &note)?.to_string()),
                Quoted::Deleted | Quoted::Unknown => None,
            },
        }),
    };
    Ok(Some(json!({
        "id": id.to_string(),
        "uri": note_id,
        "url": url.unwrap_or_else(|| note_id.to_string()),
        "created_at": published,
        "edited_at": updated,
        "account": account_of(conn, state, &actor)?,
        "content": html,
        "visibility": visibility,
        "sensitive": summary.is_some(),
        "spoiler_text": summary.unwrap_or_default(),
        "language": note_tags::language(&raw),
        "in_reply_to_id": reply.as_ref().map(|(id, _)| id.to_string()),
        "in_reply_to_account_id": reply.map(|(_, a)| a),
        "media_attachments": attachments.iter().enumerate().map(|(i, a)| media(a, i, id)).collect::<Vec<_>>(),
        "mentions": note_tags::mentions(conn, state, &raw)?,
        "tags": note_tags::hashtags(&raw),
        "emojis": note_tags::emojis(&raw),
        // A ShallowQuote here; `quote::full` makes the outer one a Quote with the status.
        "quote": quote,
        // What the post's server says; Hortus does not count what it cannot see.
        "replies_count": replies.unwrap_or(0),
        "favourites_count": likes.unwrap_or(0),
        "reblogs_count": boosts.unwrap_or(0),
        "reblog": null,
        "poll": poll_v,
        "card": null,
        "application": null,
        "favourited": did("like"),
        "reblogged": did("boost"),
        "bookmarked": did("bookmark"),
        "muted": false,
        "pinned": false,
        "filtered": [],
    })))
}

/// A boost in the home timeline: a Status by the booster whose `reblog` is the post.
pub fn boost(
    conn: &Connection,
    state: &AppState,
    entry_id: i64,
    booster: &str,
    received_at: &str,
    note_id: &str,
) -> rusqlite::Result<Option<Value>> {
    let Some(inner) = status(conn, state, note_id)? else {
        return Ok(None);
    };
    let id = BOOST_BASE + entry_id;
    Ok(Some(json!({
        "id": id.to_string(),
        "uri": format!("{note_id}#boosted-by-{id}"),
        "url": inner["url"],
        "created_at": received_at,
        "edited_at": null,
        "account": account_of(conn, state, booster)?,
        "content": "",
        "visibility": inner["visibility"],
        "sensitive": false, "spoiler_text": "", "language": null,
        "in_reply_to_id": null, "in_reply_to_account_id": null,
        "media_attachments": [], "mentions": [], "tags": [], "emojis": [],
        "replies_count": 0, "favourites_count": 0, "reblogs_count": 0,
        "poll": null, "card": null, "application": null,
        "favourited": inner["favourited"], "reblogged": inner["reblogged"],
        "bookmarked": inner["bookmarked"], "muted": false, "pinned": false, "filtered": [],
        "reblog": inner,
    })))
}
