//! The Note's `interactionPolicy` and the consent documents, checked against the shapes of
//! FEP-044f's examples and GoToSocial's interaction policy documentation.

use serde_json::json;

use super::super::tests::{post, site_parts};
use super::super::{PUBLIC, Site, note};
use super::*;
use crate::config::QuotePolicy;
use crate::posts::Visibility;

const FEP_044F: &str = "https://w3id.org/fep/044f#";
const GTS: &str = "https://gotosocial.org/ns#";

fn context_of(doc: &Value) -> &Map<String, Value> {
    doc["@context"]
        .as_array()
        .and_then(|c| c.iter().find_map(Value::as_object))
        .expect("a context object")
}

/// Expands a term through the document's context, as a JSON-LD reader would.
fn expand(ctx: &Map<String, Value>, term: &str) -> String {
    let def = &ctx[term];
    let iri = def.get("@id").unwrap_or(def).as_str().unwrap_or_default();
    match iri.split_once(':') {
        Some((prefix, rest)) if ctx.contains_key(prefix) => {
            format!("{}{rest}", ctx[prefix].as_str().unwrap_or_default())
        }
        _ => iri.to_string(),
    }
}

#[test]
fn a_public_note_says_anyone_may_quote_it_in_the_shape_mastodon_reads() {
    let (config, urls) = site_parts();
    let site = Site {
        config: &config,
        urls: &urls,
    };
    let mut p = post(Visibility::Public, vec![]);
    p.content_html = "<p>引用してね 🌱 — اقتبسني — e\u{301}</p>".into();
    let n = note(&site, &p);
    // FEP-044f / GoToSocial: `"canQuote": {"automaticApproval": [as:Public]}`.
    let policy = &n["interactionPolicy"];
    assert_eq!(
        policy["canQuote"],
        json!({"automaticApproval": [PUBLIC, urls.actor()], "manualApproval": []})
    );
    for kind in ["canReply", "canLike", "canAnnounce"] {
        assert_eq!(policy[kind]["automaticApproval"][0], PUBLIC, "{kind}");
    }
    assert_eq!(n["content"], "<p>引用してね 🌱 — اقتبسني — e\u{301}</p>");
    let ctx = context_of(&n);
    assert_eq!(
        expand(ctx, "interactionPolicy"),
        format!("{GTS}interactionPolicy")
    );
    for term in [
        "canQuote",
        "canReply",
        "canLike",
        "canAnnounce",
        "automaticApproval",
        "manualApproval",
    ] {
        assert_eq!(expand(ctx, term), format!("{GTS}{term}"), "{term}");
        assert_eq!(ctx[term]["@type"], "@id", "{term} holds ids");
    }
    assert_eq!(
        expand(ctx, "quoteAuthorization"),
        format!("{FEP_044F}quoteAuthorization")
    );
    assert_eq!(
        ctx["sensitive"], "as:sensitive",
        "the Note's own terms stay"
    );
}

#[test]
fn the_site_default_and_each_post_choose_who_may_quote() {
    let (mut config, urls) = site_parts();
    config.site.quotes = QuotePolicy::Followers;
    let site = Site {
        config: &config,
        urls: &urls,
    };
    let mut p = post(Visibility::Public, vec![]);
    let n = note(&site, &p);
    assert_eq!(
        n["interactionPolicy"]["canQuote"]["automaticApproval"],
        json!([urls.followers(), urls.actor()])
    );
    p.quotes = Some(QuotePolicy::Nobody);
    let n = note(&site, &p);
    assert_eq!(
        n["interactionPolicy"]["canQuote"]["automaticApproval"],
        json!([urls.actor()])
    );
    assert_eq!(
        n["interactionPolicy"]["canQuote"]["manualApproval"],
        json!([])
    );
    p.quotes = Some(QuotePolicy::Anyone);
    assert_eq!(quote_policy(&config, &p), QuotePolicy::Anyone);
}

#[test]
fn a_followers_only_post_is_never_quotable_by_others_nor_boosted() {
    let (config, urls) = site_parts();
    let site = Site {
        config: &config,
        urls: &urls,
    };
    let mut p = post(Visibility::Followers, vec![]);
    p.quotes = Some(QuotePolicy::Anyone);
    assert_eq!(quote_policy(&config, &p), QuotePolicy::Nobody);
    let policy = &note(&site, &p)["interactionPolicy"];
    assert_eq!(
        policy["canQuote"]["automaticApproval"],
        json!([urls.actor()])
    );
    assert_eq!(
        policy["canAnnounce"]["automaticApproval"],
        json!([urls.actor()])
    );
    assert_eq!(
        policy["canReply"]["automaticApproval"],
        json!([urls.followers(), urls.actor()])
    );
}

#[test]
fn approval_by_hand_moves_the_audience_to_manual_approval() {
    let (mut config, urls) = site_parts();
    config.site.quotes_need_approval = true;
    let site = Site {
        config: &config,
        urls: &urls,
    };
    let n = note(&site, &post(Visibility::Unlisted, vec![]));
    assert_eq!(
        n["interactionPolicy"]["canQuote"],
        json!({"automaticApproval": [urls.actor()], "manualApproval": [PUBLIC]})
    );
}

#[test]
fn the_stamp_and_the_answers_have_the_fep_shapes() {
    let (_, urls) = site_parts();
    let quoting = "https://b.example/users/bob/statuses/1";
    let target = urls.post_object("hi");
    let s = stamp(&urls, "tok-1", quoting, &target);
    // FEP-044f's QuoteAuthorization example: these keys and nothing that contradicts them.
    assert_eq!(s["type"], "QuoteAuthorization");
    assert_eq!(
        s["id"],
        format!("{}/quote-authorizations/tok-1", urls.base())
    );
    assert_eq!(s["attributedTo"], urls.actor());
    assert_eq!(s["interactingObject"], quoting);
    assert_eq!(s["interactionTarget"], target.as_str());
    let ctx = context_of(&s);
    assert_eq!(
        expand(ctx, "QuoteAuthorization"),
        format!("{FEP_044F}QuoteAuthorization")
    );
    assert_eq!(
        expand(ctx, "interactingObject"),
        format!("{GTS}interactingObject")
    );
    assert_eq!(
        expand(ctx, "interactionTarget"),
        format!("{GTS}interactionTarget")
    );

    let req = request_object(
        "https://b.example/r/1",
        "https://b.example/users/bob",
        &target,
        quoting,
    );
    let accept = answer(
        &urls,
        "https://example.net/a/1",
        "Accept",
        req.clone(),
        s["id"].as_str(),
    );
    assert_eq!(accept["type"], "Accept");
    assert_eq!(accept["object"]["type"], "QuoteRequest");
    assert_eq!(accept["object"]["instrument"], quoting);
    assert_eq!(accept["result"], s["id"]);
    assert_eq!(accept["to"], json!(["https://b.example/users/bob"]));
    let reject = answer(&urls, "https://example.net/a/2", "Reject", req, None);
    assert!(reject.get("result").is_none());
    let del = revoke(
        &urls,
        "https://example.net/a/3",
        s["id"].as_str().unwrap(),
        "https://b.example/users/bob",
    );
    assert_eq!(del["type"], "Delete");
    assert_eq!(del["object"]["id"], s["id"]);
}

#[test]
fn a_remote_policy_that_leaves_the_owner_out_forbids_quoting() {
    let me = "https://example.net/users/alice";
    let author = "https://m.example/users/bob";
    assert!(!forbids_quote(
        &json!({"automaticApproval": [PUBLIC]}),
        me,
        false
    ));
    assert!(!forbids_quote(
        &json!({"automaticApproval": "as:Public"}),
        me,
        false
    ));
    assert!(!forbids_quote(
        &json!({"manualApproval": [PUBLIC]}),
        me,
        false
    ));
    assert!(!forbids_quote(
        &json!({"automaticApproval": [me]}),
        me,
        false
    ));
    assert!(forbids_quote(
        &json!({"automaticApproval": author}),
        me,
        false
    ));
    assert!(forbids_quote(&json!({}), me, false));
    let followers = json!({"automaticApproval": [format!("{author}/followers")]});
    assert!(forbids_quote(&followers, me, false));
    assert!(!forbids_quote(&followers, me, true));
}

/// GoToSocial 0.19.2 writes `always` / `approvalRequired` (the captured note), Mastodon 4.5 and
/// GoToSocial 0.20 `automaticApproval` / `manualApproval`: both are read, and a rule that asks
/// for approval (or lets the owner in only as a follower) means waiting for the Accept.
#[test]
fn both_policy_vocabularies_say_whether_the_owner_must_ask() {
    let me = "https://example.net/users/alice";
    let captured: serde_json::Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/peers/gotosocial-0.19.2/note.json"
    ))
    .unwrap();
    let gts = &captured["document"]["interactionPolicy"];
    for rule in ["canReply", "canLike", "canAnnounce"] {
        assert_eq!(
            permission(&gts[rule], me, false),
            Permission::Automatic,
            "{rule}"
        );
        assert!(!forbids(&gts[rule], me, false));
    }
    let author = "https://gts.test/users/gwen";
    let asks = json!({"always": [author], "approvalRequired": [PUBLIC]});
    assert_eq!(permission(&asks, me, false), Permission::Approval);
    let asks = json!({"automaticApproval": [author], "manualApproval": me});
    assert_eq!(permission(&asks, me, false), Permission::Approval);
    let followers = json!({"always": [author, format!("{author}/followers")]});
    assert_eq!(permission(&followers, me, true), Permission::Approval);
    assert_eq!(permission(&followers, me, false), Permission::Refused);
    assert!(forbids(&json!({"always": [author]}), me, true));
}
