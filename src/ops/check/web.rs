//! The checks made over HTTP through the public URL, as a peer makes them: WebFinger on the
//! handle's domain, the actor, the signed probe, an unsigned POST, the policy pages, and the
//! clock against the public URL's `Date`.

use std::time::{Duration, SystemTime};

use reqwest::header;

use super::http::{
    AP, Answer, BROWSER_ACCEPT, Clients, MASTODON_ACCEPT, NO_ANSWER, essence, unreachable,
};
use super::report::Check;
use crate::context::Context;
use crate::inbox::probe;

/// Hortus's own inbox is strictest at about a minute past a signature's `Date`, so a peer's
/// clock must agree with the server's within that.
const MAX_SKEW: Duration = Duration::from_secs(60);

pub struct Web<'a> {
    ctx: &'a Context,
    http: &'a Clients,
}

impl<'a> Web<'a> {
    pub fn new(ctx: &'a Context, http: &'a Clients) -> Web<'a> {
        Web { ctx, http }
    }

    /// WebFinger for the handle on the handle's domain, directly, by a redirect or (when the
    /// domain is not the site's host) through host-meta's template, as Mastodon looks.
    pub async fn webfinger(&self) -> Check {
        let cfg = &self.ctx.config;
        let scheme = cfg.base_url.scheme();
        let handle = format!("{}@{}", cfg.user.name, cfg.domain);
        let resource = format!("acct:{handle}");
        let direct = format!(
            "{scheme}://{}/.well-known/webfinger?resource={resource}",
            cfg.domain
        );
        let split = cfg.base_url.host_str() != Some(cfg.domain.as_str());
        let fix = if split {
            let origin = cfg.base_url.as_str().trim_end_matches('/');
            format!(
                "other servers ask https://{d}/.well-known/webfinger first: redirect it to the \
                 site (nginx on {d}: `location = /.well-known/webfinger {{ return 301 \
                 {origin}$request_uri; }}`, and the same for /.well-known/host-meta; see the \
                 README, Reverse proxy)",
                d = cfg.domain,
            )
        } else {
            "pass /.well-known/ to hortus serve in the reverse proxy (the README's snippets do)"
                .to_string()
        };
        let first = match self
            .http
            .get(&self.http.follow, &direct, "application/jrd+json")
            .await
        {
            Ok(a) => a,
            Err(e) => return Check::fail("webfinger", e, NO_ANSWER),
        };
        let (answer, how) = if first.status == 200 || !split {
            let how = if first.final_url == direct {
                String::new()
            } else {
                format!(" (redirected to {})", first.final_url)
            };
            (first, how)
        } else {
            match self.via_host_meta(&resource).await {
                Ok(a) => {
                    let how = format!(" (via host-meta: {})", a.final_url);
                    (a, how)
                }
                Err(e) => {
                    return Check::fail(
                        "webfinger",
                        format!("{direct} answered {}; {e}", first.status),
                        fix,
                    );
                }
            }
        };
        let actor = self.ctx.urls.actor();
        let links_to_actor = answer.json().is_some_and(|j| {
            j["links"].as_array().is_some_and(|links| {
                links.iter().any(|l| {
                    l["rel"] == "self"
                        && l["href"] == actor.as_str()
                        && l["type"]
                            .as_str()
                            .is_some_and(|t| essence(t) == AP || t.contains("activitystreams"))
                })
            })
        });
        if answer.status == 200 && links_to_actor {
            Check::pass("webfinger", format!("{handle} → {actor}{how}"))
        } else {
            Check::fail(
                "webfinger",
                format!(
                    "{} answered {} ({}) without a self link to {actor}: {}",
                    answer.final_url,
                    answer.status,
                    answer.content_type,
                    answer.excerpt()
                ),
                fix,
            )
        }
    }

    async fn via_host_meta(&self, resource: &str) -> Result<Answer, String> {
        let cfg = &self.ctx.config;
        let url = format!(
            "{}://{}/.well-known/host-meta",
            cfg.base_url.scheme(),
            cfg.domain
        );
        let meta = self
            .http
            .get(&self.http.follow, &url, "application/xrd+xml")
            .await?;
        let text = String::from_utf8_lossy(&meta.body);
        let template = text
            .split("template=\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .filter(|t| t.contains("{uri}"))
            .ok_or_else(|| format!("{url} answered {} without an lrdd template", meta.status))?;
        let target = template.replace("&amp;", "&").replace("{uri}", resource);
        self.http
            .get(&self.http.follow, &target, "application/jrd+json")
            .await
    }

    /// The actor through the proxy: 200, ActivityPub's content type, its own id. Also returns
    /// the answer's `Date` for the clock check: `None` when nothing answered, `Some(None)` for
    /// an answer without one.
    pub async fn actor(&self) -> (Check, Option<Option<SystemTime>>) {
        let url = self.ctx.urls.actor();
        let a = match self.http.get(&self.http.exact, &url, MASTODON_ACCEPT).await {
            Ok(a) => a,
            Err(e) => {
                return (Check::fail("actor", e, NO_ANSWER), None);
            }
        };
        let ct = a.essence();
        let json_type =
            ct == AP || (ct == "application/ld+json" && a.content_type.contains("activitystreams"));
        let id_ok = a.json().is_some_and(|j| j["id"] == url.as_str());
        let check = if a.status != 200 {
            Check::fail(
                "actor",
                format!(
                    "{url} answered {} ({}): {}",
                    a.status,
                    a.content_type,
                    a.excerpt()
                ),
                "make the reverse proxy pass /users/ to hortus serve, with the Accept header",
            )
        } else if !json_type {
            Check::fail(
                "actor",
                format!(
                    "{url} answered with content type {:?}, not {AP}",
                    a.content_type
                ),
                "the proxy or host changes Content-Type: pass hortus serve's unchanged (nginx: no \
                 `proxy_hide_header Content-Type`, `add_header Content-Type` or `default_type` \
                 for these paths); Mastodon ignores documents of other types",
            )
        } else if !id_ok {
            Check::fail(
                "actor",
                format!("{url} answered JSON whose id is not {url}: {}", a.excerpt()),
                "base_url in hortus.toml must be the public URL the proxy serves",
            )
        } else {
            Check::pass("actor", format!("{url}: 200, {}", a.content_type))
        };
        (check, Some(a.date))
    }

    /// A POST signed with the instance actor's key to its own inbox, through the public URL
    /// (see `inbox::probe`): it verifies only if the proxy passed `Host`, the request target and
    /// the signed headers unchanged.
    pub async fn signed_probe(&self) -> Check {
        const NAME: &str = "signed-request";
        let urls = &self.ctx.urls;
        let inbox = urls.instance_inbox();
        let nonce = uuid::Uuid::now_v7().to_string();
        let body = probe::body(urls, &nonce);
        let url = match url::Url::parse(&inbox) {
            Ok(u) => u,
            Err(e) => return Check::fail(NAME, format!("{inbox}: {e}"), "fix base_url"),
        };
        let signed = crate::httpsig::sign_post(
            &url,
            &body,
            AP,
            &urls.instance_actor_key(),
            &self.ctx.instance_key.private,
            SystemTime::now(),
        );
        let headers = match signed {
            Ok(h) => h,
            Err(e) => return Check::fail(NAME, format!("signing: {e}"), "check hortus.db's keys"),
        };
        let mut req = self
            .http
            .exact
            .post(url.as_str())
            .header(header::CONTENT_TYPE, AP)
            .body(body);
        for (n, v) in &headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let a = match req.send().await {
            Ok(resp) => Answer::read(resp).await,
            Err(e) => {
                return Check::fail(NAME, unreachable(&inbox, &e), NO_ANSWER);
            }
        };
        let said = a.excerpt();
        let verified = a.status == 200
            && a.json()
                .is_some_and(|j| j["probe"] == "verified" && j["nonce"] == nonce.as_str());
        if verified {
            return Check::pass(
                NAME,
                format!("a request signed for {inbox} verified through the proxy"),
            );
        }
        let fix = match a.status {
            401 if said.contains("addressed to") => {
                "the proxy does not pass the original Host header: nginx needs \
                 `proxy_set_header Host $host;` (Caddy passes it by itself); every signature covers it"
            }
            401 => {
                "the signature did not verify through the proxy: pass the request target unchanged \
                 (nginx: `proxy_pass http://127.0.0.1:8080;` with no URI part, no rewrite) and the \
                 Host, Date, Digest, Content-Type and Signature headers"
            }
            202 => {
                "the server that answered does not know the probe: run this hortus version as \
                 `hortus serve` behind the proxy (restart the service after an upgrade)"
            }
            404 | 405 => "make the reverse proxy pass POSTs to the inboxes to hortus serve",
            _ => "see the answer: the proxy or hortus serve's log names the cause",
        };
        Check::fail(NAME, format!("{inbox} answered {}: {said}", a.status), fix)
    }

    /// An unsigned POST to the shared inbox must be refused with 401 (by Hortus, not the proxy).
    pub async fn unsigned_post(&self) -> Check {
        const NAME: &str = "unsigned-post";
        let inbox = self.ctx.urls.shared_inbox();
        let body = br#"{"type":"Create"}"#.to_vec();
        let sent = self
            .http
            .exact
            .post(&inbox)
            .header(header::CONTENT_TYPE, AP)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let a = Answer::read(resp).await;
                if a.status == 401 {
                    Check::pass(NAME, format!("{inbox} refused an unsigned POST with 401"))
                } else {
                    Check::fail(
                        NAME,
                        format!(
                            "{inbox} answered an unsigned POST with {}: {}",
                            a.status,
                            a.excerpt()
                        ),
                        "make the reverse proxy pass POSTs to /inbox to hortus serve, unchanged \
                         (no cache, no authentication in front of it)",
                    )
                }
            }
            Err(e) => Check::fail(NAME, unreachable(&inbox, &e), NO_ANSWER),
        }
    }

    /// `/privacy` and `/children` answer 200 HTML: Threads federates only with servers that
    /// publish a privacy policy and a policy on children under 13.
    pub async fn policy_pages(&self) -> Check {
        const NAME: &str = "policy-pages";
        let urls = &self.ctx.urls;
        let mut bad = Vec::new();
        let mut answered = false;
        for url in [urls.privacy(), urls.children()] {
            match self.http.get(&self.http.exact, &url, BROWSER_ACCEPT).await {
                Ok(a) if a.status == 200 && a.essence() == "text/html" => answered = true,
                Ok(a) => {
                    answered = true;
                    bad.push(format!("{url} answered {} ({})", a.status, a.content_type));
                }
                Err(e) => bad.push(e),
            }
        }
        if bad.is_empty() {
            Check::pass(NAME, format!("{} and {}", urls.privacy(), urls.children()))
        } else if !answered {
            Check::fail(NAME, bad.join("; "), NO_ANSWER)
        } else {
            Check::fail(
                NAME,
                bad.join("; "),
                "Threads requires a privacy policy and a policy on children under 13: pass /privacy \
                 and /children to hortus serve (or publish them with `hortus export`); their text is \
                 `privacy_policy` and `children_policy` in [site]",
            )
        }
    }
}

/// This machine's clock against the `Date` the public URL answered (`None`: nothing answered).
pub fn clock(answered: Option<Option<SystemTime>>, now: SystemTime) -> Check {
    const NAME: &str = "clock";
    let Some(answered) = answered else {
        return Check::skip(NAME, "the public URL did not answer (see actor)");
    };
    let Some(date) = answered else {
        return Check::fail(
            NAME,
            "the public URL answered without a Date header",
            "the reverse proxy must send a Date header (nginx and Caddy do unless told otherwise)",
        );
    };
    let (skew, ahead) = match now.duration_since(date) {
        Ok(d) => (d, true),
        Err(e) => (e.duration(), false),
    };
    let secs = skew.as_secs();
    // `Date` has whole seconds: up to one second of difference is rounding.
    if skew <= MAX_SKEW {
        return Check::pass(
            NAME,
            format!("within {}s of the public URL's Date", secs.max(1)),
        );
    }
    Check::fail(
        NAME,
        format!(
            "this machine's clock is {secs}s {} the Date the public URL answered ({})",
            if ahead { "ahead of" } else { "behind" },
            httpdate::fmt_http_date(date)
        ),
        "signatures older or newer than about a minute are refused: run NTP on this machine and \
         on the server (`timedatectl set-ntp true`), and check that no cache or CDN in front sends \
         a stale Date",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::check::Status;

    #[test]
    fn clock_within_a_minute_either_way() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        assert_eq!(
            clock(Some(Some(now - Duration::from_secs(59))), now).status,
            Status::Pass
        );
        assert_eq!(
            clock(Some(Some(now + Duration::from_secs(59))), now).status,
            Status::Pass
        );
        let ahead = clock(Some(Some(now - Duration::from_secs(300))), now);
        assert_eq!(ahead.status, Status::Fail);
        assert!(ahead.detail.contains("300s ahead of"), "{}", ahead.detail);
        let behind = clock(Some(Some(now + Duration::from_secs(3600))), now);
        assert!(behind.detail.contains("3600s behind"), "{}", behind.detail);
        assert_eq!(clock(Some(None), now).status, Status::Fail);
        assert_eq!(clock(None, now).status, Status::Skip);
    }
}
