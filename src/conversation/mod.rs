//! Conversations: what other servers say about the owner's posts, and the owner's answers.
//!
//! - [`receive`]: inbound replies, mentions, quotes, likes, boosts, edits, deletions and undos,
//!   after the verified inbox (`inbox::effects` dispatches here);
//! - [`note`]: a remote post parsed from network JSON; [`sanitize`]: its HTML made safe;
//! - [`store`]: the SQL (migrations/05-conversation); [`view`]: the thread under a post's page;
//! - [`notifications`]: `hortus inbox`; [`commands`]: the owner's commands; [`replying`]: the
//!   owner's `in_reply_to` posts;
//! - [`moving`]: Move both ways, and the followers/follows CSV;
//! - [`consent`]: QuoteRequests for the owner's posts and their stamps (FEP-044f);
//!   [`quoting`]: the owner's own QuoteRequests and their answers; [`approvals`]: approvals of
//!   the owner's replies (GoToSocial's interaction policies).
//!
//! Only servers the policy allows get here (the inbox refuses the others before any work), and
//! nothing a peer sends reaches a page unsanitised: remote HTML passes [`sanitize::remote_html`]
//! before it is stored, URLs must be absolute http(s), and media is shown only as links.

pub mod approvals;
pub mod commands;
pub mod consent;
pub mod moving;
pub mod note;
pub mod notifications;
pub mod quoting;
pub mod receive;
pub mod relayed;
pub mod replying;
pub mod store;
pub mod view;
