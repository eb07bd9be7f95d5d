//! Markdown → sanitised HTML, with `#hashtag` and `@user@host` turned into links and collected
//! as ActivityPub tags.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, TextMergeStream};

use crate::urls::Urls;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mention {
    /// `@bob@example.org`
    pub name: String,
    /// Where the link on the page points (the usual profile URL, until resolved).
    pub href: String,
    /// The account's actor id, when Hortus knows the account; only then is it addressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The account is a `Group` (a Lemmy, Mbin or PieFed community): the post is addressed to
    /// it as FEP-1b12 asks, so that it becomes a post there (`activitypub::addressing`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub group: bool,
}

#[derive(Debug, Default)]
pub struct Rendered {
    pub html: String,
    /// Hashtags as written (first spelling wins), without `#`.
    pub tags: Vec<String>,
    pub mentions: Vec<Mention>,
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_SMART_PUNCTUATION
}

/// What may survive from a post's raw HTML (and from our own Markdown output).
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.add_tags(["input", "section", "figure", "figcaption"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("div", ["id"])
        .add_tag_attributes("sup", ["id"])
        .add_tag_attributes("li", ["id"])
        .add_allowed_classes("a", ["mention", "hashtag", "u-url", "footnote-backref"])
        .add_allowed_classes("span", ["h-card"])
        .add_allowed_classes("div", ["footnote-definition"])
        .add_allowed_classes("sup", ["footnote-reference", "footnote-definition-label"])
        .link_rel(Some("noopener"))
        .url_schemes(HashSet::from(["http", "https", "mailto"]));
    b
});

/// Renders a post body. Raw HTML in the Markdown is sanitised along with everything else.
pub fn render(markdown: &str, urls: &Urls) -> Rendered {
    let mut tags: Vec<String> = Vec::new();
    let mut mentions: Vec<Mention> = Vec::new();
    let mut in_code = 0usize;
    let mut in_link = 0usize;

    let parser = TextMergeStream::new(Parser::new_ext(markdown, options()));
    let mut events: Vec<Event> = Vec::new();
    for event in parser {
        match &event {
            Event::Start(Tag::CodeBlock(_)) => in_code += 1,
            Event::End(TagEnd::CodeBlock) => in_code = in_code.saturating_sub(1),
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => in_link += 1,
            Event::End(TagEnd::Link | TagEnd::Image) => in_link = in_link.saturating_sub(1),
            _ => {}
        }
        match event {
            Event::Text(text) if in_code == 0 && in_link == 0 => {
                linkify(&text, urls, &mut tags, &mut mentions, &mut events)
            }
            other => events.push(other),
        }
    }
    let mut raw = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut raw, events.into_iter());
    Rendered {
        html: SANITIZER.clean(&raw).to_string(),
        tags,
        mentions,
    }
}

/// Sanitises a Markdown snippet from the config (bio, policies) the same way as posts.
pub fn render_plain(markdown: &str) -> String {
    let mut raw = String::new();
    pulldown_cmark::html::push_html(&mut raw, Parser::new_ext(markdown, options()));
    SANITIZER.clean(&raw).to_string()
}

enum Token<'a> {
    Text(&'a str),
    Hashtag(&'a str),
    Mention { user: &'a str, host: &'a str },
}

fn linkify<'e>(
    text: &str,
    urls: &Urls,
    tags: &mut Vec<String>,
    mentions: &mut Vec<Mention>,
    out: &mut Vec<Event<'e>>,
) {
    for token in tokenize(text) {
        match token {
            Token::Text(t) => out.push(Event::Text(CowStr::from(t.to_string()))),
            Token::Hashtag(tag) => {
                if !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                    tags.push(tag.to_string());
                }
                out.push(Event::Html(CowStr::from(format!(
                    "<a href=\"{}\" class=\"hashtag\" rel=\"tag\">#<span>{}</span></a>",
                    escape(&urls.tag(tag)),
                    escape(tag)
                ))));
            }
            Token::Mention { user, host } => {
                let name = format!("@{user}@{host}");
                // Until the account is resolved over WebFinger, link to the usual profile URL.
                let href = format!("https://{}/@{user}", host.to_ascii_lowercase());
                if !mentions.iter().any(|m| m.name.eq_ignore_ascii_case(&name)) {
                    mentions.push(Mention {
                        name: name.clone(),
                        href: href.clone(),
                        actor: None,
                        group: false,
                    });
                }
                out.push(Event::Html(CowStr::from(format!(
                    "<span class=\"h-card\"><a href=\"{}\" class=\"u-url mention\">@<span>{}</span></a></span>",
                    escape(&href),
                    escape(user)
                ))));
            }
        }
    }
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')
}

/// Splits text into plain runs, hashtags and mentions. A hashtag or mention only starts after a
/// character that cannot be part of a word or URL (so `a#b`, `x@y.z` and `&#39;` stay text).
fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut plain_start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let c = bytes[i];
        let prev_ok = text[..i].chars().next_back().is_none_or(|p| {
            !(p.is_alphanumeric() || matches!(p, '_' | '&' | '/' | '.' | '@' | '#'))
        });
        if prev_ok && c == b'#' {
            let rest = &text[i + 1..];
            let len: usize = rest
                .chars()
                .take_while(|&c| is_tag_char(c))
                .map(char::len_utf8)
                .sum();
            let tag = &rest[..len];
            if len > 0 && len <= 100 && tag.chars().any(|c| !c.is_ascii_digit()) {
                if plain_start < i {
                    tokens.push(Token::Text(&text[plain_start..i]));
                }
                tokens.push(Token::Hashtag(tag));
                i += 1 + len;
                plain_start = i;
                continue;
            }
        }
        if prev_ok
            && c == b'@'
            && let Some((user, host, len)) = mention_at(&text[i + 1..])
        {
            if plain_start < i {
                tokens.push(Token::Text(&text[plain_start..i]));
            }
            tokens.push(Token::Mention { user, host });
            i += 1 + len;
            plain_start = i;
            continue;
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    if plain_start < text.len() {
        tokens.push(Token::Text(&text[plain_start..]));
    }
    tokens
}

/// `user@host` at the start of `s` → (user, host, bytes used).
fn mention_at(s: &str) -> Option<(&str, &str, usize)> {
    let user_len = s.find(|c: char| !is_user_char(c)).unwrap_or(s.len());
    let user = s[..user_len].trim_end_matches(['.', '-']);
    if user.is_empty() || user.len() != user_len || !s[user_len..].starts_with('@') {
        return None;
    }
    let rest = &s[user_len + 1..];
    let host_len = rest.find(|c: char| !is_host_char(c)).unwrap_or(rest.len());
    // A sentence may end right after the host: "thanks @bob@example.org."
    let host = rest[..host_len].trim_end_matches(['.', '-', ':']);
    let valid_host = (host.contains('.') || host.contains(':'))
        && !host.starts_with(['.', '-', ':'])
        && host.split(':').next().is_some_and(|h| !h.is_empty());
    if !valid_host {
        return None;
    }
    Some((user, host, user_len + 1 + host.len()))
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Urls {
        Urls::new(&url::Url::parse("https://example.net").unwrap(), "alice")
    }

    #[test]
    fn hashtags_become_links_and_tags() {
        let r = render("Hello #Rust and #fediverse_2, not a#b or #123.", &urls());
        assert_eq!(r.tags, vec!["Rust", "fediverse_2"]);
        assert!(
            r.html.contains("href=\"https://example.net/tags/rust\""),
            "{}",
            r.html
        );
        assert!(r.html.contains("class=\"hashtag\""), "{}", r.html);
        assert!(r.html.contains("a#b"));
    }

    #[test]
    fn mentions_become_links_and_tags() {
        let r = render(
            "Thanks @bob@example.org. Mail me at me@example.net",
            &urls(),
        );
        assert_eq!(r.mentions.len(), 1);
        assert_eq!(r.mentions[0].name, "@bob@example.org");
        assert!(r.html.contains("class=\"u-url mention\""), "{}", r.html);
        assert!(r.html.contains("me@example.net"));
    }

    #[test]
    fn mentions_with_ports_for_tests() {
        let r = render("hi @carol@127.0.0.3:4000!", &urls());
        assert_eq!(r.mentions[0].name, "@carol@127.0.0.3:4000");
    }

    #[test]
    fn code_and_links_are_left_alone() {
        let r = render(
            "`#notatag` and [#nope](https://x.org) and\n\n```\n#no @a@b.c\n```",
            &urls(),
        );
        assert!(r.tags.is_empty());
        assert!(r.mentions.is_empty());
    }

    #[test]
    fn raw_html_is_sanitised() {
        let r = render(
            "<script>alert(1)</script><img src=x onerror=alert(1)><a href=\"javascript:alert(1)\">x</a>",
            &urls(),
        );
        assert!(!r.html.contains("<script"), "{}", r.html);
        assert!(!r.html.contains("onerror"), "{}", r.html);
        assert!(!r.html.contains("javascript:"), "{}", r.html);
    }

    #[test]
    fn extensions_are_on() {
        let r = render(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~ \"quoted\"\n\n- [x] done\n\nNote[^1].\n\n[^1]: A footnote.",
            &urls(),
        );
        assert!(r.html.contains("<table>"), "{}", r.html);
        assert!(r.html.contains("<del>gone</del>"), "{}", r.html);
        assert!(r.html.contains("\u{201c}quoted\u{201d}"), "{}", r.html);
        assert!(r.html.contains("type=\"checkbox\""), "{}", r.html);
        assert!(r.html.contains("footnote-definition"), "{}", r.html);
    }

    #[test]
    fn hashtag_text_is_escaped() {
        let r = render("<b>#tag</b> &amp; #ok", &urls());
        assert!(r.tags.contains(&"ok".to_string()));
    }
}
