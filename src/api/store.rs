//! Apps, authorization codes, access tokens and CSRF tokens (the `api_*` tables of migration
//! 14). Every secret is 256 random bits from OpenSSL, handed out once and stored only as its
//! SHA-256: a copy of hortus.db (a backup) holds nothing an attacker can sign in with.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, OptionalExtension, params};

use super::error::ApiError;
use super::scopes::Scopes;
use crate::posts::hex_sha256;

/// 32 random bytes, base64url: a token, code, client id or secret.
pub fn random_secret() -> Result<String, openssl::error::ErrorStack> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a secret.
pub fn digest(secret: &str) -> String {
    hex_sha256(secret.as_bytes())
}

#[derive(Debug, Clone)]
pub struct App {
    pub id: i64,
    pub client_id: String,
    pub name: String,
    pub website: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Scopes,
}

const APP_COLUMNS: &str = "id, client_id, name, website, redirect_uris, scopes";

fn app_row(r: &rusqlite::Row) -> rusqlite::Result<App> {
    let uris: String = r.get(4)?;
    let scopes: String = r.get(5)?;
    Ok(App {
        id: r.get(0)?,
        client_id: r.get(1)?,
        name: r.get(2)?,
        website: r.get(3)?,
        redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
        scopes: Scopes::stored(&scopes),
    })
}

/// Registration is open to anyone (apps register before anyone signs in), so it is bounded:
/// at most this many apps an hour, and apps that never signed in are forgotten after a day.
pub const MAX_APPS_PER_HOUR: i64 = 30;

/// `Err(())` when [`MAX_APPS_PER_HOUR`] apps registered within the last hour; forgets apps
/// older than a day that no one ever signed in to.
pub fn app_room(
    conn: &Connection,
    hour_ago: &str,
    day_ago: &str,
) -> rusqlite::Result<Result<(), ()>> {
    conn.execute(
        "DELETE FROM api_apps WHERE created_at <= ?1
           AND NOT EXISTS (SELECT 1 FROM api_tokens t WHERE t.app_id = api_apps.id)",
        [day_ago],
    )?;
    let recent: i64 = conn.query_row(
        "SELECT count(*) FROM api_apps WHERE created_at > ?1",
        [hour_ago],
        |r| r.get(0),
    )?;
    Ok(if recent >= MAX_APPS_PER_HOUR {
        Err(())
    } else {
        Ok(())
    })
}

/// Registers an app; returns it with its client secret (shown once, stored hashed).
pub fn create_app(
    conn: &Connection,
    name: &str,
    website: Option<&str>,
    redirect_uris: &[String],
    scopes: &Scopes,
    now: &str,
) -> Result<(App, String), ApiError> {
    let client_id = random_secret().map_err(ApiError::internal)?;
    let secret = random_secret().map_err(ApiError::internal)?;
    let uris = serde_json::to_string(redirect_uris).map_err(ApiError::internal)?;
    conn.execute(
        "INSERT INTO api_apps (client_id, client_secret_hash, name, website, redirect_uris, scopes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![client_id, digest(&secret), name, website, uris, scopes.to_string(), now],
    )?;
    let app = App {
        id: conn.last_insert_rowid(),
        client_id,
        name: name.to_string(),
        website: website.map(str::to_string),
        redirect_uris: redirect_uris.to_vec(),
        scopes: scopes.clone(),
    };
    Ok((app, secret))
}

pub fn app_by_client_id(conn: &Connection, client_id: &str) -> rusqlite::Result<Option<App>> {
    conn.prepare_cached(&format!(
        "SELECT {APP_COLUMNS} FROM api_apps WHERE client_id = ?1"
    ))?
    .query_row([client_id], app_row)
    .optional()
}

pub fn app_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<App>> {
    conn.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM api_apps WHERE id = ?1"))?
        .query_row([id], app_row)
        .optional()
}

/// The app whose id and secret these are, if both are right.
pub fn authenticate_app(
    conn: &Connection,
    client_id: &str,
    secret: &str,
) -> rusqlite::Result<Option<App>> {
    let found: Option<(String, App)> = conn
        .prepare_cached(&format!(
            "SELECT client_secret_hash, {APP_COLUMNS} FROM api_apps WHERE client_id = ?1"
        ))?
        .query_row([client_id], |r| {
            let hash: String = r.get(0)?;
            let uris: String = r.get(5)?;
            let scopes: String = r.get(6)?;
            Ok((
                hash,
                App {
                    id: r.get(1)?,
                    client_id: r.get(2)?,
                    name: r.get(3)?,
                    website: r.get(4)?,
                    redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
                    scopes: Scopes::stored(&scopes),
                },
            ))
        })
        .optional()?;
    // Digests of equal length compared in constant time.
    Ok(found.and_then(|(hash, app)| {
        openssl::memcmp::eq(hash.as_bytes(), digest(secret).as_bytes()).then_some(app)
    }))
}

/// The out-of-band redirect URI: the sign-in page shows the code instead of redirecting.
pub const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";
/// What RFC 6749 §10.10 asks of a code: short-lived.
pub const CODE_LIFETIME: time::Duration = time::Duration::minutes(10);

/// A code issued by the sign-in page.
#[derive(Debug)]
pub struct Code {
    pub app_id: i64,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub code_challenge: Option<String>,
}

pub fn create_code(conn: &Connection, code: &Code, expires_at: &str) -> Result<String, ApiError> {
    let secret = random_secret().map_err(ApiError::internal)?;
    conn.execute(
        "INSERT INTO api_codes (code_hash, app_id, redirect_uri, scopes, code_challenge, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            digest(&secret),
            code.app_id,
            code.redirect_uri,
            code.scopes.to_string(),
            code.code_challenge,
            expires_at
        ],
    )?;
    Ok(secret)
}

/// Takes a code (a code is used once, right or wrong: a guessed or replayed code is spent);
/// `None` when unknown or expired.
pub fn take_code(conn: &Connection, code: &str, now: &str) -> rusqlite::Result<Option<Code>> {
    conn.execute("DELETE FROM api_codes WHERE expires_at <= ?1", [now])?;
    conn.prepare_cached(
        "DELETE FROM api_codes WHERE code_hash = ?1
         RETURNING app_id, redirect_uri, scopes, code_challenge",
    )?
    .query_row([digest(code)], |r| {
        let scopes: String = r.get(2)?;
        Ok(Code {
            app_id: r.get(0)?,
            redirect_uri: r.get(1)?,
            scopes: Scopes::stored(&scopes),
            code_challenge: r.get(3)?,
        })
    })
    .optional()
}

/// A live token, as a request presents it.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: i64,
    pub app_id: i64,
    pub scopes: Scopes,
    /// Acts for the owner (false: an app-only token from `client_credentials`).
    pub owner: bool,
    pub created_at: String,
}

pub fn create_token(
    conn: &Connection,
    app_id: i64,
    scopes: &Scopes,
    owner: bool,
    now: &str,
) -> Result<String, ApiError> {
    let secret = random_secret().map_err(ApiError::internal)?;
    conn.execute(
        "INSERT INTO api_tokens (token_hash, app_id, scopes, owner, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![digest(&secret), app_id, scopes.to_string(), owner, now],
    )?;
    Ok(secret)
}

/// The token `secret` names, unless unknown, revoked or expired.
pub fn token(conn: &Connection, secret: &str, now: &str) -> rusqlite::Result<Option<Token>> {
    conn.prepare_cached(
        "SELECT id, app_id, scopes, owner, created_at FROM api_tokens
         WHERE token_hash = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
    )?
    .query_row(params![digest(secret), now], |r| {
        let scopes: String = r.get(2)?;
        Ok(Token {
            id: r.get(0)?,
            app_id: r.get(1)?,
            scopes: Scopes::stored(&scopes),
            owner: r.get(3)?,
            created_at: r.get(4)?,
        })
    })
    .optional()
}

/// Notes a token's use, at most once a minute (each call would be a write otherwise).
pub fn touch(conn: &Connection, id: i64, now: &str, a_minute_ago: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE api_tokens SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
    )?
    .execute(params![id, now, a_minute_ago])?;
    Ok(())
}

/// RFC 7009: revokes `secret` if it belongs to `app_id`; unknown tokens are not an error.
pub fn revoke_token(
    conn: &Connection,
    app_id: i64,
    secret: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ?3
         WHERE token_hash = ?1 AND app_id = ?2 AND revoked_at IS NULL",
        params![digest(secret), app_id, now],
    )
}

/// Ends every token acting for the owner (a new password).
pub fn revoke_owner_tokens(conn: &Connection, now: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ?1 WHERE owner = 1 AND revoked_at IS NULL",
        [now],
    )
}

/// An app as `hortus apps` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppSummary {
    pub id: i64,
    pub name: String,
    pub website: Option<String>,
    pub scopes: String,
    pub created_at: String,
    pub live_tokens: i64,
    pub last_used_at: Option<String>,
}

pub fn list_apps(conn: &Connection, now: &str) -> rusqlite::Result<Vec<AppSummary>> {
    let mut stmt = conn.prepare(
        "SELECT a.id, a.name, a.website, a.scopes, a.created_at,
                (SELECT count(*) FROM api_tokens t WHERE t.app_id = a.id AND t.revoked_at IS NULL
                    AND (t.expires_at IS NULL OR t.expires_at > ?1)),
                (SELECT max(t.last_used_at) FROM api_tokens t WHERE t.app_id = a.id)
         FROM api_apps a ORDER BY a.id",
    )?;
    stmt.query_map([now], |r| {
        Ok(AppSummary {
            id: r.get(0)?,
            name: r.get(1)?,
            website: r.get(2)?,
            scopes: r.get(3)?,
            created_at: r.get(4)?,
            live_tokens: r.get(5)?,
            last_used_at: r.get(6)?,
        })
    })?
    .collect()
}

/// `hortus apps revoke ID`: ends every token of the app and spends its codes at once. Returns
/// the app's name, or `None` when there is no such app.
pub fn revoke_app(
    conn: &Connection,
    id: i64,
    now: &str,
) -> rusqlite::Result<Option<(String, usize)>> {
    let tx = crate::db::write_transaction(conn)?;
    let name: Option<String> = tx
        .query_row("SELECT name FROM api_apps WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(name) = name else {
        return Ok(None);
    };
    let ended = tx.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE app_id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    tx.execute("DELETE FROM api_codes WHERE app_id = ?1", [id])?;
    tx.commit()?;
    Ok(Some((name, ended)))
}

/// A CSRF token for one sign-in form.
pub fn issue_csrf(conn: &Connection, now: &str, expires_at: &str) -> Result<String, ApiError> {
    let secret = random_secret().map_err(ApiError::internal)?;
    conn.execute("DELETE FROM api_csrf WHERE expires_at <= ?1", [now])?;
    // Anyone may load the page: keep the newest few thousand, whatever the request rate.
    conn.execute(
        "DELETE FROM api_csrf WHERE rowid NOT IN
             (SELECT rowid FROM api_csrf ORDER BY expires_at DESC LIMIT 5000)",
        [],
    )?;
    conn.execute(
        "INSERT INTO api_csrf (token_hash, expires_at) VALUES (?1, ?2)",
        params![digest(&secret), expires_at],
    )?;
    Ok(secret)
}

/// Spends a CSRF token; true when it was issued here and has not expired or been used.
pub fn take_csrf(conn: &Connection, secret: &str, now: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM api_csrf WHERE token_hash = ?1 AND expires_at > ?2",
        params![digest(secret), now],
    )? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_registration_is_bounded_and_secrets_are_stored_as_hashes() {
        let conn = crate::db::open_in_memory().unwrap();
        let scopes = Scopes::parse("read write").unwrap();
        let uris = vec![OOB.to_string()];
        let (hour_ago, day_ago) = ("2026-11-29T09:00:00Z", "2026-11-28T10:00:00Z");
        // A token-less app from two days ago is forgotten; one with a token stays.
        let (old, _) =
            create_app(&conn, "old ☂", None, &uris, &scopes, "2026-11-27T10:00:00Z").unwrap();
        let (used, _) =
            create_app(&conn, "used", None, &uris, &scopes, "2026-11-27T10:00:00Z").unwrap();
        let token = create_token(&conn, used.id, &scopes, true, "2026-11-27T10:00:00Z").unwrap();
        for i in 0..MAX_APPS_PER_HOUR {
            assert_eq!(
                app_room(&conn, hour_ago, day_ago).unwrap(),
                Ok(()),
                "app {i}"
            );
            create_app(
                &conn,
                &format!("app {i}"),
                None,
                &uris,
                &scopes,
                "2026-11-29T09:30:00Z",
            )
            .unwrap();
        }
        assert_eq!(app_room(&conn, hour_ago, day_ago).unwrap(), Err(()));
        assert!(app_by_id(&conn, old.id).unwrap().is_none());
        assert!(app_by_id(&conn, used.id).unwrap().is_some());
        // Only the digest is stored; the token still works by its secret.
        let stored: String = conn
            .query_row("SELECT token_hash FROM api_tokens", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, token);
        assert!(
            super::token(&conn, &token, "2026-11-29T10:00:00Z")
                .unwrap()
                .is_some()
        );
        assert!(
            super::token(&conn, &stored, "2026-11-29T10:00:00Z")
                .unwrap()
                .is_none()
        );
        // A new password ends every sign-in made with the old one.
        crate::api::password::set(&conn, "a new 秘密 password", "2026-11-29T10:00:00Z").unwrap();
        assert!(
            super::token(&conn, &token, "2026-11-29T10:01:00Z")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_code_is_spent_on_first_use_and_worthless_after_ten_minutes() {
        let conn = crate::db::open_in_memory().unwrap();
        let scopes = Scopes::parse("read").unwrap();
        let (app, _) = create_app(
            &conn,
            "app",
            None,
            &[OOB.into()],
            &scopes,
            "2026-11-29T10:00:00Z",
        )
        .unwrap();
        let code = |conn: &Connection| {
            let c = Code {
                app_id: app.id,
                redirect_uri: OOB.into(),
                scopes: scopes.clone(),
                code_challenge: None,
            };
            create_code(conn, &c, "2026-11-29T10:10:00Z").unwrap()
        };
        let first = code(&conn);
        assert!(
            take_code(&conn, &first, "2026-11-29T10:05:00Z")
                .unwrap()
                .is_some()
        );
        assert!(
            take_code(&conn, &first, "2026-11-29T10:05:01Z")
                .unwrap()
                .is_none()
        );
        let late = code(&conn);
        assert!(
            take_code(&conn, &late, "2026-11-29T10:10:00Z")
                .unwrap()
                .is_none()
        );
    }
}
