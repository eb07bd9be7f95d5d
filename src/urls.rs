//! Every local URL Hortus publishes is built here, and nowhere else. Ids must never change once
//! published: peers key on them.
//!
//! Layout:
//! - `/users/{name}` the actor (JSON; browsers are sent to `/`), `#main-key` its key
//! - `/users/{name}/{outbox,followers,following}` collections, pages at `…/page/{n}`
//! - `/actor` the instance actor (type Application), `/inbox` the shared inbox
//! - `/posts/{slug}` a post's page; `/posts/{slug}.json` its Note (the object id). The id is a URL
//!   that answers JSON without content negotiation, so a static host can serve it as a file.
//! - `/tags/{tag}`, `/page/{n}`, `/feed.xml`, `/privacy`, `/children`

use url::Url;

#[derive(Debug, Clone)]
pub struct Urls {
    base: String, // without trailing slash
    user: String,
}

impl Urls {
    pub fn new(base_url: &Url, user: &str) -> Urls {
        Urls {
            base: base_url.as_str().trim_end_matches('/').to_string(),
            user: user.to_string(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }
    pub fn home(&self) -> String {
        format!("{}/", self.base)
    }
    pub fn home_page(&self, page: u32) -> String {
        if page <= 1 {
            self.home()
        } else {
            format!("{}/page/{page}", self.base)
        }
    }
    pub fn actor(&self) -> String {
        format!("{}/users/{}", self.base, self.user)
    }
    pub fn actor_key(&self) -> String {
        format!("{}#main-key", self.actor())
    }
    pub fn inbox(&self) -> String {
        format!("{}/inbox", self.actor())
    }
    pub fn shared_inbox(&self) -> String {
        format!("{}/inbox", self.base)
    }
    pub fn outbox(&self) -> String {
        format!("{}/outbox", self.actor())
    }
    pub fn followers(&self) -> String {
        format!("{}/followers", self.actor())
    }
    /// FEP-8fcf's partial followers collection (`activitypub::follower_sync`).
    pub fn followers_synchronization(&self) -> String {
        format!("{}/followers_synchronization", self.actor())
    }
    pub fn following(&self) -> String {
        format!("{}/following", self.actor())
    }
    /// Page `n` (1-based) of a collection.
    pub fn collection_page(collection: &str, n: u32) -> String {
        format!("{collection}/page/{n}")
    }
    pub fn instance_actor(&self) -> String {
        format!("{}/actor", self.base)
    }
    pub fn instance_actor_key(&self) -> String {
        format!("{}#main-key", self.instance_actor())
    }
    /// Always empty: the instance actor only signs fetches, it never posts.
    pub fn instance_outbox(&self) -> String {
        format!("{}/actor/outbox", self.base)
    }
    pub fn instance_inbox(&self) -> String {
        format!("{}/actor/inbox", self.base)
    }
    pub fn post_page(&self, slug: &str) -> String {
        format!("{}/posts/{slug}", self.base)
    }
    pub fn post_object(&self, slug: &str) -> String {
        format!("{}/posts/{slug}.json", self.base)
    }
    pub fn tag(&self, tag: &str) -> String {
        format!("{}/tags/{}", self.base, tag.to_lowercase())
    }
    pub fn tag_page(&self, tag: &str, page: u32) -> String {
        if page <= 1 {
            self.tag(tag)
        } else {
            format!("{}/page/{page}", self.tag(tag))
        }
    }
    pub fn feed(&self) -> String {
        format!("{}/feed.xml", self.base)
    }
    pub fn privacy(&self) -> String {
        format!("{}/privacy", self.base)
    }
    pub fn children(&self) -> String {
        format!("{}/children", self.base)
    }
    pub fn media(&self, path: &str) -> String {
        format!("{}/media/{}", self.base, path.trim_start_matches('/'))
    }
    pub fn stylesheet(&self) -> String {
        format!("{}/static/style.css", self.base)
    }
    pub fn webfinger(&self) -> String {
        format!("{}/.well-known/webfinger", self.base)
    }
    pub fn nodeinfo(&self, version: &str) -> String {
        format!("{}/nodeinfo/{version}", self.base)
    }
}

/// Whether two ids (or URLs) are on the same server: same scheme, host and port. A server speaks
/// only for what it hosts, so this is the one test the inbox, the timeline and conversations
/// apply before trusting an embedded object, an author or a page URL. Unparsable: `false`.
pub fn same_origin(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_built_from_base_url() {
        let u = Urls::new(&Url::parse("http://127.0.0.2:8080").unwrap(), "alice");
        assert_eq!(u.actor(), "http://127.0.0.2:8080/users/alice");
        assert_eq!(u.actor_key(), "http://127.0.0.2:8080/users/alice#main-key");
        assert_eq!(
            u.post_object("hello"),
            "http://127.0.0.2:8080/posts/hello.json"
        );
        assert_eq!(
            Urls::collection_page(&u.outbox(), 2),
            "http://127.0.0.2:8080/users/alice/outbox/page/2"
        );
        assert_eq!(u.tag("Rust"), "http://127.0.0.2:8080/tags/rust");
    }
}
