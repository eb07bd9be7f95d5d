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
mod rfc9421;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::pkey::{PKey, Private, Public};

pub use cavage::{CavageSignature, parse_signature_header};
pub use crypto::{SignatureAlgorithm, generate_keypair, load_private_key, load_public_key};
pub use digest::{content_digest_header, digest_header};
pub use rfc9421::Rfc9421Signature;

/// How far a signature's `Date` / `created` may lie from our clock, either way. Mastodon allows
/// 5 min plus 1 h of grace; Fedify 1 h. PROTOCOL.md §3 asks for about 1 h.
pub const DEFAULT_CLOCK_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Longest signature header value we parse: a 8192-bit RSA signature in base64 plus a generous
/// keyId and header list fit in well under this.
pub(crate) const MAX_SIGNATURE_HEADER_LEN: usize = 8 * 1024;

/// A request as seen by the verifier.
///
/// Header names may be in any case; repeated headers should be joined with `", "` (they are
/// joined here too if they arrive as separate pairs). Over HTTP/2 the caller puts the
/// `:authority` into a `host` pair.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The request target exactly as received: `/inbox` or `/users/a?page=2`.
    pub path_and_query: &'a str,
    pub headers: &'a [(String, String)],
    /// The raw body bytes, before any parsing. `None` is treated as empty.
    pub body: Option<&'a [u8]>,
}

impl<'a> RequestParts<'a> {
    /// The value of header `name` (any case). Repeated headers are joined with `", "`.
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first}, {second}");
                for v in values {
                    joined.push_str(", ");
                    joined.push_str(v);
                }
                Some(Cow::Owned(joined))
            }
        }
    }

    fn body(&self) -> &'a [u8] {
        self.body.unwrap_or_default()
    }

    /// A request that carries content must have it covered by a digest. GET and HEAD carry
    /// none unless a body was actually sent.
    fn has_content(&self) -> bool {
        !(self.method.eq_ignore_ascii_case("GET") || self.method.eq_ignore_ascii_case("HEAD"))
            || !self.body().is_empty()
    }
}

/// Why an incoming signature was refused. Every variant means "answer 401"; the `Display` text
/// is short, safe to send back to the peer, and never echoes more than a few dozen characters of
/// its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no Signature header")]
    MissingSignature,
    #[error("malformed Signature header: {0}")]
    MalformedSignature(&'static str),
    #[error("malformed Signature-Input header: {0}")]
    MalformedSignatureInput(&'static str),
    #[error("unsupported signature algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("(created) and (expires) are only allowed with algorithm hs2019")]
    PseudoHeaderNeedsHs2019,
    #[error("unsupported covered component {0:?}")]
    UnsupportedComponent(String),
    #[error("signed header {0:?} is missing from the request")]
    MissingSignedHeader(String),
    #[error("header {0:?} has a value that cannot be signed")]
    UnsignableHeaderValue(String),
    #[error("the signature must cover {0}")]
    InsufficientCoverage(&'static str),
    #[error("no Digest or Content-Digest header")]
    MissingDigest,
    #[error("malformed digest header: {0}")]
    MalformedDigest(&'static str),
    #[error("no supported digest algorithm (sha-256 or sha-512)")]
    UnsupportedDigest,
    #[error("digest does not match the body")]
    DigestMismatch,
    #[error("malformed Date header")]
    MalformedDate,
    #[error("signature is too old (more than {0} s)")]
    TooOld(u64),
    #[error("signature is dated in the future (more than {0} s ahead)")]
    InFuture(u64),
    #[error("signature has expired")]
    Expired,
    #[error("unusable public key: {0}")]
    BadKey(&'static str),
    #[error("the key type does not fit algorithm {0}")]
    KeyMismatch(&'static str),
    #[error("signature does not verify")]
    BadSignature,
}

/// Why an outgoing request could not be signed. These are our own faults, not the peer's.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    #[error("cannot sign a request to {0}: the URL has no host")]
    NoHost(String),
    #[error("keyId {0:?} contains characters that cannot be sent in a header")]
    InvalidKeyId(String),
    #[error("{0} cannot be sent in a header")]
    InvalidHeaderValue(&'static str),
    #[error("only RSA keys can sign outgoing requests")]
    UnsupportedKey,
    #[error("the clock is before 1970")]
    Clock,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureForm {
    /// draft-cavage-http-signatures-12 `Signature:` (or `Authorization: Signature`).
    Cavage,
    /// RFC 9421 `Signature-Input:` + `Signature:`.
    Rfc9421,
}

/// What a successful verification proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub form: SignatureForm,
    pub algorithm: SignatureAlgorithm,
    /// The covered headers / components, in signed order.
    pub covered: Vec<String>,
    /// The cavage signature only verified with `(request-target)` stripped of its query string.
    pub query_dropped: bool,
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

/// `now` and the allowed window as Unix seconds, with saturating arithmetic so that absurd
/// timestamps from the network cannot overflow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    now: i64,
    window: i64,
}

impl Clock {
    pub(crate) fn new(now: SystemTime, window: Duration) -> Clock {
        Clock {
            now: unix_seconds(now),
            window: i64::try_from(window.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// Accept a signing time within the window on either side of now.
    pub(crate) fn check_signed_at(&self, at: i64) -> Result<(), VerifyError> {
        if at > self.now.saturating_add(self.window) {
            return Err(VerifyError::InFuture(self.window.unsigned_abs()));
        }
        if at < self.now.saturating_sub(self.window) {
            return Err(VerifyError::TooOld(self.window.unsigned_abs()));
        }
        Ok(())
    }

    pub(crate) fn check_expires(&self, expires: i64) -> Result<(), VerifyError> {
        if expires < self.now {
            Err(VerifyError::Expired)
        } else {
            Ok(())
        }
    }

    pub(crate) fn check_date_header(&self, req: &RequestParts) -> Result<(), VerifyError> {
        let date = req
            .header("date")
            .ok_or_else(|| VerifyError::MissingSignedHeader("date".into()))?;
        let at = httpdate::parse_http_date(date.trim()).map_err(|_| VerifyError::MalformedDate)?;
        self.check_signed_at(unix_seconds(at))
    }
}

/// Seconds since the epoch; times before it count as 0 (they only ever come from a broken clock).
fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// For error messages that quote peer input: at most 64 characters.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `host[:port]` of a URL, the port only when it is not the scheme's default: what HTTP
/// clients send as `Host`.
fn authority(url: &url::Url) -> Result<String, SignError> {
    let host = url
        .host_str()
        .ok_or_else(|| SignError::NoHost(url.to_string()))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

fn check_key_id(key_id: &str) -> Result<(), SignError> {
    if key_id.is_empty()
        || key_id
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(SignError::InvalidKeyId(shown(key_id)));
    }
    Ok(())
}
