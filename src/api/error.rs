//! What the API answers when it refuses: `{"error": "…"}` with the status Mastodon uses, so apps
//! show the message. Internal causes go to the log, never to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, an unknown, revoked or expired one, or no password set yet.
    #[error("{0}")]
    Unauthorized(String),
    /// A token without the scope the call needs, or an app token on an owner-only call.
    #[error("This action is outside the authorized scopes")]
    Forbidden,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// Understood but refused (Mastodon's 422 "Validation failed").
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    TooLarge(String),
    /// Too many requests of a kind; the seconds to wait, and what to say.
    #[error("{1}")]
    Throttled(u64, &'static str),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::federation::FederationError> for ApiError {
    fn from(e: crate::federation::FederationError) -> Self {
        ApiError::Unprocessable(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Throttled(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = %cause, "client API request failed");
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::Throttled(secs, _) = self {
            resp.insert_header(("Retry-After", secs.to_string()));
        }
        if let ApiError::Unauthorized(_) = self {
            // RFC 6750 §3: the scheme the client must use.
            resp.insert_header(("WWW-Authenticate", "Bearer realm=\"hortus\""));
        }
        resp.json(serde_json::json!({ "error": self.to_string() }))
    }
}

pub type ApiResult = Result<HttpResponse, ApiError>;

/// Unknown `/api/…` paths: JSON, not the site's HTML 404 page.
pub async fn not_found() -> HttpResponse {
    ApiError::NotFound("Record not found").error_response()
}
