//! The request as the verifier sees it, what a verification proved, and the small helpers both
//! signature forms share (the clock window, `Host` authority, keyId and quoting rules).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::crypto::SignatureAlgorithm;
use super::error::{SignError, VerifyError};

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

    pub(super) fn body(&self) -> &'a [u8] {
        self.body.unwrap_or_default()
    }

    /// A request that carries content must have it covered by a digest. GET and HEAD carry
    /// none unless a body was actually sent.
    pub(super) fn has_content(&self) -> bool {
        !(self.method.eq_ignore_ascii_case("GET") || self.method.eq_ignore_ascii_case("HEAD"))
            || !self.body().is_empty()
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
pub(super) fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// For error messages that quote peer input: at most 64 characters.
pub(super) fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `host[:port]` of a URL, the port only when it is not the scheme's default: what HTTP
/// clients send as `Host`.
pub(super) fn authority(url: &url::Url) -> Result<String, SignError> {
    let host = url
        .host_str()
        .ok_or_else(|| SignError::NoHost(url.to_string()))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

pub(super) fn check_key_id(key_id: &str) -> Result<(), SignError> {
    if key_id.is_empty()
        || key_id
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(SignError::InvalidKeyId(shown(key_id)));
    }
    Ok(())
}
