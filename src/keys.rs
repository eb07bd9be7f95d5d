//! The two RSA key pairs: the owner's actor and the instance actor. Stored in the database so the
//! SQLite file is the whole backup.

use openssl::pkey::{PKey, Private};
use rusqlite::{Connection, OptionalExtension, params};

pub const ACTOR: &str = "actor";
pub const INSTANCE: &str = "instance";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    #[error("key generation failed: {0}")]
    Sign(#[from] crate::httpsig::SignError),
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
    #[error(
        "no {0} key in the database\n  fix: the site was not created by `hortus init`; run it in a fresh directory"
    )]
    Missing(&'static str),
}

#[derive(Clone)]
pub struct KeyPair {
    pub private: PKey<Private>,
    pub public_pem: String,
}

/// Generates and stores the named key unless it exists.
pub fn ensure(conn: &Connection, name: &'static str) -> Result<(), KeyError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM keys WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if !exists {
        let (private, public) = crate::httpsig::generate_keypair()?;
        conn.execute(
            "INSERT INTO keys (name, private_pem, public_pem, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                name,
                private,
                public,
                crate::times::rfc3339(time::OffsetDateTime::now_utc())
            ],
        )?;
    }
    Ok(())
}

pub fn load(conn: &Connection, name: &'static str) -> Result<KeyPair, KeyError> {
    let (private, public_pem): (String, String) = conn
        .query_row(
            "SELECT private_pem, public_pem FROM keys WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or(KeyError::Missing(name))?;
    Ok(KeyPair {
        private: PKey::private_key_from_pem(private.as_bytes())?,
        public_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_is_idempotent_and_load_round_trips() {
        let conn = crate::db::open_in_memory().unwrap();
        ensure(&conn, ACTOR).unwrap();
        let first = load(&conn, ACTOR).unwrap().public_pem;
        ensure(&conn, ACTOR).unwrap();
        let again = load(&conn, ACTOR).unwrap();
        assert_eq!(first, again.public_pem);
        assert!(first.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(again.private.bits(), 2048);
        assert!(matches!(load(&conn, INSTANCE), Err(KeyError::Missing(_))));
    }
}
