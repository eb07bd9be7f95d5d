//! Body digests: `Digest` (RFC 3230, what draft-cavage signs) and `Content-Digest` (RFC 9530,
//! what RFC 9421 signs). Only SHA-256 and SHA-512 count; other algorithms are skipped, and every
//! supported one present must match.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::sha::{sha256, sha512};
use sfv::{BareItem, Dictionary, ListEntry, Parser};

use super::VerifyError;

/// `SHA-256=<base64>`. The prefix stays upper case: Threads answers 404 to `sha-256=`.
pub fn digest_header(body: &[u8]) -> String {
    format!("SHA-256={}", STANDARD.encode(sha256(body)))
}

/// RFC 9530 `Content-Digest: sha-256=:<base64>:`.
pub fn content_digest_header(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(sha256(body)))
}

#[derive(Clone, Copy)]
enum Algo {
    Sha256,
    Sha512,
}

impl Algo {
    fn from_name(name: &str) -> Option<Algo> {
        if name.eq_ignore_ascii_case("sha-256") {
            Some(Algo::Sha256)
        } else if name.eq_ignore_ascii_case("sha-512") {
            Some(Algo::Sha512)
        } else {
            None
        }
    }

    fn matches(self, body: &[u8], claimed: &[u8]) -> bool {
        match self {
            Algo::Sha256 => sha256(body).as_slice() == claimed,
            Algo::Sha512 => sha512(body).as_slice() == claimed,
        }
    }
}

/// Check a `Digest` header (`SHA-256=…, SHA-512=…`, names in any case) against the body.
pub(crate) fn check_digest(header: &str, body: &[u8]) -> Result<(), VerifyError> {
    let mut checked = false;
    for entry in header.split(',') {
        let (name, value) = entry
            .trim()
            .split_once('=')
            .ok_or(VerifyError::MalformedDigest("expected algorithm=value"))?;
        let Some(algo) = Algo::from_name(name.trim()) else {
            continue;
        };
        let claimed = decode_base64(value.trim())
            .ok_or(VerifyError::MalformedDigest("value is not base64"))?;
        if !algo.matches(body, &claimed) {
            return Err(VerifyError::DigestMismatch);
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(VerifyError::UnsupportedDigest)
    }
}

/// Check an RFC 9530 `Content-Digest` dictionary (`sha-256=:…:`) against the body.
pub(crate) fn check_content_digest(header: &str, body: &[u8]) -> Result<(), VerifyError> {
    let dict: Dictionary = Parser::new(header).parse().map_err(|_| {
        VerifyError::MalformedDigest("Content-Digest is not a structured dictionary")
    })?;
    let mut checked = false;
    for (name, entry) in &dict {
        let Some(algo) = Algo::from_name(name.as_str()) else {
            continue;
        };
        let claimed = match entry {
            ListEntry::Item(item) => match &item.bare_item {
                BareItem::ByteSequence(bytes) => bytes,
                _ => {
                    return Err(VerifyError::MalformedDigest(
                        "digest is not a byte sequence",
                    ));
                }
            },
            ListEntry::InnerList(_) => {
                return Err(VerifyError::MalformedDigest(
                    "digest is not a byte sequence",
                ));
            }
        };
        if !algo.matches(body, claimed) {
            return Err(VerifyError::DigestMismatch);
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(VerifyError::UnsupportedDigest)
    }
}

/// Standard alphabet; padding optional (some peers drop it).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).ok()
}
