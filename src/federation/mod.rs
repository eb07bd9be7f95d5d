//! Federation policy: which servers Hortus talks to (allowlist by default), what refusing one
//! does to its followers, the record of refused requests ("knocks"), and the guard on every
//! outgoing connection.
//!
//! - [`domain`]: entry and host syntax, normalisation ([`Pattern`], [`HostPort`]).
//! - [`policy`]: the precedence rules, the in-memory snapshot ([`Policy`]) and the handle a
//!   running server reloads when the lists change ([`PolicyHandle`]).
//! - [`lists`]: the allow and block lists in SQLite; [`suspension`]: what refusing a server
//!   does to its followers, and restore; [`import`]: bulk import.
//! - [`knocks`]: bounded record of refused requests.
//! - [`guard`]: private-address guard, guarded DNS resolver, URL check, the HTTP client.
//!
//! Inbound order (PROTOCOL.md §7): decide on the keyId's host first; a refused server costs a
//! hash lookup and a knock, never an outgoing request.

pub mod domain;
mod error;
pub mod guard;
pub mod import;
pub mod knock_limit;
pub mod knocks;
pub mod lists;
pub mod policy;
pub mod suspension;

pub use domain::{HostPort, Pattern, PatternError, PatternProblem};
pub use error::FederationError;
pub use guard::{
    GuardedResolver, ReadError, RefusedFetch, ResolveError, address_allowed, check_url,
    http_client, http_client_with, read_capped, user_agent,
};
pub use import::{ImportFormat, ImportReport, SkippedLine, import_domains};
pub use knock_limit::{KnockLimiter, KnockLimits};
pub use knocks::{Knock, MAX_KNOCK_ROWS, forget_knocks, knocks, record_knock};
pub use lists::{
    List, ListChange, ListEntry, allow_add, allow_list, allow_remove, block_add, block_list,
    block_remove,
};
pub use policy::{Decision, Policy, PolicyHandle, Refusal, policy_version};
pub use suspension::{
    RestoreReport, SuspendedFollower, enforce_policy, restore_followers, suspended_followers,
};
