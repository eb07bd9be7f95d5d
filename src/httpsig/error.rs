//! Why a signature is refused (the peer's fault: 401) or cannot be made (ours).

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
