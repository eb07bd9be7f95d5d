//! The inbox over HTTP: the POST handler for the three inbox paths, reading the head first and
//! the body only for servers the policy lets through (the order in `inbox`'s header).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{InboxError, KNOCK_PEEK, MAX_BODY, Screened, knock, knock_details, receive, screen};
use crate::activitypub::refusal as refusals;
use crate::context::Context;
use crate::federation::KnockLimiter;

/// The three inbox paths: the shared one, the owner's and the instance actor's take the same
/// handler. Registered after `web::configure` (see `app::routes`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/inbox").route(web::post().to(inbox)))
        .service(web::resource("/users/{name}/inbox").route(web::post().to(inbox)))
        .service(web::resource("/actor/inbox").route(web::post().to(inbox)));
}

/// Headers as the signature verifier wants them: lower-case names, values as sent.
pub fn header_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

async fn inbox(
    req: HttpRequest,
    ctx: web::Data<Arc<Context>>,
    knocks: web::Data<KnockLimiter>,
    mut payload: web::Payload,
) -> HttpResponse {
    let headers = header_pairs(&req);
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut parts = crate::httpsig::RequestParts {
        method: req.method().as_str(),
        path_and_query: target,
        headers: &headers,
        body: None,
    };
    // Named in the log line of a refusal (issue 10.5); parsed again here because `screen`
    // keeps it only for servers it lets through.
    let key_id = crate::httpsig::signature_key_id(&parts)
        .ok()
        .map(|p| p.key_id().to_string());
    // The head first: a wrong content type, a missing signature or a refused server is
    // answered before the body is read (of a refused server's, only a peek for the knock).
    let outcome = match screen(&ctx, &parts).await {
        Screened::Refuse(e) => Err(e),
        Screened::Knock(host) => {
            let peek = read_at_most(&mut payload, KNOCK_PEEK).await;
            let peer = req.peer_addr().map(|a| a.ip());
            Err(knock(&ctx, &knocks, host, peer, &peek).await)
        }
        Screened::Pass(pending) => {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            // A declared length over the limit is refused before a byte of the body is read.
            let body = if declared.is_some_and(|n| n > MAX_BODY) {
                Ok(Err(()))
            } else {
                payload
                    .to_bytes_limited(MAX_BODY)
                    .await
                    .map(|limited| limited.map_err(|_| ()))
            };
            let (outcome, body) = match body {
                Ok(Ok(body)) => {
                    parts.body = Some(&body);
                    let outcome = receive(&ctx, &parts, &pending).await;
                    (outcome, body)
                }
                Ok(Err(_)) => (Err(InboxError::TooLarge), Default::default()),
                Err(e) => (
                    Err(InboxError::BadActivity(format!("reading the body: {e}"))),
                    Default::default(),
                ),
            };
            if let Err(e) = &outcome {
                // An allowed server refused: the owner sees it in `hortus inbox` (issue 10.4).
                record_refusal(&ctx, pending.key_id(), &body, e).await;
            }
            outcome
        }
    };
    match outcome {
        Ok(super::Received::Activity(sync)) => {
            crate::metrics::inbox("accepted", "");
            if let Some(sync) = sync {
                let (signer, header) = *sync;
                super::follower_sync::spawn(ctx.get_ref().clone(), signer, header);
            }
            HttpResponse::Accepted().finish()
        }
        Ok(super::Received::Probe(nonce)) => {
            crate::metrics::inbox("probe", "");
            HttpResponse::Ok().json(super::probe::answer(&nonce))
        }
        Err(e) => {
            crate::metrics::inbox("refused", refusals::check_of(&e));
            refusals::log(&e, key_id.as_deref());
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let msg = if status.is_server_error() {
                "internal error".to_string()
            } else {
                e.to_string()
            };
            HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(msg)
        }
    }
}

/// Records a refusal of a request from an allowed server, with the actor and type its body
/// claims (unverified: only shown, and matched to a pending follow, never acted on).
pub async fn record_refusal(ctx: &Context, key_id: &str, body: &[u8], e: &InboxError) {
    if !refusals::worth_recording(e) {
        return;
    }
    let Ok(key_url) = url::Url::parse(key_id) else {
        return;
    };
    let host = crate::activitypub::fetch::host_of(&key_url);
    let (actor, kind) = knock_details(body);
    let seen = refusals::NewRefusal::new(&host, e, Some(key_id), actor.as_deref(), kind.as_deref());
    let recorded = ctx
        .db
        .call(move |c| {
            refusals::record(c, &seen, time::OffsetDateTime::now_utc()).map_err(InboxError::from)
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record a refused request");
    }
}

/// Up to `limit` bytes of a body, and no more read from the connection (it is then closed).
async fn read_at_most(payload: &mut web::Payload, limit: usize) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while out.len() < limit {
        match payload.next().await {
            Some(Ok(chunk)) => out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]),
            _ => break,
        }
    }
    out
}
