//! HTTP Signatures as pure functions: no I/O, no key fetching, the clock passed in.
//!
//! Outgoing requests are signed with draft-cavage-12 as Mastodon does it (PROTOCOL.md §3):
//! [`sign_post`], [`sign_get`]. [`sign_post_rfc9421`] / [`sign_get_rfc9421`] make the RFC 9421
//! form, which a caller may try after a 401.
//!
//! Incoming requests are verified in two steps, so the federation policy can judge the keyId's
//! host before any key is fetched:
//! 1. [`signature_key_id`] parses whichever form is present (RFC 9421 `Signature-Input` +
//!    `Signature`, else cavage `Signature`, else `Authorization: Signature …`);
//! 2. [`verify`] (or [`verify_with`] to set the scheme and clock window) checks it with the
//!    fetched public key.
//!
//! Both frameworks (actix-web on http 0.2, reqwest on http 1) meet this module through plain
//! strings: [`RequestParts`] in, `(name, value)` pairs out.

mod cavage;
mod crypto;
mod digest;
mod error;
mod request;
mod rfc9421;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use openssl::pkey::{PKey, Private, Public};

pub use cavage::{CavageSignature, parse_signature_header};
pub use crypto::{SignatureAlgorithm, generate_keypair, load_private_key, load_public_key};
pub use digest::{content_digest_header, digest_header};
pub use error::{SignError, VerifyError};
pub use request::{RequestParts, SignatureForm, Verified};
pub use rfc9421::Rfc9421Signature;

// What the signature forms share, defined in request.rs and named here so `cavage` and `rfc9421`
// import them from one place.
pub(crate) use request::{Clock, MAX_SIGNATURE_HEADER_LEN};
use request::{authority, check_key_id, shown};

/// How far a signature's `Date` / `created` may lie from our clock, either way. Mastodon allows
/// 5 min plus 1 h of grace; Fedify 1 h. PROTOCOL.md §3 asks for about 1 h.
pub const DEFAULT_CLOCK_WINDOW: Duration = Duration::from_secs(60 * 60);

/// A parsed signature, waiting for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignature {
    form: Form,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    Cavage(CavageSignature),
    Rfc9421(Rfc9421Signature),
}

impl PendingSignature {
    /// The keyId the signer named: fetch it only after the federation policy allowed its host.
    pub fn key_id(&self) -> &str {
        match &self.form {
            Form::Cavage(sig) => &sig.key_id,
            Form::Rfc9421(sig) => &sig.key_id,
        }
    }

    pub fn form(&self) -> SignatureForm {
        match self.form {
            Form::Cavage(_) => SignatureForm::Cavage,
            Form::Rfc9421(_) => SignatureForm::Rfc9421,
        }
    }
}

/// Settings for [`verify_with`].
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// Scheme used to rebuild RFC 9421 `@target-uri` (`{scheme}://{Host}{path_and_query}`): the
    /// request itself does not carry it. `https` in production; `http` for loopback tests.
    pub scheme: &'a str,
    /// See [`DEFAULT_CLOCK_WINDOW`].
    pub clock_window: Duration,
}

impl Default for VerifyOptions<'_> {
    fn default() -> Self {
        VerifyOptions {
            scheme: "https",
            clock_window: DEFAULT_CLOCK_WINDOW,
        }
    }
}

/// Step 1, before any key is fetched: find and parse the signature. RFC 9421 wins when a
/// `Signature-Input` header is present, since its `Signature` header is then a 9421 dictionary.
pub fn signature_key_id(req: &RequestParts) -> Result<PendingSignature, VerifyError> {
    if let Some(input) = req.header("signature-input") {
        let signature = req
            .header("signature")
            .ok_or(VerifyError::MissingSignature)?;
        let sig = rfc9421::parse(&input, &signature)?;
        return Ok(PendingSignature {
            form: Form::Rfc9421(sig),
        });
    }
    if let Some(value) = req.header("signature") {
        let sig = parse_signature_header(&value)?;
        return Ok(PendingSignature {
            form: Form::Cavage(sig),
        });
    }
    if let Some(value) = req.header("authorization") {
        // draft-cavage §3.1: `Authorization: Signature <params>`.
        if let Some((scheme, params)) = value.split_once(' ')
            && scheme.eq_ignore_ascii_case("signature")
        {
            let sig = parse_signature_header(params)?;
            return Ok(PendingSignature {
                form: Form::Cavage(sig),
            });
        }
    }
    Err(VerifyError::MissingSignature)
}

/// Step 1b, still before any key is fetched: the checks that need no key — what the signature
/// must cover, the clock window, the digest against the exact body. A request failing them is
/// refused without costing its supposed signer a key fetch. [`verify_with`] runs them too;
/// after a precheck, [`verify_prechecked`] does the rest.
pub fn precheck(
    req: &RequestParts,
    pending: &PendingSignature,
    now: SystemTime,
    opts: &VerifyOptions,
) -> Result<(), VerifyError> {
    let clock = Clock::new(now, opts.clock_window);
    match &pending.form {
        Form::Cavage(sig) => cavage::precheck(req, sig, &clock),
        Form::Rfc9421(sig) => rfc9421::precheck(req, sig, &clock),
    }
}

/// Whether verifying with a freshly fetched key could turn `error` into success: only when
/// the key itself was the problem (it may have rotated), never for a stale date, a wrong
/// digest or a malformed header.
pub fn key_may_have_rotated(error: &VerifyError) -> bool {
    matches!(
        error,
        VerifyError::BadSignature | VerifyError::BadKey(_) | VerifyError::KeyMismatch(_)
    )
}

/// Step 2: verify `pending` against the request with the signer's public key (SPKI
/// `BEGIN PUBLIC KEY` or PKCS#1 `BEGIN RSA PUBLIC KEY` PEM), scheme `https`, default window.
pub fn verify(
    req: &RequestParts,
    pending: &PendingSignature,
    public_key_pem: &str,
    now: SystemTime,
) -> Result<Verified, VerifyError> {
    verify_with(req, pending, public_key_pem, now, &VerifyOptions::default())
}

/// [`verify`] with explicit options.
pub fn verify_with(
    req: &RequestParts,
    pending: &PendingSignature,
    public_key_pem: &str,
    now: SystemTime,
    opts: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    let key = load_public_key(public_key_pem)?;
    precheck(req, pending, now, opts)?;
    check_signature(req, pending, &key, opts)
}

/// [`verify_with`] for a request [`precheck`] already passed: only the key's part, so a
/// caller that prechecks before fetching the key does not hash the body again.
pub fn verify_prechecked(
    req: &RequestParts,
    pending: &PendingSignature,
    public_key_pem: &str,
    opts: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    let key = load_public_key(public_key_pem)?;
    check_signature(req, pending, &key, opts)
}

fn check_signature(
    req: &RequestParts,
    pending: &PendingSignature,
    key: &PKey<Public>,
    opts: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    match &pending.form {
        Form::Cavage(sig) => cavage::check_signature(req, sig, key),
        Form::Rfc9421(sig) => rfc9421::check_signature(req, sig, key, opts.scheme),
    }
}

/// Outgoing POST, draft-cavage as Mastodon sends it: signs
/// `(request-target) host date digest content-type`. Returns `Date`, `Digest` and `Signature`;
/// the caller sends `Host` (the URL's authority, as HTTP clients do) and `Content-Type` itself.
pub fn sign_post(
    url: &url::Url,
    body: &[u8],
    content_type: &str,
    key_id: &str,
    key: &PKey<Private>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    cavage::sign(url, "post", Some((body, content_type)), key_id, key, now)
}

/// Outgoing GET: signs `(request-target) host date`, query string included. Returns `Date` and
/// `Signature`.
pub fn sign_get(
    url: &url::Url,
    key_id: &str,
    key: &PKey<Private>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    cavage::sign(url, "get", None, key_id, key, now)
}

/// Outgoing POST in the RFC 9421 form: covers `"@method" "@target-uri" "content-type"
/// "content-digest"` with `created`, `keyid` and `alg="rsa-v1_5-sha256"`. Returns
/// `Content-Digest`, `Signature-Input` and `Signature`.
pub fn sign_post_rfc9421(
    url: &url::Url,
    body: &[u8],
    content_type: &str,
    key_id: &str,
    key: &PKey<Private>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    rfc9421::sign(url, "POST", Some((body, content_type)), key_id, key, now)
}

/// Outgoing GET in the RFC 9421 form: covers `"@method" "@target-uri"`.
pub fn sign_get_rfc9421(
    url: &url::Url,
    key_id: &str,
    key: &PKey<Private>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    rfc9421::sign(url, "GET", None, key_id, key, now)
}
