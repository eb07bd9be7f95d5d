//! ActivityPub vocabulary: the documents Hortus publishes, built from posts and the config.
//! Shapes follow what Mastodon, Threads and GoToSocial read (../shared/PROTOCOL.md §2, §5).

pub mod block;
pub mod fetch;
pub mod follower_sync;
pub mod incoming;
pub mod interaction;
pub mod public_keys;
pub mod quote;
pub mod refusal;
pub mod signature_forms;
pub mod teaser;
mod vocab;

use serde_json::{Value, json};

use crate::config::Config;
use crate::posts::{Post, Visibility};
use crate::times::rfc3339;
use crate::urls::Urls;

pub use vocab::{AS_CONTEXT, PUBLIC};
pub const SECURITY_CONTEXT: &str = "https://w3id.org/security/v1";
pub const CONTENT_TYPE: &str = "application/activity+json";

/// Everything a document needs to know about the site.
pub struct Site<'a> {
    pub config: &'a Config,
    pub urls: &'a Urls,
}

fn actor_context() -> Value {
    json!([
        AS_CONTEXT,
        SECURITY_CONTEXT,
        {
            "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
            "toot": "http://joinmastodon.org/ns#",
            "discoverable": "toot:discoverable",
            "indexable": "toot:indexable",
            "featured": {"@id": "toot:featured", "@type": "@id"},
            "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
            "movedTo": {"@id": "as:movedTo", "@type": "@id"},
            "schema": "http://schema.org#",
            "PropertyValue": "schema:PropertyValue",
            "value": "schema:value",
            "webfinger": "https://purl.archive.org/socialweb/webfinger#webfinger"
        }
    ])
}

fn note_context() -> Value {
    json!([
        AS_CONTEXT,
        {
            "sensitive": "as:sensitive",
            "Hashtag": "as:Hashtag",
            "toot": "http://joinmastodon.org/ns#",
            "blurhash": "toot:blurhash"
        }
    ])
}

fn media_type_of(path: &str) -> &'static str {
    match path
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// A profile field value as HTML: links become `rel="me"` links (Mastodon's verification),
/// anything else is escaped text.
pub fn field_value_html(value: &str) -> String {
    use crate::posts::markdown::escape;
    if let Ok(u) = url::Url::parse(value)
        && matches!(u.scheme(), "http" | "https")
    {
        let shown = value
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        return format!(
            "<a href=\"{}\" rel=\"me nofollow noopener\" target=\"_blank\">{}</a>",
            escape(value),
            escape(shown)
        );
    }
    escape(value)
}

/// The owner's actor (Person).
pub fn actor(site: &Site, public_key_pem: &str) -> Value {
    let c = site.config;
    let u = site.urls;
    let mut actor = json!({
        "@context": actor_context(),
        "id": u.actor(),
        "type": "Person",
        "preferredUsername": c.user.name,
        "name": c.display_name(),
        "summary": crate::posts::markdown::render_plain(&c.user.bio),
        "url": u.home(),
        "inbox": u.inbox(),
        "outbox": u.outbox(),
        "followers": u.followers(),
        "following": u.following(),
        "endpoints": { "sharedInbox": u.shared_inbox() },
        "publicKey": {
            "id": u.actor_key(),
            "owner": u.actor(),
            "publicKeyPem": public_key_pem,
        },
        "manuallyApprovesFollowers": c.federation.manually_approves_followers,
        "discoverable": c.user.discoverable,
        "indexable": c.user.indexable,
        "webfinger": c.handle(),
        "attachment": c.user.fields.iter().map(|f| json!({
            "type": "PropertyValue",
            "name": f.name,
            "value": field_value_html(&f.value),
        })).collect::<Vec<_>>(),
    });
    if let Some(created) = &c.user.created {
        actor["published"] = json!(created);
    }
    if let Some(avatar) = &c.user.avatar {
        actor["icon"] = json!({"type": "Image", "mediaType": media_type_of(avatar), "url": media_url(u, avatar)});
    }
    if let Some(header) = &c.user.header {
        actor["image"] = json!({"type": "Image", "mediaType": media_type_of(header), "url": media_url(u, header)});
    }
    if !c.user.also_known_as.is_empty() {
        actor["alsoKnownAs"] = json!(c.user.also_known_as);
    }
    actor
}

/// `media/x.png` (a path under the site directory) → its public URL.
pub fn media_url(urls: &Urls, path: &str) -> String {
    urls.media(path.trim_start_matches('/').trim_start_matches("media/"))
}

/// The instance actor (Application) that signs Hortus's own GETs. Always fetchable unsigned.
pub fn instance_actor(site: &Site, public_key_pem: &str) -> Value {
    let u = site.urls;
    json!({
        "@context": [AS_CONTEXT, SECURITY_CONTEXT, {"manuallyApprovesFollowers": "as:manuallyApprovesFollowers"}],
        "id": u.instance_actor(),
        "type": "Application",
        "preferredUsername": site.config.domain,
        "name": site.config.domain,
        "url": u.home(),
        "inbox": u.instance_inbox(),
        "outbox": u.instance_outbox(),
        "endpoints": { "sharedInbox": u.shared_inbox() },
        "manuallyApprovesFollowers": true,
        "publicKey": {
            "id": u.instance_actor_key(),
            "owner": u.instance_actor(),
            "publicKeyPem": public_key_pem,
        },
    })
}

/// `to` and `cc` for a post, per Mastodon's reading of visibility (PROTOCOL.md §5).
pub fn addressing(post: &Post, urls: &Urls) -> (Vec<String>, Vec<String>) {
    let followers = urls.followers();
    let (mut to, mut cc) = match post.visibility {
        Visibility::Public => (vec![PUBLIC.to_string()], vec![followers]),
        Visibility::Unlisted => (vec![followers], vec![PUBLIC.to_string()]),
        Visibility::Followers => (vec![followers], vec![]),
    };
    for actor in post.mentions.iter().filter_map(|m| m.actor.as_ref()) {
        if !cc.contains(actor) && !to.contains(actor) {
            cc.push(actor.clone());
        }
    }
    to.sort_by_key(|a| a != PUBLIC);
    // FEP-1b12: a post for a group names the group in `to`, first, as PieFed's own posts do
    // (tests/fixtures/published/piefed/page.json). Lemmy reads `audience` first; without it, it
    // dereferences the ids of `to` and `cc` (merged by itertools::merge, so roughly in URL
    // order), skipping only the literal Public IRI, until one is a community (lemmy
    // crates/apub/objects/src/protocol/page.rs, `InCommunity for Page`).
    if let Some(group) = audience(post) {
        cc.retain(|a| a != group);
        to.retain(|a| a != group);
        to.insert(0, group.to_string());
    }
    (to, cc)
}

/// The group (FEP-1b12) a post is for: the first mentioned account known to be a `Group`.
/// Lemmy, Mbin and PieFed take one community per post.
pub fn audience(post: &Post) -> Option<&str> {
    post.mentions
        .iter()
        .filter(|m| m.group)
        .find_map(|m| m.actor.as_deref())
}

/// The longest title Lemmy accepts for a post (its `MAX_TITLE_LENGTH`, 200 characters).
const MAX_GROUP_TITLE_CHARS: usize = 200;

/// A post as a Note. Titled posts lead with the title, since Mastodon shows no `name` on Notes;
/// long ones are cut to a teaser ([`teaser::federated_content`]).
pub fn note(site: &Site, post: &Post) -> Value {
    let u = site.urls;
    let (to, cc) = addressing(post, u);
    // Long and titled posts go out as a teaser linking to the page (see `teaser`). A post to a
    // group carries its title in `name`, shown above the body there: not repeated in the body.
    let lead = (object_type(post) == "Note")
        .then_some(post.title.as_deref())
        .flatten();
    let content = teaser::federated_content(lead, &post.content_html, &u.post_page(&post.slug));
    let mut tags: Vec<Value> = post
        .tags
        .iter()
        .map(|t| json!({"type": "Hashtag", "href": u.tag(t), "name": format!("#{t}")}))
        .collect();
    tags.extend(post.mentions.iter().map(
        |m| json!({"type": "Mention", "href": m.actor.as_ref().unwrap_or(&m.href), "name": m.name}),
    ));
    let attachments: Vec<Value> = post
        .attachments
        .iter()
        .map(|a| {
            let mut doc = json!({
                "type": "Document",
                "mediaType": a.media_type,
                "url": media_url(u, &a.path),
                "name": a.alt,
            });
            if let (Some(w), Some(h)) = (a.width, a.height) {
                doc["width"] = json!(w);
                doc["height"] = json!(h);
            }
            doc
        })
        .collect();
    let language = post
        .language
        .clone()
        .unwrap_or_else(|| site.config.site.language.clone());
    let mut note = json!({
        "@context": note_context(),
        "id": u.post_object(&post.slug),
        "type": object_type(post),
        "attributedTo": u.actor(),
        "content": content,
        "contentMap": { language: content },
        "url": u.post_page(&post.slug),
        "published": rfc3339(post.published),
        "to": to,
        "cc": cc,
        "tag": tags,
        "attachment": attachments,
        "sensitive": post.sensitive || post.summary.is_some(),
        "summary": post.summary,
        "inReplyTo": post.in_reply_to,
    });
    if let Some(updated) = post.updated {
        note["updated"] = json!(rfc3339(updated));
    }
    if let Some(quote) = &post.quote {
        match &post.quote_consent {
            // FEP-044f: refused or revoked, the quote becomes a plain link with the RE: text.
            Some(crate::posts::QuoteConsent::Refused) => quote::add_link_only(&mut note, quote),
            consent => {
                quote::add(&mut note, quote);
                if let Some(crate::posts::QuoteConsent::Authorized(stamp)) = consent {
                    note["quoteAuthorization"] = json!(stamp);
                }
            }
        }
    }
    if let Some(crate::posts::ReplyApproval::Approved(by)) = &post.reply_approval {
        // GoToSocial 0.19+: the approval its author's Accept gave (`result`); its followers
        // drop a reply to a post that asks for approval without it.
        note["approvedBy"] = json!(by);
    }
    interaction::add(site.config, u, post, &mut note);
    if let Some(group) = audience(post) {
        // FEP-1b12: `audience` names the group; Lemmy reads it first to find the community.
        note["audience"] = json!(group);
    }
    if object_type(post) == "Page" {
        // A community post needs a title (`name`): the post's, or its opening words.
        let title = post
            .title
            .as_deref()
            .map(|t| t.chars().take(MAX_GROUP_TITLE_CHARS).collect::<String>())
            .unwrap_or_else(|| crate::text::text_of(&post.content_html, MAX_GROUP_TITLE_CHARS));
        note["name"] = json!(title);
    }
    note
}

/// `Note`, except for a post to a group: `Page`. Lemmy 1.0 reads a `Create` of a `Note` as a
/// comment when its `inReplyTo` resolves and otherwise as a private message (it fetches `to[0]`
/// as the recipient: that is how it came to fetch the Public collection, issue 10); only `Page`
/// (or `Article`, `Video`, `Event`) becomes a post in a community (lemmy
/// crates/apub/activities/src/activity_lists.rs, create_or_update/note_wrapper.rs,
/// objects/src/protocol/page.rs). Mbin and PieFed read `Page` the same way. Mastodon shows a
/// `Page` as its title and a link to the page.
pub fn object_type(post: &Post) -> &'static str {
    if audience(post).is_some() && post.in_reply_to.is_none() {
        "Page"
    } else {
        "Note"
    }
}

/// A Tombstone for a deleted post (served with 410 Gone).
pub fn tombstone(site: &Site, post: &Post) -> Value {
    let mut t = json!({
        "@context": AS_CONTEXT,
        "id": site.urls.post_object(&post.slug),
        "type": "Tombstone",
        "formerType": object_type(post),
    });
    if let Some(d) = post.deleted_at {
        t["deleted"] = json!(rfc3339(d));
    }
    t
}

/// The Create activity for a post, as listed in the outbox.
pub fn create(site: &Site, post: &Post) -> Value {
    let mut object = note(site, post);
    let context = object
        .as_object_mut()
        .and_then(|o| o.remove("@context"))
        .unwrap_or(json!(AS_CONTEXT));
    let mut activity = json!({
        "@context": context,
        "id": format!("{}#create", site.urls.post_object(&post.slug)),
        "type": "Create",
        "actor": site.urls.actor(),
        "published": rfc3339(post.published),
        "to": object["to"].clone(),
        "cc": object["cc"].clone(),
        "object": object,
    });
    // FEP-1b12 puts `audience` on the activity as well as on its object.
    if let Some(group) = activity["object"].get("audience").cloned() {
        activity["audience"] = group;
    }
    activity
}

/// The Update sent when a post is edited: the same object id with a newer `updated`
/// (PROTOCOL.md §5). `id` is unique per edit, so receivers deduplicate retries but not edits.
pub fn update(site: &Site, post: &Post, id: &str) -> Value {
    let mut activity = create(site, post);
    activity["id"] = json!(id);
    activity["type"] = json!("Update");
    if let Some(updated) = post.updated {
        activity["published"] = json!(rfc3339(updated));
    }
    activity
}

/// The Delete sent when a post is removed: its object is a Tombstone, addressed like the post.
/// `id` is the caller's (a post removed twice needs two ids; see `delivery::fanout`).
pub fn delete(site: &Site, post: &Post, id: &str) -> Value {
    let (to, cc) = addressing(post, site.urls);
    let object = site.urls.post_object(&post.slug);
    let mut activity = json!({
        "@context": AS_CONTEXT,
        "id": id,
        "type": "Delete",
        "actor": site.urls.actor(),
        "to": to,
        "cc": cc,
        "object": {"id": object, "type": "Tombstone"},
    });
    if let Some(d) = post.deleted_at {
        activity["published"] = json!(rfc3339(d));
    }
    activity
}

/// The instance actor's outbox: an actor must have one, and it has nothing in it.
pub fn instance_outbox(site: &Site) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": site.urls.instance_outbox(),
        "type": "OrderedCollection",
        "totalItems": 0,
        "orderedItems": [],
    })
}

/// An OrderedCollection that points at its first page (and last, when there are items).
pub fn collection(id: &str, total: u64, per_page: u32) -> Value {
    let mut c = json!({
        "@context": AS_CONTEXT,
        "id": id,
        "type": "OrderedCollection",
        "totalItems": total,
        "first": Urls::collection_page(id, 1),
    });
    if total > 0 {
        c["last"] = json!(Urls::collection_page(id, last_page(total, per_page)));
    }
    c
}

pub fn last_page(total: u64, per_page: u32) -> u32 {
    total.div_ceil(u64::from(per_page.max(1))).max(1) as u32
}

/// Page `n` (1-based) of a collection.
pub fn collection_page(id: &str, n: u32, total: u64, per_page: u32, items: Vec<Value>) -> Value {
    let mut page = json!({
        "@context": AS_CONTEXT,
        "id": Urls::collection_page(id, n),
        "type": "OrderedCollectionPage",
        "partOf": id,
        "totalItems": total,
        "orderedItems": items,
    });
    if n < last_page(total, per_page) {
        page["next"] = json!(Urls::collection_page(id, n + 1));
    }
    if n > 1 {
        page["prev"] = json!(Urls::collection_page(id, n - 1));
    }
    page
}

/// The WebFinger answer for the owner (PROTOCOL.md §1).
pub fn webfinger(site: &Site) -> Value {
    let u = site.urls;
    json!({
        "subject": format!("acct:{}", site.config.handle()),
        "aliases": [u.actor(), u.home()],
        "links": [
            {"rel": "self", "type": CONTENT_TYPE, "href": u.actor()},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": u.home()},
        ]
    })
}

/// The WebFinger answer for the instance actor (`acct:domain@domain`, as Mastodon does).
pub fn webfinger_instance(site: &Site) -> Value {
    let u = site.urls;
    json!({
        "subject": format!("acct:{}@{}", site.config.domain, site.config.domain),
        "aliases": [u.instance_actor()],
        "links": [{"rel": "self", "type": CONTENT_TYPE, "href": u.instance_actor()}]
    })
}

pub fn host_meta(site: &Site) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<XRD xmlns=\"http://docs.oasis-open.org/ns/xri/xrd-1.0\">\n  <Link rel=\"lrdd\" template=\"{}?resource={{uri}}\"/>\n</XRD>\n",
        crate::posts::markdown::escape(&site.urls.webfinger())
    )
}

pub fn nodeinfo_links(site: &Site) -> Value {
    json!({
        "links": [
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": site.urls.nodeinfo("2.0")},
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": site.urls.nodeinfo("2.1")},
        ]
    })
}

pub fn nodeinfo(site: &Site, version: &str, local_posts: u64) -> Value {
    let mut software = json!({"name": "hortus", "version": env!("CARGO_PKG_VERSION")});
    if version == "2.1" {
        software["homepage"] = json!(site.urls.home());
    }
    json!({
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0"]},
        "openRegistrations": false,
        "usage": {
            "users": {"total": 1, "activeMonth": 1, "activeHalfyear": 1},
            "localPosts": local_posts,
        },
        "metadata": {
            "nodeName": site.config.site_title(),
            "federation": {"mode": match site.config.federation.mode {
                crate::config::FederationMode::Allowlist => "allowlist",
                crate::config::FederationMode::Blocklist => "blocklist",
            }},
        }
    })
}

/// A fresh activity id on our server. Outgoing activities are stored before delivery, so a
/// retry resends the same id and receivers can deduplicate.
pub fn new_activity_id(urls: &Urls) -> String {
    format!("{}/activities/{}", urls.base(), uuid::Uuid::now_v7())
}

/// The Follow as peers expect it embedded in Accept, Reject and Undo: `{id, type, actor, object}`
/// (Threads answered a bare URI with 500).
pub fn follow_object(follow_id: &str, follower: &str, followed: &str) -> Value {
    json!({"id": follow_id, "type": "Follow", "actor": follower, "object": followed})
}

/// Accept or Reject of someone's Follow of the owner.
pub fn answer_follow(urls: &Urls, kind: &str, follower: &str, follow_id: &str) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": new_activity_id(urls),
        "type": kind,
        "actor": urls.actor(),
        "to": [follower],
        "object": follow_object(follow_id, follower, &urls.actor()),
    })
}

/// The owner follows `target`.
pub fn follow(urls: &Urls, follow_id: &str, target: &str) -> Value {
    let mut f = follow_object(follow_id, &urls.actor(), target);
    f["@context"] = json!(AS_CONTEXT);
    f["to"] = json!([target]);
    f
}

/// Undo of the owner's Follow, with the whole Follow embedded.
pub fn undo_follow(urls: &Urls, follow_id: &str, target: &str) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": new_activity_id(urls),
        "type": "Undo",
        "actor": urls.actor(),
        "to": [target],
        "object": follow_object(follow_id, &urls.actor(), target),
    })
}

#[cfg(test)]
mod tests;
