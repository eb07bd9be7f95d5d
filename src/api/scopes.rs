//! OAuth scopes as Mastodon defines them (docs.joinmastodon.org/api/oauth-scopes): the
//! top-level `read`, `write`, `follow`, `push`, `profile`, the granular `read:statuses`… forms
//! and the admin ones. A token holds a set; a call asks for one scope and is allowed when the set
//! holds it or a scope above it (`read` covers `read:statuses`).

/// The granular scopes Mastodon 4 knows; a request for anything else is refused.
const GRANULAR: &[&str] = &[
    "read:accounts",
    "read:blocks",
    "read:bookmarks",
    "read:favourites",
    "read:filters",
    "read:follows",
    "read:lists",
    "read:mutes",
    "read:notifications",
    "read:search",
    "read:statuses",
    "write:accounts",
    "write:blocks",
    "write:bookmarks",
    "write:conversations",
    "write:favourites",
    "write:filters",
    "write:follows",
    "write:lists",
    "write:media",
    "write:mutes",
    "write:notifications",
    "write:reports",
    "write:statuses",
    "admin:read",
    "admin:write",
    "admin:read:domain_allows",
    "admin:read:domain_blocks",
    "admin:write:domain_allows",
    "admin:write:domain_blocks",
];

/// The granular scopes, for the RFC 8414 metadata.
pub fn granular() -> impl Iterator<Item = &'static str> {
    GRANULAR.iter().copied()
}

const TOP: &[&str] = &["read", "write", "follow", "push", "profile"];

/// The deprecated `follow` scope stands for these (Mastodon's `follow` alias).
const FOLLOW: &[&str] = &[
    "read:blocks",
    "read:follows",
    "read:mutes",
    "write:blocks",
    "write:follows",
    "write:mutes",
];

/// A set of scopes, in the order given, without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parses a space-separated list (`+` too, as some apps send it form-encoded twice);
    /// empty means `read`, as Mastodon does. An unknown scope is an error naming it.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut out: Vec<String> = Vec::new();
        for s in text.split([' ', '+']).filter(|s| !s.is_empty()) {
            if !(TOP.contains(&s) || GRANULAR.contains(&s)) {
                return Err(format!(
                    "unknown scope {:?}",
                    crate::text::plain_text(s, 60)
                ));
            }
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
        if out.is_empty() {
            out.push("read".into());
        }
        Ok(Scopes(out))
    }

    /// Scopes read back from the database (written by [`Scopes::parse`]'s output); anything
    /// unknown there grants nothing.
    pub fn stored(text: &str) -> Scopes {
        Scopes::parse(text).unwrap_or(Scopes(Vec::new()))
    }

    /// Does this set allow `wanted` (a top-level or granular scope)?
    pub fn allows(&self, wanted: &str) -> bool {
        self.0.iter().any(|have| {
            have == wanted
                || wanted
                    .strip_prefix(have.as_str())
                    .is_some_and(|rest| rest.starts_with(':'))
                || (have == "follow" && FOLLOW.contains(&wanted))
        })
    }

    /// Is every scope of `self` within `granted` (what an app registered)?
    pub fn within(&self, granted: &Scopes) -> bool {
        self.0.iter().all(|s| granted.allows(s))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// What the scopes let an app do, in words, for the consent page.
pub fn describe(scope: &str) -> &'static str {
    match scope.split(':').collect::<Vec<_>>().as_slice() {
        ["read"] => "read everything of your account",
        ["write"] => "post, edit and delete for you, and change your account",
        ["follow"] => "follow, block and mute accounts for you",
        ["push"] => "receive push notifications",
        ["profile"] => "read your profile only",
        ["read", _] => "read part of your account",
        ["write", "statuses"] => "post, edit and delete statuses",
        ["write", "media"] => "upload images",
        ["write", _] => "change part of your account",
        ["admin", ..] => "read or change which servers may talk to you",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_scopes_cover_their_granular_forms_and_nothing_else() {
        let read = Scopes::parse("read").unwrap();
        assert!(read.allows("read:statuses"));
        assert!(read.allows("read"));
        assert!(!read.allows("write:statuses"));
        assert!(!read.allows("write"));
        let granular = Scopes::parse("read:statuses write:media").unwrap();
        assert!(granular.allows("read:statuses"));
        assert!(!granular.allows("read:accounts"));
        assert!(!granular.allows("read"));
        assert!(granular.allows("write:media"));
        assert!(!granular.allows("write:statuses"));
        // `read:statuses` must not be taken for a prefix of `read:statusesX`.
        assert!(!granular.allows("read:statusesx"));
        let follow = Scopes::parse("follow").unwrap();
        assert!(follow.allows("write:follows"));
        assert!(!follow.allows("write:statuses"));
        let admin = Scopes::parse("admin:write").unwrap();
        assert!(admin.allows("admin:write:domain_blocks"));
        assert!(!admin.allows("admin:read:domain_blocks"));
    }

    #[test]
    fn unknown_scopes_are_refused_and_empty_means_read() {
        assert!(Scopes::parse("read sudo").is_err());
        assert!(Scopes::parse("read:everything").is_err());
        assert_eq!(Scopes::parse("").unwrap().to_string(), "read");
        assert_eq!(
            Scopes::parse("read+write read").unwrap().to_string(),
            "read write"
        );
        let app = Scopes::parse("read write").unwrap();
        assert!(Scopes::parse("read:statuses write").unwrap().within(&app));
        assert!(!Scopes::parse("follow").unwrap().within(&app));
    }
}
