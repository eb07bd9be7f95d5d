//! hortus.toml → a validated [`Config`]. Every mistake names the file, the line and the fix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

pub mod live;
pub mod profile;

pub const CONFIG_FILE: &str = "hortus.toml";
pub const DB_FILE: &str = "hortus.db";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{path}: cannot read: {reason}\n  fix: run `hortus init` to create a site, or pass --dir to point at one"
    )]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}\n  fix: {fix}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        fix: &'static str,
    },
    #[error("{path}: {message}\n  fix: {fix}")]
    Invalid {
        path: PathBuf,
        message: String,
        fix: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The domain in the owner's handle: `user@domain`.
    pub domain: String,
    /// Where the site is reached; every id and link is built from it.
    pub base_url: Url,
    /// Address `hortus serve` binds to.
    #[serde(default = "default_listen")]
    pub listen: String,
    pub user: UserConfig,
    #[serde(default)]
    pub site: SiteConfig,
    #[serde(default)]
    pub federation: FederationConfig,
    #[serde(default)]
    pub timeline: TimelineConfig,
    #[serde(default, skip_serializing_if = "MetricsConfig::is_off")]
    pub metrics: MetricsConfig,
}

/// `[timeline]`: the owner's home timeline (src/timeline).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineConfig {
    /// Days a timeline entry is kept; posts the owner liked, boosted, bookmarked or answered
    /// stay regardless.
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        TimelineConfig {
            keep_days: default_keep_days(),
        }
    }
}

fn default_keep_days() -> u32 {
    60
}

/// `[metrics]`: off unless `listen` is set (README, Deployment: Metrics).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `hortus serve` serves Prometheus metrics at `/metrics`, e.g. `127.0.0.1:9464`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl MetricsConfig {
    pub fn is_off(&self) -> bool {
        self.listen.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// preferredUsername: the `alice` in `alice@example.net`.
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    /// Markdown.
    #[serde(default)]
    pub bio: String,
    /// Path under the site directory (e.g. `media/avatar.png`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<ProfileField>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_known_as: Vec<String>,
    /// Shown in search and directories on servers that honour it.
    #[serde(default = "yes")]
    pub discoverable: bool,
    #[serde(default = "yes")]
    pub indexable: bool,
    /// When the account was created (RFC 3339); set by `hortus init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileField {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    #[serde(default)]
    pub title: String,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default = "default_per_page")]
    pub posts_per_page: u32,
    /// Markdown; a sensible default is used when empty.
    #[serde(default)]
    pub privacy_policy: String,
    /// Markdown; a sensible default is used when empty.
    #[serde(default)]
    pub children_policy: String,
    /// Who may quote the owner's posts (FEP-044f `canQuote`); a post's `quotes` overrides it.
    #[serde(default)]
    pub quotes: QuotePolicy,
    /// Quote requests wait in `hortus inbox` for `hortus quotes approve|reject` instead of
    /// being answered by the policy at once (published as `manualApproval`).
    #[serde(default)]
    pub quotes_need_approval: bool,
    /// Rendered public pages `hortus serve` keeps in memory, in MiB (`web::cache`); 0 renders
    /// every request.
    #[serde(default = "default_page_cache_mb")]
    pub page_cache_mb: u32,
}

/// 4 MiB holds the pages a site is read by (home pages, recent posts, the actor, feeds) several
/// times over, compressed copies included; 16 was most of `serve`'s memory (issue 15).
fn default_page_cache_mb() -> u32 {
    4
}

/// Who may quote a post (PROTOCOL.md §9). Mastodon 4.5 offers the same three choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum QuotePolicy {
    /// Anyone on a server we federate with (the allowlist already narrows "anyone").
    #[default]
    Anyone,
    /// The owner's followers only.
    Followers,
    /// Nobody but the owner.
    Nobody,
}

impl QuotePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotePolicy::Anyone => "anyone",
            QuotePolicy::Followers => "followers",
            QuotePolicy::Nobody => "nobody",
        }
    }
    pub fn parse(s: &str) -> Option<QuotePolicy> {
        match s {
            "anyone" => Some(QuotePolicy::Anyone),
            "followers" => Some(QuotePolicy::Followers),
            "nobody" => Some(QuotePolicy::Nobody),
            _ => None,
        }
    }
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            title: String::new(),
            language: default_language(),
            posts_per_page: default_per_page(),
            privacy_policy: String::new(),
            children_policy: String::new(),
            quotes: QuotePolicy::default(),
            quotes_need_approval: false,
            page_cache_mb: default_page_cache_mb(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FederationMode {
    /// Federate only with servers on the allow list (the default: an empty list is a closed gate).
    #[default]
    Allowlist,
    /// Federate with everyone except blocked servers.
    Blocklist,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    #[serde(default)]
    pub mode: FederationMode,
    /// Require a valid signature from an allowed server on GETs of ActivityPub JSON.
    #[serde(default)]
    pub signed_fetch: bool,
    #[serde(default)]
    pub manually_approves_followers: bool,
    /// Followers and following give their counts only (PROTOCOL.md §6: items MAY be hidden).
    #[serde(default)]
    pub hide_social_graph: bool,
    /// `hortus block add ACCOUNT` also sends `Block` to the account's server (and unblock its
    /// Undo). Off by default: a block stays private, as the owner's own business.
    #[serde(default)]
    pub send_blocks: bool,
    /// The client API's `/api/v1/instance/peers` lists the allowed servers; off by default, since
    /// who the garden talks to is private.
    #[serde(default)]
    pub publish_peers: bool,
    /// Tests only: let Hortus connect to loopback and private addresses.
    #[serde(default)]
    pub allow_private_addresses: bool,
    /// Tests and local development only: talk to peers over plain http://.
    #[serde(default)]
    pub allow_http: bool,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_language() -> String {
    "en".into()
}
fn default_per_page() -> u32 {
    20
}
fn yes() -> bool {
    true
}

/// Line and column (1-based) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // The offset comes from the TOML parser: never trust it to fall on a character boundary.
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// What to do about a TOML error, by the kind of mistake serde and toml report.
fn parse_fix(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "remove this key or correct its spelling (the message lists the keys this table takes; the README's hortus.toml section explains each)"
    } else if message.starts_with("missing field") {
        "add the missing key to this table (`hortus init` writes a complete hortus.toml to compare with)"
    } else if message.starts_with("unknown variant") {
        "use one of the values the message lists, in \"quotes\""
    } else if message.starts_with("invalid") {
        "give the value the type the message expects: text in \"quotes\", numbers bare, true/false, lists in [brackets]"
    } else {
        "fix the TOML syntax here: text in \"quotes\", one `key = value` per line, tables as [name]"
    }
}

impl Config {
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|reason| ConfigError::Read {
            path: path.clone(),
            reason,
        })?;
        Config::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            let message = e.message().trim().to_string();
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                fix: parse_fix(&message),
                message,
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String, fix: &str| ConfigError::Invalid {
            path: path.to_owned(),
            message,
            fix: fix.to_string(),
        };
        match self.base_url.scheme() {
            "https" | "http" => {}
            other => {
                return Err(invalid(
                    format!("base_url uses the scheme {other:?}"),
                    "use https://your.domain (or http://127.0.0.x:PORT for tests)",
                ));
            }
        }
        if self.base_url.host_str().is_none() {
            return Err(invalid(
                "base_url has no host".into(),
                "use https://your.domain",
            ));
        }
        if self.base_url.path() != "/" || self.base_url.query().is_some() {
            return Err(invalid(
                format!("base_url {} has a path or query", self.base_url),
                "Hortus serves a whole origin: use https://your.domain with nothing after it",
            ));
        }
        if !valid_username(&self.user.name) {
            return Err(invalid(
                format!("user.name {:?} is not a valid username", self.user.name),
                "use letters, digits and underscores only, e.g. name = \"alice\"",
            ));
        }
        if self.domain.is_empty() || self.domain.contains(['/', '@', ' ']) {
            return Err(invalid(
                format!("domain {:?} is not a host name", self.domain),
                "use the bare host, e.g. domain = \"example.net\"",
            ));
        }
        if self.site.posts_per_page == 0 || self.site.posts_per_page > 200 {
            return Err(invalid(
                "site.posts_per_page must be between 1 and 200".into(),
                "set site.posts_per_page = 20",
            ));
        }
        if self.timeline.keep_days == 0 || self.timeline.keep_days > 36_500 {
            return Err(invalid(
                "timeline.keep_days must be between 1 and 36500".into(),
                "set keep_days = 60 under [timeline]",
            ));
        }
        Ok(())
    }

    /// `alice@example.net`
    pub fn handle(&self) -> String {
        format!("{}@{}", self.user.name, self.domain)
    }

    pub fn display_name(&self) -> &str {
        if self.user.display_name.is_empty() {
            &self.user.name
        } else {
            &self.user.display_name
        }
    }

    pub fn site_title(&self) -> &str {
        if self.site.title.is_empty() {
            self.display_name()
        } else {
            &self.site.title
        }
    }
}

pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
domain = "example.net"
base_url = "https://example.net"
[user]
name = "alice"
"#;

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let c = Config::parse(GOOD, Path::new("hortus.toml")).unwrap();
        assert_eq!(c.federation.mode, FederationMode::Allowlist);
        assert!(!c.federation.allow_private_addresses);
        assert_eq!(c.handle(), "alice@example.net");
        assert_eq!(c.timeline.keep_days, 60);
    }

    #[test]
    fn who_may_quote_defaults_to_anyone_and_a_bad_value_names_its_line() {
        let c = Config::parse(GOOD, Path::new("hortus.toml")).unwrap();
        assert_eq!(c.site.quotes, QuotePolicy::Anyone);
        assert!(!c.site.quotes_need_approval);
        let text = format!("{GOOD}[site]\nquotes = \"amis\"\n");
        let err = Config::parse(&text, Path::new("/s/hortus.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/s/hortus.toml:7:"), "{text}");
        assert!(text.contains("amis") && text.contains("anyone"), "{text}");
    }

    #[test]
    fn timeline_keep_days_is_read_and_checked() {
        let c = Config::parse(
            &format!("{GOOD}\n[timeline]\nkeep_days = 7\n"),
            Path::new("hortus.toml"),
        )
        .unwrap();
        assert_eq!(c.timeline.keep_days, 7);
        let err = Config::parse(
            &format!("{GOOD}\n[timeline]\nkeep_days = 0\n"),
            Path::new("hortus.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("keep_days = 60"), "{err}");
        assert!(
            Config::parse(
                &format!("{GOOD}\n[timeline]\nkeep = 7\n"),
                Path::new("hortus.toml")
            )
            .is_err(),
            "unknown key"
        );
    }

    #[test]
    fn parse_error_names_file_and_line() {
        let bad = GOOD.replace("name = \"alice\"", "name = alice");
        let err = Config::parse(&bad, Path::new("/site/hortus.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/site/hortus.toml:5:"), "{text}");
    }

    #[test]
    fn unknown_key_is_refused_with_its_line() {
        let bad = format!("{GOOD}colour = \"red\"\n");
        let err = Config::parse(&bad, Path::new("hortus.toml")).unwrap_err();
        assert!(err.to_string().contains("hortus.toml:6:"), "{err}");
    }

    #[test]
    fn base_url_with_path_is_refused_with_a_fix() {
        let bad = GOOD.replace("https://example.net", "https://example.net/blog");
        let err = Config::parse(&bad, Path::new("hortus.toml")).unwrap_err();
        assert!(err.to_string().contains("fix:"), "{err}");
    }
}
