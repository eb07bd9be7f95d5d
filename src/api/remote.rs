//! Remote accounts as apps see them: an id of their own (`api_accounts`, given on first sight)
//! and a Mastodon Account built from the actor document Hortus cached. Everything in it comes
//! from a peer: names are plain text, the bio and field values pass `sanitize::remote_html`,
//! and only absolute http(s) URLs survive.

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Value, json};

use crate::sanitize::{http_url, remote_html};
use crate::text::plain_text;

/// The id apps know `actor_id` by, given now if it has none (a write: run on the writer).
pub fn id_for(conn: &Connection, actor_id: &str) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO api_accounts (actor_id) VALUES (?1) ON CONFLICT (actor_id) DO NOTHING",
        [actor_id],
    )?;
    conn.query_row(
        "SELECT id FROM api_accounts WHERE actor_id = ?1",
        [actor_id],
        |r| r.get(0),
    )
}

/// The actor an account id names.
pub fn actor_of(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT actor_id FROM api_accounts WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()
}

/// An image URL from `icon` / `image`: a string, a Link or Image object, or an array of them.
fn image_url(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => http_url(s),
        Value::Array(items) => items.iter().find_map(image_url),
        Value::Object(_) => v
            .get("url")
            .and_then(image_url)
            .or_else(|| v.get("href").and_then(image_url)),
        _ => None,
    }
}

/// The Account of a cached actor; `None` when it is not cached.
pub fn account(conn: &Connection, id: i64, actor_id: &str) -> rusqlite::Result<Option<Value>> {
    let Some((actor, raw)) = crate::actors::with_document(conn, actor_id)? else {
        return Ok(None);
    };
    let doc: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let text = |key: &str, max| {
        doc.get(key)
            .and_then(Value::as_str)
            .map(|s| plain_text(s, max))
    };
    let username = text("preferredUsername", 100)
        .or_else(|| {
            actor
                .handle
                .as_deref()
                .and_then(|h| h.split('@').next())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let acct = actor
        .handle
        .clone()
        .unwrap_or_else(|| format!("{username}@{}", actor.host));
    let avatar = doc.get("icon").and_then(image_url).unwrap_or_default();
    let header = doc.get("image").and_then(image_url).unwrap_or_default();
    let kind = doc.get("type").and_then(Value::as_str).unwrap_or("Person");
    let fields: Vec<Value> = doc
        .get("attachment")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|f| f.get("type").and_then(Value::as_str) == Some("PropertyValue"))
                .take(16)
                .map(|f| {
                    json!({
                        "name": plain_text(f.get("name").and_then(Value::as_str).unwrap_or_default(), 255),
                        "value": remote_html(f.get("value").and_then(Value::as_str).unwrap_or_default()),
                        "verified_at": null,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let url = actor
        .url
        .as_deref()
        .and_then(http_url)
        .unwrap_or_else(|| actor.id.clone());
    Ok(Some(json!({
        "id": id.to_string(),
        "username": username,
        "acct": acct,
        "url": url,
        "uri": actor.id,
        "display_name": text("name", 200).unwrap_or_default(),
        "note": remote_html(doc.get("summary").and_then(Value::as_str).unwrap_or_default()),
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "locked": doc.get("manuallyApprovesFollowers").and_then(Value::as_bool).unwrap_or(false),
        "fields": fields,
        "emojis": [],
        "bot": matches!(kind, "Service" | "Application"),
        "group": kind == "Group",
        "discoverable": doc.get("discoverable").and_then(Value::as_bool),
        // Mastodon requires a date; an actor without `published` gets the Unix epoch, which apps
        // show as "unknown" rather than as a made-up join date.
        "created_at": doc.get("published").and_then(Value::as_str).map_or_else(|| "1970-01-01T00:00:00Z".into(), |s| plain_text(s, 40)),
        "last_status_at": null,
        "statuses_count": 0,
        "followers_count": 0,
        "following_count": 0,
    })))
}

/// The owner's Relationship to an account, from the follow tables and the owner's blocks and
/// mutes of single accounts (`graph::accounts`).
pub fn relationship(conn: &Connection, id: i64, actor_id: &str) -> rusqlite::Result<Value> {
    let following = crate::graph::following::list(conn)?
        .into_iter()
        .find(|f| f.actor_id == actor_id)
        .map(|f| f.state);
    let follower = crate::graph::followers::state_of(conn, actor_id)?;
    let relation = crate::graph::accounts::list(conn)?
        .into_iter()
        .find(|r| r.actor_id == actor_id);
    let (blocking, muting) = relation.map_or((false, false), |r| (r.blocked, r.muted));
    Ok(json!({
        "id": id.to_string(),
        "following": following.as_deref() == Some("accepted"),
        "requested": following.as_deref() == Some("pending"),
        "followed_by": follower.as_deref() == Some("accepted"),
        "requested_by": follower.as_deref() == Some("pending"),
        "showing_reblogs": true, "notifying": false, "languages": null,
        "blocking": blocking, "blocked_by": false, "muting": muting, "muting_notifications": muting,
        "domain_blocking": false, "endorsed": false, "note": "",
    }))
}
