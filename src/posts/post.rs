//! A post as stored and shown, and the small pure helpers its fields are built with (slugs,
//! content hashes).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Mention, Visibility};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    /// Path under the site directory, e.g. `media/cat.jpg`; served at `/media/cat.jpg`.
    pub path: String,
    pub media_type: String,
    pub alt: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The answer to the owner's QuoteRequest for a post that quotes (FEP-044f).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteConsent {
    /// Asked; Mastodon shows the quote as pending until the stamp comes.
    Pending,
    /// Granted: the `QuoteAuthorization` stamp's id.
    Authorized(String),
    /// Refused or revoked: the post keeps only a plain link with the `RE:` text.
    Refused,
}

impl QuoteConsent {
    /// From `own_quote_requests`: its state and stamp.
    pub fn from_row(state: &str, authorization: Option<String>) -> Option<QuoteConsent> {
        match (state, authorization) {
            ("pending", _) => Some(QuoteConsent::Pending),
            ("accepted", Some(stamp)) => Some(QuoteConsent::Authorized(stamp)),
            ("rejected" | "revoked", _) => Some(QuoteConsent::Refused),
            _ => None,
        }
    }
}

/// What the answered post's author said about the owner's reply (GoToSocial's interaction
/// policies: its `canReply` may ask for approval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyApproval {
    /// Sent; the author has not approved it yet.
    Pending,
    /// Approved: the approval's id, which the reply then carries as `approvedBy`.
    Approved(String),
    /// Refused by the author.
    Refused,
}

impl ReplyApproval {
    /// From `own_reply_approvals`: its state and approval.
    pub fn from_row(state: &str, approved_by: Option<String>) -> Option<ReplyApproval> {
        match (state, approved_by) {
            ("pending", _) => Some(ReplyApproval::Pending),
            ("approved", Some(by)) => Some(ReplyApproval::Approved(by)),
            ("rejected", _) => Some(ReplyApproval::Refused),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Post {
    pub id: i64,
    pub slug: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub content_html: String,
    pub visibility: Visibility,
    pub language: Option<String>,
    pub in_reply_to: Option<String>,
    /// The post this one quotes (front matter `quote`).
    pub quote: Option<String>,
    /// Who may quote this post (front matter `quotes`); `None`: the site's default.
    pub quotes: Option<crate::config::QuotePolicy>,
    /// What the quoted post's author said to the owner's QuoteRequest (FEP-044f); `None`
    /// before one was sent.
    pub quote_consent: Option<QuoteConsent>,
    /// Whether the author of what this post answers approved it, where they must; `None`: no
    /// approval asked or given.
    pub reply_approval: Option<ReplyApproval>,
    pub sensitive: bool,
    pub tags: Vec<String>,
    pub mentions: Vec<Mention>,
    pub attachments: Vec<Attachment>,
    pub published: OffsetDateTime,
    pub updated: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
}

impl Post {
    pub fn is_public_listed(&self) -> bool {
        self.deleted_at.is_none() && self.visibility == Visibility::Public
    }
    /// Public or unlisted: may be shown on its permalink and served as JSON to anyone.
    pub fn is_world_readable(&self) -> bool {
        self.deleted_at.is_none() && self.visibility != Visibility::Followers
    }
}

pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 80 {
            break;
        }
    }
    slug.trim_end_matches('-').to_string()
}

pub(crate) fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 120
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !slug.starts_with('-')
}

pub fn hex_sha256(data: &[u8]) -> String {
    openssl::sha::sha256(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
