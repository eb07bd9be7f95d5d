//! The streaming API (`/api/v1/streaming`, WebSocket, as Mastodon serves it): apps subscribe to
//! `user` (the owner's notifications and posts), `user:notification`, `public` and
//! `public:local` (the owner's public posts: the only local account; `user` also carries the
//! home timeline's new posts and boosts), with the events
//! `notification`, `update`, `status.update` and `delete`. Events are found by looking at the
//! database once a second per connection (new notification and post ids, edit and delete times):
//! whatever wrote them — the inbox, `hortus publish`, an app — they reach the stream without
//! the writers knowing about it. The token comes in `Sec-WebSocket-Protocol` (echoed, as
//! browsers require) or, for clients that cannot set it, `access_token` in the query.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::auth;
use super::entities;
use super::error::ApiError;
use super::form::params;
use super::notifications;
use crate::posts::store::IdPage;
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

const STREAMS: [&str; 4] = ["user", "user:notification", "public", "public:local"];
const TICK: Duration = Duration::from_secs(1);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/streaming", web::get().to(stream))
        .route("/v1/streaming/health", web::get().to(health));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("OK")
}

/// Where each subscription stands: the newest notification and post already known.
struct Cursor {
    streams: BTreeSet<String>,
    notification: i64,
    post: i64,
    /// The newest home timeline entry already known (`timeline_entries.id`).
    entry: i64,
    /// Edits and deletions at or after this time are looked for; `told` remembers which
    /// (post, time) were sent, since times have whole seconds.
    changed: String,
    told: BTreeSet<(i64, String)>,
}

async fn stream(
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Result<HttpResponse, ApiError> {
    let protocol = req
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string());
    let p = params(&req, &[])?;
    let secret = protocol
        .clone()
        .or_else(|| p.str("access_token"))
        .ok_or_else(auth::invalid_token)?;
    auth::owner_secret(&state, secret, "read").await?;
    let (mut resp, mut session, messages) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(v) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        resp.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, v);
    }
    let state = state.into_inner();
    let (notification, post, entry) = newest(&state).await?;
    let mut cursor = Cursor {
        streams: p
            .str("stream")
            .into_iter()
            .filter(|s| STREAMS.contains(&s.as_str()))
            .collect(),
        notification,
        post,
        entry,
        changed: crate::times::now(),
        told: BTreeSet::new(),
    };
    actix_web::rt::spawn(async move {
        let mut messages = messages.max_frame_size(64 * 1024);
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(Ok(actix_ws::Message::Text(text))) => subscribe(&mut cursor, &text),
                    Some(Ok(actix_ws::Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() { return; }
                    }
                    Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                _ = tick.tick() => {
                    match events(&state, &mut cursor).await {
                        Ok(events) => for e in events {
                            if session.text(e.to_string()).await.is_err() { return; }
                        },
                        Err(e) => tracing::warn!(error = %e, "streaming: reading events failed"),
                    }
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(resp)
}

/// `{"type": "subscribe" | "unsubscribe", "stream": "user"}` from the app.
fn subscribe(cursor: &mut Cursor, text: &str) {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(stream) = msg
        .get("stream")
        .and_then(Value::as_str)
        .filter(|s| STREAMS.contains(s))
    else {
        return;
    };
    match msg.get("type").and_then(Value::as_str) {
        Some("subscribe") => {
            cursor.streams.insert(stream.to_string());
        }
        Some("unsubscribe") => {
            cursor.streams.remove(stream);
        }
        _ => {}
    }
}

/// The newest notification, post and home timeline entry ids now: a stream sends what comes
/// after.
async fn newest(state: &std::sync::Arc<AppState>) -> Result<(i64, i64, i64), ApiError> {
    let s = state.clone();
    state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let notification = notifications::newest_id(conn, &s)?;
            let post = crate::posts::store::page_by_id(
                conn,
                IdPage {
                    limit: 1,
                    ..Default::default()
                },
            )?
            .first()
            .map_or(0, |p| p.id);
            let entry = crate::timeline::store::page(conn, None, 1)?
                .first()
                .map_or(0, |e| e.id);
            Ok((notification, post, entry))
        })
        .await
}

fn event(streams: &[&str], name: &str, payload: &Value) -> Value {
    json!({ "stream": streams, "event": name, "payload": payload.to_string() })
}

async fn events(
    state: &std::sync::Arc<AppState>,
    cursor: &mut Cursor,
) -> Result<Vec<Value>, ApiError> {
    if cursor.streams.is_empty() {
        return Ok(Vec::new());
    }
    let s = state.clone();
    let (since_n, since_p, since_e) = (cursor.notification, cursor.post, cursor.entry);
    let streams = cursor.streams.clone();
    let (since_changed, told) = (cursor.changed.clone(), cursor.told.clone());
    let checked = crate::times::now();
    let (out, n, p, e, sent) = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let mut out = Vec::new();
            let mut sent = Vec::new();
            let (mut n, mut p, mut e) = (since_n, since_p, since_e);
            let owner = entities::owner_account(conn, &s, false)?;
            if streams.contains("user") || streams.contains("user:notification") {
                for (id, v) in notifications::after(conn, &s, since_n, &owner)? {
                    n = n.max(id);
                    let name = if streams.contains("user:notification") {
                        "user:notification"
                    } else {
                        "user"
                    };
                    out.push(event(&[name], "notification", &v));
                }
            }
            let page = IdPage {
                since_id: Some(since_p),
                limit: 40,
                ..Default::default()
            };
            for post in crate::posts::store::page_by_id(conn, page)?.iter().rev() {
                p = p.max(post.id);
                let status = super::quote::full(conn, &s, entities::status(conn, &s, post, &owner)?)?;
                if streams.contains("user") {
                    out.push(event(&["user"], "update", &status));
                }
                if post.is_public_listed() {
                    for public in ["public", "public:local"] {
                        if streams.contains(public) {
                            out.push(event(&[public], "update", &status));
                        }
                    }
                }
            }
            // The home timeline: what followed accounts posted and boosted since (the `user`
            // stream carries it in Mastodon).
            if streams.contains("user") {
                let mut fresh = crate::timeline::store::page(conn, None, 40)?;
                fresh.retain(|entry| entry.id > since_e);
                for entry in fresh.iter().rev() {
                    e = e.max(entry.id);
                    if let Some(status) = super::home::entry_status(conn, &s, entry)? {
                        out.push(event(&["user"], "update", &status));
                    }
                }
            }
            // Edits and deletions of posts the stream had already seen.
            for (id, updated, deleted) in crate::posts::store::changed_since(conn, &since_changed)? {
                let stamp = deleted.clone().or(updated).unwrap_or_default();
                if id > since_p || told.contains(&(id, stamp.clone())) {
                    continue;
                }
                sent.push((id, stamp));
                let names: Vec<&str> = streams.iter().map(String::as_str).filter(|s| *s != "user:notification").collect();
                if names.is_empty() {
                    continue;
                }
                if deleted.is_some() {
                    // Mastodon's `delete` payload is the bare id, not JSON.
                    for name in &names {
                        out.push(json!({ "stream": [name], "event": "delete", "payload": id.to_string() }));
                    }
                } else if let Some(post) = crate::posts::by_id(conn, id)? {
                    let status = super::quote::full(conn, &s, entities::status(conn, &s, &post, &owner)?)?;
                    for name in &names {
                        if *name == "user" || post.is_public_listed() {
                            out.push(event(&[name], "status.update", &status));
                        }
                    }
                }
            }
            Ok((out, n, p, e, sent))
        })
        .await?;
    cursor.notification = n;
    cursor.post = p;
    cursor.entry = e;
    // The next look starts at this one's time (whole seconds, so the same second is looked at
    // again); what was told at or after it is remembered so it is not told twice.
    cursor.told.extend(sent);
    cursor.told.retain(|(_, t)| *t >= checked);
    cursor.changed = checked;
    Ok(out)
}
