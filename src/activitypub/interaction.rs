//! Interaction policies and quote consent (PROTOCOL.md §9): every post says who may quote,
//! reply to, like and boost it in GoToSocial's `interactionPolicy` vocabulary, which Mastodon
//! 4.5 reads for `canQuote` (a post without it cannot be quoted from Mastodon); FEP-044f's
//! `QuoteRequest` is answered with an `Accept` whose `result` is a `QuoteAuthorization` stamp.

use serde_json::{Map, Value, json};

use super::vocab::{AS_CONTEXT, PUBLIC};
use crate::config::{Config, QuotePolicy};
use crate::posts::{Post, Visibility};
use crate::urls::Urls;

/// The JSON-LD terms of the policy and the quote consent vocabulary, as GoToSocial's and
/// Mastodon's contexts define them: a JSON-LD reader (Fedify, Misskey) drops a term it cannot
/// expand.
pub fn context_terms() -> Map<String, Value> {
    let id = |iri: &str| json!({"@id": iri, "@type": "@id"});
    let mut m = Map::new();
    m.insert("gts".into(), json!("https://gotosocial.org/ns#"));
    for term in [
        "interactionPolicy",
        "canQuote",
        "canReply",
        "canLike",
        "canAnnounce",
        "automaticApproval",
        "manualApproval",
        "interactingObject",
        "interactionTarget",
        "approvedBy",
    ] {
        m.insert(term.into(), id(&format!("gts:{term}")));
    }
    m.insert(
        "quoteAuthorization".into(),
        id("https://w3id.org/fep/044f#quoteAuthorization"),
    );
    m.insert(
        "QuoteRequest".into(),
        json!("https://w3id.org/fep/044f#QuoteRequest"),
    );
    m.insert(
        "QuoteAuthorization".into(),
        json!("https://w3id.org/fep/044f#QuoteAuthorization"),
    );
    m
}

/// Who may quote `post`: its own `quotes`, else the site's. A followers-only post is never
/// quotable by others: a quote would show it to people it was not written for.
pub fn quote_policy(config: &Config, post: &Post) -> QuotePolicy {
    if post.visibility == Visibility::Followers {
        return QuotePolicy::Nobody;
    }
    post.quotes.unwrap_or(config.site.quotes)
}

/// The audience a quote policy names: the Public collection, the followers collection, or
/// nobody (the owner, always allowed, is added by [`policy`]).
fn quote_audience(policy: QuotePolicy, urls: &Urls) -> Vec<String> {
    match policy {
        QuotePolicy::Anyone => vec![PUBLIC.to_string()],
        QuotePolicy::Followers => vec![urls.followers()],
        QuotePolicy::Nobody => vec![],
    }
}

/// `interactionPolicy` for a post. Hortus takes replies, likes and boosts of what it shows
/// to anyone from servers it federates with, so those name the post's own audience; a
/// followers-only post cannot be boosted by others (Mastodon's rule too).
pub fn policy(config: &Config, urls: &Urls, post: &Post) -> Value {
    let owner = urls.actor();
    let audience: Vec<String> = match post.visibility {
        Visibility::Public | Visibility::Unlisted => vec![PUBLIC.to_string()],
        Visibility::Followers => {
            let mut a = vec![urls.followers()];
            a.extend(post.mentions.iter().filter_map(|m| m.actor.clone()));
            a
        }
    };
    let with_owner = |mut list: Vec<String>| {
        if !list.contains(&owner) {
            list.push(owner.clone());
        }
        list
    };
    let announce = match post.visibility {
        Visibility::Followers => vec![owner.clone()],
        _ => vec![PUBLIC.to_string()],
    };
    let quoters = quote_audience(quote_policy(config, post), urls);
    let can_quote = if config.site.quotes_need_approval {
        json!({"automaticApproval": [owner], "manualApproval": quoters})
    } else {
        json!({"automaticApproval": with_owner(quoters), "manualApproval": []})
    };
    json!({
        "canQuote": can_quote,
        "canReply": {"automaticApproval": with_owner(audience.clone()), "manualApproval": []},
        "canLike": {"automaticApproval": with_owner(audience), "manualApproval": []},
        "canAnnounce": {"automaticApproval": announce, "manualApproval": []},
    })
}

/// Adds `interactionPolicy` and its context terms to `note` (as `activitypub::note` builds it).
pub fn add(config: &Config, urls: &Urls, post: &Post, note: &mut Value) {
    if let Some(map) = note["@context"]
        .as_array_mut()
        .and_then(|c| c.iter_mut().find_map(Value::as_object_mut))
    {
        map.extend(context_terms());
    }
    note["interactionPolicy"] = policy(config, urls, post);
}

/// How one rule of a remote post's `interactionPolicy` (`canQuote`, `canLike`, `canAnnounce`,
/// `canReply`) lets the owner in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Named directly (the Public collection or the owner) among those approved at once.
    Automatic,
    /// Allowed to try, and the author's server answers with an `Accept` or `Reject`: named
    /// among those approved by hand, or only through a followers collection (GoToSocial asks
    /// for the Accept then too: the author's server is the one that knows its followers).
    Approval,
    Refused,
}

/// Where `rule` puts the owner. Both vocabularies are read: `automaticApproval` /
/// `manualApproval` (Mastodon 4.5, GoToSocial 0.20) and `always` / `approvalRequired` (what
/// GoToSocial 0.19.2 sends: tests/fixtures/peers/gotosocial-0.19.2/note.json). A followers collection
/// counts only when the owner follows the author.
pub fn permission(rule: &Value, owner: &str, follows_author: bool) -> Permission {
    let names = |key: &str| -> Vec<&str> {
        match &rule[key] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        }
    };
    let direct = |e: &&str| matches!(*e, PUBLIC | "as:Public" | "Public") || *e == owner;
    let followers = |e: &&str| follows_author && e.ends_with("/followers");
    let automatic: Vec<&str> = ["automaticApproval", "always"]
        .into_iter()
        .flat_map(names)
        .collect();
    let manual: Vec<&str> = ["manualApproval", "approvalRequired"]
        .into_iter()
        .flat_map(names)
        .collect();
    if automatic.iter().any(direct) {
        Permission::Automatic
    } else if automatic.iter().any(followers) || manual.iter().any(|e| direct(e) || followers(e)) {
        Permission::Approval
    } else {
        Permission::Refused
    }
}

/// Whether one rule of a remote post's `interactionPolicy` leaves the owner out ([`permission`]
/// is `Refused`; asking is allowed). A post without the rule is not refused here: only Mastodon
/// reads a missing `canQuote` as "nobody", and Misskey, Akkoma and older servers write none.
pub fn forbids(rule: &Value, owner: &str, follows_author: bool) -> bool {
    permission(rule, owner, follows_author) == Permission::Refused
}

/// [`forbids`] for `canQuote`.
pub fn forbids_quote(can_quote: &Value, owner: &str, follows_author: bool) -> bool {
    forbids(can_quote, owner, follows_author)
}

/// Where the stamp with `token` is served (stable: its id).
pub fn stamp_url(urls: &Urls, token: &str) -> String {
    format!("{}/quote-authorizations/{token}", urls.base())
}

/// The `QuoteAuthorization` stamp (FEP-044f): the owner consents that `quoting` quotes
/// `target`. Quoting servers dereference it to check the consent, so it must stay served.
pub fn stamp(urls: &Urls, token: &str, quoting: &str, target: &str) -> Value {
    json!({
        "@context": [AS_CONTEXT, context_terms()],
        "id": stamp_url(urls, token),
        "type": "QuoteAuthorization",
        "attributedTo": urls.actor(),
        "interactingObject": quoting,
        "interactionTarget": target,
    })
}

/// The `QuoteRequest` as embedded in our answer: `{id, type, actor, object, instrument}`.
pub fn request_object(request_id: &str, actor: &str, target: &str, quoting: &str) -> Value {
    json!({
        "id": request_id,
        "type": "QuoteRequest",
        "actor": actor,
        "object": target,
        "instrument": quoting,
    })
}

/// `Accept` (with the stamp's id as `result`) or `Reject` of a QuoteRequest; `id` is a fresh
/// activity id.
pub fn answer(urls: &Urls, id: &str, kind: &str, request: Value, stamp_id: Option<&str>) -> Value {
    let to = request["actor"].clone();
    let mut a = json!({
        "@context": [AS_CONTEXT, context_terms()],
        "id": id,
        "type": kind,
        "actor": urls.actor(),
        "to": [to],
        "object": request,
    });
    if let Some(stamp) = stamp_id {
        a["result"] = json!(stamp);
    }
    a
}

/// `Delete` of a stamp: how a quote is revoked (FEP-044f).
pub fn revoke(urls: &Urls, id: &str, stamp_id: &str, to: &str) -> Value {
    json!({
        "@context": [AS_CONTEXT, context_terms()],
        "id": id,
        "type": "Delete",
        "actor": urls.actor(),
        "to": [to],
        "object": {"id": stamp_id, "type": "QuoteAuthorization"},
    })
}

#[cfg(test)]
mod tests;
