//! `hortus::httpsig`, compiled alone for fuzzing (see Cargo.toml). The module only uses `super::`
//! paths inside itself, so it builds the same here as in the hortus crate.

#[path = "../../src/httpsig/mod.rs"]
pub mod httpsig;

/// The inbox's activity envelope parser (depends only on serde, serde_json and url).
#[path = "../../src/activitypub/incoming.rs"]
pub mod incoming;
