//! What a remote post's Status shows beyond the stored columns, read from the object as it was
//! received (`remote_notes.raw`): its language (`contentMap`), mentions, hashtags and custom
//! emojis (the `tag` array: Mastodon's `Mention`, `Hashtag` and `Emoji`), and what it quotes
//! (every quote form peers send, `conversation::note::quote_targets`). Everything is checked
//! here: only http(s) URLs, names without control characters, bounded counts.

use rusqlite::{Connection, OptionalExtension as _};
use serde_json::{Value, json};

use super::entities::{OWNER_ID, own_post_id};
use super::remote;
use crate::web::AppState;

/// More than any real post carries; a hostile one stops here.
const MAX_TAGS: usize = 50;

fn items(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().take(MAX_TAGS * 4).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

fn kind_of(tag: &Value) -> Option<&str> {
    match tag.get("type")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.first().and_then(Value::as_str),
        _ => None,
    }
}

/// The first `contentMap` key that is a language tag (BCP 47's shape: `en`, `pt-BR`, `zh-Hant`).
pub fn language(raw: &Value) -> Option<String> {
    let is_tag = |k: &str| {
        k.len() <= 35
            && k.starts_with(|c: char| c.is_ascii_alphabetic())
            && k.split('-')
                .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
            && k.split('-')
                .next()
                .is_some_and(|p| (2..=3).contains(&p.len()))
    };
    raw.get("contentMap")?
        .as_object()?
        .keys()
        .find(|k| is_tag(k))
        .cloned()
}

/// `mentions`: the accounts a `Mention` tag names, with the ids apps use (the owner is `1`).
pub fn mentions(conn: &Connection, state: &AppState, raw: &Value) -> rusqlite::Result<Vec<Value>> {
    let mut out: Vec<Value> = Vec::new();
    for tag in items(raw.get("tag")) {
        if kind_of(tag) != Some("Mention") {
            continue;
        }
        let Some(href) = tag
            .get("href")
            .and_then(Value::as_str)
            .and_then(crate::sanitize::http_url)
        else {
            continue;
        };
        if out.len() >= MAX_TAGS || out.iter().any(|m| m["url"] == href.as_str()) {
            continue;
        }
        // A bare `@carol` is on the server of its link (with its port, as handles are here).
        let host = url::Url::parse(&href)
            .map(|u| crate::activitypub::fetch::host_of(&u))
            .unwrap_or_default();
        let name = tag
            .get("name")
            .and_then(Value::as_str)
            .map(|n| crate::text::plain_text(n, 200))
            .unwrap_or_default();
        // The tag's `name` is the sender's word: its domain part is never shown. The handle
        // Hortus learnt for the link (by WebFinger) wins; else `user@` the link's own host.
        let known = crate::actors::handle_and_url(conn, &href)?.and_then(|(h, _)| h);
        let username = match &known {
            Some(handle) => handle.split('@').next().unwrap_or_default().to_string(),
            None => name
                .trim_start_matches('@')
                .split('@')
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        let acct = known.unwrap_or_else(|| format!("{username}@{host}"));
        let id = if href == state.urls.actor() {
            OWNER_ID.to_string()
        } else {
            remote::id_for(conn, &href)?.to_string()
        };
        out.push(json!({"id": id, "username": username, "acct": acct, "url": href}));
    }
    Ok(out)
}

/// `tags`: the `Hashtag`s, by name (without `#`) and the link their server gave.
pub fn hashtags(raw: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for tag in items(raw.get("tag")) {
        if kind_of(tag) != Some("Hashtag") || out.len() >= MAX_TAGS {
            continue;
        }
        let Some(name) = tag.get("name").and_then(Value::as_str) else {
            continue;
        };
        let name = crate::text::plain_text(name.trim_start_matches('#'), 100);
        if name.is_empty() || name.contains(char::is_whitespace) {
            continue;
        }
        let url = tag
            .get("href")
            .and_then(Value::as_str)
            .and_then(crate::sanitize::http_url)
            .unwrap_or_default();
        if !out.iter().any(|t| t["name"] == name.as_str()) {
            out.push(json!({"name": name, "url": url}));
        }
    }
    out
}

/// `emojis`: custom emojis (`:shortcode:` with an image), as Mastodon sends them.
pub fn emojis(raw: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for tag in items(raw.get("tag")) {
        if kind_of(tag) != Some("Emoji") || out.len() >= MAX_TAGS {
            continue;
        }
        let Some(code) = tag
            .get("name")
            .and_then(Value::as_str)
            .map(|n| n.trim_matches(':'))
            .filter(|c| {
                (1..=100).contains(&c.len())
                    && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            })
        else {
            continue;
        };
        let icon = tag.get("icon");
        let Some(url) = icon
            .and_then(|i| i.get("url").or(Some(i)))
            .and_then(Value::as_str)
            .and_then(crate::sanitize::http_url)
        else {
            continue;
        };
        if !out.iter().any(|e| e["shortcode"] == code) {
            out.push(json!({
                "shortcode": code, "url": url, "static_url": url, "visible_in_picker": false,
            }));
        }
    }
    out
}

/// What a quote names: one of the owner's posts, a stored remote post, one its author deleted,
/// or one Hortus has not.
pub enum Quoted {
    Own(i64),
    Stored(String),
    Deleted,
    Unknown,
}

/// What a remote post quotes, and whether the quote stands (FEP-044f consent): a quote of one
/// of the owner's posts when the owner's stamp stands; another quote when it carries its
/// author's `quoteAuthorization`, or quotes its own author (Mastodon asks no consent there).
/// Otherwise it is pending. `None`: it quotes nothing.
pub fn quote(
    conn: &Connection,
    state: &AppState,
    note_id: &str,
    author: &str,
    raw: &Value,
) -> rusqlite::Result<Option<(Quoted, bool)>> {
    let Some(target) = crate::conversation::note::quote_targets(raw)
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    if let Some(own) = own_post_id(conn, state, &target)? {
        let authorised: bool = conn.query_row(
            &format!(
                "SELECT {} FROM remote_notes n WHERE n.id = ?1",
                crate::conversation::consent::authorised("n")
            ),
            [note_id],
            |r| r.get(0),
        )?;
        return Ok(Some((Quoted::Own(own), authorised)));
    }
    // Consent is what `timeline::quotes` verified on the quoted author's server and kept, never
    // the post's own `quoteAuthorization` claim (anyone can write one).
    let stamped: bool = conn
        .query_row(
            "SELECT quote_authorization IS NOT NULL FROM remote_notes
             WHERE id = ?1 AND quoted = ?2",
            [note_id, target.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false);
    let quoted: Option<(String, bool)> = conn
        .query_row(
            "SELECT actor_id, deleted_at IS NOT NULL FROM remote_notes WHERE id = ?1",
            [&target],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(Some(match quoted {
        Some((_, true)) => (Quoted::Deleted, false),
        Some((a, false)) => (Quoted::Stored(target), stamped || a == author),
        None => (Quoted::Unknown, stamped),
    }))
}
