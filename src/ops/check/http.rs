//! HTTP as `hortus check` speaks it: two clients (one follows redirects, one never does), with
//! the owner's `--resolve` and `--cacert`, and answers read into what the checks compare.
//!
//! Not through the federation guard: these are the owner's own names (the handle's domain may
//! not be on the allowlist, and is not another server), and `--resolve` may point them anywhere.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap};
use reqwest::{Client, Response, redirect};
use serde_json::Value;

use super::report::{CheckError, Options};

pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Answers are read up to this size: the check reads documents, never media.
pub const MAX_READ: usize = 1024 * 1024;
pub const AP: &str = "application/activity+json";
pub const MASTODON_ACCEPT: &str = "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The answer's status, content type and CORS header, and its body (capped).
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub cors: Option<String>,
    /// Where a redirect points.
    pub location: Option<String>,
    pub date: Option<SystemTime>,
    pub final_url: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub async fn read(resp: Response) -> Answer {
        let headers = resp.headers().clone();
        let final_url = resp.url().to_string();
        let status = resp.status().as_u16();
        let body = crate::federation::read_capped(resp, MAX_READ)
            .await
            .unwrap_or_default();
        Answer {
            status,
            content_type: header_text(&headers, header::CONTENT_TYPE),
            location: headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|s| crate::text::plain_text(s, 300)),
            cors: headers
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            date: headers
                .get(header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|d| httpdate::parse_http_date(d).ok()),
            final_url,
            body,
        }
    }

    /// The media type alone, lower case: `application/activity+json`.
    pub fn essence(&self) -> String {
        essence(&self.content_type)
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body's start, safe to print.
    pub fn excerpt(&self) -> String {
        crate::text::plain_text(&String::from_utf8_lossy(&self.body), 160)
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| crate::text::plain_text(s, 200))
        .unwrap_or_default()
}

pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn client(opts: &Options, redirects: redirect::Policy) -> Result<Client, CheckError> {
    let mut b = Client::builder()
        .user_agent(format!("Hortus-check/{}", env!("CARGO_PKG_VERSION")))
        .redirect(redirects)
        .no_proxy()
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT);
    for (name, ip) in &opts.resolve {
        // The port is ignored: the URL's is used (reqwest's documented behaviour).
        b = b.resolve(name, std::net::SocketAddr::new(*ip, 0));
    }
    if let Some(pem) = &opts.ca_pem {
        for cert in
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| CheckError::Ca(e.to_string()))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b.build()?)
}

/// What went wrong with a request that got no answer.
pub fn unreachable(url: &str, e: &reqwest::Error) -> String {
    use std::error::Error;
    // The causes, without the top error's own words (they repeat the URL).
    let mut causes = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let why = if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    };
    format!("{url}: no answer ({})", crate::text::plain_text(&why, 300))
}

/// The fix when nothing answered at all: the cause is below HTTP.
pub const NO_ANSWER: &str = "nothing answered over HTTP: fix the dns and tls lines first, then \
     check that the reverse proxy listens on the site's port (`ss -tlnp`) and that the firewall \
     lets it in";

/// The two clients every check shares.
pub struct Clients {
    /// Follows redirects (WebFinger may be redirected to the site's host).
    pub follow: Client,
    /// Never follows: answers are compared as they are.
    pub exact: Client,
}

impl Clients {
    pub fn new(opts: &Options) -> Result<Clients, CheckError> {
        Ok(Clients {
            follow: client(opts, redirect::Policy::limited(5))?,
            exact: client(opts, redirect::Policy::none())?,
        })
    }

    /// A GET with this Accept header, read into an [`Answer`]; the reason when none came.
    pub async fn get(&self, client: &Client, url: &str, accept: &str) -> Result<Answer, String> {
        match client.get(url).header(header::ACCEPT, accept).send().await {
            Ok(resp) => Ok(Answer::read(resp).await),
            Err(e) => Err(unreachable(url, &e)),
        }
    }
}
