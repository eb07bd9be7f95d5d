//! Polls in posts from other servers (`GET /api/v1/polls/:id`, `POST /api/v1/polls/:id/votes`).
//! A poll's id is its status's. A vote goes to the poll's author as Mastodon sends it
//! (app/services/vote_service.rb, ActivityPub::VoteSerializer): one `Create` of a `Note` per
//! option chosen, whose `name` is the option and `inReplyTo` the Question, addressed to the
//! author alone, through the delivery queue. A vote is final, as on Mastodon; it is refused
//! (422) when the poll has ended, the choices are not options, a single-choice poll gets more
//! than one, or the owner already voted. The poll's server counts the votes and sends the new
//! totals in an `Update` of the Question, which the timeline stores.

use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::OptionalExtension as _;
use serde_json::{Value, json};

use super::auth;
use super::error::{ApiError, ApiResult};
use super::form::params;
use super::remote_status::{self, Named};
use crate::activitypub::{self as ap, fetch};
use crate::conversation::note::Poll;
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/polls/{id}", web::get().to(show))
        .route("/v1/polls/{id}/votes", web::post().to(vote));
}

fn not_found() -> ApiError {
    ApiError::NotFound("Record not found")
}

/// The Question a poll id names.
async fn question(state: &AppState, id: &str) -> Result<String, ApiError> {
    let id: i64 = id.parse().map_err(|_| not_found())?;
    match state
        .db
        .read(move |c| -> Result<_, ApiError> { Ok(remote_status::named(c, id)?) })
        .await?
    {
        Some(Named::Remote(note)) => Ok(note),
        _ => Err(not_found()),
    }
}

/// The poll as apps read it, from the status it belongs to.
async fn poll_json(state: &std::sync::Arc<AppState>, note: String) -> Result<Value, ApiError> {
    let s = state.clone();
    let status = state
        .db
        .call(move |c| -> Result<_, ApiError> { Ok(remote_status::status(c, &s, &note)?) })
        .await?
        .ok_or_else(not_found)?;
    match &status["poll"] {
        Value::Null => Err(not_found()),
        poll => Ok(poll.clone()),
    }
}

async fn show(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:statuses").await?;
    let note = question(&state, &id).await?;
    Ok(HttpResponse::Ok().json(poll_json(&state, note).await?))
}

/// The choices an app sent (`choices[]=0&choices[]=2`, or a JSON array of numbers or strings),
/// checked against the poll.
fn choices(sent: Vec<String>, poll: &Poll) -> Result<Vec<usize>, ApiError> {
    let refuse = |m: &str| Err(ApiError::Unprocessable(m.to_string()));
    let mut out = Vec::new();
    for c in sent.iter().take(poll.options.len() + 1) {
        match c.trim().parse::<usize>() {
            Ok(i) if i < poll.options.len() => {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
            _ => return refuse("Validation failed: a choice is not one of the poll's options"),
        }
    }
    if out.is_empty() {
        return refuse("Validation failed: choose at least one option");
    }
    if out.len() > 1 && !poll.multiple {
        return refuse("Validation failed: this poll takes one choice");
    }
    Ok(out)
}

async fn vote(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> ApiResult {
    auth::owner(&req, &state, "write:statuses").await?;
    let p = params(&req, &body)?;
    let note = question(&state, &id).await?;
    let lookup = note.clone();
    let (author, poll, raw) = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            Ok(c.query_row(
                "SELECT actor_id, poll, raw FROM remote_notes
                 WHERE id = ?1 AND deleted_at IS NULL AND hidden = 0",
                [&lookup],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?)
        })
        .await?
        .ok_or_else(not_found)?;
    let poll: Poll = poll
        .and_then(|p| serde_json::from_str(&p).ok())
        .ok_or_else(not_found)?;
    if remote_status::poll_expired(&poll) {
        return Err(ApiError::Unprocessable(
            "Validation failed: the poll has already ended".into(),
        ));
    }
    let chosen = choices(p.list("choices"), &poll)?;
    let url = url::Url::parse(&note).map_err(|_| not_found())?;
    if !state.policy.decide_url(&url).is_allowed() {
        return Err(ApiError::Unprocessable(format!(
            "{} is not a server you federate with: nothing was sent",
            fetch::host_of(&url)
        )));
    }
    let inbox = fetch::actor(&fetch::Remote::of(&state), &author, false)
        .await
        .map_err(|e| ApiError::Unprocessable(format!("the poll's author: {e}")))?
        .delivery_inbox()
        .to_string();
    // The option's name as its server wrote it (what it matches votes with); the stored one
    // was made plain for showing.
    let raw: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let key = if poll.multiple { "anyOf" } else { "oneOf" };
    let name_of = |i: usize| -> String {
        raw.get(key)
            .and_then(Value::as_array)
            .and_then(|o| o.get(i))
            .and_then(|o| o.get("name"))
            .and_then(Value::as_str)
            .map_or_else(|| poll.options[i].name.clone(), str::to_string)
    };
    let me = state.urls.actor();
    let votes: Vec<(usize, Value)> = chosen
        .iter()
        .map(|&i| {
            let vote = ap::new_activity_id(&state.urls);
            let create = json!({
                "@context": ap::AS_CONTEXT,
                "id": format!("{vote}/activity"),
                "type": "Create",
                "actor": me,
                "to": [author],
                "object": {
                    "id": vote, "type": "Note", "attributedTo": me, "to": [author],
                    "name": name_of(i), "inReplyTo": note,
                },
            });
            (i, create)
        })
        .collect();
    let (question_id, now) = (note.clone(), crate::times::now());
    state
        .db
        .call(move |c| -> Result<_, ApiError> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let voted: i64 = tx.query_row(
                "SELECT COUNT(*) FROM api_poll_votes WHERE note_id = ?1",
                [&question_id],
                |r| r.get(0),
            )?;
            if voted > 0 {
                return Err(ApiError::Unprocessable(
                    "Validation failed: you have already voted on this poll".into(),
                ));
            }
            for (choice, create) in &votes {
                tx.execute(
                    "INSERT INTO api_poll_votes (note_id, choice, activity_id, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![
                        question_id,
                        i64::try_from(*choice).unwrap_or(i64::MAX),
                        create["id"].as_str().unwrap_or_default(),
                        now
                    ],
                )?;
                crate::delivery::enqueue(&tx, create, std::slice::from_ref(&inbox))
                    .map_err(ApiError::internal)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    crate::delivery::wake_workers();
    Ok(HttpResponse::Ok().json(poll_json(&state, note).await?))
}
