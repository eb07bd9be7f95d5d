//! OAuth 2 as Mastodon does it (docs.joinmastodon.org/methods/oauth, /methods/apps): app
//! registration, the token endpoint (`authorization_code` with PKCE S256, `client_credentials`;
//! no password grant: the password is typed only into this server's own page), revocation
//! (RFC 7009) and the RFC 8414 metadata Mastodon 4.3 publishes. The sign-in page is `signin`'s.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::auth;
use super::error::{ApiError, ApiResult};
use super::form::{Params, params};
use super::scopes::{self, Scopes};
use super::store::{self, App, OOB};
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/oauth")
            .wrap(auth::cors())
            .route("/token", web::post().to(token))
            .route("/revoke", web::post().to(revoke)),
    )
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(metadata),
    )
    .route(
        "/api/v1/apps",
        web::post().to(create_app).wrap(auth::cors()),
    )
    .route(
        "/api/v1/apps/verify_credentials",
        web::get().to(verify_app).wrap(auth::cors()),
    );
}

/// An error of the token and revoke endpoints, in RFC 6749 §5.2's shape (Mastodon's too).
fn oauth_error(status: StatusCode, code: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "error": code, "error_description": description }))
}

/// A redirect URI an app may register: the out-of-band one, or an absolute URI without a
/// fragment (apps use their own schemes, `elk://`, `com.tapbots.ivory:/`…), never one a browser
/// would run or read locally.
fn valid_redirect(uri: &str) -> bool {
    if uri == OOB {
        return true;
    }
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    uri.len() <= 2000
        && url.fragment().is_none()
        && !matches!(
            url.scheme(),
            "javascript" | "data" | "file" | "vbscript" | "blob" | "about"
        )
}

fn app_json(app: &App) -> serde_json::Value {
    json!({
        "id": app.id.to_string(),
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes.iter().collect::<Vec<_>>(),
        "redirect_uri": app.redirect_uris.join("\n"),
        "redirect_uris": app.redirect_uris,
        "vapid_key": "",
    })
}

async fn create_app(req: HttpRequest, body: web::Bytes, state: State) -> ApiResult {
    let p = params(&req, &body)?;
    let name = p
        .str("client_name")
        .ok_or_else(|| ApiError::Unprocessable("client_name is missing".into()))?;
    if name.chars().count() > 200 {
        return Err(ApiError::Unprocessable(
            "client_name is over 200 characters".into(),
        ));
    }
    let name = crate::text::plain_text(&name, 200);
    // A string of URIs separated by white space (before 4.3), or an array.
    let uris: Vec<String> = p
        .list("redirect_uris")
        .iter()
        .flat_map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    if uris.is_empty() || uris.len() > 10 || !uris.iter().all(|u| valid_redirect(u)) {
        return Err(ApiError::Unprocessable(
            "redirect_uris must be 1 to 10 absolute URIs without a fragment, or urn:ietf:wg:oauth:2.0:oob".into(),
        ));
    }
    let scopes =
        Scopes::parse(&p.str("scopes").unwrap_or_default()).map_err(ApiError::Unprocessable)?;
    let website = p
        .str("website")
        .filter(|w| url::Url::parse(w).is_ok_and(|u| matches!(u.scheme(), "http" | "https")));
    let now = time::OffsetDateTime::now_utc();
    let (hour_ago, day_ago) = (
        crate::times::rfc3339(now - time::Duration::hours(1)),
        crate::times::rfc3339(now - time::Duration::days(1)),
    );
    let now = crate::times::rfc3339(now);
    let (app, secret) = state
        .db
        .call(move |conn| {
            if store::app_room(conn, &hour_ago, &day_ago)?.is_err() {
                return Err(ApiError::Throttled(
                    3600,
                    "Too many apps registered in the last hour: try again later",
                ));
            }
            store::create_app(conn, &name, website.as_deref(), &uris, &scopes, &now)
        })
        .await?;
    let mut out = app_json(&app);
    out["client_id"] = json!(app.client_id);
    out["client_secret"] = json!(secret);
    out["client_secret_expires_at"] = json!(0);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(out))
}

async fn verify_app(req: HttpRequest, state: State) -> ApiResult {
    let token = auth::any(&req, &state).await?;
    let app = state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(store::app_by_id(conn, token.app_id)?) })
        .await?
        .ok_or_else(auth::invalid_token)?;
    Ok(HttpResponse::Ok().json(app_json(&app)))
}

/// The client's id and secret, from the body (client_secret_post) or HTTP Basic
/// (client_secret_basic, RFC 6749 §2.3.1).
fn client_credentials(req: &HttpRequest, p: &Params) -> Option<(String, String)> {
    if let (Some(id), Some(secret)) = (p.str("client_id"), p.str("client_secret")) {
        return Some((id, secret));
    }
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

async fn authenticate(
    req: &HttpRequest,
    p: &Params,
    state: &AppState,
) -> Result<App, HttpResponse> {
    let unauthorized = || {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed: check client_id and client_secret",
        )
    };
    let (id, secret) = client_credentials(req, p).ok_or_else(unauthorized)?;
    let found = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok(store::authenticate_app(conn, &id, &secret)?)
        })
        .await;
    match found {
        Ok(Some(app)) => Ok(app),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(actix_web::ResponseError::error_response(&e)),
    }
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge; the verifier is 43 to 128
/// unreserved characters.
fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    well_formed
        && computed.len() == challenge.len()
        && openssl::memcmp::eq(computed.as_bytes(), challenge.as_bytes())
}

async fn token(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    match issue(&req, &body, &state).await {
        Ok(resp) | Err(resp) => resp,
    }
}

async fn issue(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<HttpResponse, HttpResponse> {
    let p = params(req, body)
        .map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()))?;
    let grant = p.str("grant_type").unwrap_or_default();
    if !matches!(grant.as_str(), "authorization_code" | "client_credentials") {
        // No `password` grant: the password is typed only into this server's own page.
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or client_credentials",
        ));
    }
    let app = authenticate(req, &p, state).await?;
    let now = crate::times::now();
    let internal = |e: ApiError| actix_web::ResponseError::error_response(&e);
    let (secret, scopes) = if grant == "client_credentials" {
        let scopes = Scopes::parse(&p.str("scope").unwrap_or_default())
            .ok()
            .filter(|s| s.within(&app.scopes))
            .ok_or_else(|| {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "the scope is unknown or more than the app registered",
                )
            })?;
        let (app_id, s, n) = (app.id, scopes.clone(), now.clone());
        let secret = state
            .db
            .call(move |conn| store::create_token(conn, app_id, &s, false, &n))
            .await
            .map_err(internal)?;
        (secret, scopes)
    } else {
        let invalid_grant = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
        let code = p
            .str("code")
            .ok_or_else(|| invalid_grant("code is missing"))?;
        let n = now.clone();
        let taken = state
            .db
            .call(move |conn| -> Result<_, ApiError> {
                if !super::password::is_set(conn)? {
                    return Err(ApiError::Unauthorized(super::password::NOT_SET.into()));
                }
                Ok(store::take_code(conn, &code, &n)?)
            })
            .await
            .map_err(internal)?;
        let code = taken
            .filter(|c| c.app_id == app.id)
            .ok_or_else(|| invalid_grant("the code is unknown, used, expired or another app's"))?;
        if p.str("redirect_uri").as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(invalid_grant(
                "redirect_uri is not the one the code was issued for",
            ));
        }
        if let Some(challenge) = &code.code_challenge {
            let verifier = p.str("code_verifier").unwrap_or_default();
            if !pkce_ok(&verifier, challenge) {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        let (app_id, s, n) = (app.id, code.scopes.clone(), now.clone());
        let secret = state
            .db
            .call(move |conn| store::create_token(conn, app_id, &s, true, &n))
            .await
            .map_err(internal)?;
        tracing::info!(app = %app.name, scopes = %code.scopes, "an app signed in");
        (secret, code.scopes)
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(json!({
            "access_token": secret,
            "token_type": "Bearer",
            "scope": scopes.to_string(),
            "created_at": time::OffsetDateTime::now_utc().unix_timestamp(),
        })))
}

async fn revoke(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let Ok(p) = params(&req, &body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    let app = match authenticate(&req, &p, &state).await {
        Ok(app) => app,
        Err(resp) => return resp,
    };
    let Some(token) = p.str("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        );
    };
    let now = crate::times::now();
    let done = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            Ok(store::revoke_token(conn, app.id, &token, &now)?)
        })
        .await;
    match done {
        // RFC 7009 §2.2: an unknown token is answered 200 as well.
        Ok(_) => HttpResponse::Ok().json(json!({})),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

/// RFC 8414 metadata, as Mastodon 4.3 serves it: apps discover the endpoints and that PKCE S256
/// is supported.
async fn metadata(state: State) -> HttpResponse {
    let base = state.urls.base().trim_end_matches('/').to_string();
    let scopes: Vec<&str> = ["read", "write", "follow", "push", "profile"]
        .into_iter()
        .chain(scopes::granular())
        .collect();
    HttpResponse::Ok()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(json!({
            "issuer": format!("{base}/"),
            "service_documentation": "https://docs.joinmastodon.org/",
            "authorization_endpoint": format!("{base}/oauth/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "app_registration_endpoint": format!("{base}/api/v1/apps"),
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_ok(verifier, challenge));
        assert!(!pkce_ok(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        // A "plain" verifier equal to the challenge is not S256.
        assert!(!pkce_ok(challenge, challenge));
    }

    #[test]
    fn redirect_uris_that_a_browser_would_run_are_refused() {
        assert!(valid_redirect(OOB));
        assert!(valid_redirect("https://elk.zone/oauth/callback"));
        assert!(valid_redirect("com.tapbots.ivory:/oauth"));
        assert!(!valid_redirect("javascript:alert(1)"));
        assert!(!valid_redirect("data:text/html,<script>"));
        assert!(!valid_redirect("https://app.example/cb#frag"));
        assert!(!valid_redirect("/relative"));
    }
}
