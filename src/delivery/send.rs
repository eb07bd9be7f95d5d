//! One signed POST of a delivery: signed at the moment of sending by the signing threads, sent on
//! the one HTTP client every delivery shares (connections kept alive and pooled per server,
//! HTTP/2 where the server offers it by ALPN), and its answer turned into a verdict.

use std::time::SystemTime;

use bytes::Bytes;
use openssl::pkey::{PKey, Private};

use super::schedule::{Verdict, parse_retry_after, verdict};
use super::signer::Signer;
use crate::activitypub::CONTENT_TYPE;
use crate::federation;
use crate::httpsig::SignatureForm;

pub struct Sender {
    http: reqwest::Client,
    /// One thread per core, signing in arrival order.
    signer: Signer,
}

impl Sender {
    pub fn new(
        http: reqwest::Client,
        key: PKey<Private>,
        key_id: String,
    ) -> std::io::Result<Sender> {
        Ok(Sender {
            http,
            signer: Signer::new(key, key_id)?,
        })
    }

    /// One signed POST in `form`, with FEP-8fcf's header when there is one.
    /// `body` is shared by every request of the fan-out (a reference count, not a copy).
    pub async fn post(
        &self,
        body: &Bytes,
        url: &url::Url,
        form: SignatureForm,
        sync: Option<&str>,
        now: SystemTime,
    ) -> (Verdict, Option<u16>, Option<String>) {
        // Signed now, at every attempt: peers reject a stale Date (PROTOCOL.md §3).
        let signed = match self.signer.sign(form, url, body).await {
            Ok(h) => h,
            Err(e @ super::signer::SignFailure::Stopped) => {
                return (
                    Verdict::Retry { retry_after: None },
                    None,
                    Some(format!("cannot sign: {e}")),
                );
            }
            Err(e) => return (Verdict::Rejected, None, Some(format!("cannot sign: {e}"))),
        };
        let mut request = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body.clone());
        for (name, value) in signed {
            request = request.header(name, value);
        }
        if let Some(sync) = sync {
            request = request.header("Collection-Synchronization", sync);
        }
        match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now));
                // Read (a little of) the body so the connection can be reused, and keep the
                // start of an error answer for the owner.
                let text = federation::read_capped(resp, 64 * 1024)
                    .await
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let v = verdict(status, retry_after);
                let error = (v != Verdict::Delivered).then(|| {
                    let excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    let excerpt: String = excerpt.chars().take(200).collect();
                    if excerpt.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("HTTP {status}: {excerpt}")
                    }
                });
                (v, Some(status), error)
            }
            Err(e) => {
                let message = error_chain(&e);
                // A redirect the policy or the address guard refused will not change by waiting.
                let refused = e.is_redirect()
                    || std::error::Error::source(&e)
                        .is_some_and(|s| s.downcast_ref::<federation::RefusedFetch>().is_some());
                if refused {
                    (Verdict::Rejected, None, Some(message))
                } else {
                    (Verdict::Retry { retry_after: None }, None, Some(message))
                }
            }
        }
    }
}

/// `error sending request: connection refused` rather than reqwest's outermost line only.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
