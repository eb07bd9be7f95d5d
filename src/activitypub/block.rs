//! The owner's `Block` of an account and its `Undo`, sent only with `[federation] send_blocks`
//! (a block is private by default). Mastodon reads a Block as "remove each other's follows and
//! hide the blocker" (app/lib/activitypub/activity/block.rb) and an Undo(Block) that embeds
//! the Block (or names its id) as the unblock; the whole Block is embedded, as for Undo(Follow),
//! so a server that never stored the Block can still match it.

use serde_json::{Value, json};

use super::AS_CONTEXT;
use crate::urls::Urls;

fn block_object(urls: &Urls, block_id: &str, target: &str) -> Value {
    json!({"id": block_id, "type": "Block", "actor": urls.actor(), "object": target})
}

/// The owner blocks `target`; `block_id` is kept so the unblock can undo this very activity.
pub fn block(urls: &Urls, block_id: &str, target: &str) -> Value {
    let mut b = block_object(urls, block_id, target);
    b["@context"] = json!(AS_CONTEXT);
    b["to"] = json!([target]);
    b
}

/// Undo of the owner's Block, with the whole Block embedded.
pub fn undo_block(urls: &Urls, block_id: &str, target: &str) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": super::new_activity_id(urls),
        "type": "Undo",
        "actor": urls.actor(),
        "to": [target],
        "object": block_object(urls, block_id, target),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_its_undo_name_the_same_block() {
        let urls = Urls::new(&url::Url::parse("https://me.example").unwrap(), "alice");
        let bob = "https://m.example/users/bob";
        let b = block(&urls, "https://me.example/activities/1", bob);
        assert_eq!(b["type"], "Block");
        assert_eq!(b["actor"], "https://me.example/users/alice");
        assert_eq!(b["object"], bob);
        assert_eq!(b["to"], json!([bob]));
        let u = undo_block(&urls, "https://me.example/activities/1", bob);
        assert_eq!(u["type"], "Undo");
        assert_eq!(u["object"]["id"], b["id"]);
        assert_eq!(u["object"]["type"], "Block");
        assert_eq!(u["object"]["object"], bob);
        assert_ne!(u["id"], b["id"]);
    }
}
