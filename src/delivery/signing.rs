//! Which HTTP Signature form a server gets (PROTOCOL.md §3). draft-cavage is the default: every
//! peer verifies it. A server that answers 401 to one form gets the other at once, in the same
//! attempt; when that one is accepted, the server's form is remembered in `signature_forms`
//! (migration 15), so it survives a restart, and signed GETs read it too
//! (`activitypub::signature_forms`). Mastodon 4.7 signs this way ("double knocking"), as does
//! Fedify.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use openssl::pkey::{PKey, Private};

use super::DeliveryError;
use crate::activitypub::CONTENT_TYPE;
use crate::db::Db;
use crate::httpsig::{self, SignError, SignatureForm};

/// What the worker pool knows: read once at start, written through when a server's form is learnt.
/// Signed GETs (`activitypub::signature_forms`) also write the table and the pool does not read
/// it again: a form a GET learnt costs the pool's first delivery to that server one 401, after
/// which the pool learns it too.
pub struct Forms(Mutex<HashMap<String, SignatureForm>>);

impl Forms {
    pub async fn load(db: &Db) -> Result<Forms, DeliveryError> {
        let known = db.call(|c| Ok::<_, DeliveryError>(remembered(c)?)).await?;
        Ok(Forms(Mutex::new(known)))
    }

    /// The form to try first for `host`.
    pub fn get(&self, host: &str) -> SignatureForm {
        let known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        known.get(host).copied().unwrap_or(SignatureForm::Cavage)
    }

    /// `host` accepted `form` after a 401 to the other one.
    pub async fn learn(&self, db: &Db, host: &str, form: SignatureForm) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_string(), form);
        let server = host.to_string();
        let saved = db
            .call(move |c| Ok::<_, DeliveryError>(remember(c, &server, form)?))
            .await;
        match saved {
            Ok(()) => {
                tracing::info!(server = %host, form = name(form), "the server accepts the other signature form; remembered")
            }
            Err(e) => tracing::warn!(error = %e, "cannot remember a server's signature form"),
        }
    }
}

// What each server accepted is shared with signed GETs: one table, one module.
pub use crate::activitypub::signature_forms::{form_of, name, other, remember, remembered};

/// Signs a delivery's POST in `form`. Headers to add: `Date`, `Digest`, `Signature` (cavage) or
/// `Content-Digest`, `Signature-Input`, `Signature` (RFC 9421).
pub fn sign_post(
    form: SignatureForm,
    url: &url::Url,
    body: &[u8],
    key_id: &str,
    key: &PKey<Private>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    match form {
        SignatureForm::Cavage => httpsig::sign_post(url, body, CONTENT_TYPE, key_id, key, now),
        SignatureForm::Rfc9421 => {
            httpsig::sign_post_rfc9421(url, body, CONTENT_TYPE, key_id, key, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learnt_form_is_kept_and_replaced() {
        let conn = crate::db::open_in_memory().unwrap();
        assert_eq!(form_of(&conn, "a.example").unwrap(), None);
        remember(&conn, "a.example", SignatureForm::Rfc9421).unwrap();
        remember(&conn, "b.example:8443", SignatureForm::Cavage).unwrap();
        assert_eq!(
            form_of(&conn, "a.example").unwrap(),
            Some(SignatureForm::Rfc9421)
        );
        remember(&conn, "a.example", SignatureForm::Cavage).unwrap();
        let all = remembered(&conn).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["a.example"], SignatureForm::Cavage);
        assert_eq!(other(SignatureForm::Cavage), SignatureForm::Rfc9421);
        assert_eq!(other(SignatureForm::Rfc9421), SignatureForm::Cavage);
    }
}
