//! Known-answer tests from the specs, round trips, and every refusal the inbox relies on.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::pkey::{PKey, Private};

use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// draft-cavage-http-signatures-12 appendix C: the "Test" key (RSA-1024).
const CAVAGE_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3
6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6
Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw
oYi+1hqp1fIekaxsyQIDAQAB
-----END PUBLIC KEY-----";

const CAVAGE_PRIVATE: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----";

/// RFC 9421 appendix B.1.2 test-key-rsa-pss (public part).
const RFC_RSA_PSS_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----";

/// RFC 9421 appendix B.1.4 test-key-ed25519 (public part).
const RFC_ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----";

/// RFC 9421 appendix B.1.1 test-key-rsa, PKCS#1 both halves.
const RFC_RSA_PUBLIC: &str = include_str!("../../tests/peer/keys/rfc9421-test-key-rsa.pem");
const RFC_RSA_PRIVATE: &str = include_str!("../../tests/peer/keys/rfc9421-test-key-rsa.key");

/// One RSA-2048 key for the round trips (generation takes a while).
static KEY: LazyLock<(PKey<Private>, String)> = LazyLock::new(|| {
    let (private, public) = generate_keypair().expect("generate a test key");
    (
        load_private_key(&private).expect("load the test key"),
        public,
    )
});
static OTHER_KEY: LazyLock<String> =
    LazyLock::new(|| generate_keypair().expect("generate a second test key").1);

const NOW: u64 = 1_750_000_000;
const KEY_ID: &str = "https://hortus.example/users/alice#main-key";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_lowercase(), v.to_string()))
        .collect()
}

fn parts<'a>(
    method: &'a str,
    target: &'a str,
    headers: &'a [(String, String)],
    body: Option<&'a [u8]>,
) -> RequestParts<'a> {
    RequestParts {
        method,
        path_and_query: target,
        headers,
        body,
    }
}

/// Parse and verify in one go, the way the inbox does it.
fn check(req: &RequestParts, pem: &str, now: SystemTime) -> Result<Verified, VerifyError> {
    let pending = signature_key_id(req)?;
    verify(req, &pending, pem, now)
}

/// A signed POST as `sign_post` makes it, plus the headers the HTTP client adds.
fn signed_post(url: &str, body: &[u8], now: SystemTime) -> Vec<(String, String)> {
    let url = url::Url::parse(url).unwrap();
    let mut headers = vec![
        ("host".to_string(), super::authority(&url).unwrap()),
        (
            "content-type".to_string(),
            "application/activity+json".to_string(),
        ),
    ];
    let added = sign_post(&url, body, "application/activity+json", KEY_ID, &KEY.0, now).unwrap();
    headers.extend(added.into_iter().map(|(n, v)| (n.to_lowercase(), v)));
    headers
}

fn signed_get(url: &str, now: SystemTime) -> Vec<(String, String)> {
    let url = url::Url::parse(url).unwrap();
    let mut headers = vec![("host".to_string(), super::authority(&url).unwrap())];
    let added = sign_get(&url, KEY_ID, &KEY.0, now).unwrap();
    headers.extend(added.into_iter().map(|(n, v)| (n.to_lowercase(), v)));
    headers
}

/// Sign `req` with hand-picked cavage parameters (everything but `signature`), the way some
/// other server might, and return the Signature header value. `target` overrides the
/// `(request-target)` path.
fn cavage_sign(
    params: &str,
    req: &RequestParts,
    target: Option<&str>,
    key: &PKey<Private>,
) -> String {
    let template = parse_signature_header(&format!("{params},signature=\"AAAA\"")).unwrap();
    let text =
        cavage::signing_string(&template, req, target.unwrap_or(req.path_and_query)).unwrap();
    let signature = crypto::sign_rsa_sha256(key, text.as_bytes()).unwrap();
    format!("{params},signature=\"{}\"", STANDARD.encode(signature))
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(n, _)| n != name);
    headers.push((name.to_string(), value.to_string()));
}

// ---------------------------------------------------------------------------------------------
// draft-cavage-12 appendix C

const C_BODY: &[u8] = br#"{"hello": "world"}"#;
const C_DATE: &str = "Sun, 05 Jan 2014 21:31:40 GMT";
const C_NOW: u64 = 1_388_957_500; // 2014-01-05 21:31:40 UTC

fn c_headers() -> Vec<(String, String)> {
    owned(&[
        ("Host", "example.com"),
        ("Date", C_DATE),
        ("Content-Type", "application/json"),
        (
            "Digest",
            "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
        ),
        ("Content-Length", "18"),
    ])
}

/// Signing string and signature of one appendix C test, both ways: OpenSSL reproduces the
/// spec's signature (PKCS#1 v1.5 is deterministic) and verifies it.
fn cavage_known_answer(header: &str, expected_string: &str) -> CavageSignature {
    let headers = c_headers();
    let req = parts("POST", "/foo?param=value&pet=dog", &headers, Some(C_BODY));
    let sig = parse_signature_header(header).unwrap();
    let text = cavage::signing_string(&sig, &req, req.path_and_query).unwrap();
    assert_eq!(text, expected_string);
    let private = load_private_key(CAVAGE_PRIVATE).unwrap();
    assert_eq!(
        crypto::sign_rsa_sha256(&private, text.as_bytes()).unwrap(),
        sig.signature
    );
    let public = load_public_key(CAVAGE_PUBLIC).unwrap();
    assert!(SignatureAlgorithm::RsaSha256.verify(&public, text.as_bytes(), &sig.signature));
    sig
}

#[test]
fn cavage_c1_default_test() {
    let sig = cavage_known_answer(
        "keyId=\"Test\",algorithm=\"rsa-sha256\",signature=\"SjWJWbWN7i0wzBvtPl8rbASWz5xQW6mcJmn+ibttBqtifLN7Sazz6m79cNfwwb8DMJ5cou1s7uEGKKCs+FLEEaDV5lp7q25WqS+lavg7T8hc0GppauB6hbgEKTwblDHYGEtbGmtdHgVCk9SuS13F0hZ8FD0k/5OxEPXe5WozsbM=\"",
        "date: Sun, 05 Jan 2014 21:31:40 GMT",
    );
    assert_eq!(sig.headers, ["date"]);
    // Valid, but covers neither the target nor the body: the inbox must refuse it.
    let headers = [
        c_headers(),
        owned(&[(
            "Signature",
            &format!(
                "keyId=\"Test\",algorithm=\"rsa-sha256\",signature=\"{}\"",
                STANDARD.encode(&sig.signature)
            ),
        )]),
    ]
    .concat();
    let req = parts("POST", "/foo?param=value&pet=dog", &headers, Some(C_BODY));
    assert_eq!(
        check(&req, CAVAGE_PUBLIC, at(C_NOW)),
        Err(VerifyError::InsufficientCoverage(
            "(request-target) or digest"
        ))
    );
}

#[test]
fn cavage_c2_basic_test() {
    let header = "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date\",signature=\"qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0=\"";
    cavage_known_answer(
        header,
        "(request-target): post /foo?param=value&pet=dog\nhost: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT",
    );
    // A POST whose body is not signed is refused (PROTOCOL.md §3)...
    let headers = [c_headers(), owned(&[("Signature", header)])].concat();
    let req = parts("POST", "/foo?param=value&pet=dog", &headers, Some(C_BODY));
    assert_eq!(
        check(&req, CAVAGE_PUBLIC, at(C_NOW)),
        Err(VerifyError::InsufficientCoverage(
            "digest, as the request has a body"
        ))
    );
}

#[test]
fn cavage_c3_all_headers_test_verifies() {
    let header = "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date content-type digest content-length\",signature=\"vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE=\"";
    cavage_known_answer(
        header,
        "(request-target): post /foo?param=value&pet=dog\nhost: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT\ncontent-type: application/json\ndigest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\ncontent-length: 18",
    );
    let headers = [c_headers(), owned(&[("Signature", header)])].concat();
    let req = parts("POST", "/foo?param=value&pet=dog", &headers, Some(C_BODY));
    let verified = check(&req, CAVAGE_PUBLIC, at(C_NOW)).unwrap();
    assert_eq!(verified.key_id, "Test");
    assert_eq!(verified.form, SignatureForm::Cavage);
    assert!(!verified.query_dropped);
    // ...and the same request ten years on is stale.
    assert_eq!(
        check(&req, CAVAGE_PUBLIC, at(C_NOW + 10 * 365 * 86400)),
        Err(VerifyError::TooOld(3600))
    );
}

// ---------------------------------------------------------------------------------------------
// RFC 9421 appendix B.2

const B_BODY: &[u8] = br#"{"hello": "world"}"#;
const B_CREATED: u64 = 1_618_884_473;

fn b_headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers = owned(&[
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        (
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("Content-Length", "18"),
    ]);
    headers.extend(owned(extra));
    headers
}

fn rfc9421_pending(headers: &[(String, String)]) -> (RequestParts<'_>, Rfc9421Signature) {
    let req = parts("POST", "/foo?param=Value&Pet=dog", headers, Some(B_BODY));
    let pending = signature_key_id(&req).unwrap();
    let Form::Rfc9421(sig) = pending.form else {
        panic!("expected RFC 9421")
    };
    (req, sig)
}

#[test]
fn rfc9421_b21_minimal_signature_rsa_pss() {
    let headers = b_headers(&[
        (
            "Signature-Input",
            "sig-b21=();created=1618884473;keyid=\"test-key-rsa-pss\";nonce=\"b3k2pp5k7z-50gnwp.yemd\"",
        ),
        (
            "Signature",
            "sig-b21=:d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGxbtRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==:",
        ),
    ]);
    let (req, sig) = rfc9421_pending(&headers);
    assert_eq!(sig.key_id, "test-key-rsa-pss");
    let base = rfc9421::signature_base(&sig, &req, "https").unwrap();
    assert_eq!(
        base,
        "\"@signature-params\": ();created=1618884473;keyid=\"test-key-rsa-pss\";nonce=\"b3k2pp5k7z-50gnwp.yemd\""
    );
    let key = load_public_key(RFC_RSA_PSS_PUBLIC).unwrap();
    assert!(SignatureAlgorithm::RsaPssSha512.verify(&key, base.as_bytes(), &sig.signature));
    // It covers nothing of the request, so the inbox refuses it.
    let pending = signature_key_id(&req).unwrap();
    assert_eq!(
        verify(&req, &pending, RFC_RSA_PSS_PUBLIC, at(B_CREATED)),
        Err(VerifyError::InsufficientCoverage(
            "@method and @target-uri, or content-digest"
        ))
    );
}

#[test]
fn rfc9421_b23_full_coverage_rsa_pss_verifies() {
    let headers = b_headers(&[
        (
            "Signature-Input",
            "sig-b23=(\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-rsa-pss\"",
        ),
        (
            "Signature",
            "sig-b23=:bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683+qRpRRU5p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJH1pFkh/aYA2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8LZH896+QIF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA==:",
        ),
    ]);
    let (req, sig) = rfc9421_pending(&headers);
    assert_eq!(
        rfc9421::signature_base(&sig, &req, "https").unwrap(),
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\"@query\": ?param=Value&Pet=dog\n\"@authority\": example.com\n\"content-type\": application/json\n\"content-digest\": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-rsa-pss\""
    );
    // No `alg`: the key says RSA, which means rsa-v1_5-sha256, so name the algorithm here.
    let key = load_public_key(RFC_RSA_PSS_PUBLIC).unwrap();
    let base = rfc9421::signature_base(&sig, &req, "https").unwrap();
    assert!(SignatureAlgorithm::RsaPssSha512.verify(&key, base.as_bytes(), &sig.signature));

    let mut with_alg = headers.clone();
    let input = with_alg
        .iter()
        .position(|(n, _)| n == "signature-input")
        .unwrap();
    with_alg[input].1 = "sig-b23=(\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-rsa-pss\";alg=\"rsa-pss-sha512\"".into();
    let req = parts("POST", "/foo?param=Value&Pet=dog", &with_alg, Some(B_BODY));
    // Adding alg changes @signature-params, so the RFC's signature no longer fits...
    assert_eq!(
        check(&req, RFC_RSA_PSS_PUBLIC, at(B_CREATED)),
        Err(VerifyError::BadSignature)
    );
    // ...while the body check runs before: a different body fails on its digest.
    let req = parts("POST", "/foo?param=Value&Pet=dog", &with_alg, Some(b"{}"));
    assert_eq!(
        check(&req, RFC_RSA_PSS_PUBLIC, at(B_CREATED)),
        Err(VerifyError::DigestMismatch)
    );
}

#[test]
fn rfc9421_b26_ed25519() {
    let headers = b_headers(&[
        (
            "Signature-Input",
            "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
        ),
        (
            "Signature",
            "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:",
        ),
    ]);
    let (req, sig) = rfc9421_pending(&headers);
    let key = load_public_key(RFC_ED25519_PUBLIC).unwrap();
    let base = rfc9421::signature_base(&sig, &req, "https").unwrap();
    assert!(SignatureAlgorithm::Ed25519.verify(&key, base.as_bytes(), &sig.signature));
    assert_eq!(
        SignatureAlgorithm::inferred_from(&key),
        SignatureAlgorithm::Ed25519
    );
    // A POST whose body is not covered is refused.
    let pending = signature_key_id(&req).unwrap();
    assert_eq!(
        verify(&req, &pending, RFC_ED25519_PUBLIC, at(B_CREATED)),
        Err(VerifyError::InsufficientCoverage(
            "content-digest, as the request has a body"
        ))
    );
}

/// Made by the Python `http-message-signatures` 3.0.0 package (`python3 tests/peer/hms.py
/// --vector`) with RFC 9421's test-key-rsa: an independent rsa-v1_5-sha256 signature with
/// `@target-uri` and a sha-256 Content-Digest.
const PY_SIGNATURE_INPUT: &str = "sig1=(\"@method\" \"@target-uri\" \"@authority\" \"content-type\" \"content-digest\");created=1618884473;keyid=\"test-key-rsa\";alg=\"rsa-v1_5-sha256\"";
const PY_SIGNATURE: &str = "sig1=:RAoTNmmH8NH+M6TRx/v2oFiiM06Ppq5fzFlbmP/Gsgt1p7lMalsCcWiIOECQJ9uIA0Y0e3TVAkv/0jbbp8aojdA8cB33g6NeT9Giyy0naG2plv1JhcbtV8rNcViL0Wfdad6u18EIBPZ/ZOrDwMgIidfywZrmIjfMt80jwmy8SSeDFc5pdGXcSXHfUmUnbfEG88SA6iBtKqtXBtDDWjQJ5BGtuf4uIz1/svDp7tXNaZIVfeIBuprWd995SE7lVW056McCcuzvJ8iOX2SeTEbWKf7Fs437lr3JxK7QlodrtwQJeOhU3gFq5w0cMNWv1YoWv3oDvh8S3l6ZTjoIhNIEgg==:";

fn py_headers() -> Vec<(String, String)> {
    owned(&[
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        (
            "Content-Digest",
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        ),
        ("Content-Length", "18"),
        ("Signature-Input", PY_SIGNATURE_INPUT),
        ("Signature", PY_SIGNATURE),
    ])
}

#[test]
fn rfc9421_rsa_v1_5_vector_from_python_verifies_and_reproduces() {
    let headers = py_headers();
    let req = parts("POST", "/foo?param=Value&Pet=dog", &headers, Some(B_BODY));
    let verified = check(&req, RFC_RSA_PUBLIC, at(B_CREATED + 30)).unwrap();
    assert_eq!(verified.form, SignatureForm::Rfc9421);
    assert_eq!(verified.algorithm, SignatureAlgorithm::RsaSha256);
    assert_eq!(verified.key_id, "test-key-rsa");

    // Our base, signed with the same key, gives Python's exact bytes.
    let (req, sig) = rfc9421_pending(&headers);
    let base = rfc9421::signature_base(&sig, &req, "https").unwrap();
    let private = load_private_key(RFC_RSA_PRIVATE).unwrap();
    assert_eq!(
        crypto::sign_rsa_sha256(&private, base.as_bytes()).unwrap(),
        sig.signature
    );

    // @target-uri binds the scheme: the same request read as plain http does not verify.
    let pending = signature_key_id(&req).unwrap();
    let http = VerifyOptions {
        scheme: "http",
        ..VerifyOptions::default()
    };
    assert_eq!(
        verify_with(&req, &pending, RFC_RSA_PUBLIC, at(B_CREATED), &http),
        Err(VerifyError::BadSignature)
    );
    // A default port in Host is the same authority.
    let mut with_port = headers.clone();
    set(&mut with_port, "host", "Example.com:443");
    let req = parts("POST", "/foo?param=Value&Pet=dog", &with_port, Some(B_BODY));
    assert!(check(&req, RFC_RSA_PUBLIC, at(B_CREATED)).is_ok());
}

#[test]
fn rfc9421_refusals() {
    let base = py_headers();
    let with = |name: &str, value: &str| {
        let mut h = base.clone();
        set(&mut h, name, value);
        h
    };
    let cases: Vec<(Vec<(String, String)>, VerifyError)> = vec![
        (
            with(
                "signature-input",
                "sig1=(\"@method\");created=1;keyid=\"k\";alg=\"hmac-sha256\"",
            ),
            VerifyError::UnsupportedAlgorithm("hmac-sha256".into()),
        ),
        (
            with(
                "signature-input",
                "sig1=(\"@query-param\";name=\"Pet\");keyid=\"k\"",
            ),
            VerifyError::UnsupportedComponent("@query-param;…".into()),
        ),
        (
            with("signature-input", "sig1=(\"@status\");keyid=\"k\""),
            VerifyError::UnsupportedComponent("@status".into()),
        ),
        (
            with(
                "signature-input",
                "sig1=(\"@method\" \"@method\");keyid=\"k\"",
            ),
            VerifyError::MalformedSignatureInput("a component is listed twice"),
        ),
        (
            with("signature-input", "sig1=(\"@method\");created=1"),
            VerifyError::MalformedSignatureInput("keyid missing"),
        ),
        (
            with(
                "signature-input",
                "sig1=(\"@method\");created=\"1\";keyid=\"k\"",
            ),
            VerifyError::MalformedSignatureInput("created is not an integer"),
        ),
        (
            with("signature-input", "sig1=\"@method\";keyid=\"k\""),
            VerifyError::MalformedSignatureInput("a signature's input is not an inner list"),
        ),
        (
            with("signature-input", "sig2=(\"@method\");keyid=\"k\""),
            VerifyError::MalformedSignatureInput(
                "no label is in both Signature-Input and Signature",
            ),
        ),
        (
            with("signature-input", "sig1=(@method)"),
            VerifyError::MalformedSignatureInput("not a structured dictionary"),
        ),
        (
            with("signature", "sig1=\"abc\""),
            VerifyError::MalformedSignature("not a byte sequence"),
        ),
    ];
    for (headers, expected) in cases {
        let req = parts("POST", "/foo?param=Value&Pet=dog", &headers, Some(B_BODY));
        assert_eq!(signature_key_id(&req), Err(expected));
    }

    let verify_case = |headers: &[(String, String)], body: &[u8], now: u64| {
        let req = parts("POST", "/foo?param=Value&Pet=dog", headers, Some(body));
        check(&req, RFC_RSA_PUBLIC, at(now))
    };
    assert_eq!(
        verify_case(&base, B_BODY, B_CREATED + 7200),
        Err(VerifyError::TooOld(3600))
    );
    assert_eq!(
        verify_case(&base, B_BODY, B_CREATED - 7200),
        Err(VerifyError::InFuture(3600))
    );
    assert_eq!(
        verify_case(&base, b"{\"hello\": \"there\"}", B_CREATED),
        Err(VerifyError::DigestMismatch)
    );
    assert_eq!(
        verify_case(&with("content-type", "text/plain"), B_BODY, B_CREATED),
        Err(VerifyError::BadSignature)
    );
    let no_digest: Vec<_> = base
        .iter()
        .filter(|(n, _)| n != "content-digest")
        .cloned()
        .collect();
    assert_eq!(
        verify_case(&no_digest, B_BODY, B_CREATED),
        Err(VerifyError::MissingDigest)
    );
    let sha1_only = with("content-digest", "sha=:AAAA:");
    assert_eq!(
        verify_case(&sha1_only, B_BODY, B_CREATED),
        Err(VerifyError::UnsupportedDigest)
    );
    assert_eq!(
        verify_case(&base, B_BODY, B_CREATED).and_then(|_| {
            let req = parts("POST", "/foo?param=Value&Pet=dog", &base, Some(B_BODY));
            let pending = signature_key_id(&req)?;
            verify(&req, &pending, RFC_ED25519_PUBLIC, at(B_CREATED))
        }),
        Err(VerifyError::KeyMismatch("rsa-v1_5-sha256"))
    );
    let expired = with(
        "signature-input",
        "sig1=(\"@method\" \"@target-uri\" \"@authority\" \"content-type\" \"content-digest\");created=1618884473;keyid=\"test-key-rsa\";alg=\"rsa-v1_5-sha256\";expires=1618884400",
    );
    assert_eq!(
        verify_case(&expired, B_BODY, B_CREATED),
        Err(VerifyError::Expired)
    );
}

#[test]
fn rfc9421_round_trip() {
    let body = br#"{"type":"Follow"}"#;
    let url = url::Url::parse("https://peer.example/users/bob/inbox?x=1").unwrap();
    let added = sign_post_rfc9421(
        &url,
        body,
        "application/activity+json",
        KEY_ID,
        &KEY.0,
        at(NOW),
    )
    .unwrap();
    let names: Vec<&str> = added.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Content-Digest", "Signature-Input", "Signature"]);
    let mut headers = owned(&[
        ("Host", "peer.example"),
        ("Content-Type", "application/activity+json"),
    ]);
    headers.extend(added.into_iter().map(|(n, v)| (n.to_lowercase(), v)));
    let req = parts("POST", "/users/bob/inbox?x=1", &headers, Some(body));
    let verified = check(&req, &KEY.1, at(NOW + 10)).unwrap();
    assert_eq!(
        verified.covered,
        ["@method", "@target-uri", "content-type", "content-digest"]
    );
    assert_eq!(verified.key_id, KEY_ID);
    // Replayed to another path on the same host.
    let req = parts("POST", "/inbox", &headers, Some(body));
    assert_eq!(check(&req, &KEY.1, at(NOW)), Err(VerifyError::BadSignature));
    assert_eq!(
        check(
            &parts("POST", "/users/bob/inbox?x=1", &headers, Some(body)),
            &OTHER_KEY,
            at(NOW)
        ),
        Err(VerifyError::BadSignature)
    );

    let get = sign_get_rfc9421(&url, KEY_ID, &KEY.0, at(NOW)).unwrap();
    let mut headers = owned(&[("Host", "peer.example")]);
    headers.extend(get.into_iter().map(|(n, v)| (n.to_lowercase(), v)));
    let req = parts("GET", "/users/bob/inbox?x=1", &headers, None);
    assert!(check(&req, &KEY.1, at(NOW)).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Cavage: our own signatures, round trips and refusals

#[test]
fn sign_post_makes_mastodon_shaped_headers() {
    let headers = signed_post("https://peer.example/inbox", b"{}", at(NOW));
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    };
    assert_eq!(get("date"), "Sun, 15 Jun 2025 15:06:40 GMT");
    assert_eq!(
        get("digest"),
        "SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
    );
    let sig = parse_signature_header(get("signature")).unwrap();
    assert_eq!(sig.key_id, KEY_ID);
    assert_eq!(sig.algorithm.as_deref(), Some("rsa-sha256"));
    assert_eq!(
        sig.headers,
        ["(request-target)", "host", "date", "digest", "content-type"]
    );
    assert_eq!(
        digest_header(b"{}"),
        "SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
    );
    assert_eq!(
        content_digest_header(b"{}"),
        "sha-256=:RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=:"
    );
}

#[test]
fn post_round_trip() {
    let body = br#"{"type":"Create"}"#;
    let headers = signed_post("https://peer.example/users/bob/inbox", body, at(NOW));
    let req = parts("POST", "/users/bob/inbox", &headers, Some(body));
    let pending = signature_key_id(&req).unwrap();
    assert_eq!(pending.key_id(), KEY_ID);
    assert_eq!(pending.form(), SignatureForm::Cavage);
    let verified = verify(&req, &pending, &KEY.1, at(NOW + 5)).unwrap();
    assert_eq!(verified.algorithm, SignatureAlgorithm::RsaSha256);
    assert_eq!(
        verified.covered,
        ["(request-target)", "host", "date", "digest", "content-type"]
    );
}

#[test]
fn post_with_port_and_query_round_trip() {
    let body = b"x";
    let headers = signed_post("http://127.0.0.3:8080/inbox?a=b", body, at(NOW));
    assert!(headers.contains(&("host".to_string(), "127.0.0.3:8080".to_string())));
    let req = parts("POST", "/inbox?a=b", &headers, Some(body));
    assert!(!check(&req, &KEY.1, at(NOW)).unwrap().query_dropped);
}

#[test]
fn get_round_trip_includes_query() {
    let headers = signed_get("https://peer.example/users/bob/outbox?page=true", at(NOW));
    let sig =
        parse_signature_header(&headers.iter().find(|(n, _)| n == "signature").unwrap().1).unwrap();
    assert_eq!(sig.headers, ["(request-target)", "host", "date"]);
    let req = parts("GET", "/users/bob/outbox?page=true", &headers, None);
    let verified = check(&req, &KEY.1, at(NOW)).unwrap();
    assert!(!verified.query_dropped);
    // A different query is a different request.
    let req = parts("GET", "/users/bob/outbox?page=false", &headers, None);
    assert_eq!(check(&req, &KEY.1, at(NOW)), Err(VerifyError::BadSignature));
}

#[test]
fn query_string_fallback() {
    // Fedify 1 signs `(request-target)` with the bare pathname.
    let date = httpdate::fmt_http_date(at(NOW));
    let mut headers = owned(&[("Host", "hortus.example"), ("Date", &date)]);
    let req = parts("GET", "/users/alice/outbox?page=1", &headers, None);
    let value = cavage_sign(
        &format!(
            "keyId=\"{KEY_ID}\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date\""
        ),
        &req,
        Some("/users/alice/outbox"),
        &KEY.0,
    );
    headers.push(("signature".into(), value));
    let req = parts("GET", "/users/alice/outbox?page=1", &headers, None);
    assert!(check(&req, &KEY.1, at(NOW)).unwrap().query_dropped);
}

#[test]
fn tampered_body_fails_on_digest() {
    let headers = signed_post("https://peer.example/inbox", b"{\"a\":1}", at(NOW));
    let req = parts("POST", "/inbox", &headers, Some(b"{\"a\":2}"));
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::DigestMismatch)
    );
}

#[test]
fn tampered_body_with_matching_digest_fails_on_signature() {
    let mut headers = signed_post("https://peer.example/inbox", b"{\"a\":1}", at(NOW));
    set(&mut headers, "digest", &digest_header(b"{\"a\":2}"));
    let req = parts("POST", "/inbox", &headers, Some(b"{\"a\":2}"));
    assert_eq!(check(&req, &KEY.1, at(NOW)), Err(VerifyError::BadSignature));
}

#[test]
fn tampered_header_fails() {
    let mut headers = signed_post("https://peer.example/inbox", b"{}", at(NOW));
    set(&mut headers, "content-type", "application/json");
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    assert_eq!(check(&req, &KEY.1, at(NOW)), Err(VerifyError::BadSignature));

    let mut headers = signed_post("https://peer.example/inbox", b"{}", at(NOW));
    set(&mut headers, "host", "other.example");
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    assert_eq!(check(&req, &KEY.1, at(NOW)), Err(VerifyError::BadSignature));

    let headers = signed_post("https://peer.example/inbox", b"{}", at(NOW));
    let req = parts("POST", "/users/alice/inbox", &headers, Some(b"{}"));
    assert_eq!(check(&req, &KEY.1, at(NOW)), Err(VerifyError::BadSignature));
}

#[test]
fn wrong_key_fails() {
    let headers = signed_post("https://peer.example/inbox", b"{}", at(NOW));
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    assert_eq!(
        check(&req, &OTHER_KEY, at(NOW)),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        check(&req, RFC_ED25519_PUBLIC, at(NOW)),
        Err(VerifyError::KeyMismatch("rsa-v1_5-sha256"))
    );
    assert_eq!(
        check(&req, "not a key", at(NOW)),
        Err(VerifyError::BadKey("not a PEM public key"))
    );
}

#[test]
fn clock_window() {
    let headers = signed_post("https://peer.example/inbox", b"{}", at(NOW));
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    let pending = signature_key_id(&req).unwrap();
    let hour = DEFAULT_CLOCK_WINDOW.as_secs();
    assert_eq!(hour, 3600);
    assert!(verify(&req, &pending, &KEY.1, at(NOW + hour)).is_ok());
    assert!(verify(&req, &pending, &KEY.1, at(NOW - hour)).is_ok());
    assert_eq!(
        verify(&req, &pending, &KEY.1, at(NOW + hour + 1)),
        Err(VerifyError::TooOld(3600))
    );
    assert_eq!(
        verify(&req, &pending, &KEY.1, at(NOW - hour - 1)),
        Err(VerifyError::InFuture(3600))
    );

    let five_minutes = VerifyOptions {
        clock_window: Duration::from_secs(300),
        ..VerifyOptions::default()
    };
    assert!(verify_with(&req, &pending, &KEY.1, at(NOW + 300), &five_minutes).is_ok());
    assert_eq!(
        verify_with(&req, &pending, &KEY.1, at(NOW + 301), &five_minutes),
        Err(VerifyError::TooOld(300))
    );
}

#[test]
fn malformed_date_is_refused() {
    let mut headers = signed_post("https://peer.example/inbox", b"{}", at(NOW));
    set(&mut headers, "date", "yesterday");
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::MalformedDate)
    );
}

#[test]
fn post_must_sign_digest() {
    let date = httpdate::fmt_http_date(at(NOW));
    let mut headers = owned(&[
        ("Host", "hortus.example"),
        ("Date", &date),
        ("Digest", &digest_header(b"{}")),
    ]);
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    let value = cavage_sign(
        &format!(
            "keyId=\"{KEY_ID}\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date\""
        ),
        &req,
        None,
        &KEY.0,
    );
    headers.push(("signature".into(), value));
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::InsufficientCoverage(
            "digest, as the request has a body"
        ))
    );
    // Even with no body handed in, a POST needs it.
    let req = parts("POST", "/inbox", &headers, None);
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::InsufficientCoverage(
            "digest, as the request has a body"
        ))
    );
}

#[test]
fn signed_digest_must_be_present() {
    let mut headers = signed_post("https://peer.example/inbox", b"{}", at(NOW));
    headers.retain(|(n, _)| n != "digest");
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::MissingDigest)
    );
}

/// Issue 9.5: a signature that does not cover `host` verifies for any server the request
/// reaches, so one sent to another server could be replayed here.
#[test]
fn cavage_signature_must_cover_host() {
    let body = "{\"type\":\"Like\",\"content\":\"東京 مرحبا 🌱\"}".as_bytes();
    let date = httpdate::fmt_http_date(at(NOW));
    let mut headers = owned(&[
        ("Host", "hortus.example"),
        ("Date", &date),
        ("Digest", &digest_header(body)),
    ]);
    let unsigned_host = |headers: &[(String, String)], names: &str, method: &str| {
        let req = parts(
            method,
            "/inbox",
            headers,
            (method == "POST").then_some(body),
        );
        cavage_sign(
            &format!("keyId=\"{KEY_ID}\",algorithm=\"rsa-sha256\",headers=\"{names}\""),
            &req,
            None,
            &KEY.0,
        )
    };
    let without = unsigned_host(&headers, "(request-target) date digest", "POST");
    let with = unsigned_host(&headers, "(request-target) host date digest", "POST");
    let get_without = unsigned_host(&headers, "(request-target) date", "GET");
    headers.push(("signature".into(), without));
    let req = parts("POST", "/inbox", &headers, Some(body));
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::InsufficientCoverage("host"))
    );
    // The same signature over the same request is otherwise sound: only host is missing.
    set(&mut headers, "signature", &with);
    let req = parts("POST", "/inbox", &headers, Some(body));
    assert!(check(&req, &KEY.1, at(NOW)).is_ok());
    // GETs (signed fetches) alike.
    set(&mut headers, "signature", &get_without);
    let req = parts("GET", "/inbox", &headers, None);
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::InsufficientCoverage("host"))
    );
}

/// Issue 9.5 for RFC 9421: the authority must be covered, as `@authority` or inside
/// `@target-uri`.
#[test]
fn rfc9421_signature_must_cover_the_authority() {
    let body = "{\"type\":\"Note\",\"content\":\"Ünïcödé 大阪 👋🏽\"}".as_bytes();
    let digest = content_digest_header(body);
    let sign = |components: &str| {
        let input =
            format!("sig1=({components});created={NOW};keyid=\"{KEY_ID}\";alg=\"rsa-v1_5-sha256\"");
        let mut headers = owned(&[
            ("Host", "hortus.example"),
            ("Content-Type", "application/activity+json"),
            ("Content-Digest", &digest),
            ("Signature-Input", &input),
            ("Signature", "sig1=:AAAA:"),
        ]);
        let req = parts("POST", "/inbox", &headers, Some(body));
        let Form::Rfc9421(sig) = signature_key_id(&req).unwrap().form else {
            panic!("expected RFC 9421")
        };
        let base = rfc9421::signature_base(&sig, &req, "https").unwrap();
        let signature = crypto::sign_rsa_sha256(&KEY.0, base.as_bytes()).unwrap();
        set(
            &mut headers,
            "Signature",
            &format!("sig1=:{}:", STANDARD.encode(signature)),
        );
        headers
    };
    let without = sign("\"@method\" \"@path\" \"content-digest\"");
    let req = parts("POST", "/inbox", &without, Some(body));
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::InsufficientCoverage(
            "@authority or @target-uri"
        ))
    );
    for covered in [
        "\"@method\" \"@path\" \"@authority\" \"content-digest\"",
        "\"@method\" \"@target-uri\" \"content-digest\"",
    ] {
        let headers = sign(covered);
        let req = parts("POST", "/inbox", &headers, Some(body));
        assert!(check(&req, &KEY.1, at(NOW)).is_ok(), "{covered}");
    }
}

#[test]
fn signed_host_must_be_present() {
    let mut headers = signed_get("https://peer.example/users/bob", at(NOW));
    headers.retain(|(n, _)| n != "host");
    let req = parts("GET", "/users/bob", &headers, None);
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::MissingSignedHeader("host".into()))
    );
}

#[test]
fn digest_names_in_any_case_and_sha512() {
    for digest in [
        format!("sha-256={}", STANDARD.encode(openssl::sha::sha256(b"{}"))),
        format!("SHA-512={}", STANDARD.encode(openssl::sha::sha512(b"{}"))),
        format!(
            "MD5=abc, SHA-256={}",
            STANDARD.encode(openssl::sha::sha256(b"{}"))
        ),
    ] {
        assert_eq!(digest::check_digest(&digest, b"{}"), Ok(()), "{digest}");
        // Signed by a peer that writes it this way.
        let date = httpdate::fmt_http_date(at(NOW));
        let mut headers = owned(&[
            ("Host", "hortus.example"),
            ("Date", &date),
            ("Digest", &digest),
        ]);
        let req = parts("POST", "/inbox", &headers, Some(b"{}"));
        let value = cavage_sign(
            &format!("keyId=\"{KEY_ID}\",headers=\"(request-target) host date digest\""),
            &req,
            None,
            &KEY.0,
        );
        headers.push(("signature".into(), value));
        let req = parts("POST", "/inbox", &headers, Some(b"{}"));
        assert!(check(&req, &KEY.1, at(NOW)).is_ok(), "{digest}");
    }
    assert_eq!(
        digest::check_digest("MD5=abc", b"{}"),
        Err(VerifyError::UnsupportedDigest)
    );
    assert_eq!(
        digest::check_digest("SHA-256", b"{}"),
        Err(VerifyError::MalformedDigest("expected algorithm=value"))
    );
    assert_eq!(
        digest::check_digest("SHA-256=!!", b"{}"),
        Err(VerifyError::MalformedDigest("value is not base64"))
    );
    let sha256 = STANDARD.encode(openssl::sha::sha256(b"{}"));
    let wrong512 = STANDARD.encode(openssl::sha::sha512(b"[]"));
    assert_eq!(
        digest::check_digest(&format!("SHA-256={sha256},SHA-512={wrong512}"), b"{}"),
        Err(VerifyError::DigestMismatch)
    );
}

#[test]
fn hs2019_with_created_and_expires() {
    // GoToSocial-style: hs2019, (created) instead of date.
    let mut headers = owned(&[
        ("Host", "hortus.example"),
        ("Digest", &digest_header(b"{}")),
    ]);
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    let params = format!(
        "keyId=\"{KEY_ID}\",algorithm=\"hs2019\",created={NOW},expires={}.5,headers=\"(request-target) (created) (expires) host digest\"",
        NOW + 300
    );
    let value = cavage_sign(&params, &req, None, &KEY.0);
    headers.push(("signature".into(), value));
    let req = parts("POST", "/inbox", &headers, Some(b"{}"));
    let verified = check(&req, &KEY.1, at(NOW + 10)).unwrap();
    assert_eq!(verified.algorithm, SignatureAlgorithm::RsaSha256);
    assert_eq!(
        check(&req, &KEY.1, at(NOW + 301)),
        Err(VerifyError::Expired)
    );
    assert_eq!(
        check(&req, &KEY.1, at(NOW - 7200)),
        Err(VerifyError::InFuture(3600))
    );
}

#[test]
fn created_with_rsa_sha256_is_refused() {
    let header = "keyId=\"k\",algorithm=\"rsa-sha256\",created=1402170695,headers=\"(request-target) (created)\",signature=\"AAAA\"";
    assert_eq!(
        parse_signature_header(header),
        Err(VerifyError::PseudoHeaderNeedsHs2019)
    );
    let header = "keyId=\"k\",algorithm=\"rsa-sha256\",expires=1402170695,headers=\"(request-target) (expires) date\",signature=\"AAAA\"";
    assert_eq!(
        parse_signature_header(header),
        Err(VerifyError::PseudoHeaderNeedsHs2019)
    );
}

#[test]
fn unsupported_algorithm_is_refused_before_any_key_fetch() {
    for alg in ["rsa-sha512", "hmac-sha256", "ecdsa-sha256", ""] {
        let header = format!(
            "keyId=\"k\",algorithm=\"{alg}\",headers=\"(request-target) date\",signature=\"AAAA\""
        );
        assert_eq!(
            parse_signature_header(&header),
            Err(VerifyError::UnsupportedAlgorithm(alg.into()))
        );
    }
    // Names are case-insensitive.
    let header = "keyId=\"k\",algorithm=\"HS2019\",headers=\"date\",signature=\"AAAA\"";
    assert_eq!(
        parse_signature_header(header).unwrap().algorithm.as_deref(),
        Some("hs2019")
    );
}

#[test]
fn default_headers() {
    let sig = parse_signature_header("keyId=\"k\",signature=\"AAAA\"").unwrap();
    assert_eq!(sig.headers, ["date"]);
    let sig = parse_signature_header("keyId=\"k\",created=5,signature=\"AAAA\"").unwrap();
    assert_eq!(sig.headers, ["(created)"]);
    let sig =
        parse_signature_header("keyId=\"k\",algorithm=\"rsa-sha256\",created=5,signature=\"AAAA\"")
            .unwrap();
    assert_eq!(sig.headers, ["date"]);
}

#[test]
fn parser_accepts_what_peers_send() {
    let ok = [
        // Mastodon
        "keyId=\"https://m.example/users/a#main-key\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date digest content-type\",signature=\"AAAA\"",
        // spaces after commas and around '=', tokens for values, other parameter order
        "signature=\"AAAA\", keyId = \"k\" , algorithm=hs2019,\theaders=\"(request-target) date\"",
        // escapes in a quoted string; unknown parameters are ignored
        "keyId=\"a\\\"b\",nonce=\"x\",signature=\"AAAA\",headers=\"Date\"",
        // unpadded base64
        "keyId=\"k\",signature=\"AAA\"",
    ];
    for header in ok {
        assert!(parse_signature_header(header).is_ok(), "{header}");
    }
    let sig = parse_signature_header(ok[2]).unwrap();
    assert_eq!(sig.key_id, "a\"b");
    assert_eq!(sig.headers, ["date"]);
}

#[test]
fn parser_refusals() {
    use VerifyError::MalformedSignature as M;
    let cases: &[(&str, VerifyError)] = &[
        ("", M("empty")),
        ("   ", M("empty")),
        ("keyId=\"k\"", M("signature missing")),
        ("signature=\"AAAA\"", M("keyId missing")),
        (
            "keyId=\"\",signature=\"AAAA\"",
            M("keyId empty or too long"),
        ),
        (
            "keyId=\"k\",keyid=\"j\",signature=\"AAAA\"",
            M("duplicate parameter"),
        ),
        (
            "keyId=\"k\",signature=\"AAAA\",",
            M("expected a parameter name"),
        ),
        (
            "keyId=\"k\",,signature=\"AAAA\"",
            M("expected a parameter name"),
        ),
        (
            "keyId=\"k\" signature=\"AAAA\"",
            M("expected ',' between parameters"),
        ),
        (
            "keyId\"k\",signature=\"AAAA\"",
            M("expected '=' after a parameter name"),
        ),
        ("keyId=,signature=\"AAAA\"", M("expected a parameter value")),
        (
            "keyId=\"k,signature=\"AAAA\"",
            M("expected ',' between parameters"),
        ),
        (
            "keyId=\"k\",signature=\"AAAA",
            M("unterminated quoted string"),
        ),
        ("keyId=\"k\\", M("unterminated quoted string")),
        (
            "keyId=\"k\nx\",signature=\"AAAA\"",
            M("control character in a quoted string"),
        ),
        (
            "keyId=\"k\",signature=\"not base64!\"",
            M("signature is not base64"),
        ),
        (
            "keyId=\"k\",signature=\"\"",
            M("signature empty or too long"),
        ),
        (
            "keyId=\"k\",created=\"-5\",signature=\"AAAA\"",
            M("created is not a timestamp"),
        ),
        (
            "keyId=\"k\",created=1.5,signature=\"AAAA\"",
            M("created is not a timestamp"),
        ),
        (
            "keyId=\"k\",expires=1.,signature=\"AAAA\"",
            M("expires is not a timestamp"),
        ),
        (
            "keyId=\"k\",created=9999999999999999,signature=\"AAAA\"",
            M("created is not a timestamp"),
        ),
        (
            "keyId=\"k\",headers=\"(foo) date\",signature=\"AAAA\"",
            M("invalid name in headers"),
        ),
        (
            "keyId=\"k\",headers=\"da:te\",signature=\"AAAA\"",
            M("invalid name in headers"),
        ),
        (
            "keyId=\"k\",headers=\"(created)\",signature=\"AAAA\"",
            M("(created) or (expires) listed without its parameter"),
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(
            parse_signature_header(header).as_ref(),
            Err(expected),
            "{header:?}"
        );
    }
    let long = format!(
        "keyId=\"{}\",signature=\"AAAA\"",
        "k".repeat(MAX_SIGNATURE_HEADER_LEN)
    );
    assert_eq!(parse_signature_header(&long), Err(M("too long")));
    let many = format!(
        "keyId=\"k\",headers=\"{}\",signature=\"AAAA\"",
        "a ".repeat(65)
    );
    assert_eq!(
        parse_signature_header(&many),
        Err(M("too many signed headers"))
    );
}

#[test]
fn parser_never_panics_on_odd_input() {
    let samples = [
        "\"",
        "=",
        ",",
        "a=",
        "a=\"",
        "a=\"\\",
        "a=\"é\\é\"",
        "é=1",
        "keyId=\"ü\",signature=\"AAAA\"",
        "keyId=\"k\",signature=\"AAAA\",headers=\"\"",
        "keyId=k,signature=AAAA",
        "\u{0}",
        "a=b,\u{7f}",
    ];
    for s in samples {
        let _ = parse_signature_header(s);
    }
    // Every prefix of a real header.
    let header = "keyId=\"https://m.example/users/a#main-key\",algorithm=\"hs2019\",created=1402170695,expires=1402170699.25,headers=\"(request-target) (created) host digest\",signature=\"AAAA\"";
    for (i, _) in header.char_indices() {
        let _ = parse_signature_header(&header[..i]);
    }
}

#[test]
fn authorization_header_form() {
    let headers = signed_get("https://peer.example/users/bob", at(NOW));
    let value = headers
        .iter()
        .find(|(n, _)| n == "signature")
        .unwrap()
        .1
        .clone();
    let mut headers: Vec<_> = headers
        .into_iter()
        .filter(|(n, _)| n != "signature")
        .collect();
    headers.push(("authorization".into(), format!("Signature {value}")));
    let req = parts("GET", "/users/bob", &headers, None);
    assert!(check(&req, &KEY.1, at(NOW)).is_ok());
    let bearer = owned(&[("Authorization", "Bearer abc")]);
    assert_eq!(
        signature_key_id(&parts("GET", "/", &bearer, None)),
        Err(VerifyError::MissingSignature)
    );
    assert_eq!(
        signature_key_id(&parts("GET", "/", &[], None)),
        Err(VerifyError::MissingSignature)
    );
}

#[test]
fn header_lookup_is_case_insensitive_and_joins_repeats() {
    let headers = owned(&[("Accept", "a"), ("X", "1"), ("x", "2")]);
    let req = parts("GET", "/", &headers, None);
    assert_eq!(req.header("ACCEPT").as_deref(), Some("a"));
    assert_eq!(req.header("x").as_deref(), Some("1, 2"));
    assert_eq!(req.header("y"), None);
}

#[test]
fn line_breaks_in_values_cannot_forge_lines() {
    let date = httpdate::fmt_http_date(at(NOW));
    let mut headers = signed_get("https://peer.example/users/bob", at(NOW));
    set(&mut headers, "host", &format!("peer.example\ndate: {date}"));
    let req = parts("GET", "/users/bob", &headers, None);
    assert_eq!(
        check(&req, &KEY.1, at(NOW)),
        Err(VerifyError::UnsignableHeaderValue("host".into()))
    );
}

#[test]
fn keys() {
    let (private, public) = generate_keypair().unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    let key = load_private_key(&private).unwrap();
    assert_eq!(key.bits(), 2048);
    assert_eq!(load_public_key(&public).unwrap().bits(), 2048);
    // PKCS#1 public keys, as some older servers publish them.
    assert_eq!(load_public_key(RFC_RSA_PUBLIC).unwrap().bits(), 2048);
    assert!(load_private_key(CAVAGE_PRIVATE).is_ok());
    assert!(load_private_key("garbage").is_err());
    // A 512-bit key is refused.
    let small = PKey::from_rsa(openssl::rsa::Rsa::generate(512).unwrap()).unwrap();
    let small = String::from_utf8(small.public_key_to_pem().unwrap()).unwrap();
    assert_eq!(
        load_public_key(&small).err(),
        Some(VerifyError::BadKey("RSA key size outside 1024-8192 bits"))
    );
}

#[test]
fn signing_refuses_bad_input() {
    let url = url::Url::parse("https://peer.example/inbox").unwrap();
    assert!(matches!(
        sign_get(&url, "k\"", &KEY.0, at(NOW)),
        Err(SignError::InvalidKeyId(_))
    ));
    assert!(matches!(
        sign_get(&url, "k\n", &KEY.0, at(NOW)),
        Err(SignError::InvalidKeyId(_))
    ));
    assert!(matches!(
        sign_get_rfc9421(&url, "kü", &KEY.0, at(NOW)),
        Err(SignError::InvalidKeyId(_))
    ));
    let no_host = url::Url::parse("data:text/plain,hi").unwrap();
    assert!(matches!(
        sign_get(&no_host, KEY_ID, &KEY.0, at(NOW)),
        Err(SignError::NoHost(_))
    ));
    let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
    assert!(matches!(
        sign_get(&url, KEY_ID, &KEY.0, before_epoch),
        Err(SignError::Clock)
    ));
    assert!(matches!(
        sign_post(&url, b"", "a\r\nb", KEY_ID, &KEY.0, at(NOW)),
        Err(SignError::InvalidHeaderValue(_))
    ));
}
