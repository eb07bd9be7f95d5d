//! The owner's password for signing in to apps (`hortus password`): stored only as an argon2id
//! hash (PHC string, the `argon2` crate's defaults: 19 MiB, 2 passes, OWASP's minimum), salted
//! with 16 random bytes from OpenSSL. Setting a new one ends every token apps hold for the owner.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::{Connection, OptionalExtension, params};

/// Shorter than this is refused: the sign-in page faces the internet.
pub const MIN_CHARS: usize = 10;
/// Longer than this is refused before hashing (argon2 takes any length; a megabyte "password"
/// posted to the sign-in form must not cost anything).
pub const MAX_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is too short: use at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password is too long: at most {MAX_BYTES} bytes")]
    TooLong,
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Sets the password; returns how many tokens were ended by the change.
pub fn set(conn: &Connection, password: &str, now: &str) -> Result<usize, PasswordError> {
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    let hashed = hash(password)?;
    let tx = crate::db::write_transaction(conn)?;
    tx.execute(
        "INSERT INTO api_password (id, hash, set_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
        params![hashed, now],
    )?;
    let ended = super::store::revoke_owner_tokens(&tx, now)?;
    tx.commit()?;
    Ok(ended)
}

pub fn is_set(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(stored(conn)?.is_some())
}

fn stored(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT hash FROM api_password WHERE id = 1", [], |r| {
        r.get(0)
    })
    .optional()
}

/// What checking a password found.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Right,
    Wrong,
    /// `hortus password` was never run.
    NotSet,
}

/// Checks `password` against the stored hash (argon2's comparison is constant-time).
pub fn check(conn: &Connection, password: &str) -> rusqlite::Result<Check> {
    let Some(stored) = stored(conn)? else {
        return Ok(Check::NotSet);
    };
    if password.len() > MAX_BYTES {
        return Ok(Check::Wrong);
    }
    let Ok(parsed) = PasswordHash::new(&stored) else {
        return Ok(Check::Wrong);
    };
    Ok(
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Check::Right,
            Err(_) => Check::Wrong,
        },
    )
}

/// The message every refusal for want of a password carries.
pub const NOT_SET: &str =
    "No password is set for signing in to apps: run `hortus password` on the server first";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_stored_as_argon2id_and_checked() {
        let conn = crate::db::open_in_memory().unwrap();
        assert_eq!(check(&conn, "anything").unwrap(), Check::NotSet);
        assert!(matches!(
            set(&conn, "短い", "t"),
            Err(PasswordError::TooShort)
        ));
        set(&conn, "庭の鍵 🔑 مفتاح café", "2026-11-29T00:00:00Z").unwrap();
        let stored: String = conn
            .query_row("SELECT hash FROM api_password", [], |r| r.get(0))
            .unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("庭の鍵"));
        assert_eq!(check(&conn, "庭の鍵 🔑 مفتاح café").unwrap(), Check::Right);
        // NFD "é" is another byte string: a different password.
        assert_eq!(
            check(&conn, "庭の鍵 🔑 مفتاح cafe\u{301}").unwrap(),
            Check::Wrong
        );
        assert_eq!(check(&conn, &"x".repeat(5000)).unwrap(), Check::Wrong);
    }
}
