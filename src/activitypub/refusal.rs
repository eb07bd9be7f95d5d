//! Why an incoming activity is refused, with the HTTP status the peer gets. Below the inbox
//! because what the inbox calls (conversation, fetching) refuses with it too.

/// Mastodon caps inbound JSON at 1 MiB as well.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("unsupported content type; send application/activity+json")]
    ContentType,
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("signature: {0}")]
    Signature(#[from] crate::httpsig::VerifyError),
    #[error("cannot verify: {0}")]
    Key(String),
    #[error("the server {0} is not allowed to federate here")]
    Refused(String),
    #[error("the signer is not the activity's actor")]
    ActorMismatch,
    #[error("the request is addressed to {0}, not to this server")]
    NotAddressedHere(String),
    #[error("bad activity: {0}")]
    BadActivity(String),
    #[error("bad activity: {0}")]
    Parse(#[from] crate::activitypub::incoming::ParseError),
    #[error("internal error")]
    Internal(String),
}

impl InboxError {
    pub fn status(&self) -> u16 {
        match self {
            InboxError::ContentType => 415,
            InboxError::TooLarge => 413,
            InboxError::Signature(_)
            | InboxError::Key(_)
            | InboxError::ActorMismatch
            | InboxError::NotAddressedHere(_) => 401,
            InboxError::Refused(_) => 403,
            InboxError::BadActivity(_) | InboxError::Parse(_) => 400,
            InboxError::Internal(_) => 500,
        }
    }
}

impl From<crate::db::DbError> for InboxError {
    fn from(e: crate::db::DbError) -> Self {
        InboxError::Internal(e.to_string())
    }
}

impl From<super::fetch::StoreError> for InboxError {
    fn from(e: super::fetch::StoreError) -> Self {
        match e {
            super::fetch::StoreError::Db(e) => InboxError::Internal(e.to_string()),
            refused => InboxError::BadActivity(refused.to_string()),
        }
    }
}

impl From<rusqlite::Error> for InboxError {
    fn from(e: rusqlite::Error) -> Self {
        InboxError::Internal(e.to_string())
    }
}
