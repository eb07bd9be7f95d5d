//! Who is calling: the bearer token of a request, checked against its hash, its app, its expiry
//! and the scope the call needs; and the CORS answers browser apps (Elk, Phanpy) need.

use actix_web::HttpRequest;
use actix_web::http::header;

use super::error::ApiError;
use super::password;
use super::store::{self, Token};
use crate::web::AppState;

/// A request's bearer token (RFC 6750 §2.1). Only the header: a token in a URL ends up in
/// proxies' and browsers' logs.
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 200)
        .then_some(token)
}

pub fn invalid_token() -> ApiError {
    ApiError::Unauthorized("The access token is invalid".into())
}

/// The token of a request that acts for the owner with `scope`: 401 without a valid token (or
/// before `hortus password`), 403 when the token lacks the scope, 422 for an app-only token.
pub async fn owner(req: &HttpRequest, state: &AppState, scope: &str) -> Result<Token, ApiError> {
    let token = any(req, state).await?;
    if !token.owner {
        return Err(ApiError::Unprocessable(
            "This method requires an authenticated user".into(),
        ));
    }
    if !token.scopes.allows(scope) {
        return Err(ApiError::Forbidden);
    }
    Ok(token)
}

/// `accounts/verify_credentials`: `profile` is enough (Mastodon 4.3's scope for "who is this").
pub async fn owner_profile(req: &HttpRequest, state: &AppState) -> Result<Token, ApiError> {
    let token = owner(req, state, "profile").await;
    match token {
        Err(ApiError::Forbidden) => owner(req, state, "read:accounts").await,
        other => other,
    }
}

/// Any live token, an app's own included.
pub async fn any(req: &HttpRequest, state: &AppState) -> Result<Token, ApiError> {
    let secret = bearer(req).ok_or_else(invalid_token)?.to_string();
    by_secret(state, secret).await
}

/// A token acting for the owner with `scope`, given by its secret (the streaming API takes it
/// from `Sec-WebSocket-Protocol`, where browsers can put it).
pub async fn owner_secret(
    state: &AppState,
    secret: String,
    scope: &str,
) -> Result<Token, ApiError> {
    let token = by_secret(state, secret).await?;
    if !token.owner {
        return Err(ApiError::Unprocessable(
            "This method requires an authenticated user".into(),
        ));
    }
    if !token.scopes.allows(scope) {
        return Err(ApiError::Forbidden);
    }
    Ok(token)
}

async fn by_secret(state: &AppState, secret: String) -> Result<Token, ApiError> {
    if secret.is_empty() || secret.len() > 200 {
        return Err(invalid_token());
    }
    let now = crate::times::now();
    let found = state
        .db
        .read({
            let now = now.clone();
            move |conn| -> Result<_, ApiError> {
                if !password::is_set(conn)? {
                    return Err(ApiError::Unauthorized(password::NOT_SET.into()));
                }
                Ok(store::token(conn, &secret, &now)?)
            }
        })
        .await?;
    let token = found.ok_or_else(invalid_token)?;
    let minute_ago =
        crate::times::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
    let id = token.id;
    state
        .db
        .call(move |conn| -> Result<_, ApiError> { Ok(store::touch(conn, id, &now, &minute_ago)?) })
        .await?;
    Ok(token)
}

/// CORS for the API: any origin may call it with a bearer token (no cookies are involved, so
/// nothing rides on a visitor's session), and may read the pagination `Link` header.
pub fn cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allow_any_origin()
        .send_wildcard()
        .allow_any_method()
        .allow_any_header()
        .expose_headers([header::LINK])
        .max_age(3600)
}
