//! Which HTTP Signature form each server accepts (PROTOCOL.md §3): draft-cavage, which every
//! peer verifies, unless the server answered 401 to it and accepted RFC 9421 (or the reverse;
//! Mastodon 4.7 and Fedify 2 knock twice the same way). What a server accepted is kept per
//! server in `signature_forms` (migration 15) and shared by deliveries (`delivery::signing`)
//! and signed GETs ([`get`]), across restarts.

use std::collections::HashMap;
use std::time::SystemTime;

use openssl::pkey::{PKey, Private};
use rusqlite::{Connection, params};
use url::Url;

use crate::db::Db;
use crate::httpsig::{self, SignatureForm};

/// The form to try after a 401 to `form`.
pub fn other(form: SignatureForm) -> SignatureForm {
    match form {
        SignatureForm::Cavage => SignatureForm::Rfc9421,
        SignatureForm::Rfc9421 => SignatureForm::Cavage,
    }
}

pub fn name(form: SignatureForm) -> &'static str {
    match form {
        SignatureForm::Cavage => "cavage",
        SignatureForm::Rfc9421 => "rfc9421",
    }
}

/// Every server whose accepted form was learnt (servers not listed get draft-cavage).
pub fn remembered(conn: &Connection) -> rusqlite::Result<HashMap<String, SignatureForm>> {
    let mut stmt = conn.prepare("SELECT host, form FROM signature_forms")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (host, form) = row?;
        out.insert(host, parse(&form));
    }
    Ok(out)
}

fn parse(form: &str) -> SignatureForm {
    match form {
        "rfc9421" => SignatureForm::Rfc9421,
        _ => SignatureForm::Cavage,
    }
}

/// The form `host` (`host` or `host:port`, as in `deliveries.host`) accepted, if learnt.
pub fn form_of(conn: &Connection, host: &str) -> rusqlite::Result<Option<SignatureForm>> {
    let mut stmt = conn.prepare_cached("SELECT form FROM signature_forms WHERE host = ?1")?;
    let mut rows = stmt.query([host])?;
    Ok(match rows.next()? {
        Some(r) => Some(parse(&r.get::<_, String>(0)?)),
        None => None,
    })
}

/// Remembers that `host` accepted `form`.
pub fn remember(conn: &Connection, host: &str, form: SignatureForm) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO signature_forms (host, form, updated_at) VALUES (?1, ?2, ?3)
           ON CONFLICT (host) DO UPDATE SET form = ?2, updated_at = ?3",
        params![host, name(form), crate::times::now()],
    )?;
    Ok(())
}

/// Why a signed GET could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("signing the request failed: {0}")]
    Sign(#[from] httpsig::SignError),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("database error: {0}")]
    Db(#[from] crate::db::DbError),
}

impl From<rusqlite::Error> for GetError {
    fn from(e: rusqlite::Error) -> Self {
        GetError::Db(e.into())
    }
}

/// Who signs a GET and how it is sent: the guarded client, the instance actor's key, and the
/// database holding `signature_forms`.
pub struct Signer<'a> {
    pub http: &'a reqwest::Client,
    pub db: &'a Db,
    pub key_id: &'a str,
    pub key: &'a PKey<Private>,
}

/// A signed GET of `url` (already checked against the policy and the guard by the caller) to
/// `host` (`host` or `host:port`), in the form that server is known to accept; a 401 gets the
/// other form at once, remembered when it is accepted. Signed immediately before each send.
pub async fn get(
    signer: &Signer<'_>,
    host: &str,
    url: &Url,
    accept: &str,
) -> Result<reqwest::Response, GetError> {
    let h = host.to_string();
    let form = signer
        .db
        .read(move |c| Ok::<_, GetError>(form_of(c, &h)?))
        .await?
        .unwrap_or(SignatureForm::Cavage);
    let first = send(signer, url, accept, form).await?;
    if first.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(first);
    }
    let learnt = other(form);
    let second = send(signer, url, accept, learnt).await?;
    if second.status().is_success() {
        let h = host.to_string();
        signer
            .db
            .call(move |c| Ok::<_, GetError>(remember(c, &h, learnt)?))
            .await?;
        tracing::info!(server = %host, form = name(learnt), "the server accepts the other signature form on GETs; remembered");
    }
    Ok(second)
}

async fn send(
    signer: &Signer<'_>,
    url: &Url,
    accept: &str,
    form: SignatureForm,
) -> Result<reqwest::Response, GetError> {
    let (key_id, key, now) = (signer.key_id, signer.key, SystemTime::now());
    let headers = match form {
        SignatureForm::Cavage => httpsig::sign_get(url, key_id, key, now)?,
        SignatureForm::Rfc9421 => httpsig::sign_get_rfc9421(url, key_id, key, now)?,
    };
    let mut req = signer.http.get(url.clone()).header("Accept", accept);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    Ok(req.send().await?)
}
