//! The sign-in and consent page of `/oauth/authorize`: the site's own layout, one password
//! field, the app's name and the scopes it asks for in words. CSRF-protected (a single-use token
//! in the form that must also match a `SameSite=Strict` cookie), framed by no one, never cached,
//! refused over plain http when the site is https, and throttled per client address before any
//! password is hashed.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::error::ApiError;
use super::form::params;
use super::password::{self, Check};
use super::scopes::{self, Scopes};
use super::store::{self, App, CODE_LIFETIME, OOB};
use super::throttle;
use crate::web::AppState;
use crate::web::views::{ErrorPage, Layout};

type State = web::Data<std::sync::Arc<AppState>>;

/// Registered before the `/oauth` scope of `oauth`, which would otherwise take these paths.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/authorize", web::get().to(page_get))
        .route("/oauth/authorize", web::post().to(submit))
        // toot (the Mastodon command-line app) opens `/oauth/authorize/?…`; Mastodon's Rails
        // routes take the trailing slash.
        .route("/oauth/authorize/", web::get().to(page_get));
}

const CSRF_COOKIE: &str = "hortus_csrf";
const CSRF_LIFETIME: time::Duration = time::Duration::minutes(30);

#[derive(Template)]
#[template(path = "authorize.html")]
struct AuthorizePage<'a> {
    l: &'a Layout,
    app_name: &'a str,
    website: Option<&'a str>,
    scopes: Vec<(String, &'static str)>,
    error: Option<&'a str>,
    action: String,
    csrf: &'a str,
    hidden: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "authorized.html")]
struct AuthorizedPage<'a> {
    l: &'a Layout,
    app_name: &'a str,
    code: &'a str,
}

/// What an app asks for (RFC 6749 §4.1.1, RFC 7636 §4.3), validated against its registration.
struct Request {
    app: App,
    redirect_uri: String,
    scopes: Scopes,
    state: Option<String>,
    code_challenge: Option<String>,
}

impl Request {
    fn hidden(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("response_type", "code".to_string()),
            ("client_id", self.app.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("scope", self.scopes.to_string()),
        ];
        if let Some(s) = &self.state {
            out.push(("state", s.clone()));
        }
        if let Some(c) = &self.code_challenge {
            out.push(("code_challenge", c.clone()));
            out.push(("code_challenge_method", "S256".into()));
        }
        out
    }
}

/// The request's parameters checked; an error is shown on the page, never sent to a redirect
/// URI that was not verified (RFC 6749 §4.1.2.1).
async fn validate(p: &super::form::Params, state: &AppState) -> Result<Request, String> {
    if p.str("response_type").as_deref() != Some("code") {
        return Err("response_type must be code".into());
    }
    let client_id = p.str("client_id").ok_or("client_id is missing")?;
    let app = state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(store::app_by_client_id(conn, &client_id)?) })
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no app is registered with this client_id")?;
    let redirect_uri = p.str("redirect_uri").ok_or("redirect_uri is missing")?;
    if !app.redirect_uris.contains(&redirect_uri) {
        return Err("redirect_uri is not one the app registered".into());
    }
    let scopes = Scopes::parse(&p.str("scope").unwrap_or_default())?;
    if !scopes.within(&app.scopes) {
        return Err(format!(
            "the app asks for {scopes}, more than it registered ({})",
            app.scopes
        ));
    }
    let code_challenge = p.str("code_challenge");
    if let Some(c) = &code_challenge {
        // `plain` would put the verifier itself in the browser's history.
        if p.str("code_challenge_method").as_deref() != Some("S256") {
            return Err("code_challenge_method must be S256".into());
        }
        if !(43..=128).contains(&c.len()) {
            return Err("code_challenge must be a base64url SHA-256".into());
        }
    }
    let state_param = p.str("state").filter(|s| s.len() <= 1000);
    Ok(Request {
        app,
        redirect_uri,
        scopes,
        state: state_param,
        code_challenge,
    })
}

/// Headers of every answer of the page: not cached, not framed (clickjacking a consent button),
/// no referrer carrying a code away.
fn page(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("Referrer-Policy", "no-referrer"));
    b
}

fn error_page(state: &AppState, status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = ErrorPage {
        l: &state.layout(),
        title,
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_string());
    page(status).body(body)
}

/// The page is refused over plain http unless the site itself is http (tests, loopback): the
/// password must not cross the network in clear.
fn secure_enough(req: &HttpRequest, state: &AppState) -> bool {
    state.config.base_url.scheme() != "https" || req.connection_info().scheme() == "https"
}

async fn render_form(
    state: &AppState,
    status: StatusCode,
    request: &Request,
    error: Option<&str>,
) -> HttpResponse {
    let now = time::OffsetDateTime::now_utc();
    let (n, expires) = (
        crate::times::rfc3339(now),
        crate::times::rfc3339(now + CSRF_LIFETIME),
    );
    let csrf = match state
        .db
        .call(move |conn| store::issue_csrf(conn, &n, &expires))
        .await
    {
        Ok(c) => c,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    let scopes = request
        .scopes
        .iter()
        .map(|s| (s.to_string(), scopes::describe(s)))
        .collect();
    let body = AuthorizePage {
        l: &state.layout(),
        app_name: &request.app.name,
        website: request.app.website.as_deref(),
        scopes,
        error,
        action: format!(
            "{}/oauth/authorize",
            state.urls.base().trim_end_matches('/')
        ),
        csrf: &csrf,
        hidden: request.hidden(),
    }
    .render();
    let Ok(body) = body else {
        return actix_web::ResponseError::error_response(&ApiError::internal("template"));
    };
    let cookie = Cookie::build(CSRF_COOKIE, csrf.clone())
        .path("/oauth")
        .http_only(true)
        .secure(state.config.base_url.scheme() == "https")
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::minutes(30))
        .finish();
    page(status).cookie(cookie).body(body)
}

/// Answers before any form: https, a password set, the throttle.
async fn gate(req: &HttpRequest, state: &AppState, address: &str) -> Option<HttpResponse> {
    if !secure_enough(req, state) {
        return Some(error_page(
            state,
            StatusCode::FORBIDDEN,
            "Use https",
            "This sign-in page is served over https only, so your password never crosses the network in clear: open it with https://.",
        ));
    }
    let addr = address.to_string();
    let checked = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok((
                password::is_set(conn)?,
                throttle::check(conn, &addr, time::OffsetDateTime::now_utc())?,
            ))
        })
        .await;
    match checked {
        Err(e) => Some(actix_web::ResponseError::error_response(&e)),
        Ok((false, _)) => Some(error_page(
            state,
            StatusCode::UNAUTHORIZED,
            "No password yet",
            password::NOT_SET,
        )),
        Ok((true, Err(wait))) => {
            let mut resp = error_page(
                state,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed sign-ins",
                &format!(
                    "Too many wrong passwords from your address: try again in {wait} seconds."
                ),
            );
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&wait.to_string()) {
                resp.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            Some(resp)
        }
        Ok((true, Ok(()))) => None,
    }
}

pub async fn page_get(req: HttpRequest, state: State) -> HttpResponse {
    let address = throttle::client_address(&req);
    if let Some(resp) = gate(&req, &state, &address).await {
        return resp;
    }
    let p = match params(&req, &[]) {
        Ok(p) => p,
        Err(e) => {
            return error_page(
                &state,
                StatusCode::BAD_REQUEST,
                "Cannot sign in",
                &e.to_string(),
            );
        }
    };
    match validate(&p, &state).await {
        Ok(request) => render_form(&state, StatusCode::OK, &request, None).await,
        Err(why) => error_page(&state, StatusCode::BAD_REQUEST, "Cannot sign in", &why),
    }
}

pub async fn submit(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let address = throttle::client_address(&req);
    if let Some(resp) = gate(&req, &state, &address).await {
        return resp;
    }
    let bad = |why: &str| error_page(&state, StatusCode::BAD_REQUEST, "Cannot sign in", why);
    // The form is read from the body only: parameters in the URL of a POST are ignored.
    let p = match super::form::body_only(&req, &body) {
        Ok(p) => p,
        Err(e) => return bad(&e.to_string()),
    };
    // CSRF: the form's token must be the cookie's and one this server issued, unused.
    let form_token = p.str("csrf").unwrap_or_default();
    let cookie_token = req.cookie(CSRF_COOKIE).map(|c| c.value().to_string());
    let same = cookie_token.is_some_and(|c| {
        c.len() == form_token.len() && openssl::memcmp::eq(c.as_bytes(), form_token.as_bytes())
    });
    let issued = same && {
        let (t, now) = (form_token.clone(), crate::times::now());
        matches!(
            state
                .db
                .call(move |conn| -> Result<_, ApiError> { Ok(store::take_csrf(conn, &t, &now)?) })
                .await,
            Ok(true)
        )
    };
    if !issued {
        return error_page(
            &state,
            StatusCode::FORBIDDEN,
            "The form expired",
            "This form was not sent from the sign-in page, or it is older than 30 minutes: go back to the app and sign in again.",
        );
    }
    let request = match validate(&p, &state).await {
        Ok(r) => r,
        Err(why) => return bad(&why),
    };
    if p.str("decision").as_deref() == Some("deny") {
        return finish(&state, &request, Err("access_denied"));
    }
    let typed = p.str("password").unwrap_or_default();
    let checked = state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(password::check(conn, &typed)?) })
        .await;
    match checked {
        Ok(Check::Right) => {}
        Ok(Check::NotSet) => {
            return error_page(
                &state,
                StatusCode::UNAUTHORIZED,
                "No password yet",
                password::NOT_SET,
            );
        }
        Ok(Check::Wrong) => {
            let reason = format!(
                "wrong password on the sign-in page for the app {:?}",
                crate::text::plain_text(&request.app.name, 80)
            );
            let addr = address.clone();
            let recorded = state
                .db
                .call(move |conn| -> Result<_, ApiError> {
                    Ok(throttle::failed(
                        conn,
                        &addr,
                        &reason,
                        time::OffsetDateTime::now_utc(),
                    )?)
                })
                .await;
            tracing::warn!(address = %address, app = %request.app.name, "failed sign-in: wrong password");
            if let Err(e) = recorded {
                return actix_web::ResponseError::error_response(&e);
            }
            return render_form(
                &state,
                StatusCode::UNAUTHORIZED,
                &request,
                Some("Wrong password."),
            )
            .await;
        }
        Err(e) => return actix_web::ResponseError::error_response(&e),
    }
    let code = store::Code {
        app_id: request.app.id,
        redirect_uri: request.redirect_uri.clone(),
        scopes: request.scopes.clone(),
        code_challenge: request.code_challenge.clone(),
    };
    let expires = crate::times::rfc3339(time::OffsetDateTime::now_utc() + CODE_LIFETIME);
    match state
        .db
        .call(move |conn| store::create_code(conn, &code, &expires))
        .await
    {
        Ok(secret) => finish(&state, &request, Ok(&secret)),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

/// The code (or the refusal) back to the app: a redirect with `code` and `state`, or for the
/// out-of-band URI a page showing the code.
fn finish(state: &AppState, request: &Request, outcome: Result<&str, &str>) -> HttpResponse {
    if request.redirect_uri == OOB {
        return match outcome {
            Ok(code) => {
                let body = AuthorizedPage {
                    l: &state.layout(),
                    app_name: &request.app.name,
                    code,
                }
                .render()
                .unwrap_or_default();
                page(StatusCode::OK).body(body)
            }
            Err(_) => error_page(
                state,
                StatusCode::OK,
                "Not signed in",
                "You refused the app: it cannot use your account.",
            ),
        };
    }
    let Ok(mut target) = url::Url::parse(&request.redirect_uri) else {
        return error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            "bad redirect_uri",
        );
    };
    {
        let mut q = target.query_pairs_mut();
        match outcome {
            Ok(code) => q.append_pair("code", code),
            Err(error) => q.append_pair("error", error),
        };
        if let Some(s) = &request.state {
            q.append_pair("state", s);
        }
    }
    page(StatusCode::FOUND)
        .insert_header(("Location", target.to_string()))
        .finish()
}
