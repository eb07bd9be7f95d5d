//! The deployment probe `hortus check` sends to prove that the reverse proxy passes the original
//! `Host` and the full request target: a POST signed with the instance actor's key, sent to the
//! instance actor's inbox through the public URL. It takes every step of the inbox a peer's
//! delivery takes (content type, signature syntax, policy, date, digest, Host, signature), so it
//! verifies exactly when a peer's delivery would.
//!
//! Recognised only after the signature verified with our own instance key, which only this site
//! holds: nobody else can make the inbox answer it. It has no effect (nothing stored, not even its
//! id among the seen activities) and is answered 200 with its nonce, distinct from the 202 of an
//! accepted activity, so the check knows its own request reached this server and verified.
//! A replay inside the signature's date window gets the same harmless answer.

use serde::{Deserialize, Serialize};

use crate::actors::RemoteActor;
use crate::urls::Urls;

/// Not an ActivityStreams type: no other server acts on it, and the inbox never takes it for one.
pub const PROBE_TYPE: &str = "HortusDeploymentProbe";

/// Nonces are short tokens: the answer echoes nothing longer.
const MAX_NONCE: usize = 64;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    #[serde(rename = "type")]
    kind: String,
    actor: String,
    nonce: String,
}

/// The probe's body, signed by the instance actor.
pub fn body(urls: &Urls, nonce: &str) -> Vec<u8> {
    let probe = Probe {
        kind: PROBE_TYPE.into(),
        actor: urls.instance_actor(),
        nonce: nonce.into(),
    };
    serde_json::to_vec(&probe).unwrap_or_default()
}

/// The nonce of a verified probe: `signer` is our own instance actor and `body` is a probe in
/// its name. `None` for anything else (which then goes on as an activity).
pub fn recognise(urls: &Urls, signer: &RemoteActor, body: &[u8]) -> Option<String> {
    if signer.id != urls.instance_actor() {
        return None;
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    let nonce_ok = !probe.nonce.is_empty()
        && probe.nonce.len() <= MAX_NONCE
        && probe
            .nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (probe.kind == PROBE_TYPE && probe.actor == signer.id && nonce_ok).then_some(probe.nonce)
}

/// What the inbox answers a verified probe (200, JSON).
pub fn answer(nonce: &str) -> serde_json::Value {
    serde_json::json!({ "probe": "verified", "nonce": nonce })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Urls {
        Urls::new(&url::Url::parse("https://example.net").unwrap(), "alice")
    }

    fn signer(id: &str) -> RemoteActor {
        RemoteActor {
            id: id.into(),
            host: "example.net".into(),
            inbox: format!("{id}/inbox"),
            shared_inbox: None,
            handle: None,
            name: None,
            url: None,
            public_key_id: None,
            public_key_pem: None,
        }
    }

    #[test]
    fn only_our_instance_actor_probes() {
        let urls = urls();
        let body = body(&urls, "0193-abc");
        let me = signer(&urls.instance_actor());
        assert_eq!(recognise(&urls, &me, &body).as_deref(), Some("0193-abc"));
        // The owner's actor, or anyone else, signing the same body: an ordinary activity.
        assert_eq!(recognise(&urls, &signer(&urls.actor()), &body), None);
        assert_eq!(
            recognise(&urls, &signer("https://evil.example/actor"), &body),
            None
        );
        // A nonce that is not a short token, another type, extra fields: not a probe.
        for bad in [
            r#"{"type":"HortusDeploymentProbe","actor":"https://example.net/actor","nonce":"<b>"}"#,
            r#"{"type":"HortusDeploymentProbe","actor":"https://example.net/actor","nonce":""}"#,
            r#"{"type":"Follow","actor":"https://example.net/actor","nonce":"a"}"#,
            r#"{"type":"HortusDeploymentProbe","actor":"https://example.net/actor","nonce":"a","object":"x"}"#,
            r#"{"type":"HortusDeploymentProbe","actor":"https://example.net/users/alice","nonce":"a"}"#,
        ] {
            assert_eq!(recognise(&urls, &me, bad.as_bytes()), None, "{bad}");
        }
        let long = "a".repeat(MAX_NONCE + 1);
        assert_eq!(recognise(&urls, &me, &super::body(&urls, &long)), None);
    }
}
