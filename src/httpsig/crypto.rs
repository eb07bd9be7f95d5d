//! Keys and signature algorithms, all through OpenSSL (the RustCrypto `rsa` crate has an
//! unfixed timing advisory, RUSTSEC-2023-0071).
//!
//! Fediverse servers sign with RSASSA-PKCS1-v1_5 + SHA-256, whatever the label (`rsa-sha256`,
//! `hs2019`, `rsa-v1_5-sha256`). RSASSA-PSS + SHA-512 and Ed25519 are accepted where RFC 9421
//! names them explicitly (its test vectors use them), and Ed25519 keys for `hs2019`.

use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};

use super::{SignError, VerifyError};

const MAX_PEM_LEN: usize = 16 * 1024;
const MIN_RSA_BITS: u32 = 1024;
const MAX_RSA_BITS: u32 = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (cavage `rsa-sha256`/`hs2019`, RFC 9421 `rsa-v1_5-sha256`).
    RsaSha256,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512 and a 64-byte salt (RFC 9421 `rsa-pss-sha512`).
    RsaPssSha512,
    /// RFC 9421 `ed25519`.
    Ed25519,
}

impl SignatureAlgorithm {
    /// The RFC 9421 name.
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaSha256 => "rsa-v1_5-sha256",
            SignatureAlgorithm::RsaPssSha512 => "rsa-pss-sha512",
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }

    pub(crate) fn from_rfc9421_name(name: &str) -> Option<SignatureAlgorithm> {
        match name {
            "rsa-v1_5-sha256" => Some(SignatureAlgorithm::RsaSha256),
            "rsa-pss-sha512" => Some(SignatureAlgorithm::RsaPssSha512),
            "ed25519" => Some(SignatureAlgorithm::Ed25519),
            _ => None,
        }
    }

    /// What a key implies when the signature does not say (`hs2019`, or no RFC 9421 `alg`).
    pub(crate) fn inferred_from(key: &PKey<Public>) -> SignatureAlgorithm {
        if key.id() == Id::ED25519 {
            SignatureAlgorithm::Ed25519
        } else {
            SignatureAlgorithm::RsaSha256
        }
    }

    pub(crate) fn check_key(self, key: &PKey<Public>) -> Result<(), VerifyError> {
        let fits = match self {
            SignatureAlgorithm::RsaSha256 | SignatureAlgorithm::RsaPssSha512 => key.id() == Id::RSA,
            SignatureAlgorithm::Ed25519 => key.id() == Id::ED25519,
        };
        if fits {
            Ok(())
        } else {
            Err(VerifyError::KeyMismatch(self.name()))
        }
    }

    /// True when `signature` is valid for `message`. Any OpenSSL failure (wrong length, garbage)
    /// is simply "not valid".
    pub(crate) fn verify(self, key: &PKey<Public>, message: &[u8], signature: &[u8]) -> bool {
        let result = match self {
            SignatureAlgorithm::RsaSha256 => Verifier::new(MessageDigest::sha256(), key)
                .and_then(|mut v| v.verify_oneshot(signature, message)),
            SignatureAlgorithm::RsaPssSha512 => Verifier::new(MessageDigest::sha512(), key)
                .and_then(|mut v| {
                    v.set_rsa_padding(Padding::PKCS1_PSS)?;
                    v.set_rsa_mgf1_md(MessageDigest::sha512())?;
                    v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(64))?;
                    v.verify_oneshot(signature, message)
                }),
            SignatureAlgorithm::Ed25519 => Verifier::new_without_digest(key)
                .and_then(|mut v| v.verify_oneshot(signature, message)),
        };
        result.unwrap_or(false)
    }
}

/// Parse a peer's public key: SPKI (`BEGIN PUBLIC KEY`, what ActivityPub actors publish) or
/// PKCS#1 (`BEGIN RSA PUBLIC KEY`, seen from older software). RSA between 1024 and 8192 bits, or
/// Ed25519.
pub fn load_public_key(pem: &str) -> Result<PKey<Public>, VerifyError> {
    let pem = pem.trim();
    if pem.len() > MAX_PEM_LEN {
        return Err(VerifyError::BadKey("PEM too long"));
    }
    // RSA first through the RSA-specific reader: OpenSSL 3's generic PEM decoder costs ~350 µs
    // a key here, ten times the signature check itself; this one ~5 µs.
    let key = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        Rsa::public_key_from_pem_pkcs1(pem.as_bytes()).and_then(PKey::from_rsa)
    } else {
        Rsa::public_key_from_pem(pem.as_bytes())
            .and_then(PKey::from_rsa)
            .or_else(|_| PKey::public_key_from_pem(pem.as_bytes()))
    }
    .map_err(|_| VerifyError::BadKey("not a PEM public key"))?;
    match key.id() {
        Id::RSA => {
            let bits = key.bits();
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(VerifyError::BadKey("RSA key size outside 1024-8192 bits"));
            }
        }
        Id::ED25519 => {}
        _ => {
            return Err(VerifyError::BadKey(
                "only RSA and Ed25519 keys are supported",
            ));
        }
    }
    Ok(key)
}

/// Load our own private key: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
pub fn load_private_key(pem: &str) -> Result<PKey<Private>, SignError> {
    let key = PKey::private_key_from_pem(pem.trim().as_bytes())?;
    if key.id() != Id::RSA {
        return Err(SignError::UnsupportedKey);
    }
    Ok(key)
}

/// A fresh RSA-2048 key pair (what Mastodon uses) as `(private PKCS#8 PEM, public SPKI PEM)`.
pub fn generate_keypair() -> Result<(String, String), SignError> {
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let private = String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned();
    let public = String::from_utf8_lossy(&key.public_key_to_pem()?).into_owned();
    Ok((private, public))
}

/// RSASSA-PKCS1-v1_5 with SHA-256: the one algorithm every fediverse server verifies.
pub(crate) fn sign_rsa_sha256(key: &PKey<Private>, message: &[u8]) -> Result<Vec<u8>, SignError> {
    if key.id() != Id::RSA {
        return Err(SignError::UnsupportedKey);
    }
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    Ok(signer.sign_oneshot_to_vec(message)?)
}
