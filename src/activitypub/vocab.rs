//! The ActivityStreams IRIs every document names; a leaf, so the document builders in this
//! folder can use them without importing `activitypub/mod.rs`, which calls them.

pub const AS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";
pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
