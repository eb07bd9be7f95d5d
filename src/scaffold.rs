//! Creating things on disk for the owner: a new site (`hortus init`), a new post (`hortus new`),
//! and the demo site. Nothing is ever overwritten, and a failed init leaves nothing behind.
//! [`reply`]: `hortus reply URL`, a new post that answers someone, published at once.

pub mod reply;

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::config::{self, CONFIG_FILE, Config, DB_FILE};
use crate::keys;
use crate::posts::slugify;
use crate::times::rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "{0} already exists: refusing to overwrite an existing site\n  fix: choose another --dir, or remove the old site first"
    )]
    Exists(PathBuf),
    #[error("{path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("invalid settings: {0}")]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(
        "{config}: the demo site was made for http://{serves}, not {listen}\n  fix: run `hortus demo --listen {serves}`, or remove {dir} to make a new one"
    )]
    DemoAddress {
        config: String,
        serves: String,
        listen: String,
        dir: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |reason| ScaffoldError::Io {
        path: path.to_path_buf(),
        reason,
    }
}

pub struct InitOptions {
    pub dir: PathBuf,
    pub domain: String,
    pub user: String,
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub listen: Option<String>,
}

pub(crate) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The hortus.toml a new site starts with, documented inline for the owner.
fn config_text(o: &InitOptions, created: &str) -> String {
    let base_url = o
        .base_url
        .clone()
        .unwrap_or_else(|| format!("https://{}", o.domain));
    let listen = o
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let name = o.name.clone().unwrap_or_else(|| o.user.clone());
    format!(
        r#"# Hortus site configuration. Every key is explained in the README.

# Your handle is {user}@{domain_plain}; WebFinger must answer on that domain.
domain = {domain}
# Where the site is reached. Every id and link is built from it: never change it after federating.
base_url = {base_url}
# Address `hortus serve` listens on (put a TLS-terminating proxy in front for https).
listen = {listen}

[user]
name = {user_q}
display_name = {name}
bio = "A small garden on the fediverse."
created = {created}
# avatar = "media/avatar.png"
# header = "media/header.jpg"
# fields = [{{ name = "Website", value = "https://example.net" }}]

[site]
# title = "My garden"
language = "en"
posts_per_page = 20
# privacy_policy = "Markdown text; a sensible default is used when empty"
# children_policy = "Markdown text; a sensible default is used when empty"

[federation]
# allowlist: federate only with servers you add with `hortus allow add DOMAIN` (the default).
# blocklist: federate with everyone except servers you block with `hortus block add DOMAIN`.
mode = "allowlist"
# true: the followers and following collections give their counts only, never who is in them.
hide_social_graph = false
signed_fetch = false
manually_approves_followers = false
# true: `hortus block add user@host` also tells their server (sends Block); false keeps it private.
send_blocks = false
"#,
        user = o.user,
        domain_plain = o.domain,
        domain = toml_string(&o.domain),
        base_url = toml_string(&base_url),
        listen = toml_string(&listen),
        user_q = toml_string(&o.user),
        name = toml_string(&name),
        created = toml_string(created),
    )
}

const HELLO_POST: &str = r#"+++
title = "Hello, garden"
tags = ["hortus"]
+++
This is the first post of a new [Hortus](https://example.net) site. Edit or delete this file in
`content/posts/`, then run `hortus publish`.

Posts are **Markdown**. Write #hashtags and mention people as @someone@example.social.
"#;

/// `hortus init`: a new site in `o.dir`. Refuses to touch an existing site; on failure removes
/// what it created.
pub fn init(o: &InitOptions) -> Result<Config, ScaffoldError> {
    let dir = &o.dir;
    for existing in [CONFIG_FILE, DB_FILE] {
        if dir.join(existing).exists() {
            return Err(ScaffoldError::Exists(dir.join(existing)));
        }
    }
    let now = rfc3339(
        OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::now_utc()),
    );
    let text = config_text(o, &now);
    // Validate before anything touches the disk.
    let config = Config::parse(&text, &dir.join(CONFIG_FILE))?;

    let mut created: Vec<PathBuf> = Vec::new();
    let result = (|| {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            created.push(dir.clone());
        }
        let db_path = dir.join(DB_FILE);
        created.push(db_path.clone());
        created.push(dir.join(format!("{DB_FILE}-wal")));
        created.push(dir.join(format!("{DB_FILE}-shm")));
        let conn = crate::db::open(&db_path)?;
        keys::ensure(&conn, keys::ACTOR)?;
        keys::ensure(&conn, keys::INSTANCE)?;
        drop(conn);
        for sub in ["content/posts", "media"] {
            let p = dir.join(sub);
            if !p.exists() {
                std::fs::create_dir_all(&p).map_err(io(&p))?;
                created.push(p);
            }
        }
        let hello = dir.join("content/posts/hello.md");
        if !hello.exists() {
            std::fs::write(&hello, HELLO_POST).map_err(io(&hello))?;
            created.push(hello);
        }
        // The config goes last: its presence marks a complete site.
        let cfg = dir.join(CONFIG_FILE);
        let tmp = dir.join(".hortus.toml.tmp");
        std::fs::write(&tmp, &text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &cfg).map_err(io(&cfg))?;
        Ok::<(), ScaffoldError>(())
    })();
    if let Err(e) = result {
        for p in created.iter().rev() {
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
        }
        return Err(e);
    }
    Ok(config)
}

/// `hortus new`: a post file with front matter filled in. Returns its path.
pub fn new_post(
    site_dir: &Path,
    title: Option<&str>,
    now: OffsetDateTime,
) -> Result<PathBuf, ScaffoldError> {
    new_post_with(site_dir, title, now, &NewPost::default())
}

/// What a new post file holds beyond its title and date (`hortus reply` fills it in).
#[derive(Debug, Clone, Default)]
pub struct NewPost<'a> {
    /// Words for the file name when there is no title (`reply-to-bob`).
    pub name: Option<&'a str>,
    /// Front matter lines (TOML, each ending in a line break), after the date.
    pub front_matter: &'a str,
    /// The opening of the text.
    pub body: &'a str,
}

/// [`new_post`] with more filled in; the file is created, never overwritten.
pub fn new_post_with(
    site_dir: &Path,
    title: Option<&str>,
    now: OffsetDateTime,
    more: &NewPost,
) -> Result<PathBuf, ScaffoldError> {
    let date = now.date();
    let base = match title.or(more.name).map(slugify).filter(|s| !s.is_empty()) {
        Some(slug) => format!("{date}-{slug}"),
        None => format!(
            "{date}-{:02}{:02}{:02}",
            now.hour(),
            now.minute(),
            now.second()
        ),
    };
    let posts_dir = site_dir.join("content/posts");
    std::fs::create_dir_all(&posts_dir).map_err(io(&posts_dir))?;
    let mut front = String::from("+++\n");
    if let Some(t) = title {
        front.push_str(&format!("title = {}\n", toml_string(t)));
    }
    front.push_str(&format!(
        "date = {}\n{}tags = []\nvisibility = \"public\"   # public | unlisted | followers\n# summary = \"content warning\"\n+++\n\n{}",
        rfc3339(now.replace_nanosecond(0).unwrap_or(now)),
        more.front_matter,
        more.body,
    ));
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{base}.md")
        } else {
            format!("{base}-{n}.md")
        };
        let path = posts_dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(front.as_bytes()).map_err(io(&path))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Err(ScaffoldError::Exists(posts_dir.join(format!("{base}.md"))))
}

const DEMO_POSTS: &[(&str, &str)] = &[
    (
        "welcome.md",
        r#"+++
title = "Welcome to the enclosed garden"
date = "2026-11-01"
tags = ["hortus", "fediverse"]
+++
*Hortus conclusus*: an enclosed garden. This site is one person's corner of the fediverse, under
their own domain, with a gate that opens only for the servers they choose.

- Posts are Markdown files in `content/posts/`.
- `hortus publish` turns them into these pages and into ActivityPub notes.
- Followers on Mastodon, Threads or GoToSocial get them within seconds.

Say hello to @gardener@example.social or browse #gardening.
"#,
    ),
    (
        "markdown-tour.md",
        r#"+++
title = "A tour of what posts can hold"
date = "2026-11-05T09:30:00Z"
tags = ["markdown"]
+++
Posts support **bold**, *italics*, ~~strikethrough~~, `inline code`, "smart quotes" and footnotes[^1].

| Plant    | Sun   | Water  |
|----------|-------|--------|
| Rosemary | full  | little |
| Mint     | part  | lots   |

- [x] Prune the roses
- [ ] Sow the beans

```rust
fn main() {
    println!("Hello, garden!");
}
```

> A garden is a grand teacher.

[^1]: Footnotes land at the bottom of the post.
"#,
    ),
    (
        "morning-light.md",
        r#"+++
date = "2026-11-10T07:15:00Z"
tags = ["photo", "gardening"]
[[images]]
src = "media/demo-garden.png"
alt = "A stylised garden: green hedges under a pale blue sky, with dark soil at the bottom."
+++
Morning light on the hedges. No title on this one: short posts read like notes. #gardening
"#,
    ),
    (
        "compost-opinions.md",
        r#"+++
date = "2026-11-14T18:00:00Z"
summary = "Strong opinions about compost"
tags = ["gardening"]
+++
Hot composting is worth the effort. Turn it weekly and it is done in eight weeks. This post sits
behind a content warning, as Mastodon shows a `summary`.
"#,
    ),
    (
        "unlisted-note.md",
        r#"+++
date = "2026-11-18T12:00:00Z"
visibility = "unlisted"
+++
This note is unlisted: it has a permalink and is delivered to followers, but stays off the home
page and the feed.
"#,
    ),
    (
        "for-followers.md",
        r#"+++
date = "2026-11-20T12:00:00Z"
visibility = "followers"
+++
Followers only: this never appears on a public page, in the outbox or in the feed.
"#,
    ),
];

/// What `hortus init` tells the owner it made, and what to run next.
pub fn init_summary(config: &Config, dir: &Path) -> String {
    format!(
        "Created a Hortus site for @{} in {}\n  config:  {}\n  posts:   {}\n  next:    hortus publish && hortus serve",
        config.handle(),
        dir.display(),
        dir.join(CONFIG_FILE).display(),
        dir.join("content/posts").display(),
    )
}

/// The demo site in `dir` must be served where its `base_url` points: every link of the demo
/// is built from it, so on another address the pages would point at a server that is not there.
pub fn check_demo_address(dir: &Path, base: &url::Url, listen: &str) -> Result<(), ScaffoldError> {
    let serves = format!(
        "{}:{}",
        base.host_str().unwrap_or_default(),
        base.port_or_known_default().unwrap_or(80)
    );
    if serves == listen {
        return Ok(());
    }
    Err(ScaffoldError::DemoAddress {
        config: dir.join(CONFIG_FILE).display().to_string(),
        serves,
        listen: listen.to_string(),
        dir: dir.display().to_string(),
    })
}

/// `hortus demo`: a site in `dir` with sample posts and an avatar, unless one is there already.
/// Returns true when it created the site.
pub fn ensure_demo(dir: &Path, listen: &str) -> Result<bool, ScaffoldError> {
    if dir.join(CONFIG_FILE).exists() {
        return Ok(false);
    }
    let opts = InitOptions {
        dir: dir.to_path_buf(),
        domain: listen.to_string(),
        user: "gardener".into(),
        name: Some("The Gardener".into()),
        base_url: Some(format!("http://{listen}")),
        listen: Some(listen.to_string()),
    };
    init(&opts)?;
    let cfg_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path).map_err(io(&cfg_path))?;
    let text = text
        .replace(
            "bio = \"A small garden on the fediverse.\"",
            "bio = \"Grows herbs, writes about **soil** and software. This is a demo site of Hortus.\"",
        )
        .replace("# avatar = \"media/avatar.png\"", "avatar = \"media/avatar.png\"")
        .replace(
            "# fields = [{ name = \"Website\", value = \"https://example.net\" }]",
            "fields = [{ name = \"Website\", value = \"https://example.net\" }, { name = \"Grows\", value = \"Rosemary, mint, beans\" }]",
        )
        .replace("# title = \"My garden\"", "title = \"The Gardener's notebook\"");
    std::fs::write(&cfg_path, text).map_err(io(&cfg_path))?;
    let assets = [
        ("media/avatar.png", "avatar.png"),
        ("media/demo-garden.png", "demo-garden.png"),
    ];
    for (to, from) in assets {
        if let Some((bytes, _)) = crate::web::static_asset(from) {
            let p = dir.join(to);
            std::fs::write(&p, bytes).map_err(io(&p))?;
        }
    }
    let hello = dir.join("content/posts/hello.md");
    let _ = std::fs::remove_file(&hello);
    for (name, text) in DEMO_POSTS {
        let p = dir.join("content/posts").join(name);
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> InitOptions {
        InitOptions {
            dir: dir.to_path_buf(),
            domain: "example.net".into(),
            user: "alice".into(),
            name: Some("Alice \"A\" Liddell".into()),
            base_url: None,
            listen: None,
        }
    }

    #[test]
    fn init_creates_a_complete_site_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("site");
        let config = init(&opts(&dir)).unwrap();
        assert_eq!(config.base_url.as_str(), "https://example.net/");
        assert_eq!(config.user.display_name, "Alice \"A\" Liddell");
        assert!(dir.join("content/posts/hello.md").is_file());
        let conn = crate::db::open(&dir.join(DB_FILE)).unwrap();
        assert!(keys::load(&conn, keys::ACTOR).is_ok());
        assert!(keys::load(&conn, keys::INSTANCE).is_ok());
        let err = init(&opts(&dir)).unwrap_err();
        assert!(matches!(err, ScaffoldError::Exists(_)), "{err}");
    }

    #[test]
    fn init_with_bad_settings_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("site");
        let mut o = opts(&dir);
        o.user = "not a name".into();
        assert!(init(&o).is_err());
        assert!(!dir.exists());
    }

    #[test]
    fn new_post_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let a = new_post(tmp.path(), Some("Hello there"), now).unwrap();
        let b = new_post(tmp.path(), Some("Hello there"), now).unwrap();
        assert_ne!(a, b);
        let text = std::fs::read_to_string(&a).unwrap();
        let (fm, _) = crate::posts::front_matter::split(&text).unwrap();
        assert_eq!(fm.title.as_deref(), Some("Hello there"));
    }

    #[test]
    fn demo_site_publishes_cleanly() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        assert!(ensure_demo(&dir, "127.0.0.1:8080").unwrap());
        assert!(!ensure_demo(&dir, "127.0.0.1:8080").unwrap());
        let site = crate::app::Site::open(&dir).unwrap();
        let report = site.publish().unwrap();
        assert_eq!(report.created.len(), DEMO_POSTS.len());
    }
}
