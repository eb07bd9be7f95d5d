//! The draft-cavage `Signature` header parser: arbitrary bytes in, no panic, and whatever it
//! accepts keeps the invariants `verify` relies on.
#![no_main]

use hortus_fuzz::httpsig::parse_signature_header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sig) = parse_signature_header(value) else {
        return;
    };
    assert!(!sig.key_id.is_empty() && sig.key_id.len() <= 2048);
    assert!(!sig.signature.is_empty() && sig.signature.len() <= 1024);
    assert!(sig.headers.len() <= 64);
    if let Some(alg) = sig.algorithm.as_deref() {
        assert!(alg == "rsa-sha256" || alg == "hs2019");
    }
    for h in &sig.headers {
        assert_eq!(h, &h.to_ascii_lowercase());
        assert!(!h.is_empty() && !h.contains(char::is_whitespace));
        if h == "(created)" {
            assert!(sig.created.is_some());
        }
        if h == "(expires)" {
            assert!(sig.expires.is_some());
        }
    }
});
