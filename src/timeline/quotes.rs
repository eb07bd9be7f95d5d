//! FEP-044f for the posts the owner reads (PROTOCOL.md §9): a followed account's post that
//! quotes someone else's post shows as a quote only when its `quoteAuthorization` stamp,
//! dereferenced on the quoted author's server (signed GETs, allowed servers only), grants it:
//! a `QuoteAuthorization` at that id, attributed to the quoted post's author, naming this post
//! and the quoted one. Otherwise it is shown as a plain `RE:` link, as Mastodon shows a quote
//! that is pending or was revoked. The claim in the quoting post is never taken on its word.

use serde_json::Value;

use super::store;
use crate::activitypub::fetch::{self, id_of};
use crate::activitypub::refusal::InboxError;
use crate::context::Context;
use crate::conversation::note::RemoteNote;
use crate::urls::same_origin;

/// Records what `note` (as `raw`, the object the Create carried) quotes, and its stamp when it
/// checks out. Posts quoting the owner's posts are left to `conversation::consent`.
pub async fn record(ctx: &Context, note: &RemoteNote, raw: &Value) -> Result<(), InboxError> {
    let Some(quoted) = note.quotes.first().cloned() else {
        return Ok(());
    };
    if crate::conversation::store::local_post_slug(&ctx.urls, &quoted).is_some() {
        return Ok(());
    }
    let stamp = match raw.get("quoteAuthorization").and_then(id_of) {
        Some(stamp) => match verify(ctx, &note.id, &quoted, stamp).await {
            Ok(()) => Some(stamp.to_string()),
            Err(why) => {
                tracing::info!(note = %note.id, %stamp, %why, "a quote's stamp does not grant it; shown as a link");
                None
            }
        },
        None => None,
    };
    let id = note.id.clone();
    ctx.db
        .call(move |c| {
            store::set_quote(c, &id, &quoted, stamp.as_deref()).map_err(InboxError::from)
        })
        .await
}

/// Why the stamp at `stamp` does not grant `note` quoting `quoted`.
async fn verify(ctx: &Context, note: &str, quoted: &str, stamp: &str) -> Result<(), String> {
    if stamp.len() > 2048 || !same_origin(stamp, quoted) {
        return Err("it is not on the quoted post's server".into());
    }
    let remote = fetch::Remote::of(ctx);
    let (_, post) = fetch::get_document(&remote, quoted)
        .await
        .map_err(|e| format!("the quoted post: {e}"))?;
    let author = crate::conversation::replying::author_of(&post)
        .filter(|a| same_origin(a, quoted) && id_of(&post) == Some(quoted))
        .ok_or("the quoted post names no author on its own server")?
        .to_string();
    let (_, doc) = fetch::get_document(&remote, stamp)
        .await
        .map_err(|e| format!("the stamp: {e}"))?;
    crate::activitypub::quote::check_stamp(&doc, stamp, &author, note, quoted)
}
