//! The public keys a remote document publishes, in every shape peers use (PROTOCOL.md §3):
//!
//! - `publicKey` as one object (Mastodon, Threads, snac) or an array of them (some servers
//!   publish several; the one whose `id` is the signature's keyId is the one that signs);
//! - a bare key document `{id, owner, publicKeyPem}` at the key URL;
//! - GoToSocial's stub at the key URL: a Person whose `id` is the actor, with `publicKey
//!   {id, owner, publicKeyPem}` and no `inbox` (tests/fixtures/peers/gotosocial-0.19.2/key-url.json);
//! - FEP-521a `assertionMethod` Multikeys; only RSA ones are usable for HTTP signatures
//!   (`publicKeyMultibase` = base58btc `z` + the multicodec varint of `rsa-pub` (0x1205) + the DER
//!   RSAPublicKey). Ed25519 Multikeys sign objects (FEP-8b32), not requests: skipped.
//!
//! Which of them may be trusted is decided by the caller (`fetch::key_owner`): the owner must be
//! on the key's origin and its full actor must list the key.

use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::Value;

/// The unsigned-varint form of multicodec `rsa-pub` (0x1205), the prefix of an RSA Multikey.
const RSA_PUB_MULTICODEC: [u8; 2] = [0x85, 0x24];
/// 16384-bit RSA is far beyond anything in use; longer values are refused before decoding.
const MAX_MULTIBASE: usize = 4096;
/// A PEM block longer than this is no single public key.
const MAX_PEM: usize = 16 * 1024;

/// One key as a document publishes it. `owner` is its `owner` (or a Multikey's `controller`).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedKey {
    pub id: String,
    pub owner: Option<String>,
    /// SPKI or PKCS#1 PEM, as `httpsig` loads it.
    pub pem: String,
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// One `publicKey`-style entry: `{id, owner, publicKeyPem}`.
fn pem_key(v: &Value) -> Option<PublishedKey> {
    let pem = str_field(v, "publicKeyPem").filter(|p| p.len() <= MAX_PEM)?;
    Some(PublishedKey {
        id: str_field(v, "id")?.to_string(),
        owner: str_field(v, "owner").map(str::to_string),
        pem: pem.to_string(),
    })
}

/// One FEP-521a Multikey holding an RSA key, as PEM.
fn multikey(v: &Value) -> Option<PublishedKey> {
    if str_field(v, "type") != Some("Multikey") {
        return None;
    }
    let pem = multibase_rsa_to_pem(str_field(v, "publicKeyMultibase")?).ok()?;
    Some(PublishedKey {
        id: str_field(v, "id")?.to_string(),
        owner: str_field(v, "controller").map(str::to_string),
        pem,
    })
}

/// Decodes an RSA `publicKeyMultibase` (FEP-521a) into SPKI PEM. Errors say what is wrong.
pub fn multibase_rsa_to_pem(value: &str) -> Result<String, String> {
    if value.len() > MAX_MULTIBASE {
        return Err("publicKeyMultibase is too long".into());
    }
    let encoded = value
        .strip_prefix('z')
        .ok_or("publicKeyMultibase is not base58btc (it must start with z)")?;
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|e| format!("publicKeyMultibase is not base58btc: {e}"))?;
    let der = bytes
        .strip_prefix(&RSA_PUB_MULTICODEC[..])
        .ok_or("publicKeyMultibase is not an RSA key (multicodec rsa-pub, 0x1205)")?;
    let rsa = Rsa::public_key_from_der_pkcs1(der)
        .map_err(|_| "publicKeyMultibase holds no valid RSAPublicKey".to_string())?;
    let pem = PKey::from_rsa(rsa)
        .and_then(|k| k.public_key_to_pem())
        .map_err(|e| format!("cannot re-encode the key: {e}"))?;
    String::from_utf8(pem).map_err(|_| "PEM is not UTF-8".into())
}

/// Encodes an RSA public key (PEM) as a FEP-521a `publicKeyMultibase`: what Hortus's tests serve
/// as a Multikey peer.
pub fn rsa_pem_to_multibase(pem: &str) -> Result<String, String> {
    let rsa = PKey::public_key_from_pem(pem.as_bytes())
        .and_then(|k| k.rsa())
        .map_err(|e| format!("not an RSA public key: {e}"))?;
    let der = rsa
        .public_key_to_der_pkcs1()
        .map_err(|e| format!("cannot encode the key: {e}"))?;
    let mut bytes = RSA_PUB_MULTICODEC.to_vec();
    bytes.extend_from_slice(&der);
    Ok(format!("z{}", bs58::encode(bytes).into_string()))
}

fn one_or_many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

/// Every usable key `doc` publishes, in document order: the document itself when it is a bare
/// key, then its `publicKey` entries, then its RSA `assertionMethod` Multikeys.
pub fn published_keys(doc: &Value) -> Vec<PublishedKey> {
    let mut keys: Vec<PublishedKey> = pem_key(doc).into_iter().collect();
    keys.extend(
        one_or_many(doc.get("publicKey"))
            .into_iter()
            .filter_map(pem_key),
    );
    keys.extend(
        one_or_many(doc.get("assertionMethod"))
            .into_iter()
            .filter_map(multikey),
    );
    keys
}

/// The key whose `id` is exactly `key_id`, wherever it sits in `doc`.
pub fn find_key(doc: &Value, key_id: &str) -> Option<PublishedKey> {
    published_keys(doc).into_iter().find(|k| k.id == key_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_shape_peers_publish() {
        let (_, pem) = crate::httpsig::generate_keypair().unwrap();
        let mb = rsa_pem_to_multibase(&pem).unwrap();
        assert!(mb.starts_with('z'));
        let back = multibase_rsa_to_pem(&mb).unwrap();
        let same = |a: &str, b: &str| {
            PKey::public_key_from_pem(a.as_bytes())
                .unwrap()
                .public_eq(&PKey::public_key_from_pem(b.as_bytes()).unwrap())
        };
        assert!(same(&back, &pem));

        let actor = "https://a.example/users/ゆき";
        let doc = json!({
            "id": actor, "type": "Person", "inbox": format!("{actor}/inbox"),
            "publicKey": [{"id": format!("{actor}#old"), "owner": actor, "publicKeyPem": "OLD"},
                          {"id": format!("{actor}#main-key"), "owner": actor, "publicKeyPem": pem}],
            "assertionMethod": [
                {"id": format!("{actor}#ed25519-key"), "type": "Multikey", "controller": actor,
                 "publicKeyMultibase": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"},
                {"id": format!("{actor}#rsa-key"), "type": "Multikey", "controller": actor,
                 "publicKeyMultibase": mb}],
        });
        let ids: Vec<String> = published_keys(&doc).into_iter().map(|k| k.id).collect();
        assert_eq!(
            ids,
            [
                format!("{actor}#old"),
                format!("{actor}#main-key"),
                format!("{actor}#rsa-key")
            ],
            "the Ed25519 Multikey is not an RSA key"
        );
        let k = find_key(&doc, &format!("{actor}#rsa-key")).unwrap();
        assert_eq!(k.owner.as_deref(), Some(actor));
        assert!(same(&k.pem, &pem));

        let bare = json!({"id": "https://a.example/k", "owner": actor, "publicKeyPem": pem});
        assert_eq!(
            find_key(&bare, "https://a.example/k")
                .unwrap()
                .owner
                .as_deref(),
            Some(actor)
        );
    }

    #[test]
    fn hostile_multibase_is_refused_with_a_reason() {
        for bad in [
            "",
            "m",
            "zz0OIl",
            &format!("z{}", bs58::encode([0xed, 0x01, 1, 2, 3]).into_string()),
            &format!("z{}", bs58::encode([0x85, 0x24, 1, 2, 3]).into_string()),
            &"z".repeat(MAX_MULTIBASE + 1),
            "zŁódź🌿",
        ] {
            assert!(multibase_rsa_to_pem(bad).is_err(), "{bad}");
        }
    }
}
