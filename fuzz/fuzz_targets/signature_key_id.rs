//! `signature_key_id` and then `verify_with` over arbitrary requests: header sets drawn mostly
//! from the names the verifier reads, arbitrary values, body and clock. No input may panic.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use hortus_fuzz::httpsig::{RequestParts, VerifyOptions, signature_key_id, verify_with};
use libfuzzer_sys::fuzz_target;

/// RFC 9421 appendix B.1.2 test-key-rsa-pss: any RSA-2048 public key will do.
const PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----";

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Signature,
    SignatureInput,
    Authorization,
    Host,
    Date,
    Digest,
    ContentDigest,
    ContentType,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    post: bool,
    target: &'a str,
    headers: Vec<(Name<'a>, &'a str)>,
    body: Option<&'a [u8]>,
    now: u32,
    https: bool,
    window: u16,
}

fuzz_target!(|input: Input| {
    let headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(name, value)| {
            let name = match name {
                Name::Signature => "signature",
                Name::SignatureInput => "signature-input",
                Name::Authorization => "authorization",
                Name::Host => "host",
                Name::Date => "date",
                Name::Digest => "digest",
                Name::ContentDigest => "content-digest",
                Name::ContentType => "content-type",
                Name::Other(other) => other,
            };
            (name.to_string(), value.to_string())
        })
        .collect();
    let req = RequestParts {
        method: if input.post { "POST" } else { "GET" },
        path_and_query: input.target,
        headers: &headers,
        body: input.body,
    };
    let Ok(pending) = signature_key_id(&req) else {
        return;
    };
    assert!(!pending.key_id().is_empty());
    let opts = VerifyOptions {
        scheme: if input.https { "https" } else { "http" },
        clock_window: Duration::from_secs(u64::from(input.window)),
    };
    let now = UNIX_EPOCH + Duration::from_secs(u64::from(input.now));
    let _ = verify_with(&req, &pending, PUBLIC_PEM, now, &opts);
});
