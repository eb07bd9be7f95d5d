//! The streaming API (`/api/v1/streaming`, WebSocket, as Mastodon serves it): apps subscribe to
//! `user` (the owner's notifications and posts), `user:notification`, `public` and
//! `public:local` (the owner's public posts: the only local account; `user` also carries the
//! home timeline's new posts and boosts), with the events
//! `notification`, `update`, `status.update` and `delete`. What to send is found once for the
//! whole server (`stream_feed`); each stream only picks what its subscriptions take. A stream
//! that cannot keep up is closed rather than let grow: when it falls `stream_feed::BUFFER`
//! changes behind, or when one frame waits [`SEND_WAIT`] to be taken (an app that stopped
//! reading); apps reconnect. The token comes in `Sec-WebSocket-Protocol` (echoed, as
//! browsers require) or, for clients that cannot set it, `access_token` in the query.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::auth;
use super::error::ApiError;
use super::form::params;
use super::stream_feed::{Change, Feed, Kind};
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

const STREAMS: [&str; 4] = ["user", "user:notification", "public", "public:local"];
/// The longest one frame may wait for a stream that stopped reading.
pub const SEND_WAIT: Duration = Duration::from_secs(5);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/streaming", web::get().to(stream))
        .route("/v1/streaming/health", web::get().to(health));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("OK")
}

async fn stream(
    req: HttpRequest,
    body: web::Payload,
    state: State,
    feed: web::Data<Feed>,
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
    let mut streams: BTreeSet<String> = p
        .str("stream")
        .into_iter()
        .filter(|s| STREAMS.contains(&s.as_str()))
        .collect();
    let mut changes = feed.into_inner().subscribe(state.get_ref().clone());
    actix_web::rt::spawn(async move {
        let mut messages = messages.max_frame_size(64 * 1024);
        loop {
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(Ok(actix_ws::Message::Text(text))) => subscribe(&mut streams, &text),
                    Some(Ok(actix_ws::Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() { return; }
                    }
                    Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                change = changes.recv() => match change {
                    Ok(change) => for frame in frames(&change, &streams) {
                        match tokio::time::timeout(SEND_WAIT, session.text(frame)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => {
                                tracing::info!("streaming: an app stopped reading; its stream is closed");
                                return;
                            }
                        }
                    },
                    Err(RecvError::Lagged(n)) => {
                        tracing::info!(behind = n, "streaming: an app fell behind; its stream is closed");
                        break;
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
        let _ = tokio::time::timeout(SEND_WAIT, session.close(None)).await;
    });
    Ok(resp)
}

/// The frames of one change for a stream subscribed to `streams`: a notification once (on
/// `user:notification` when subscribed, else `user`); a new public post on `user` and each
/// public stream; the home timeline on `user`; edits and deletions on every stream but
/// `user:notification`, an edit of a non-public post on `user` only.
pub fn frames(change: &Change, streams: &BTreeSet<String>) -> Vec<String> {
    let has = |s: &str| streams.contains(s);
    let names: Vec<&str> = match change.kind {
        Kind::Notification if has("user:notification") => vec!["user:notification"],
        Kind::Notification if has("user") => vec!["user"],
        Kind::Notification => vec![],
        Kind::Home if has("user") => vec!["user"],
        Kind::Home => vec![],
        Kind::Post { public } | Kind::Edited { public } => ["user", "public", "public:local"]
            .into_iter()
            .filter(|s| has(s) && (public || *s == "user"))
            .collect(),
        Kind::Deleted => ["user", "public", "public:local"]
            .into_iter()
            .filter(|s| has(s))
            .collect(),
    };
    names
        .into_iter()
        .map(|name| {
            json!({"stream": [name], "event": change.event, "payload": change.payload}).to_string()
        })
        .collect()
}

/// `{"type": "subscribe" | "unsubscribe", "stream": "user"}` from the app.
fn subscribe(streams: &mut BTreeSet<String>, text: &str) {
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
            streams.insert(stream.to_string());
        }
        Some("unsubscribe") => {
            streams.remove(stream);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: Kind) -> Change {
        Change {
            kind,
            event: "update",
            payload: "{}".into(),
        }
    }

    fn names(kind: Kind, streams: &[&str]) -> Vec<String> {
        let set = streams.iter().map(|s| s.to_string()).collect();
        frames(&change(kind), &set)
            .iter()
            .map(|f| serde_json::from_str::<Value>(f).unwrap()["stream"][0].to_string())
            .collect()
    }

    #[test]
    fn each_change_goes_to_the_streams_mastodon_sends_it_on() {
        let all = ["user", "user:notification", "public", "public:local"];
        assert_eq!(names(Kind::Notification, &all), ["\"user:notification\""]);
        assert_eq!(names(Kind::Notification, &["user"]), ["\"user\""]);
        assert!(names(Kind::Notification, &["public"]).is_empty());
        assert_eq!(
            names(Kind::Post { public: true }, &all),
            ["\"user\"", "\"public\"", "\"public:local\""]
        );
        // A followers-only post never reaches a public stream.
        assert_eq!(names(Kind::Post { public: false }, &all), ["\"user\""]);
        assert_eq!(names(Kind::Edited { public: false }, &["public"]).len(), 0);
        assert_eq!(names(Kind::Home, &["public", "user:notification"]).len(), 0);
        assert_eq!(names(Kind::Home, &all), ["\"user\""]);
        assert_eq!(names(Kind::Deleted, &all).len(), 3);
    }
}
