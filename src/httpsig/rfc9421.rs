//! RFC 9421 HTTP Message Signatures, the form Mastodon verifies since 4.5 and signs since 4.7.
//!
//! Supported components: `@method`, `@target-uri`, `@authority`, `@scheme`, `@request-target`,
//! `@path`, `@query` and header fields without parameters (`content-digest` is RFC 9530). Not
//! supported: `@query-param`, `@status`, and component parameters (`;sf`, `;key`, `;bs`, `;req`,
//! `;tr`); a signature covering one of them is refused rather than half-checked.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::pkey::{PKey, Private, Public};
use sfv::{BareItem, Dictionary, FieldType as _, InnerList, ListEntry, Parser};

use super::cavage::request_target;
use super::crypto::{SignatureAlgorithm, sign_rsa_sha256};
use super::digest::{check_content_digest, content_digest_header};
use super::{
    Clock, MAX_SIGNATURE_HEADER_LEN, RequestParts, SignError, SignatureForm, Verified, VerifyError,
    authority, check_key_id, shown,
};

const MAX_COMPONENTS: usize = 64;
const MAX_KEY_ID_LEN: usize = 2048;
const MAX_SIGNATURE_BYTES: usize = 1024;
const DERIVED: [&str; 7] = [
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@request-target",
    "@path",
    "@query",
];

/// One signature picked from `Signature-Input` + `Signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc9421Signature {
    pub label: String,
    /// Covered component names, in signed order.
    pub components: Vec<String>,
    pub key_id: String,
    /// As sent; `None` means "the key's own algorithm".
    pub alg: Option<String>,
    pub created: Option<i64>,
    pub expires: Option<i64>,
    pub signature: Vec<u8>,
    /// The `@signature-params` line: the inner list serialised canonically (RFC 8941 §4.1).
    params_line: String,
}

/// Parse both headers and take the first label of `Signature-Input` that `Signature` also has.
pub(crate) fn parse(input: &str, signature: &str) -> Result<Rfc9421Signature, VerifyError> {
    use VerifyError::MalformedSignatureInput as Malformed;
    if input.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(Malformed("too long"));
    }
    if signature.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(VerifyError::MalformedSignature("too long"));
    }
    let inputs: Dictionary = Parser::new(input)
        .parse()
        .map_err(|_| Malformed("not a structured dictionary"))?;
    let signatures: Dictionary = Parser::new(signature)
        .parse()
        .map_err(|_| VerifyError::MalformedSignature("not a structured dictionary"))?;
    for (label, entry) in &inputs {
        let Some(sig_entry) = signatures.get(label) else {
            continue;
        };
        let ListEntry::InnerList(inner) = entry else {
            return Err(Malformed("a signature's input is not an inner list"));
        };
        let bytes = match sig_entry {
            ListEntry::Item(item) => match &item.bare_item {
                BareItem::ByteSequence(bytes) => bytes,
                _ => return Err(VerifyError::MalformedSignature("not a byte sequence")),
            },
            ListEntry::InnerList(_) => {
                return Err(VerifyError::MalformedSignature("not a byte sequence"));
            }
        };
        return from_parts(label.as_str(), inner, bytes);
    }
    Err(Malformed(
        "no label is in both Signature-Input and Signature",
    ))
}

fn from_parts(
    label: &str,
    inner: &InnerList,
    signature: &[u8],
) -> Result<Rfc9421Signature, VerifyError> {
    use VerifyError::MalformedSignatureInput as Malformed;
    if inner.items.len() > MAX_COMPONENTS {
        return Err(Malformed("too many components"));
    }
    let mut components: Vec<String> = Vec::with_capacity(inner.items.len());
    for item in &inner.items {
        let name = item
            .bare_item
            .as_string()
            .ok_or(Malformed("a component is not a string"))?
            .as_str();
        if !item.params.is_empty() {
            return Err(VerifyError::UnsupportedComponent(format!(
                "{};…",
                shown(name)
            )));
        }
        let valid = if name.starts_with('@') {
            DERIVED.contains(&name)
        } else {
            !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
                })
        };
        if !valid {
            return Err(VerifyError::UnsupportedComponent(shown(name)));
        }
        if components.iter().any(|c| c == name) {
            return Err(Malformed("a component is listed twice"));
        }
        components.push(name.to_string());
    }

    let (mut created, mut expires, mut key_id, mut alg) = (None, None, None, None);
    for (name, value) in &inner.params {
        match name.as_str() {
            "created" => {
                created = Some(
                    value
                        .as_integer()
                        .ok_or(Malformed("created is not an integer"))?
                        .into(),
                );
            }
            "expires" => {
                expires = Some(
                    value
                        .as_integer()
                        .ok_or(Malformed("expires is not an integer"))?
                        .into(),
                );
            }
            "keyid" => {
                key_id = Some(
                    value
                        .as_string()
                        .ok_or(Malformed("keyid is not a string"))?
                        .as_str(),
                );
            }
            "alg" => {
                alg = Some(
                    value
                        .as_string()
                        .ok_or(Malformed("alg is not a string"))?
                        .as_str(),
                )
            }
            "nonce" | "tag" => {
                value
                    .as_string()
                    .ok_or(Malformed("nonce and tag must be strings"))?;
            }
            _ => {}
        }
    }
    let key_id = key_id.ok_or(Malformed("keyid missing"))?;
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
        return Err(Malformed("keyid empty or too long"));
    }
    if let Some(alg) = alg
        && SignatureAlgorithm::from_rfc9421_name(alg).is_none()
    {
        return Err(VerifyError::UnsupportedAlgorithm(shown(alg)));
    }
    if signature.is_empty() || signature.len() > MAX_SIGNATURE_BYTES {
        return Err(VerifyError::MalformedSignature(
            "signature empty or too long",
        ));
    }
    let params_line = vec![ListEntry::InnerList(inner.clone())]
        .serialize()
        .ok_or(Malformed("cannot serialise the signature parameters"))?;
    Ok(Rfc9421Signature {
        label: label.to_string(),
        components,
        key_id: key_id.to_string(),
        alg: alg.map(str::to_string),
        created,
        expires,
        signature: signature.to_vec(),
        params_line,
    })
}

/// The signature base (RFC 9421 §2.5) of `sig` over `req`.
pub(crate) fn signature_base(
    sig: &Rfc9421Signature,
    req: &RequestParts,
    scheme: &str,
) -> Result<String, VerifyError> {
    let mut base = String::new();
    for name in &sig.components {
        let value = component_value(name, req, scheme)?;
        if value.contains(['\r', '\n']) {
            return Err(VerifyError::UnsignableHeaderValue(shown(name)));
        }
        base.push('"');
        base.push_str(name);
        base.push_str("\": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&sig.params_line);
    Ok(base)
}

fn component_value<'a>(
    name: &str,
    req: &RequestParts<'a>,
    scheme: &str,
) -> Result<Cow<'a, str>, VerifyError> {
    let (path, query) = match req.path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (req.path_and_query, None),
    };
    Ok(match name {
        "@method" => Cow::Borrowed(req.method),
        "@authority" => Cow::Owned(request_authority(req, scheme)?),
        "@scheme" => Cow::Owned(scheme.to_ascii_lowercase()),
        "@target-uri" => Cow::Owned(format!(
            "{}://{}{}",
            scheme.to_ascii_lowercase(),
            request_authority(req, scheme)?,
            req.path_and_query
        )),
        "@request-target" => Cow::Borrowed(req.path_and_query),
        "@path" if path.is_empty() => Cow::Borrowed("/"),
        "@path" => Cow::Borrowed(path),
        "@query" => Cow::Owned(format!("?{}", query.unwrap_or_default())),
        field => {
            let value = req
                .header(field)
                .ok_or_else(|| VerifyError::MissingSignedHeader(shown(field)))?;
            match value {
                Cow::Borrowed(v) => Cow::Borrowed(v.trim_matches([' ', '\t'])),
                Cow::Owned(v) => Cow::Owned(v.trim_matches([' ', '\t']).to_string()),
            }
        }
    })
}

/// `Host`, lower-cased, without the scheme's default port (RFC 9421 §2.2.3).
fn request_authority(req: &RequestParts, scheme: &str) -> Result<String, VerifyError> {
    let host = req
        .header("host")
        .ok_or_else(|| VerifyError::MissingSignedHeader("host".into()))?;
    let host = host.trim().to_ascii_lowercase();
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    Ok(host
        .strip_suffix(default_port)
        .map(str::to_string)
        .unwrap_or(host))
}

/// Everything that needs no key: coverage, clock and digest (see `cavage::precheck`).
pub(crate) fn precheck(
    req: &RequestParts,
    sig: &Rfc9421Signature,
    clock: &Clock,
) -> Result<(), VerifyError> {
    let covers = |c: &str| sig.components.iter().any(|x| x == c);
    // The same rules as for cavage (PROTOCOL.md §3), in RFC 9421 terms.
    if sig.created.is_none() && !covers("date") {
        return Err(VerifyError::InsufficientCoverage(
            "date or the created parameter",
        ));
    }
    let target = covers("@target-uri") || covers("@request-target") || covers("@path");
    let request_covered = covers("@method") && target;
    if !(request_covered || covers("content-digest")) {
        return Err(VerifyError::InsufficientCoverage(
            "@method and @target-uri, or content-digest",
        ));
    }
    if req.has_content() && !covers("content-digest") {
        return Err(VerifyError::InsufficientCoverage(
            "content-digest, as the request has a body",
        ));
    }
    // The server the request was meant for must be signed (see `cavage::precheck`):
    // `@authority`, or `@target-uri`, whose value holds the authority (RFC 9421 §2.2.2).
    if !(covers("@authority") || covers("@target-uri")) {
        return Err(VerifyError::InsufficientCoverage(
            "@authority or @target-uri",
        ));
    }
    if let Some(created) = sig.created {
        clock.check_signed_at(created)?;
    }
    if let Some(expires) = sig.expires {
        clock.check_expires(expires)?;
    }
    if covers("date") {
        clock.check_date_header(req)?;
    }
    if covers("content-digest") {
        let digest = req
            .header("content-digest")
            .ok_or(VerifyError::MissingDigest)?;
        check_content_digest(&digest, req.body())?;
    }
    Ok(())
}

/// The key's part, for a request [`precheck`] passed (see `cavage::check_signature`).
pub(crate) fn check_signature(
    req: &RequestParts,
    sig: &Rfc9421Signature,
    key: &PKey<Public>,
    scheme: &str,
) -> Result<Verified, VerifyError> {
    let algorithm = match sig.alg.as_deref() {
        None => SignatureAlgorithm::inferred_from(key),
        Some(name) => SignatureAlgorithm::from_rfc9421_name(name)
            .ok_or_else(|| VerifyError::UnsupportedAlgorithm(shown(name)))?,
    };
    algorithm.check_key(key)?;

    let base = signature_base(sig, req, scheme)?;
    if algorithm.verify(key, base.as_bytes(), &sig.signature) {
        Ok(Verified {
            key_id: sig.key_id.clone(),
            form: SignatureForm::Rfc9421,
            algorithm,
            covered: sig.components.clone(),
            query_dropped: false,
        })
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// `method` in upper case; `content` is `(body, content type)` for requests that have one.
pub(crate) fn sign(
    url: &url::Url,
    method: &str,
    content: Option<(&[u8], &str)>,
    key_id: &str,
    key: &PKey<Private>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    check_key_id(key_id)?;
    // An sf-string holds printable ASCII only.
    if !key_id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(SignError::InvalidKeyId(shown(key_id)));
    }
    let created = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SignError::Clock)?
        .as_secs();
    let target_uri = format!(
        "{}://{}{}",
        url.scheme(),
        authority(url)?,
        request_target(url)
    );
    let mut lines = vec![("@method", method.to_string()), ("@target-uri", target_uri)];
    let mut out = Vec::new();
    if let Some((body, content_type)) = content {
        let content_type = content_type.trim();
        if content_type.chars().any(|c| c.is_control()) {
            return Err(SignError::InvalidHeaderValue("the content type"));
        }
        let digest = content_digest_header(body);
        lines.push(("content-type", content_type.to_string()));
        lines.push(("content-digest", digest.clone()));
        out.push(("Content-Digest".to_string(), digest));
    }
    let names: Vec<String> = lines
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    let params = format!(
        "({});created={created};keyid=\"{key_id}\";alg=\"rsa-v1_5-sha256\"",
        names.join(" ")
    );
    let mut base = String::new();
    for (name, value) in &lines {
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    let signature = STANDARD.encode(sign_rsa_sha256(key, base.as_bytes())?);
    out.push(("Signature-Input".to_string(), format!("sig1={params}")));
    out.push(("Signature".to_string(), format!("sig1=:{signature}:")));
    Ok(out)
}
