//! ActivityPub documents: the owner's actor, the instance actor, the outbox and the two
//! collections of accounts (read through `graph`), and the signed-fetch gate in front of them.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::cache::Repr;
use super::respond::{activity_json, not_found_for, parse_page, wants_html};
use super::state::{AppState, Knocks, State, WebError, WebResult, is_owner};
use crate::activitypub as ap;
use crate::config::Config;
use crate::federation::KnockLimiter;
use crate::graph::{self, Collection};
use crate::timeline::shown::OutboxItem;
use crate::urls::Urls;

/// With `signed_fetch = true` (authorized fetch), ActivityPub JSON other than the actors needs a
/// valid signature from an allowed server: 401 without one, 403 from a refused server. The
/// actors, their keys, WebFinger, NodeInfo and the HTML pages stay public, or two signed-fetch
/// servers would deadlock fetching each other's keys (PROTOCOL.md §2).
pub(super) async fn signed_fetch_gate(
    req: &HttpRequest,
    state: &AppState,
    knocks: &KnockLimiter,
) -> Option<HttpResponse> {
    if !state.config.federation.signed_fetch {
        return None;
    }
    signed_by(req, state, knocks).await.err()
}

/// The verified signer of a GET, or the refusal to answer (401, or 403 from a refused server).
async fn signed_by(
    req: &HttpRequest,
    state: &AppState,
    knocks: &KnockLimiter,
) -> Result<crate::activitypub::fetch::RemoteActor, HttpResponse> {
    let headers = crate::inbox::http::header_pairs(req);
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let parts = crate::httpsig::RequestParts {
        method: req.method().as_str(),
        path_and_query: target,
        headers: &headers,
        body: None,
    };
    let peer = req.peer_addr().map(|a| a.ip());
    match crate::inbox::verify_request(state, knocks, &parts, peer).await {
        Ok(signer) => Ok(signer),
        Err(e) => {
            let key_id = crate::httpsig::signature_key_id(&parts).ok();
            crate::activitypub::refusal::log(&e, key_id.as_ref().map(|p| p.key_id()));
            if let Some(pending) = &key_id {
                // An allowed server that cannot read us is as much a problem as one we cannot
                // read: the owner sees it in `hortus inbox` (issue 10.4).
                crate::inbox::http::record_refusal(state, pending.key_id(), &[], &e).await;
            }
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            Err(HttpResponse::build(status)
                .insert_header((header::VARY, "Accept, Signature"))
                .content_type("text/plain; charset=utf-8")
                .body(e.to_string()))
        }
    }
}

pub(super) async fn actor(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
    if !is_owner(&state, &path) {
        return not_found_for(&req, &state);
    }
    if wants_html(&req) {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, state.urls.home()))
            .insert_header((header::VARY, "Accept"))
            .finish());
    }
    state
        .pages
        .serve(&req, Repr::ActivityJson, actor_document(&state))
        .await
}

async fn actor_document(state: &AppState) -> WebResult {
    let mut doc = state.actor();
    crate::conversation::moving::add_moved_to(state, &mut doc).await?;
    Ok(activity_json(StatusCode::OK, &doc))
}

/// A `QuoteAuthorization` stamp (FEP-044f): quoting servers dereference it to check consent;
/// once the owner revokes it, 410 Gone with a Tombstone.
pub(super) async fn quote_authorization(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> WebResult {
    let token = path.into_inner();
    let (urls, t) = (state.urls.clone(), token.clone());
    let found = state
        .db
        .read(move |c| crate::conversation::consent::stamp(c, &urls, &t).map_err(WebError::from))
        .await?;
    match found {
        Ok(Some(doc)) => Ok(activity_json(StatusCode::OK, &doc)),
        Ok(None) => not_found_for(&req, &state),
        Err(()) => Ok(activity_json(
            StatusCode::GONE,
            &serde_json::json!({
                "@context": ap::AS_CONTEXT,
                "id": ap::interaction::stamp_url(&state.urls, &token),
                "type": "Tombstone",
                "formerType": "QuoteAuthorization",
            }),
        )),
    }
}

pub(super) async fn instance_actor(state: State) -> WebResult {
    Ok(activity_json(
        StatusCode::OK,
        &ap::instance_actor(&state.site(), &state.instance_key.public_pem),
    ))
}

pub(super) async fn instance_outbox(state: State) -> WebResult {
    Ok(activity_json(
        StatusCode::OK,
        &ap::instance_outbox(&state.site()),
    ))
}

#[derive(Clone, Copy)]
enum CollectionKind {
    Outbox,
    Followers,
    Following,
}

impl CollectionKind {
    /// Whether who is in it stays private (`hide_social_graph`); the outbox never is.
    fn hidden(self, config: &Config) -> bool {
        config.federation.hide_social_graph && !matches!(self, CollectionKind::Outbox)
    }

    fn parse(s: &str) -> Option<CollectionKind> {
        match s {
            "outbox" => Some(CollectionKind::Outbox),
            "followers" => Some(CollectionKind::Followers),
            "following" => Some(CollectionKind::Following),
            _ => None,
        }
    }
    fn id(self, urls: &Urls) -> String {
        match self {
            CollectionKind::Outbox => urls.outbox(),
            CollectionKind::Followers => urls.followers(),
            CollectionKind::Following => urls.following(),
        }
    }
}

pub const COLLECTION_PAGE_SIZE: u32 = 20;

fn count_collection(c: &rusqlite::Connection, kind: CollectionKind) -> rusqlite::Result<u64> {
    match kind {
        // Posts and the owner's boosts (Announce items, as Mastodon lists reblogs).
        CollectionKind::Outbox => crate::timeline::shown::outbox_total(c),
        CollectionKind::Followers => graph::count_accepted(c, Collection::Followers),
        CollectionKind::Following => graph::count_accepted(c, Collection::Following),
    }
}

pub(super) async fn collection(
    req: HttpRequest,
    state: State,
    knocks: Knocks,
    path: web::Path<(String, String)>,
) -> WebResult {
    let (name, which) = path.into_inner();
    let Some(kind) = CollectionKind::parse(&which).filter(|_| is_owner(&state, &name)) else {
        return not_found_for(&req, &state);
    };
    if let Some(refusal) = signed_fetch_gate(&req, &state, &knocks).await {
        return Ok(refusal);
    }
    state
        .pages
        .serve(&req, Repr::ActivityJson, collection_document(&state, kind))
        .await
}

async fn collection_document(state: &AppState, kind: CollectionKind) -> WebResult {
    let total = state
        .db
        .read(move |c| count_collection(c, kind).map_err(WebError::from))
        .await?;
    let mut doc = ap::collection(&kind.id(&state.urls), total, COLLECTION_PAGE_SIZE);
    if kind.hidden(&state.config) {
        // The count, and no page to list who is in it (what Mastodon does when hiding).
        if let Some(fields) = doc.as_object_mut() {
            fields.remove("first");
            fields.remove("last");
        }
    }
    Ok(activity_json(StatusCode::OK, &doc))
}

pub(super) async fn collection_page(
    req: HttpRequest,
    state: State,
    knocks: Knocks,
    path: web::Path<(String, String, String)>,
) -> WebResult {
    let (name, which, n) = path.into_inner();
    let (Some(kind), Some(page)) = (CollectionKind::parse(&which), parse_page(&n)) else {
        return not_found_for(&req, &state);
    };
    if !is_owner(&state, &name) || kind.hidden(&state.config) {
        return not_found_for(&req, &state);
    }
    if let Some(refusal) = signed_fetch_gate(&req, &state, &knocks).await {
        return Ok(refusal);
    }
    state
        .pages
        .serve(
            &req,
            Repr::ActivityJson,
            collection_page_document(&req, &state, kind, page),
        )
        .await
}

async fn collection_page_document(
    req: &HttpRequest,
    state: &AppState,
    kind: CollectionKind,
    page: u32,
) -> WebResult {
    let offset = i64::from(page - 1) * i64::from(COLLECTION_PAGE_SIZE);
    let (total, posts, actors) = state
        .db
        .read(move |c| {
            let total = count_collection(c, kind)?;
            let mut posts = Vec::new();
            let mut actors = Vec::new();
            match kind {
                CollectionKind::Outbox => {
                    posts = crate::timeline::shown::outbox_page(
                        c,
                        offset as u64,
                        COLLECTION_PAGE_SIZE,
                    )?;
                }
                CollectionKind::Followers => {
                    actors = graph::page_accepted(
                        c,
                        Collection::Followers,
                        COLLECTION_PAGE_SIZE,
                        offset,
                    )?;
                }
                CollectionKind::Following => {
                    actors = graph::page_accepted(
                        c,
                        Collection::Following,
                        COLLECTION_PAGE_SIZE,
                        offset,
                    )?;
                }
            }
            Ok::<_, WebError>((total, posts, actors))
        })
        .await?;
    if page > ap::last_page(total, COLLECTION_PAGE_SIZE) {
        return not_found_for(req, state);
    }
    let items: Vec<Value> = match kind {
        CollectionKind::Outbox => posts
            .into_iter()
            .map(|item| match item {
                OutboxItem::Post(p) => ap::create(&state.site(), &p),
                OutboxItem::Boost(announce) => announce,
            })
            .collect(),
        _ => actors.into_iter().map(Value::String).collect(),
    };
    Ok(activity_json(
        StatusCode::OK,
        &ap::collection_page(
            &kind.id(&state.urls),
            page,
            total,
            COLLECTION_PAGE_SIZE,
            items,
        ),
    ))
}

/// FEP-8fcf's partial followers collection: the owner's accepted followers on the signer's
/// server, and only there. Always signed, whatever `signed_fetch` says: it is meant for one
/// server, and answering it unsigned would tell anyone who follows the owner from where.
pub(super) async fn followers_synchronization(
    req: HttpRequest,
    state: State,
    knocks: Knocks,
    path: web::Path<String>,
) -> WebResult {
    if !is_owner(&state, &path) {
        return not_found_for(&req, &state);
    }
    let signer = match signed_by(&req, &state, &knocks).await {
        Ok(signer) => signer,
        Err(refusal) => return Ok(refusal),
    };
    let Some(origin) = url::Url::parse(&signer.id)
        .ok()
        .and_then(|u| ap::follower_sync::origin_of(&u))
    else {
        return not_found_for(&req, &state);
    };
    let ids = state
        .db
        .read(move |c| graph::followers::accepted_on_origin(c, &origin).map_err(WebError::from))
        .await?;
    let doc = ap::follower_sync::partial_collection(&state.urls, &ids);
    let mut resp = activity_json(StatusCode::OK, &doc);
    // One answer per asking server: no shared cache may keep it.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}
