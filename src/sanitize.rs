//! Remote HTML, made safe to store and show. The allowlist is Mastodon's (PROTOCOL.md §5,
//! Mastodon's `Sanitize::Config::MASTODON_STRICT`): a few text elements, links with a forced
//! `rel`, and only microformats and Mastodon's own classes. Images and every other embed are
//! dropped: remote media is shown as links, never fetched by the reader's browser.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};

/// Elements kept. Headings are kept only by the first pass, which turns them into
/// `<p><strong>` as Mastodon does.
const TAGS: [&str; 16] = [
    "p",
    "br",
    "span",
    "a",
    "del",
    "pre",
    "code",
    "em",
    "strong",
    "b",
    "i",
    "u",
    "ul",
    "ol",
    "li",
    "blockquote",
];
const HEADINGS: [&str; 6] = ["h1", "h2", "h3", "h4", "h5", "h6"];

/// Classes Mastodon keeps: microformats prefixes, and its own link helpers.
fn allowed_class(class: &str) -> bool {
    ["h-", "p-", "u-", "dt-", "e-"]
        .iter()
        .any(|p| class.starts_with(p) && class.len() > p.len())
        || matches!(class, "mention" | "hashtag" | "ellipsis" | "invisible")
}

fn filter_classes(value: &str) -> Option<Cow<'_, str>> {
    let kept: Vec<&str> = value
        .split_ascii_whitespace()
        .filter(|c| {
            c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && allowed_class(c)
        })
        .collect();
    (!kept.is_empty()).then(|| Cow::Owned(kept.join(" ")))
}

fn builder(with_headings: bool) -> Builder<'static> {
    let mut tags: HashSet<&'static str> = TAGS.into_iter().collect();
    if with_headings {
        tags.extend(HEADINGS);
    }
    let attributes: HashMap<&'static str, HashSet<&'static str>> = HashMap::from([
        ("a", HashSet::from(["href", "class"])),
        ("span", HashSet::from(["class"])),
        ("ol", HashSet::from(["start", "reversed"])),
    ]);
    let mut b = Builder::empty();
    b.tags(tags)
        .tag_attributes(attributes)
        .generic_attributes(HashSet::new())
        .tag_attribute_values(HashMap::new())
        .set_tag_attribute_values(HashMap::new())
        .url_schemes(HashSet::from(["http", "https"]))
        // A relative link in someone else's post would point into this site.
        .url_relative(UrlRelative::Deny)
        .link_rel(Some("nofollow noopener noreferrer ugc"))
        .strip_comments(true)
        .attribute_filter(|_element, attribute, value| match attribute {
            "class" => filter_classes(value),
            _ => Some(Cow::Borrowed(value)),
        });
    b
}

static WITH_HEADINGS: LazyLock<Builder<'static>> = LazyLock::new(|| builder(true));
static FINAL: LazyLock<Builder<'static>> = LazyLock::new(|| builder(false));

/// Remote HTML → HTML safe to put in a page as is.
///
/// Two passes: the first normalises the markup (so headings appear only as bare `<hN>` tags,
/// their attributes gone) and the headings become `<p><strong>`; the second is the allowlist
/// proper, so whatever the textual rewrite did, only allowlisted markup comes out.
pub fn remote_html(html: &str) -> String {
    let mut normal = WITH_HEADINGS.clean(html).to_string();
    for h in HEADINGS {
        normal = normal
            .replace(&format!("<{h}>"), "<p><strong>")
            .replace(&format!("</{h}>"), "</strong></p>");
    }
    FINAL.clean(&normal).to_string()
}

/// A URL from a remote document that may become an `href`: absolute http(s) only, so no
/// `javascript:` or `data:` link ever reaches a page.
pub fn http_url(value: &str) -> Option<String> {
    if value.len() > 2048 {
        return None;
    }
    let url = url::Url::parse(value.trim()).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{plain_text, text_of};

    #[test]
    fn keeps_mastodon_markup() {
        let html = r#"<p>Hi <span class="h-card"><a href="https://m.example/@a" class="u-url mention">@<span>a</span></a></span> <a href="https://m.example/tags/x" class="mention hashtag" rel="tag">#<span>x</span></a></p><p><a href="https://example.org/long"><span class="invisible">https://</span><span class="ellipsis">example.org/lo</span><span class="invisible">ng</span></a></p>"#;
        let out = remote_html(html);
        assert!(out.contains(r#"class="h-card""#), "{out}");
        assert!(out.contains(r#"class="u-url mention""#), "{out}");
        assert!(out.contains(r#"class="invisible""#), "{out}");
        assert!(out.contains(r#"class="ellipsis""#), "{out}");
        assert!(
            out.contains(r#"rel="nofollow noopener noreferrer ugc""#),
            "{out}"
        );
        assert!(!out.contains("rel=\"tag\""), "{out}");
    }

    #[test]
    fn headings_become_bold_paragraphs() {
        assert_eq!(
            remote_html(r#"<h1 id="x" onclick="evil()">Title</h1><h3>Sub</h3>"#),
            "<p><strong>Title</strong></p><p><strong>Sub</strong></p>"
        );
    }

    #[test]
    fn drops_scripts_images_styles_and_foreign_classes() {
        let out = remote_html(
            r#"<script>alert(1)</script><img src="https://x.example/a.png" onerror="alert(1)"><p style="color:red" class="hidden custom p-name" onmouseover="x()">t</p><a href="javascript:alert(1)">j</a><a href="/relative">r</a><a href="data:text/html,x">d</a><iframe src="https://x.example"></iframe><svg><a href="https://x.example">s</a></svg>"#,
        );
        for bad in [
            "script",
            "img",
            "style",
            "hidden",
            "custom",
            "onmouseover",
            "onerror",
            "javascript",
            "/relative",
            "data:",
            "iframe",
            "svg",
        ] {
            assert!(!out.contains(bad), "{bad} survived: {out}");
        }
        assert!(out.contains("<p>t</p>"), "{out}");
    }

    #[test]
    fn urls_and_text() {
        assert_eq!(
            http_url("https://a.example/x").as_deref(),
            Some("https://a.example/x")
        );
        assert_eq!(http_url("javascript:alert(1)"), None);
        assert_eq!(http_url("/relative"), None);
        assert_eq!(http_url("data:text/html,<b>"), None);
        assert_eq!(plain_text("a\u{0}b\u{202e}c\u{2067}d\n", 10), "abcd");
        assert_eq!(plain_text("שלום world", 20), "שלום world", "RTL text stays");
        assert_eq!(
            text_of("<p>Hello &amp; <b>bye</b></p><p>x</p>", 100),
            "Hello & bye x"
        );
    }
}
