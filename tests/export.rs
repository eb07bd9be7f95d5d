//! `hortus export` end to end: export a site, serve the files with a real nginx (and Caddy)
//! from Debian using the generated configuration on loopback, and check that it answers the
//! read side as `hortus serve` does — same statuses, content types, CORS and, where the two
//! should agree, the same bytes. Inboxes are proxied to a live `hortus serve`.
//!
//! nginx and Caddy come from `scripts/install-test-deps.sh` (CI runs it first).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hortus::app::{self, Site};
use hortus::export::{self, ExportOptions, ExportReport};
use serde_json::Value;

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
const LONG_SLUG: &str = "a-slug-of-one-hundred-and-twenty-characters-which-is-as-long-as-hortus-allows-and-longer-than-nginx-map-buckets-hold-xyz";

/// A web server started for one test, stopped (by its pid) when dropped.
struct WebServer {
    child: Child,
    log: PathBuf,
    name: &'static str,
}

impl Drop for WebServer {
    /// SIGTERM first: nginx's master then stops its workers (SIGKILL would orphan them).
    fn drop(&mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WebServer {
    /// Waits until `addr` accepts connections; fails with the server's log if it died.
    fn wait_ready(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before serving:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not listen on {addr} within 15 s", self.name);
    }

    /// Sends a signal to the process we started (by its pid).
    fn signal(&self, name: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `nginx -s reload`, by signal to the master we started; returns once the workers that
    /// read the old configuration are gone and new ones serve (a fixed sleep was flaky on a
    /// loaded machine).
    fn reload(&self) {
        let old = self.workers();
        assert!(self.signal("HUP"), "reloading {}", self.name);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let now = self.workers();
            if !now.is_empty() && now.iter().all(|w| !old.contains(w)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let states: Vec<String> = self
            .workers()
            .iter()
            .map(|w| std::fs::read_to_string(format!("/proc/{w}/stat")).unwrap_or_default())
            .collect();
        panic!(
            "{} did not replace its workers {old:?} within 15 s: {states:?}\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// The pids of the processes our server started (nginx's workers), from /proc.
    fn workers(&self) -> Vec<u32> {
        let master = self.child.id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                // The field after the parenthesised command name: state, then the parent pid.
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                        == Some(master)
                })
            })
            .collect()
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn require(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed. Run scripts/install-test-deps.sh (as root: it installs \
             Debian's {name} package), then run the tests again."
        )
    })
}

/// Worker processes may run as `nobody`: the export and its parents must be readable.
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut d = Some(dir);
    while let Some(p) = d {
        if p == Path::new("/") || p == std::env::temp_dir() {
            break;
        }
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        d = p.parent();
    }
}

/// nginx as a child process, with the generated file included in a minimal `http { }`.
fn start_nginx(work: &Path, out: &Path, addr: SocketAddr) -> WebServer {
    let nginx = require("nginx");
    let prefix = work.join("nginx");
    std::fs::create_dir_all(&prefix).unwrap();
    let p = prefix.display();
    let main = prefix.join("main.conf");
    std::fs::write(
        &main,
        format!(
            "worker_processes 1;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    include {};
}}
",
            out.join(export::NGINX_CONF).display()
        ),
    )
    .unwrap();
    open_up(out);
    let log = prefix.join("error.log");
    let child = Command::new(nginx)
        .arg("-c")
        .arg(&main)
        .arg("-p")
        .arg(&prefix)
        .arg("-g")
        .arg(format!(
            "daemon off; pid {p}/nginx.pid; error_log {};",
            log.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut server = WebServer {
        child,
        log,
        name: "nginx",
    };
    server.wait_ready(addr);
    server
}

/// Caddy as a child process, the generated site block imported under test-only globals.
fn start_caddy(work: &Path, out: &Path, addr: SocketAddr) -> WebServer {
    let caddy = require("caddy");
    let dir = work.join("caddy");
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("Caddyfile");
    std::fs::write(
        &main,
        format!(
            "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {}\n}}\nimport {}\n",
            dir.join("data").display(),
            out.join(export::CADDYFILE).display()
        ),
    )
    .unwrap();
    let log = dir.join("caddy.log");
    let child = Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&main)
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start caddy");
    let mut server = WebServer {
        child,
        log,
        name: "caddy",
    };
    server.wait_ready(addr);
    server
}

/// A site whose base URL is the static server's address, with the posts of `tests/site.rs`
/// plus one deleted post; the live `hortus serve` runs on `live_ip` with the same database.
struct Fixture {
    site: TestSite,
    /// Where nginx or Caddy listens: the site's base URL.
    addr: SocketAddr,
    live: String,
    out: PathBuf,
    /// Paths of FEP-044f stamps: one standing, one revoked (410), one never issued.
    stamps: Vec<String>,
    /// One client for the hundreds of requests: building one loads the system's CA store.
    http: reqwest::Client,
}

async fn fixture(static_ip: &str, live_ip: &str) -> Fixture {
    let mut site = TestSite::federating_with(static_ip, |cfg| {
        *cfg = cfg.replace("posts_per_page = 20", "posts_per_page = 2");
        *cfg = cfg.replace(
            "# avatar = \"media/avatar.png\"",
            "avatar = \"media/avatar.png\"",
        );
    });
    site.write_media("avatar.png", include_bytes!("../static/avatar.png"));
    site.write_media("cat.png", include_bytes!("../static/demo-garden.png"));
    site.write_media("secret.png", include_bytes!("../static/demo-garden.png"));
    site.write_post(
        "first.md",
        "+++\ntitle = \"First & best\"\ndate = 2026-01-01T10:00:00Z\ntags = [\"Garden\", \"café\"]\nlanguage = \"en\"\n+++\nHello #Rust world, hi @bob@example.org.\n",
    );
    site.write_post(
        "second.md",
        "+++\ndate = 2026-01-02T10:00:00Z\nsummary = \"spoilers\"\n[[images]]\nsrc = \"media/cat.png\"\nalt = \"A cat in a garden\"\n+++\nSecond post #garden\n",
    );
    site.write_post(
        "third.md",
        "+++\ndate = 2026-01-03T10:00:00Z\n+++\nThird post\n",
    );
    site.write_post(
        "quiet.md",
        "+++\ndate = 2026-01-04T10:00:00Z\nvisibility = \"unlisted\"\ntags = [\"garden\"]\n+++\nQuiet one\n",
    );
    site.write_post(
        "secret.md",
        "+++\ndate = 2026-01-05T10:00:00Z\nvisibility = \"followers\"\ntags = [\"garden\"]\n[[images]]\nsrc = \"media/secret.png\"\nalt = \"private\"\n+++\nSECRET followers text\n",
    );
    site.write_post(
        "gone.md",
        "+++\ndate = 2026-01-06T10:00:00Z\n+++\nSoon deleted\n",
    );
    site.write_post(
        "hushed.md",
        "+++\ndate = 2026-01-07T10:00:00Z\nvisibility = \"followers\"\n+++\nHUSHED and then deleted\n",
    );
    // A slug as long as slugs go: too long for nginx's default map hash buckets.
    site.write_post(
        "long.md",
        &format!("+++\ndate = 2026-01-08T10:00:00Z\nslug = \"{LONG_SLUG}\"\n+++\nLong gone\n"),
    );
    assert_eq!(site.publish().created.len(), 8);
    site.remove_post("gone.md");
    site.remove_post("hushed.md");
    site.remove_post("long.md");
    assert_eq!(site.publish().deleted.len(), 3);

    // The static server takes the site's address; `hortus serve` runs beside it.
    let addr = site
        .listener
        .take()
        .expect("listener")
        .local_addr()
        .unwrap();
    let live_listener = TcpListener::bind((live_ip, 0)).expect("bind live");
    let live = format!("http://{}", live_listener.local_addr().unwrap());
    let state = app::state(&Site::open(&site.dir).unwrap()).await.unwrap();
    tokio::spawn(app::server(state, live_listener).unwrap());
    let stamps = quote_stamps(&site, static_ip, &live).await;

    let out = site.tmp.path().join("out");
    Fixture {
        site,
        addr,
        live,
        out,
        stamps,
        // A fresh connection per request: a kept-alive one would keep talking to the nginx
        // worker that read the configuration before a reload.
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
    }
}

/// Two QuoteRequests for the first post from a signing peer, answered with stamps by the live
/// server; the owner then revokes the second, which `hortus serve` answers 410 from then on.
async fn quote_stamps(site: &TestSite, static_ip: &str, live: &str) -> Vec<String> {
    let peer_ip = format!("127.0.3.{}", static_ip.rsplit('.').next().unwrap());
    let peer = common::peer::Peer::start(&peer_ip, false);
    site.allow(&peer.host);
    let mut stamps = Vec::new();
    for n in ["引用-1", "اقتباس-2"] {
        let quoting = format!("{}/notes/{}", peer.base, urlencode(n));
        let mut request = peer.activity("QuoteRequest", site.url("/posts/first.json").into());
        request["instrument"] = quoting.clone().into();
        // Signed for the site's own Host (the inbox refuses another), sent to `hortus serve`.
        let body = request.to_string();
        let key = hortus::httpsig::load_private_key(&peer.private_pem).unwrap();
        let signed_for = url::Url::parse(&site.url("/inbox")).unwrap();
        let headers = hortus::httpsig::sign_post(
            &signed_for,
            body.as_bytes(),
            AP,
            &peer.key_id,
            &key,
            std::time::SystemTime::now(),
        )
        .unwrap();
        let mut post = reqwest::Client::new()
            .post(format!("{live}/inbox"))
            .header("Content-Type", AP)
            .header("Host", site.base.trim_start_matches("http://"))
            .body(body);
        for (name, value) in headers {
            post = post.header(name, value);
        }
        let answer = post.send().await.expect("POST");
        let status = answer.status();
        assert_eq!(status, 202, "QuoteRequest {n}: {:?}", answer.text().await);
        let token: String = site
            .db()
            .query_row(
                "SELECT token FROM quote_requests WHERE quoting_object = ?1 AND state = 'accepted'",
                [&quoting],
                |r| r.get(0),
            )
            .expect("a stamp");
        stamps.push((quoting, format!("/quote-authorizations/{token}")));
    }
    let out = hortus_ok(dir_of(site), &["quotes", "revoke", &stamps[1].0]);
    assert!(out.contains("revoked"), "{out}");
    let mut paths: Vec<String> = stamps.into_iter().map(|(_, path)| path).collect();
    paths.push("/quote-authorizations/never-issued".into());
    paths
}

impl Fixture {
    fn options(&self) -> ExportOptions {
        ExportOptions {
            out: self.out.clone(),
            upstream: Some(self.live.clone()),
            ..ExportOptions::default()
        }
    }

    async fn export(&self) -> ExportReport {
        let site = Site::open(&self.site.dir).unwrap();
        let opts = self.options();
        tokio::task::spawn_blocking(move || export::export(&site, &opts))
            .await
            .unwrap()
            .expect("export")
    }

    fn url(&self, path: &str) -> String {
        self.site.url(path)
    }
}

/// One answer, reduced to what the two servers must agree on.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    cors: String,
    location: String,
    body: Vec<u8>,
}

async fn fetch(http: &reqwest::Client, base: &str, path: &str, accept: &str) -> Answer {
    let resp = http
        .get(format!("{base}{path}"))
        .header("Accept", accept)
        .send()
        .await
        .expect("request");
    let h = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    Answer {
        status: resp.status().as_u16(),
        content_type: h("content-type"),
        cors: h("access-control-allow-origin"),
        location: h("location"),
        body: resp.bytes().await.unwrap().to_vec(),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every read the live server's tests make, asked of both servers: status, content type, CORS
/// and redirect target must agree, and the bytes too (redirect bodies and the WebFinger 404,
/// which nginx cannot send empty, aside).
async fn same_as_live(f: &Fixture, static_base: &str) {
    let host = f.addr.to_string();
    let wf = "/.well-known/webfinger?resource=";
    let mut checks: Vec<(String, &str)> = Vec::new();
    for resource in [
        format!("acct:alice@{host}"),
        format!("acct:ALICE@{}", host.to_uppercase()),
        format!("alice@{host}"),
        format!("@alice@{host}"),
        f.url("/users/alice"),
        f.url("/"),
        format!("acct:{host}@{host}"),
        f.url("/actor"),
        "acct:nobody".into(),
        format!("acct:bob@{host}"),
        "acct:alice@example.org".into(),
        "https://example.org/users/alice".into(),
    ] {
        checks.push((
            format!("{wf}{}", urlencode(&resource)),
            "application/jrd+json",
        ));
        checks.push((format!("{wf}{resource}"), "*/*"));
    }
    checks.push(("/.well-known/webfinger".into(), "*/*"));
    for path in [
        "/.well-known/host-meta",
        "/.well-known/nodeinfo",
        "/nodeinfo/2.0",
        "/nodeinfo/2.1",
        "/nodeinfo/3.0",
        "/users/alice",
        "/actor",
        "/actor/outbox",
        "/users/alice/outbox",
        "/users/alice/outbox/page/1",
        "/users/alice/outbox/page/2",
        "/users/alice/followers",
        "/users/alice/following",
        "/users/alice/followers/page/1",
        "/users/alice/following/page/1",
        "/users/bob",
        "/posts/first",
        "/posts/first.json",
        "/posts/second",
        "/posts/quiet",
        "/posts/quiet.json",
        "/posts/secret",
        "/posts/secret.json",
        "/posts/gone",
        "/posts/gone.json",
        "/posts/nope",
        "/posts/nope.json",
        "/",
        "/page/2",
        "/page/3",
        "/page/1",
        "/tags/garden",
        "/tags/caf%C3%A9",
        "/tags/rust",
        "/tags/nothing",
        "/feed.xml",
        "/sitemap.xml",
        "/robots.txt",
        "/privacy",
        "/children",
        "/static/style.css",
        "/media/avatar.png",
        "/media/cat.png",
        "/no/such/page",
        "/posts/first/",
        "/@alice",
    ]
    .into_iter()
    .map(String::from)
    .chain([
        format!("/posts/{LONG_SLUG}"),
        format!("/posts/{LONG_SLUG}.json"),
    ])
    .chain(f.stamps.iter().cloned())
    {
        for accept in [BROWSER_ACCEPT, AP, LD, MASTODON_ACCEPT, "*/*"] {
            checks.push((path.clone(), accept));
        }
    }
    let mut failures = Vec::new();
    for (path, accept) in &checks {
        let s = fetch(&f.http, static_base, path, accept).await;
        let l = fetch(&f.http, &f.live, path, accept).await;
        let redirect = (300..400).contains(&l.status);
        let webfinger_404 = path.starts_with(wf) && l.status == 404;
        let mut why = Vec::new();
        if s.status != l.status {
            why.push(format!("status {} ≠ live {}", s.status, l.status));
        }
        if !redirect && !webfinger_404 && s.content_type != l.content_type {
            why.push(format!(
                "content-type {:?} ≠ live {:?}",
                s.content_type, l.content_type
            ));
        }
        if s.cors != l.cors {
            why.push(format!("CORS {:?} ≠ live {:?}", s.cors, l.cors));
        }
        if s.location != l.location {
            why.push(format!("location {:?} ≠ live {:?}", s.location, l.location));
        }
        if !redirect && !webfinger_404 && s.body != l.body {
            why.push(format!(
                "body differs ({} vs {} bytes)",
                s.body.len(),
                l.body.len()
            ));
        }
        if !why.is_empty() {
            failures.push(format!("GET {path} [{accept}]: {}", why.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} answers differ from hortus serve:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n")
    );
}

async fn json_at(http: &reqwest::Client, base: &str, path: &str, accept: &str) -> (u16, Value) {
    let a = fetch(http, base, path, accept).await;
    let v = serde_json::from_slice(&a.body).unwrap_or_else(|e| {
        panic!(
            "{path}: not JSON ({e}): {}",
            String::from_utf8_lossy(&a.body)
        )
    });
    (a.status, v)
}

/// The read-side checks of `tests/site.rs` that matter to peers, against the static server.
async fn federates(f: &Fixture, base: &str) {
    let host = f.addr.to_string();
    // WebFinger → actor.
    let (status, jrd) = json_at(
        &f.http,
        base,
        &format!("/.well-known/webfinger?resource=acct:alice@{host}"),
        "application/jrd+json",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(jrd["subject"], format!("acct:alice@{host}"));
    let actor_url = jrd["links"][0]["href"].as_str().unwrap().to_string();
    assert_eq!(actor_url, f.url("/users/alice"));
    let (_, actor) = json_at(&f.http, base, "/users/alice", MASTODON_ACCEPT).await;
    assert_eq!(actor["id"], actor_url);
    assert_eq!(actor["inbox"], f.url("/users/alice/inbox"));
    assert_eq!(actor["icon"]["url"], f.url("/media/avatar.png"));
    let browser = fetch(&f.http, base, "/users/alice", BROWSER_ACCEPT).await;
    assert_eq!(
        (browser.status, browser.location.as_str()),
        (303, f.url("/").as_str())
    );

    // The Note by Accept header, and by the page's alternate link (what Mastodon follows on a
    // host that cannot negotiate).
    let page = fetch(&f.http, base, "/posts/first", BROWSER_ACCEPT).await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body).unwrap();
    let marker = "<link rel=\"alternate\" type=\"application/activity+json\" href=\"";
    let start = html.find(marker).expect("alternate link") + marker.len();
    let alternate = &html[start..start + html[start..].find('"').unwrap()];
    assert_eq!(alternate, f.url("/posts/first.json"));
    let (_, by_accept) = json_at(&f.http, base, "/posts/first", AP).await;
    let (_, by_link) = json_at(
        &f.http,
        base,
        &alternate[f.site.base.len()..],
        BROWSER_ACCEPT,
    )
    .await;
    assert_eq!(by_accept, by_link);
    assert_eq!(by_link["id"], alternate);
    assert_eq!(by_link["type"], "Note");
    assert_eq!(by_link["to"], serde_json::json!([PUBLIC]));

    // The outbox lists public and unlisted posts, never followers-only ones.
    let (_, outbox) = json_at(&f.http, base, "/users/alice/outbox", AP).await;
    assert_eq!(outbox["totalItems"], 4);
    let (_, p1) = json_at(&f.http, base, "/users/alice/outbox/page/1", AP).await;
    assert_eq!(
        p1["orderedItems"][0]["object"]["id"],
        f.url("/posts/quiet.json")
    );

    // The feed, a 404 and a 410.
    let feed = fetch(&f.http, base, "/feed.xml", "*/*").await;
    assert!(feed.content_type.starts_with("application/atom+xml"));
    assert_eq!(
        String::from_utf8_lossy(&feed.body)
            .matches("<entry>")
            .count(),
        2
    );
    assert_eq!(fetch(&f.http, base, "/posts/nope", AP).await.status, 404);
    let missing = fetch(&f.http, base, "/no/such/page", BROWSER_ACCEPT).await;
    assert_eq!(missing.status, 404);
    assert!(String::from_utf8_lossy(&missing.body).contains("Not found"));
    let (status, tomb) = json_at(&f.http, base, "/posts/gone.json", "*/*").await;
    assert_eq!(status, 410);
    assert_eq!(tomb["type"], "Tombstone");
    assert_eq!(tomb["id"], f.url("/posts/gone.json"));
    assert_eq!(
        fetch(&f.http, base, "/posts/gone", BROWSER_ACCEPT)
            .await
            .status,
        410
    );
    // A deleted followers-only post: `hortus serve` answers 410 with a Tombstone, the export
    // leaves no trace of it (a Tombstone would confirm the slug existed).
    assert_eq!(
        fetch(&f.http, base, "/posts/hushed.json", AP).await.status,
        404
    );
    assert_eq!(
        fetch(&f.http, &f.live, "/posts/hushed.json", AP)
            .await
            .status,
        410
    );

    // The inboxes reach `hortus serve`: an unsigned POST is its 401, not the web server's 405.
    for inbox in ["/inbox", "/users/alice/inbox", "/actor/inbox"] {
        let resp = client()
            .post(format!("{base}{inbox}"))
            .header("Content-Type", AP)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{inbox} proxied to hortus serve");
    }
}

/// Nothing from a followers-only post is in the export, not even its slug.
fn nothing_gated(out: &Path) {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, files);
            } else {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(out, &mut files);
    for file in files {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        let name = file.display().to_string();
        for needle in [
            "SECRET",
            "HUSHED",
            "/posts/secret",
            "/posts/hushed",
            "secret.png",
        ] {
            assert!(!text.contains(needle), "{needle} leaked into {name}");
        }
        assert!(
            !name.contains("secret") && !name.contains("hushed"),
            "{name}"
        );
    }
}

/// The standing stamp is served as the live server serves it; the revoked one answers 410
/// with a Tombstone (FEP-044f: the quoting server re-checks it and drops the quote).
async fn stamps_stand_or_are_gone(f: &Fixture, base: &str) {
    for accept in [MASTODON_ACCEPT, BROWSER_ACCEPT] {
        let (status, stamp) = json_at(&f.http, base, &f.stamps[0], accept).await;
        assert_eq!(
            (status, stamp["type"].as_str()),
            (200, Some("QuoteAuthorization"))
        );
        let (status, tomb) = json_at(&f.http, base, &f.stamps[1], accept).await;
        assert_eq!(
            (status, tomb["type"].as_str(), tomb["formerType"].as_str()),
            (410, Some("Tombstone"), Some("QuoteAuthorization")),
            "{}",
            f.stamps[1]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_serves_the_export_as_hortus_serve_would() {
    let f = fixture("127.0.0.7", "127.0.0.8").await;
    let report = f.export().await;
    assert_eq!(
        report.written.len(),
        report.files,
        "first export writes everything"
    );
    assert!(report.removed.is_empty());
    nothing_gated(&f.out);
    let work = f.site.tmp.path().to_path_buf();
    let nginx = start_nginx(&work, &f.out, f.addr);
    let base = f.site.base.clone();
    same_as_live(&f, &base).await;
    federates(&f, &base).await;
    stamps_stand_or_are_gone(&f, &base).await;

    // Edit one post: only what shows it is rewritten.
    f.site.write_post(
        "third.md",
        "+++\ndate = 2026-01-03T10:00:00Z\n+++\nThird post, edited\n",
    );
    assert_eq!(f.site.publish().updated.len(), 1);
    let report = f.export().await;
    let mut expected = vec![
        "index.html",                     // lists it
        "feed.xml",                       // lists it
        "sitemap.xml",                    // its lastmod
        "posts/third.html",               // itself
        "posts/third.json",               // its Note
        "users/alice/outbox/page/1.json", // its Create
    ];
    expected.sort();
    assert_eq!(report.written, expected, "{report:?}");
    assert!(report.removed.is_empty());
    assert_eq!(report.unchanged, report.files - expected.len());
    let (_, note) = json_at(&f.http, &base, "/posts/third", AP).await;
    assert!(note["content"].as_str().unwrap().contains("edited"));

    // Delete it: its files go, a Tombstone takes their place, and after a reload (as the
    // generated file says) its URLs answer 410.
    f.site.remove_post("third.md");
    assert_eq!(f.site.publish().deleted.len(), 1);
    let report = f.export().await;
    // The home page now fits on one page.
    assert_eq!(
        report.removed,
        vec!["page/2.html", "posts/third.html", "posts/third.json"]
    );
    for file in [
        "_gone/posts/third.html",
        "_gone/posts/third.json",
        export::NGINX_CONF,
    ] {
        assert!(
            report.written.iter().any(|w| w == file),
            "{file} in {report:?}"
        );
    }
    nginx.reload();
    assert_eq!(
        fetch(&f.http, &base, "/posts/third", BROWSER_ACCEPT)
            .await
            .status,
        410
    );
    let (status, tomb) = json_at(&f.http, &base, "/posts/third", AP).await;
    assert_eq!((status, tomb["type"].as_str()), (410, Some("Tombstone")));
    same_as_live(&f, &base).await;

    // Nothing changed: nothing written.
    let report = f.export().await;
    assert!(
        report.written.is_empty() && report.removed.is_empty(),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn caddy_serves_the_export_as_hortus_serve_would() {
    let f = fixture("127.0.0.9", "127.0.0.10").await;
    f.export().await;
    let work = f.site.tmp.path().to_path_buf();
    let _caddy = start_caddy(&work, &f.out, f.addr);
    let base = f.site.base.clone();
    same_as_live(&f, &base).await;
    federates(&f, &base).await;
    stamps_stand_or_are_gone(&f, &base).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sitemap_lists_public_pages_only() {
    let f = fixture("127.0.0.11", "127.0.0.12").await;
    let xml = String::from_utf8(fetch(&f.http, &f.live, "/sitemap.xml", "*/*").await.body).unwrap();
    assert!(xml.starts_with("<?xml"));
    for present in [
        "/posts/first<",
        "/posts/second<",
        "/tags/garden<",
        "/privacy<",
        "/children<",
    ] {
        assert!(xml.contains(present), "{present} in {xml}");
    }
    for absent in [
        "/posts/quiet",
        "/posts/secret",
        "/posts/gone",
        "/posts/hushed",
    ] {
        assert!(!xml.contains(absent), "{absent} in {xml}");
    }
    let robots =
        String::from_utf8(fetch(&f.http, &f.live, "/robots.txt", "*/*").await.body).unwrap();
    assert!(robots.contains(&format!("Sitemap: {}/sitemap.xml", f.site.base)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_reports_one_json_line_and_refuses_foreign_directories() {
    let f = fixture("127.0.0.13", "127.0.0.14").await;
    let run = |out: &Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hortus"))
            .arg("--dir")
            .arg(&f.site.dir)
            .arg("export")
            .arg(out)
            .args(extra)
            .output()
            .expect("run hortus export")
    };
    let out = run(&f.out, &["--upstream", "127.0.0.1:9"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["written"], report["files"]);
    assert_eq!(report["removed"], 0);
    let nginx_conf = std::fs::read_to_string(f.out.join(export::NGINX_CONF)).unwrap();
    assert!(nginx_conf.contains("proxy_pass http://127.0.0.1:9;"));
    assert!(nginx_conf.contains(&format!(
        "root {};",
        f.out.canonicalize().unwrap().display()
    )));
    let redirects = std::fs::read_to_string(f.out.join(export::REDIRECTS)).unwrap();
    assert!(redirects.contains("/posts/gone.json /_gone/posts/gone.json 410"));
    assert!(!redirects.contains("hushed"));

    let again: Value =
        serde_json::from_slice(&run(&f.out, &["--upstream", "127.0.0.1:9"]).stdout).unwrap();
    assert_eq!(again["written"], 0);
    assert_eq!(again["unchanged"], report["files"]);

    let foreign = f.site.tmp.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("index.html"), "mine").unwrap();
    let refused = run(&foreign, &[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(foreign.join("index.html")).unwrap(),
        "mine"
    );
}
