//! draft-cavage-http-signatures-12, the form the fediverse speaks (PROTOCOL.md §3).

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::pkey::{PKey, Private, Public};

use super::crypto::{SignatureAlgorithm, sign_rsa_sha256};
use super::digest::{check_digest, decode_base64, digest_header};
use super::{
    Clock, MAX_SIGNATURE_HEADER_LEN, RequestParts, SignError, SignatureForm, Verified, VerifyError,
    authority, check_key_id, shown,
};

const MAX_KEY_ID_LEN: usize = 2048;
const MAX_SIGNED_HEADERS: usize = 64;
/// An 8192-bit RSA signature.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// A parsed draft-cavage `Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CavageSignature {
    pub key_id: String,
    /// Lower-cased: `rsa-sha256` or `hs2019`; `None` (absent) means hs2019.
    pub algorithm: Option<String>,
    /// Lower-cased names in signed order. When the parameter is absent: `(created)` if the
    /// signature carries `created` and may use it (hs2019), else `date`. draft-cavage-12 §2.1.6
    /// says `(created)`; earlier drafts, the spec's own Default Test (appendix C.1) and Mastodon
    /// use `date`. Either way such a signature fails the coverage rules of [`super::verify`].
    pub headers: Vec<String>,
    pub signature: Vec<u8>,
    /// Unix seconds.
    pub created: Option<i64>,
    /// Unix seconds, rounded down (the spec allows a decimal).
    pub expires: Option<i64>,
    /// `expires` as sent: the `(expires)` line of the signing string uses it verbatim.
    expires_raw: Option<String>,
}

impl CavageSignature {
    fn covers(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h == name)
    }

    fn is_hs2019(&self) -> bool {
        self.algorithm.as_deref().is_none_or(|a| a == "hs2019")
    }
}

/// Parse a `Signature` header value (also the part after `Signature ` in `Authorization`).
///
/// Strict: `name=value` pairs separated by commas with optional whitespace, values quoted
/// (backslash escapes allowed) or tokens; no duplicate, empty or trailing entries; `keyId` and
/// `signature` required; unknown parameters ignored. Never panics.
pub fn parse_signature_header(value: &str) -> Result<CavageSignature, VerifyError> {
    use VerifyError::MalformedSignature as Malformed;
    if value.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(Malformed("too long"));
    }
    let mut p = Cursor {
        s: value.as_bytes(),
        src: value,
        pos: 0,
    };
    let mut key_id = None;
    let mut algorithm = None;
    let mut headers = None;
    let mut signature = None;
    let mut created = None;
    let mut expires = None;

    p.skip_ows();
    if p.at_end() {
        return Err(Malformed("empty"));
    }
    loop {
        let name = p.token().ok_or(Malformed("expected a parameter name"))?;
        p.skip_ows();
        if !p.eat(b'=') {
            return Err(Malformed("expected '=' after a parameter name"));
        }
        p.skip_ows();
        let value = if p.peek() == Some(b'"') {
            p.quoted()?
        } else {
            Cow::Borrowed(p.token().ok_or(Malformed("expected a parameter value"))?)
        };
        let slot = [
            ("keyId", &mut key_id),
            ("algorithm", &mut algorithm),
            ("headers", &mut headers),
            ("signature", &mut signature),
            ("created", &mut created),
            ("expires", &mut expires),
        ]
        .into_iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, slot)| slot);
        if let Some(slot) = slot {
            if slot.is_some() {
                return Err(Malformed("duplicate parameter"));
            }
            *slot = Some(value.into_owned());
        }
        p.skip_ows();
        if p.at_end() {
            break;
        }
        if !p.eat(b',') {
            return Err(Malformed("expected ',' between parameters"));
        }
        p.skip_ows();
    }

    let key_id = key_id.ok_or(Malformed("keyId missing"))?;
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
        return Err(Malformed("keyId empty or too long"));
    }
    let algorithm = match algorithm.map(|a| a.to_ascii_lowercase()) {
        None => None,
        Some(a) if a == "rsa-sha256" || a == "hs2019" => Some(a),
        Some(a) => return Err(VerifyError::UnsupportedAlgorithm(shown(&a))),
    };
    let signature = signature.ok_or(Malformed("signature missing"))?;
    let signature = decode_base64(&signature).ok_or(Malformed("signature is not base64"))?;
    if signature.is_empty() || signature.len() > MAX_SIGNATURE_BYTES {
        return Err(Malformed("signature empty or too long"));
    }
    let created = created
        .map(|c| parse_timestamp(&c, false).ok_or(Malformed("created is not a timestamp")))
        .transpose()?;
    let expires_value = expires
        .as_deref()
        .map(|e| parse_timestamp(e, true).ok_or(Malformed("expires is not a timestamp")))
        .transpose()?;
    let may_use_pseudo = algorithm.as_deref().is_none_or(|a| a == "hs2019");

    let headers = match headers {
        Some(list) => {
            let names: Vec<String> = list
                .split_ascii_whitespace()
                .map(|h| h.to_ascii_lowercase())
                .collect();
            if names.len() > MAX_SIGNED_HEADERS {
                return Err(Malformed("too many signed headers"));
            }
            for name in &names {
                let known_pseudo = matches!(
                    name.as_str(),
                    "(request-target)" | "(created)" | "(expires)"
                );
                if !known_pseudo && !name.bytes().all(is_tchar) {
                    return Err(Malformed("invalid name in headers"));
                }
            }
            names
        }
        None if created.is_some() && may_use_pseudo => vec!["(created)".to_string()],
        None => vec!["date".to_string()],
    };
    for (pseudo, present) in [
        ("(created)", created.is_some()),
        ("(expires)", expires.is_some()),
    ] {
        if headers.iter().any(|h| h == pseudo) {
            // draft-cavage-12 §2.3: an error with rsa-*, hmac-*, ecdsa-* algorithms.
            if !may_use_pseudo {
                return Err(VerifyError::PseudoHeaderNeedsHs2019);
            }
            if !present {
                return Err(Malformed(
                    "(created) or (expires) listed without its parameter",
                ));
            }
        }
    }

    Ok(CavageSignature {
        key_id,
        algorithm,
        headers,
        signature,
        created,
        expires: expires_value,
        expires_raw: expires,
    })
}

/// Unix seconds: 1 to 15 digits; with `decimal`, optionally `.` and 1 to 9 more (rounded down).
fn parse_timestamp(s: &str, decimal: bool) -> Option<i64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) if decimal => (i, Some(f)),
        Some(_) => return None,
        None => (s, None),
    };
    let digits = |d: &str, max: usize| {
        !d.is_empty() && d.len() <= max && d.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(int, 15) || frac.is_some_and(|f| !digits(f, 9)) {
        return None;
    }
    int.parse().ok()
}

/// RFC 9110 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// One or more tchars. Tchars are ASCII, so the slice ends on a char boundary.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            None
        } else {
            self.src.get(start..self.pos)
        }
    }

    /// A quoted-string (RFC 9110 §5.6.4), the cursor on its opening quote.
    fn quoted(&mut self) -> Result<Cow<'a, str>, VerifyError> {
        use VerifyError::MalformedSignature as Malformed;
        self.pos += 1;
        let start = self.pos;
        let mut unescaped: Option<Vec<u8>> = None;
        loop {
            let b = self.peek().ok_or(Malformed("unterminated quoted string"))?;
            if (b < 0x20 && b != b'\t') || b == 0x7f {
                return Err(Malformed("control character in a quoted string"));
            }
            match b {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return match unescaped {
                        None => Ok(Cow::Borrowed(
                            self.src.get(start..end).ok_or(Malformed("invalid UTF-8"))?,
                        )),
                        Some(bytes) => String::from_utf8(bytes)
                            .map(Cow::Owned)
                            .map_err(|_| Malformed("invalid UTF-8")),
                    };
                }
                b'\\' => {
                    let buf = unescaped.get_or_insert_with(|| self.s[start..self.pos].to_vec());
                    self.pos += 1;
                    let escaped = self.peek().ok_or(Malformed("unterminated quoted string"))?;
                    if (escaped < 0x20 && escaped != b'\t') || escaped == 0x7f {
                        return Err(Malformed("control character in a quoted string"));
                    }
                    buf.push(escaped);
                }
                _ => {
                    if let Some(buf) = unescaped.as_mut() {
                        buf.push(b);
                    }
                }
            }
            self.pos += 1;
        }
    }
}

/// The string that was signed, with `target` as the `(request-target)` path.
pub(crate) fn signing_string(
    sig: &CavageSignature,
    req: &RequestParts,
    target: &str,
) -> Result<String, VerifyError> {
    let mut out = String::new();
    for (i, name) in sig.headers.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let value: Cow<str> = match name.as_str() {
            "(request-target)" => {
                Cow::Owned(format!("{} {}", req.method.to_ascii_lowercase(), target))
            }
            "(created)" => Cow::Owned(sig.created.map(|c| c.to_string()).unwrap_or_default()),
            "(expires)" => Cow::Borrowed(sig.expires_raw.as_deref().unwrap_or_default()),
            header => req
                .header(header)
                .ok_or_else(|| VerifyError::MissingSignedHeader(shown(header)))?,
        };
        let value = value.trim_matches([' ', '\t']);
        // A line break inside a value would let a sender forge extra lines.
        if value.contains(['\r', '\n']) {
            return Err(VerifyError::UnsignableHeaderValue(shown(name)));
        }
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
    }
    Ok(out)
}

/// Everything that needs no key: coverage, clock and digest. Run before a key is fetched, so
/// a stale, replayed or tampered request costs no request to its supposed signer.
pub(crate) fn precheck(
    req: &RequestParts,
    sig: &CavageSignature,
    clock: &Clock,
) -> Result<(), VerifyError> {
    if !sig.covers("date") && !sig.covers("(created)") {
        return Err(VerifyError::InsufficientCoverage("date or (created)"));
    }
    if !sig.covers("(request-target)") && !sig.covers("digest") {
        return Err(VerifyError::InsufficientCoverage(
            "(request-target) or digest",
        ));
    }
    if req.has_content() && !sig.covers("digest") {
        return Err(VerifyError::InsufficientCoverage(
            "digest, as the request has a body",
        ));
    }
    // Without `host` a request signed for another server verifies here too: anyone it was
    // sent to could replay it to us within the clock window (issue 9). Mastodon, snac,
    // GoToSocial, Fedify and Hortus itself all sign it.
    if !sig.covers("host") {
        return Err(VerifyError::InsufficientCoverage("host"));
    }
    if sig.covers("date") {
        clock.check_date_header(req)?;
    }
    if sig.covers("(created)")
        && let Some(created) = sig.created
    {
        clock.check_signed_at(created)?;
    }
    if sig.covers("(expires)")
        && let Some(expires) = sig.expires
    {
        clock.check_expires(expires)?;
    }
    if sig.covers("digest") {
        let digest = req.header("digest").ok_or(VerifyError::MissingDigest)?;
        check_digest(&digest, req.body())?;
    }
    Ok(())
}

/// The key's part, for a request [`precheck`] passed: the algorithm fits the key and the
/// signature verifies (with the query string, then without it).
pub(crate) fn check_signature(
    req: &RequestParts,
    sig: &CavageSignature,
    key: &PKey<Public>,
) -> Result<Verified, VerifyError> {
    let algorithm = if sig.is_hs2019() {
        SignatureAlgorithm::inferred_from(key)
    } else {
        SignatureAlgorithm::RsaSha256
    };
    algorithm.check_key(key)?;

    let verified = |query_dropped| Verified {
        key_id: sig.key_id.clone(),
        form: SignatureForm::Cavage,
        algorithm,
        covered: sig.headers.clone(),
        query_dropped,
    };
    let full = signing_string(sig, req, req.path_and_query)?;
    if algorithm.verify(key, full.as_bytes(), &sig.signature) {
        return Ok(verified(false));
    }
    // Some signers leave the query string out of (request-target) (Fedify 1 signs the bare
    // pathname): PROTOCOL.md §3 says to try again without it.
    if sig.covers("(request-target)")
        && let Some((path, _query)) = req.path_and_query.split_once('?')
    {
        let bare = signing_string(sig, req, path)?;
        if algorithm.verify(key, bare.as_bytes(), &sig.signature) {
            return Ok(verified(true));
        }
    }
    Err(VerifyError::BadSignature)
}

/// `method` in lower case; `content` is `(body, content type)` for requests that have one.
pub(crate) fn sign(
    url: &url::Url,
    method: &str,
    content: Option<(&[u8], &str)>,
    key_id: &str,
    key: &PKey<Private>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    check_key_id(key_id)?;
    let host = authority(url)?;
    let date = http_date(now)?;
    let target = request_target(url);
    let mut signed = format!("(request-target): {method} {target}\nhost: {host}\ndate: {date}");
    let mut names = "(request-target) host date";
    let mut out = vec![("Date".to_string(), date)];
    if let Some((body, content_type)) = content {
        let content_type = content_type.trim();
        if content_type.chars().any(|c| c.is_control()) {
            return Err(SignError::InvalidHeaderValue("the content type"));
        }
        let digest = digest_header(body);
        signed.push_str(&format!("\ndigest: {digest}\ncontent-type: {content_type}"));
        names = "(request-target) host date digest content-type";
        out.push(("Digest".to_string(), digest));
    }
    let signature = STANDARD.encode(sign_rsa_sha256(key, signed.as_bytes())?);
    out.push((
        "Signature".to_string(),
        format!(
            "keyId=\"{key_id}\",algorithm=\"rsa-sha256\",headers=\"{names}\",signature=\"{signature}\""
        ),
    ));
    Ok(out)
}

/// Path and query as an HTTP client puts them on the request line.
pub(crate) fn request_target(url: &url::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{}", url.path(), query),
        None => url.path().to_string(),
    }
}

/// IMF-fixdate. httpdate panics outside 1970..9999, so check first.
pub(crate) fn http_date(now: SystemTime) -> Result<String, SignError> {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SignError::Clock)?
        .as_secs();
    if secs >= 253_402_300_800 {
        return Err(SignError::Clock);
    }
    Ok(httpdate::fmt_http_date(now))
}
