//! Publishing what the API wrote: the content folder synced, mentions and reply targets looked
//! up, changes queued for followers, exactly as `hortus publish` does. `app` hands the function
//! in (its `publish`) as [`Publisher`], so this layer never reaches up to `app`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{HttpRequest, web};

use super::error::ApiError;

pub type Publisher =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Publishes now; a file with a mistake is a 422 naming it.
pub async fn publish_now(req: &HttpRequest) -> Result<(), ApiError> {
    let publisher = req
        .app_data::<web::Data<Publisher>>()
        .ok_or_else(|| ApiError::internal("no publisher registered"))?;
    (publisher.get_ref())()
        .await
        .map_err(|e| ApiError::Unprocessable(format!("the post was not published: {e}")))
}
