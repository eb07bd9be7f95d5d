//! What `hortus check` reports ([`Report`], one [`Check`] per line) and what it is given
//! ([`Options`]); below the checks themselves, which all produce these.

use serde::Serialize;

use crate::context::Context;

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Could not be judged from here (said why); does not fail the run.
    Skip,
}

/// One line of the report.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// What to do about a failure, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skip,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// Every check, in order.
#[derive(Debug, Serialize)]
pub struct Report {
    pub base_url: String,
    pub handle: String,
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(ctx: &Context, checks: Vec<Check>) -> Report {
        Report {
            base_url: ctx.config.base_url.to_string(),
            handle: format!("{}@{}", ctx.config.user.name, ctx.config.domain),
            ok: checks.iter().all(|c| c.status != Status::Fail),
            checks,
        }
    }

    pub fn failed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }

    /// For a person at a terminal: one line per check, the fix indented under a failure.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = format!("hortus check: {} ({})\n", self.base_url, self.handle);
        for c in &self.checks {
            let mark = match c.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            let _ = writeln!(out, "  {mark}  {:<16} {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "        fix: {fix}");
            }
        }
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} skipped",
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Skip)
        );
        out
    }
}

/// Where and how to reach the site: the overrides an owner gives to check a server before the
/// DNS points at it (or behind a private CA), as with `curl --resolve` and `--cacert`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `NAME → address` instead of the DNS (the port is the URL's, as with curl).
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// A CA certificate (PEM) trusted besides the system's.
    pub ca_pem: Option<Vec<u8>>,
}

impl Options {
    pub fn address_of(&self, name: &str) -> Option<std::net::IpAddr> {
        self.resolve
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, ip)| *ip)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the CA certificate is not PEM: {0}")]
    Ca(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_each_check_and_the_fix_under_a_failure() {
        let report = Report {
            base_url: "https://example.net/".into(),
            handle: "alice@example.net".into(),
            ok: false,
            checks: vec![
                Check::pass("dns", "example.net → 203.0.113.7"),
                Check::fail("clock", "300s ahead", "run NTP"),
                Check::skip("same-as-serve", "not on the server"),
            ],
        };
        let text = report.text();
        assert!(text.contains("  pass  dns "), "{text}");
        assert!(
            text.contains("  FAIL  clock            300s ahead\n        fix: run NTP\n"),
            "{text}"
        );
        assert!(text.contains("  skip  same-as-serve "), "{text}");
        assert!(text.ends_with("1 passed, 1 failed, 1 skipped\n"), "{text}");
        assert_eq!(report.failed(), 1);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][1]["status"], "fail");
        assert!(json["checks"][0].get("fix").is_none());
    }
}
