//! The `quote` of a Status as Mastodon 4.5 gives it (docs.joinmastodon.org/entities/Quote): on
//! the status an app asked for, `{state, quoted_status}` with the quoted post as a Status when
//! the quote stands; on that quoted status, and deeper, a ShallowQuote `{state,
//! quoted_status_id}`, so a chain of quotes never nests without end. `entities` (the owner's
//! posts) and `remote_status` write the ShallowQuote; [`full`] makes the outer one whole. Every
//! answer that shows statuses passes them through it.

use rusqlite::Connection;
use serde_json::{Value, json};

use super::entities;
use super::remote_status::{self, Named};
use crate::web::AppState;

/// `status` with its quote (and its reblog's) made a whole Quote.
pub fn full(conn: &Connection, state: &AppState, mut status: Value) -> rusqlite::Result<Value> {
    if status["reblog"].is_object() {
        let inner = status["reblog"].take();
        status["reblog"] = full(conn, state, inner)?;
    }
    let Some(shallow) = status.get("quote").filter(|q| q.is_object()) else {
        return Ok(status);
    };
    let accepted = shallow["state"] == "accepted";
    let quote_state = shallow["state"].clone();
    let quoted_id = shallow["quoted_status_id"]
        .as_str()
        .and_then(|id| id.parse::<i64>().ok());
    let quoted = match quoted_id {
        Some(id) if accepted => quoted_status(conn, state, id)?,
        _ => None,
    };
    // Accepted, but the quoted post Hortus had is gone since: Mastodon says `deleted`. (A post
    // Hortus never held stays `accepted`, with no quoted status to show.)
    let quote_state = if accepted && quoted_id.is_some() && quoted.is_none() {
        json!("deleted")
    } else {
        quote_state
    };
    status["quote"] = json!({"state": quote_state, "quoted_status": quoted});
    Ok(status)
}

/// The quoted post as a Status (with its own quote shallow), when Hortus still has it.
fn quoted_status(conn: &Connection, state: &AppState, id: i64) -> rusqlite::Result<Option<Value>> {
    match remote_status::named(conn, id)? {
        Some(Named::Own(id)) => {
            match crate::posts::by_id(conn, id)?.filter(|p| p.deleted_at.is_none()) {
                Some(post) => {
                    let account = entities::owner_account(conn, state, false)?;
                    Ok(Some(entities::status(conn, state, &post, &account)?))
                }
                None => Ok(None),
            }
        }
        Some(Named::Remote(note)) => remote_status::status(conn, state, &note),
        _ => Ok(None),
    }
}
