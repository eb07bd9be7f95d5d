//! What templates see: posts, profile and page chrome turned into plain strings once.

use askama::Template;
use time::OffsetDateTime;

use crate::activitypub::{field_value_html, media_url};
use crate::config::Config;
use crate::posts::markdown::render_plain;
use crate::posts::{Post, Visibility};
use crate::times::rfc3339;
use crate::urls::Urls;

/// Links and names every page shows (computed once at start-up).
#[derive(Clone)]
pub struct Layout {
    pub lang: String,
    pub site_title: String,
    pub stylesheet: String,
    pub feed_url: String,
    pub home_url: String,
    pub privacy_url: String,
    pub children_url: String,
    pub handle: String,
    pub author_url: String,
    pub author_name: String,
    pub actor_url: String,
}

impl Layout {
    pub fn new(config: &Config, urls: &Urls) -> Layout {
        Layout {
            lang: config.site.language.clone(),
            site_title: config.site_title().to_string(),
            // The version busts caches when a new release changes the stylesheet.
            stylesheet: format!("{}?v={}", urls.stylesheet(), env!("CARGO_PKG_VERSION")),
            feed_url: urls.feed(),
            home_url: urls.home(),
            privacy_url: urls.privacy(),
            children_url: urls.children(),
            handle: config.handle(),
            author_url: urls.home(),
            author_name: config.display_name().to_string(),
            actor_url: urls.actor(),
        }
    }
}

#[derive(Clone)]
pub struct ProfileView {
    pub name: String,
    pub bio_html: String,
    pub avatar_url: Option<String>,
    pub header_url: Option<String>,
    pub fields: Vec<(String, String)>,
}

impl ProfileView {
    pub fn new(config: &Config, urls: &Urls) -> ProfileView {
        ProfileView {
            name: config.display_name().to_string(),
            bio_html: render_plain(&config.user.bio),
            avatar_url: config.user.avatar.as_deref().map(|p| media_url(urls, p)),
            header_url: config.user.header.as_deref().map(|p| media_url(urls, p)),
            fields: config
                .user
                .fields
                .iter()
                .map(|f| (f.name.clone(), field_value_html(&f.value)))
                .collect(),
        }
    }
}

pub struct MediaView {
    pub url: String,
    pub alt: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

pub struct PostView {
    pub url: String,
    pub object_url: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub content_html: String,
    pub published_iso: String,
    pub published_human: String,
    pub updated_iso: Option<String>,
    pub updated_human: String,
    pub unlisted: bool,
    pub language: Option<String>,
    pub in_reply_to: Option<String>,
    /// The post it quotes (an http(s) URL, checked when the file was read).
    pub quote: Option<String>,
    /// FEP-044f: "pending" until the quoted author consents, "refused" after a Reject or
    /// revocation (then a plain `RE:` link), "" when granted or never asked.
    pub quote_state: &'static str,
    /// The owner's reply, where its target's author must approve it (GoToSocial):
    /// "pending", "approved", "refused", or "".
    pub reply_state: &'static str,
    pub tags: Vec<(String, String)>,
    pub media: Vec<MediaView>,
}

fn human(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[day padding:none] [month repr:short] [year]"
    ))
    .unwrap_or_default()
}

/// The first words of a post's text, for titles and descriptions.
pub fn excerpt(html: &str, max_chars: usize) -> String {
    crate::text::text_of(html, max_chars)
}

/// [`excerpt`] at two lengths from one parse of the post's HTML.
pub fn excerpts(html: &str, long: usize, short: usize) -> (String, String) {
    crate::text::text_of_two(html, long, short)
}

impl PostView {
    /// The feed entry's title: the post's, or the start of its text. Computed only by the feed
    /// (it parses the post's HTML; the home page has no use for it).
    pub fn feed_title(&self) -> String {
        self.title
            .clone()
            .unwrap_or_else(|| excerpt(&self.content_html, 80))
    }

    pub fn new(post: &Post, urls: &Urls) -> PostView {
        PostView {
            url: urls.post_page(&post.slug),
            object_url: urls.post_object(&post.slug),
            title: post.title.clone(),
            summary: post.summary.clone(),
            content_html: post.content_html.clone(),
            published_iso: rfc3339(post.published),
            published_human: human(post.published),
            updated_iso: post.updated.map(rfc3339),
            updated_human: post.updated.map(human).unwrap_or_default(),
            unlisted: post.visibility == Visibility::Unlisted,
            language: post.language.clone(),
            in_reply_to: post.in_reply_to.clone(),
            quote: post.quote.clone(),
            quote_state: match post.quote_consent {
                Some(crate::posts::QuoteConsent::Pending) => "pending",
                Some(crate::posts::QuoteConsent::Refused) => "refused",
                _ => "",
            },
            reply_state: match post.reply_approval {
                Some(crate::posts::ReplyApproval::Pending) => "pending",
                Some(crate::posts::ReplyApproval::Approved(_)) => "approved",
                Some(crate::posts::ReplyApproval::Refused) => "refused",
                None => "",
            },
            tags: post.tags.iter().map(|t| (t.clone(), urls.tag(t))).collect(),
            media: post
                .attachments
                .iter()
                .map(|a| MediaView {
                    url: media_url(urls, &a.path),
                    alt: a.alt.clone(),
                    width: a.width,
                    height: a.height,
                })
                .collect(),
        }
    }
}

pub struct Pager {
    pub page: u32,
    pub last: u32,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    pub fn new(page: u32, last: u32, url: impl Fn(u32) -> String) -> Pager {
        Pager {
            page,
            last,
            prev: (page > 1).then(|| url(page - 1)),
            next: (page < last).then(|| url(page + 1)),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub l: &'a Layout,
    pub profile: &'a ProfileView,
    pub posts: Vec<PostView>,
    pub pager: Pager,
    /// The owner's latest boosts (page 1 only), as Mastodon shows reblogs on a profile.
    pub boosts: Vec<crate::timeline::shown::BoostShown>,
}

#[derive(Template)]
#[template(path = "post.html")]
pub struct PostPage<'a> {
    pub l: &'a Layout,
    pub post: PostView,
    pub page_title: String,
    pub description: String,
    /// Replies and counts under the post (templates/conversation.html).
    pub conversation: crate::conversation::view::ConversationView,
}

#[derive(Template)]
#[template(path = "tag.html")]
pub struct TagPage<'a> {
    pub l: &'a Layout,
    pub tag: String,
    pub posts: Vec<PostView>,
    pub pager: Pager,
}

#[derive(Template)]
#[template(path = "page.html")]
pub struct TextPage<'a> {
    pub l: &'a Layout,
    pub title: &'a str,
    pub body_html: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub l: &'a Layout,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "feed.xml")]
pub struct Feed<'a> {
    pub l: &'a Layout,
    pub updated: String,
    pub posts: Vec<PostView>,
}

pub const DEFAULT_PRIVACY: &str = "\
This is the personal website of one person, published with Hortus.

**What is public.** Every post shown on these pages, the profile, and the ActivityPub documents
that describe them can be read by anyone, and copies are kept by the servers of people who follow
this account.

**What this site stores about you.** If you follow this account from a fediverse server, this site
keeps your account's public address, name, inbox address and public key, so it can send you posts
and check that messages claiming to come from you really do. It keeps the date you followed. If
your server contacts this site without being on its list of allowed servers, the server name, the
account and the kind of request are recorded so the owner can decide whether to allow it. Nothing
else is collected: no cookies, no analytics, no tracking scripts, no advertising.

**Your choices.** Unfollow at any time and your follower record is deleted. To ask for anything
else to be removed, contact the owner through the fediverse.";

pub const DEFAULT_CHILDREN: &str = "\
This site is the personal website of one adult. It offers no accounts, sign-ups or messaging to
anyone, and it is not directed at children under 13.

It does not knowingly collect any personal information from children under 13. The only data it
keeps about other people is the public fediverse account information described in the privacy
policy. If you believe a child's information has been stored here, contact the owner through the
fediverse and it will be deleted promptly.";

#[cfg(test)]
mod tests {
    #[test]
    fn excerpts_decode_entities_once_and_cut_at_words() {
        assert_eq!(
            super::excerpt("<p>Tom &amp;lt;3 <b>Jerry</b></p><p>again</p>", 100),
            "Tom &lt;3 Jerry again"
        );
        assert_eq!(super::excerpt("<p>one two three</p>", 8), "one two…");
    }
}
