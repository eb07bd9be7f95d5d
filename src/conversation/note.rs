//! Remote posts as Hortus reads them: the fields of a Note (or Article, Page, Question) that
//! matter for a conversation, taken from network JSON without trusting any of it. Pure: the
//! caller decides whether the object concerns the owner and stores it.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::activitypub::incoming::id_of;
use crate::sanitize;

/// Object types that are posts people write.
pub const POST_TYPES: [&str; 4] = ["Note", "Article", "Page", "Question"];
/// Media posts (PeerTube videos, Pixelfed-style images, podcasts): shown by link, never loaded.
pub const MEDIA_TYPES: [&str; 3] = ["Video", "Image", "Audio"];

/// What peers put in `to`/`cc` for "everyone" (PROTOCOL.md §4: all three mean the same).
pub fn is_public(address: &str) -> bool {
    matches!(
        address,
        "https://www.w3.org/ns/activitystreams#Public" | "as:Public" | "Public"
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Unlisted,
    Private,
}

impl Visibility {
    pub fn as_str(&self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    pub url: String,
    pub media_type: Option<String>,
    pub name: Option<String>,
}

/// A remote post, parsed.
#[derive(Debug, Clone)]
pub struct RemoteNote {
    pub id: String,
    pub object_type: String,
    pub attributed_to: Option<String>,
    pub in_reply_to: Option<String>,
    /// Every URL the object says it quotes, in every form peers use.
    pub quotes: Vec<String>,
    /// hrefs of its Mention tags.
    pub mentions: Vec<String>,
    /// Everyone in `to` and `cc`.
    pub addressed: Vec<String>,
    pub visibility: Visibility,
    pub url: Option<String>,
    pub summary: Option<String>,
    /// Sanitised.
    pub content_html: String,
    pub attachments: Vec<Attachment>,
    pub published: Option<OffsetDateTime>,
    pub updated: Option<OffsetDateTime>,
    /// A Question's options and votes.
    pub poll: Option<Poll>,
    /// Replies, likes and boosts, as the post's own server counts them (`totalItems`).
    pub counts: Counts,
}

/// A poll (`Question`): `oneOf` (one choice) or `anyOf` (several), each option a `Note` whose
/// `name` is the option and `replies.totalItems` its votes (Mastodon's form).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Poll {
    pub options: Vec<PollOption>,
    pub multiple: bool,
    /// `closed` (a time, or true) or an `endTime` in the past when received.
    pub closed: bool,
    pub ends: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PollOption {
    pub name: String,
    pub votes: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub replies: Option<i64>,
    pub likes: Option<i64>,
    pub boosts: Option<i64>,
}

/// `totalItems` of a collection that may be embedded (Mastodon embeds `replies`, `likes` and
/// `shares` with their counts); a bare id counts nothing. Negative or absurd values are dropped.
fn total_items(v: Option<&Value>) -> Option<i64> {
    v?.get("totalItems")?
        .as_i64()
        .filter(|n| (0..=1_000_000_000_000).contains(n))
}

fn poll_of(v: &Value) -> Option<Poll> {
    let (key, multiple) = if v.get("anyOf").is_some() {
        ("anyOf", true)
    } else {
        ("oneOf", false)
    };
    let options: Vec<PollOption> = items(v.get(key))
        .into_iter()
        .filter_map(|o| {
            let name = crate::text::plain_text(str_field(o, "name")?, 200);
            Some(PollOption {
                name,
                votes: total_items(o.get("replies")),
            })
        })
        .take(20)
        .collect();
    if options.is_empty() {
        return None;
    }
    let ends = str_field(v, "endTime").and_then(parse_time);
    let closed = match v.get("closed") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(_)) => true,
        _ => ends.is_some_and(|e| e < OffsetDateTime::now_utc()),
    };
    Some(Poll {
        options,
        multiple,
        closed,
        ends: ends.map(crate::times::rfc3339),
    })
}

/// The links of a media post (`url` entries that are not its HTML page): shown as links.
fn media_links(v: &Value) -> Vec<Attachment> {
    items(v.get("url"))
        .into_iter()
        .filter_map(|u| {
            let media_type = str_field(u, "mediaType");
            if media_type.is_none_or(|m| m == "text/html") {
                return None;
            }
            let url = sanitize::http_url(u.as_str().or_else(|| str_field(u, "href"))?)?;
            Some(Attachment {
                url,
                media_type: media_type.map(|m| crate::text::plain_text(m, 100)),
                name: None,
            })
        })
        .take(4)
        .collect()
}

/// A JSON value that may be one item or an array of them.
fn items(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn first_type(v: &Value) -> Option<&str> {
    match v.get("type")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.first().and_then(Value::as_str),
        _ => None,
    }
}

pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.to_offset(time::UtcOffset::UTC))
}

/// `url` may be a string, a Link, or an array of them (Threads): the first http(s) text/html.
fn page_url(v: &Value) -> Option<String> {
    items(v.get("url")).into_iter().find_map(|u| {
        let href = u.as_str().or_else(|| str_field(u, "href"))?;
        let media_type = str_field(u, "mediaType");
        if media_type.is_some_and(|m| m != "text/html") {
            return None;
        }
        sanitize::http_url(href)
    })
}

/// The media type FEP-e232 quote links carry (either ActivityPub media type).
fn is_activity_media_type(media_type: &str) -> bool {
    let m = media_type.to_ascii_lowercase();
    m.starts_with("application/activity+json")
        || (m.starts_with("application/ld+json") && m.contains("activitystreams"))
}

/// Quote targets: FEP-044f `quote`, Misskey `_misskey_quote`, `quoteUrl`, Fedibird `quoteUri`,
/// and FEP-e232 object links in `tag` (PROTOCOL.md §4).
pub fn quote_targets(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if let Some(u) = sanitize::http_url(s)
            && !out.contains(&u)
        {
            out.push(u);
        }
    };
    for key in ["quote", "_misskey_quote", "quoteUrl", "quoteUri", "quoteOf"] {
        for item in items(v.get(key)) {
            if let Some(id) = id_of(item) {
                push(id);
            }
        }
    }
    for tag in items(v.get("tag")) {
        if first_type(tag) == Some("Link")
            && str_field(tag, "mediaType").is_some_and(is_activity_media_type)
            && let Some(href) = str_field(tag, "href")
        {
            push(href);
        }
    }
    out
}

fn attachments(v: &Value) -> Vec<Attachment> {
    items(v.get("attachment"))
        .into_iter()
        .filter_map(|a| {
            // `url` is a string, a Link, or an array of Links.
            let url = items(a.get("url"))
                .into_iter()
                .find_map(|u| u.as_str().or_else(|| str_field(u, "href")))
                .or_else(|| str_field(a, "href"))?;
            let url = sanitize::http_url(url)?;
            Some(Attachment {
                url,
                media_type: str_field(a, "mediaType").map(|m| crate::text::plain_text(m, 100)),
                name: str_field(a, "name")
                    .map(|n| crate::text::plain_text(n, 1500))
                    .filter(|n| !n.is_empty()),
            })
        })
        .take(8)
        .collect()
}

/// The text of `content`, or of the first `contentMap` entry when there is no `content`.
fn content_of(v: &Value) -> String {
    if let Some(c) = str_field(v, "content") {
        return c.to_string();
    }
    v.get("contentMap")
        .and_then(Value::as_object)
        .and_then(|m| m.values().find_map(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

impl RemoteNote {
    /// Parses an object; `None` when it is not a post (no id, or another type).
    pub fn parse(v: &Value) -> Option<RemoteNote> {
        let id = str_field(v, "id")?;
        sanitize::http_url(id)?;
        let object_type = first_type(v)?;
        let media = MEDIA_TYPES.contains(&object_type);
        if !POST_TYPES.contains(&object_type) && !media {
            return None;
        }
        let attributed_to = items(v.get("attributedTo"))
            .into_iter()
            .find_map(|a| id_of(a).map(str::to_string));
        let addressed: Vec<String> = items(v.get("to"))
            .into_iter()
            .chain(items(v.get("cc")))
            .filter_map(|a| id_of(a).map(str::to_string))
            .collect();
        let in_to = items(v.get("to"))
            .into_iter()
            .any(|a| id_of(a).is_some_and(is_public));
        let in_cc = items(v.get("cc"))
            .into_iter()
            .any(|a| id_of(a).is_some_and(is_public));
        let visibility = if in_to {
            Visibility::Public
        } else if in_cc {
            Visibility::Unlisted
        } else {
            Visibility::Private
        };
        let mentions = items(v.get("tag"))
            .into_iter()
            .filter(|t| first_type(t) == Some("Mention"))
            .filter_map(|t| str_field(t, "href").map(str::to_string))
            .collect();
        let mut content_html = sanitize::remote_html(&content_of(v));
        // Mastodon shows an Article as its title and a link (PROTOCOL.md §5); show the title too.
        if object_type != "Note"
            && let Some(name) = str_field(v, "name").map(|n| crate::text::plain_text(n, 300))
            && !name.is_empty()
        {
            content_html = format!(
                "<p><strong>{}</strong></p>{content_html}",
                crate::posts::markdown::escape(&name)
            );
        }
        Some(RemoteNote {
            id: id.to_string(),
            object_type: object_type.to_string(),
            attributed_to,
            in_reply_to: items(v.get("inReplyTo"))
                .into_iter()
                .find_map(|r| id_of(r).map(str::to_string)),
            quotes: quote_targets(v),
            mentions,
            addressed,
            visibility,
            url: page_url(v),
            summary: str_field(v, "summary")
                .map(|s| crate::text::plain_text(&crate::text::text_of(s, 1000), 1000))
                .filter(|s| !s.is_empty()),
            content_html,
            attachments: {
                let mut a = attachments(v);
                if media {
                    a.extend(media_links(v));
                }
                a
            },
            poll: (object_type == "Question").then(|| poll_of(v)).flatten(),
            counts: Counts {
                replies: total_items(v.get("replies")),
                likes: total_items(v.get("likes")),
                boosts: total_items(v.get("shares")),
            },
            published: str_field(v, "published").and_then(parse_time),
            updated: str_field(v, "updated").and_then(parse_time),
        })
    }

    /// Does it name `actor` in a Mention tag or in its addressing?
    pub fn mentions_actor(&self, actor: &str) -> bool {
        self.mentions.iter().any(|m| m == actor) || self.addressed.iter().any(|a| a == actor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::times::rfc3339;
    use serde_json::json;

    #[test]
    fn parses_a_mastodon_reply() {
        let v = json!({
            "id": "https://m.example/users/bob/statuses/1",
            "type": "Note",
            "attributedTo": "https://m.example/users/bob",
            "inReplyTo": "https://me.example/posts/hi.json",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": ["https://me.example/users/alice"],
            "content": "<p>Hi <script>x</script></p>",
            "url": "https://m.example/@bob/1",
            "published": "2026-01-02T03:04:05.678Z",
            "tag": [{"type": "Mention", "href": "https://me.example/users/alice", "name": "@alice@me.example"}],
            "attachment": [{"type": "Document", "mediaType": "image/png", "url": "https://m.example/a.png", "name": "a cat"},
                           {"type": "Document", "url": "javascript:alert(1)"}],
        });
        let n = RemoteNote::parse(&v).unwrap();
        assert_eq!(
            n.in_reply_to.as_deref(),
            Some("https://me.example/posts/hi.json")
        );
        assert_eq!(n.visibility, Visibility::Public);
        assert!(n.mentions_actor("https://me.example/users/alice"));
        assert_eq!(n.content_html, "<p>Hi </p>");
        assert_eq!(n.attachments.len(), 1);
        assert_eq!(n.attachments[0].name.as_deref(), Some("a cat"));
        assert_eq!(
            rfc3339(n.published.unwrap()),
            "2026-01-02T03:04:05Z",
            "whole seconds"
        );
    }

    #[test]
    fn finds_quotes_in_every_form() {
        let target = "https://me.example/posts/hi.json";
        for v in [
            json!({"quote": target}),
            json!({"quote": {"id": target, "type": "Note"}}),
            json!({"_misskey_quote": target}),
            json!({"quoteUrl": target}),
            json!({"quoteUri": target}),
            json!({"tag": [{"type": "Link", "mediaType": "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"", "href": target, "name": "RE: x"}]}),
            json!({"tag": {"type": "Link", "mediaType": "application/activity+json", "href": target}}),
        ] {
            let mut obj = json!({"id": "https://m.example/n/1", "type": "Note", "content": "q"});
            for (k, val) in v.as_object().unwrap() {
                obj[k] = val.clone();
            }
            let n = RemoteNote::parse(&obj).unwrap();
            assert_eq!(n.quotes, vec![target.to_string()], "{obj}");
        }
        let plain_link = json!({"id": "https://m.example/n/1", "type": "Note",
            "tag": [{"type": "Link", "mediaType": "text/html", "href": target}]});
        assert!(RemoteNote::parse(&plain_link).unwrap().quotes.is_empty());
    }

    #[test]
    fn visibility_and_types() {
        let base = |to: Value, cc: Value| json!({"id": "https://m.example/n/1", "type": "Note", "to": to, "cc": cc});
        let vis = |v: Value| RemoteNote::parse(&v).unwrap().visibility;
        assert_eq!(vis(base(json!("as:Public"), json!([]))), Visibility::Public);
        assert_eq!(
            vis(base(
                json!(["https://m.example/followers"]),
                json!(["Public"])
            )),
            Visibility::Unlisted
        );
        assert_eq!(
            vis(base(json!(["https://me.example/users/alice"]), json!(null))),
            Visibility::Private
        );
        assert!(
            RemoteNote::parse(&json!({"id": "https://m.example/p", "type": "Person"})).is_none()
        );
        assert!(RemoteNote::parse(&json!({"id": "javascript:x", "type": "Note"})).is_none());
        let article = json!({"id": "https://m.example/a", "type": "Article", "name": "<b>T</b>", "content": "<p>c</p>"});
        assert_eq!(
            RemoteNote::parse(&article).unwrap().content_html,
            "<p><strong>&lt;b&gt;T&lt;/b&gt;</strong></p><p>c</p>"
        );
    }

    #[test]
    fn polls_media_posts_and_counts() {
        let q = json!({"id": "https://m.example/q/1", "type": "Question", "content": "<p>お茶？</p>",
            "endTime": "2000-01-01T00:00:00Z",
            "oneOf": [{"type": "Note", "name": "緑茶 🍵", "replies": {"type": "Collection", "totalItems": 3}},
                      {"type": "Note", "name": "\u{202e}شاي", "replies": {"totalItems": -4}},
                      {"type": "Note"}],
            "replies": {"totalItems": 2}, "likes": {"totalItems": 5}, "shares": "https://m.example/s"});
        let n = RemoteNote::parse(&q).unwrap();
        let poll = n.poll.unwrap();
        assert!(!poll.multiple && poll.closed, "endTime in the past");
        assert_eq!(poll.options.len(), 2, "an option without a name is dropped");
        assert_eq!(
            (poll.options[0].name.as_str(), poll.options[0].votes),
            ("緑茶 🍵", Some(3))
        );
        assert_eq!(
            (poll.options[1].name.as_str(), poll.options[1].votes),
            ("شاي", None),
            "no bidi override, no negative count"
        );
        assert_eq!(
            n.counts,
            Counts {
                replies: Some(2),
                likes: Some(5),
                boosts: None
            }
        );
        let video = json!({"id": "https://v.example/videos/1", "type": "Video", "name": "Garden",
            "url": [{"type": "Link", "mediaType": "text/html", "href": "https://v.example/w/1"},
                    {"type": "Link", "mediaType": "video/mp4", "href": "https://v.example/1.mp4"},
                    {"type": "Link", "mediaType": "video/mp4", "href": "javascript:alert(1)"}]});
        let v = RemoteNote::parse(&video).unwrap();
        assert_eq!(v.url.as_deref(), Some("https://v.example/w/1"));
        assert_eq!(v.attachments.len(), 1);
        assert_eq!(v.attachments[0].url, "https://v.example/1.mp4");
        assert!(v.poll.is_none());
    }
}
