//! Tests of the documents Hortus publishes (`activitypub/mod.rs`).

use super::*;
use crate::posts::Mention;

pub(super) fn site_parts() -> (Config, Urls) {
    let config = Config::parse(
        "domain = \"example.net\"\nbase_url = \"https://example.net\"\n[user]\nname = \"alice\"\n",
        std::path::Path::new("hortus.toml"),
    )
    .unwrap();
    let urls = Urls::new(&config.base_url, "alice");
    (config, urls)
}

pub(super) fn post(visibility: Visibility, mentions: Vec<Mention>) -> Post {
    Post {
        id: 1,
        slug: "hi".into(),
        title: None,
        summary: None,
        content_html: "<p>hi</p>".into(),
        visibility,
        language: None,
        in_reply_to: None,
        quote: None,
        quotes: None,
        quote_consent: None,
        reply_approval: None,
        sensitive: false,
        tags: vec![],
        mentions,
        attachments: vec![],
        published: time::OffsetDateTime::UNIX_EPOCH,
        updated: None,
        deleted_at: None,
    }
}

/// Issue 9.3: `&amp;` followed by CJK put a byte cut inside 府 and panicked.
#[test]
fn notes_of_multi_script_text_with_entities_build() {
    let (config, urls) = site_parts();
    let site = Site {
        config: &config,
        urls: &urls,
    };
    let rendered = crate::posts::markdown::render("東京&大阪府", &urls);
    let mut p = post(Visibility::Public, vec![]);
    p.content_html = rendered.html.clone();
    let n = note(&site, &p);
    assert_eq!(n["content"], rendered.html.as_str(), "short: sent whole");
    // Long enough to be cut to a teaser: the text goes through plain-text extraction.
    let long = "東京&大阪府 مرحبا بالعالم 👩‍👩‍👧 e\u{301}&#x1F600; ".repeat(40);
    p.content_html = crate::posts::markdown::render(&long, &urls).html;
    p.title = Some("東京&大阪府".into());
    let n = note(&site, &p);
    let content = n["content"].as_str().unwrap();
    assert!(content.contains("東京&amp;大阪府"), "{content}");
    assert!(content.contains("…</p>"), "{content}");
}

#[test]
fn visibility_and_mentions_address_as_mastodon_reads_them() {
    let (config, urls) = site_parts();
    let site = Site {
        config: &config,
        urls: &urls,
    };
    let known = Mention {
        name: "@bob@b.example".into(),
        href: "https://b.example/@bob".into(),
        actor: Some("https://b.example/users/bob".into()),
        group: false,
    };
    let unknown = Mention {
        name: "@carol@c.example".into(),
        href: "https://c.example/@carol".into(),
        actor: None,
        group: false,
    };
    let n = note(
        &site,
        &post(Visibility::Public, vec![known.clone(), unknown.clone()]),
    );
    assert_eq!(n["to"], json!([PUBLIC]));
    assert_eq!(
        n["cc"],
        json!([urls.followers(), "https://b.example/users/bob"])
    );
    assert_eq!(n["tag"][0]["href"], "https://b.example/users/bob");
    assert_eq!(n["tag"][1]["href"], "https://c.example/@carol");
    let n = note(&site, &post(Visibility::Unlisted, vec![]));
    assert_eq!(n["to"], json!([urls.followers()]));
    assert_eq!(n["cc"], json!([PUBLIC]));
    let n = note(&site, &post(Visibility::Followers, vec![known]));
    assert_eq!(n["to"], json!([urls.followers()]));
    assert_eq!(n["cc"], json!(["https://b.example/users/bob"]));
}

#[test]
fn a_post_for_a_group_is_a_titled_page_addressed_to_it() {
    let (config, urls) = site_parts();
    let site = Site {
        config: &config,
        urls: &urls,
    };
    let garden = "https://lemmy.example/c/garden";
    let group = Mention {
        name: "@garden@lemmy.example".into(),
        href: "https://lemmy.example/c/garden".into(),
        actor: Some(garden.into()),
        group: true,
    };
    let bob = Mention {
        name: "@bob@b.example".into(),
        href: "https://b.example/@bob".into(),
        actor: Some("https://b.example/users/bob".into()),
        group: false,
    };
    let mut p = post(Visibility::Public, vec![bob, group]);
    p.title = Some("Rosen im Garten 🌹 — 庭のバラ".into());
    let n = note(&site, &p);
    assert_eq!(n["type"], "Page");
    assert_eq!(n["name"], "Rosen im Garten 🌹 — 庭のバラ");
    assert!(
        !n["content"].as_str().unwrap().contains("Rosen im Garten"),
        "the title is the Page's name, not repeated in its body: {n}"
    );
    assert_eq!(n["audience"], garden);
    assert_eq!(n["to"], json!([garden, PUBLIC]), "the group first");
    assert_eq!(
        n["cc"],
        json!([urls.followers(), "https://b.example/users/bob"])
    );
    let c = create(&site, &p);
    assert_eq!(c["audience"], garden);
    assert_eq!(c["to"], n["to"]);
    assert_eq!(tombstone(&site, &p)["formerType"], "Page");

    // Untitled: the opening words are the title.
    p.title = None;
    p.content_html = "<p>مرحبا بالحديقة and its <em>roses</em></p>".into();
    assert_eq!(note(&site, &p)["name"], "مرحبا بالحديقة and its roses");
    // A reply in a group's thread stays a Note (Lemmy reads it as a comment).
    p.in_reply_to = Some("https://lemmy.example/post/1".into());
    assert_eq!(note(&site, &p)["type"], "Note");
    // No group, no audience.
    let plain = create(&site, &post(Visibility::Public, vec![]));
    assert!(plain.get("audience").is_none(), "{plain}");
    assert_eq!(plain["object"]["type"], "Note");
}
