//! `hortus::httpsig`, compiled alone for fuzzing (see Cargo.toml). The module only uses `super::`
//! paths inside itself, so it builds the same here as in the hortus crate.

#[path = "../../src/httpsig/mod.rs"]
pub mod httpsig;

/// The inbox's activity envelope parser (depends only on serde, serde_json and url).
#[path = "../../src/activitypub/incoming.rs"]
pub mod incoming;

/// Unicode-safe text: HTML → text, truncation, control stripping (ammonia + html5ever).
#[path = "../../src/text.rs"]
pub mod text;

/// Every local URL, for the Markdown renderer's hashtag and mention links.
#[path = "../../src/urls.rs"]
pub mod urls;

/// Markdown → sanitised HTML (pulldown-cmark + ammonia).
#[path = "../../src/posts/markdown.rs"]
pub mod markdown;

/// A post's Note content: whole, or a teaser cut at 500 characters.
#[path = "../../src/activitypub/teaser.rs"]
pub mod teaser;

/// The paths these modules use inside the hortus crate.
pub mod posts {
    pub use super::markdown;
}
pub mod activitypub {
    pub use super::teaser;
}
