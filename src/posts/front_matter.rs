//! Front matter: TOML between `+++` lines at the top of a post, as Zola and Hugo write it.
//! Errors carry the file's own line numbers so the owner can go straight to the mistake.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone: on pages, in feeds, Public in `to`.
    #[default]
    Public,
    /// On its permalink and in the ActivityPub outbox, but off the home page, tags and feed;
    /// Public in `cc`.
    Unlisted,
    /// Followers only: never on a public page, in the outbox or in a feed.
    Followers,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Followers => "followers",
        }
    }
    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "unlisted" => Some(Visibility::Unlisted),
            "followers" => Some(Visibility::Followers),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Path under the site directory, e.g. `media/cat.jpg`.
    pub src: String,
    /// Alt text: read aloud by screen readers, shown by Mastodon (kept to 1,500 characters).
    pub alt: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub title: Option<String>,
    pub date: Option<toml::Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub visibility: Visibility,
    /// Content warning.
    pub summary: Option<String>,
    pub language: Option<String>,
    pub slug: Option<String>,
    #[serde(default)]
    pub sensitive: bool,
    pub in_reply_to: Option<String>,
    /// The post this one quotes (its id or page URL).
    pub quote: Option<String>,
    /// Who may quote this post (`anyone | followers | nobody`); `[site] quotes` when absent.
    pub quotes: Option<crate::config::QuotePolicy>,
    #[serde(default)]
    pub images: Vec<Image>,
    #[serde(default)]
    pub draft: bool,
}

/// A located problem in one post file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontMatterError {
    pub line: usize,
    pub message: String,
    pub fix: String,
}

/// Splits a file into its front matter (parsed) and its Markdown body. The body's first line
/// number is returned so later errors can point into the file.
pub fn split(text: &str) -> Result<(FrontMatter, &str), FrontMatterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.starts_with("---") {
        return Err(FrontMatterError {
            line: 1,
            message: "YAML front matter (---) is not supported".into(),
            fix: "write the front matter as TOML between +++ lines, e.g.\n  +++\n  title = \"Hello\"\n  +++".into(),
        });
    }
    let Some(rest) = text.strip_prefix("+++") else {
        // No front matter at all: the whole file is the body.
        return Ok((FrontMatter::default(), text));
    };
    let rest = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
        .ok_or_else(|| FrontMatterError {
            line: 1,
            message: "the opening +++ must be alone on its line".into(),
            fix: "put a line break after +++".into(),
        })?;
    let end = find_closing(rest).ok_or_else(|| FrontMatterError {
        line: 1,
        message: "the front matter is opened with +++ but never closed".into(),
        fix: "add a line with +++ after the last front matter field".into(),
    })?;
    let toml_text = &rest[..end.0];
    let body = &rest[end.1..];
    let fm: FrontMatter = toml::from_str(toml_text).map_err(|e| {
        let (line, _) = e
            .span()
            .map_or((1, 1), |s| crate::config::line_col(toml_text, s.start));
        FrontMatterError {
            line: line + 1, // the +++ line comes first
            message: e.message().trim().to_string(),
            fix: "fields are: title, date, tags, visibility (public | unlisted | followers), \
                  summary, language, slug, sensitive, in_reply_to, quote, quotes (anyone | followers | nobody), images, draft"
                .into(),
        }
    })?;
    Ok((fm, body))
}

/// The front matter's TOML text and the body, unparsed, for a file that has front matter (the
/// client API rewrites a post's keys and keeps the rest, `api::post_file`).
pub fn raw_parts(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("+++")?;
    let rest = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))?;
    let end = find_closing(rest)?;
    Some((&rest[..end.0], &rest[end.1..]))
}

/// Byte range (start of the closing line, start of the body) of the closing `+++`.
fn find_closing(rest: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            return Some((offset, offset + line.len()));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_front_matter_and_body() {
        let (fm, body) =
            split("+++\ntitle = \"Hi\"\ntags = [\"a\"]\n+++\nHello *world*\n").unwrap();
        assert_eq!(fm.title.as_deref(), Some("Hi"));
        assert_eq!(fm.tags, vec!["a"]);
        assert_eq!(body, "Hello *world*\n");
    }

    #[test]
    fn no_front_matter_means_whole_body() {
        let (fm, body) = split("just text").unwrap();
        assert!(fm.title.is_none());
        assert_eq!(body, "just text");
    }

    #[test]
    fn error_points_at_the_line_in_the_file() {
        let err = split("+++\ntitle = \"Hi\"\nvisibility = \"secret\"\n+++\nbody").unwrap_err();
        assert_eq!(err.line, 3, "{err:?}");
        assert!(err.message.contains("secret"), "{err:?}");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = split("+++\ntitel = \"Hi\"\n+++\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("titel"), "{err:?}");
    }

    #[test]
    fn unclosed_and_yaml_are_explained() {
        assert!(
            split("+++\ntitle = \"x\"\n")
                .unwrap_err()
                .fix
                .contains("+++")
        );
        assert!(
            split("---\ntitle: x\n---\n")
                .unwrap_err()
                .fix
                .contains("TOML")
        );
    }
}
