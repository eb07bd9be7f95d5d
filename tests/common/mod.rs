//! Test harness: a real Hortus site in a temp directory, served over real HTTP on a loopback
//! address with a port from the OS.

#![allow(dead_code)]

pub mod cli;
pub mod export;
pub mod fedify;
pub mod peer;
pub mod tls_peer;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[allow(unused_imports)] // each test file uses a few of them
pub use cli::{counts, hortus, hortus_env, hortus_err, hortus_ok};
use hortus::app::{self, Site};
use hortus::scaffold::{self, InitOptions};
use hortus::web::AppState;

pub const AP: &str = "application/activity+json";
pub const LD: &str = "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";
/// What Mastodon sends when it fetches a document.
pub const MASTODON_ACCEPT: &str = "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\", text/html;q=0.1";
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

pub struct TestSite {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub base: String,
    pub listener: Option<TcpListener>,
    /// The delivery workers of a started site, as `hortus serve` runs them.
    pub workers: Option<hortus::delivery::worker::Workers>,
}

impl TestSite {
    /// A fresh site whose base URL is `http://IP:PORT` (the port is bound now and kept).
    pub fn new(ip: &str) -> TestSite {
        Self::with_config(ip, |_| {})
    }

    /// Like [`TestSite::new`], with a chance to edit hortus.toml before anything reads it.
    pub fn with_config(ip: &str, edit: impl FnOnce(&mut String)) -> TestSite {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("site");
        let listener = TcpListener::bind((ip, 0)).expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let base = format!("http://{addr}");
        scaffold::init(&InitOptions {
            dir: dir.clone(),
            domain: addr.to_string(),
            user: "alice".into(),
            name: Some("Alice".into()),
            base_url: Some(base.clone()),
            listen: Some(addr.to_string()),
        })
        .expect("init");
        std::fs::remove_file(dir.join("content/posts/hello.md")).expect("remove example");
        let cfg = dir.join("hortus.toml");
        let mut text = std::fs::read_to_string(&cfg).expect("read config");
        edit(&mut text);
        std::fs::write(&cfg, text).expect("write config");
        TestSite {
            tmp,
            dir,
            base,
            listener: Some(listener),
            workers: None,
        }
    }

    /// A site that may talk to peers on loopback over http (test mode), allowlist by default.
    pub fn federating(ip: &str) -> TestSite {
        Self::federating_with(ip, |_| {})
    }

    pub fn federating_with(ip: &str, edit: impl FnOnce(&mut String)) -> TestSite {
        Self::with_config(ip, |cfg| {
            *cfg = cfg.replace(
                "manually_approves_followers = false\n",
                "manually_approves_followers = false\nallow_private_addresses = true\nallow_http = true\n",
            );
            edit(cfg);
        })
    }

    /// Adds `host` to the allowlist, as `hortus allow add` does.
    pub fn allow(&self, host: &str) {
        hortus::federation::allow_add(&self.db(), host).expect("allow");
    }

    pub fn write_post(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join("content/posts").join(name), text).expect("write post");
    }

    pub fn remove_post(&self, name: &str) {
        std::fs::remove_file(self.dir.join("content/posts").join(name)).expect("remove post");
    }

    pub fn write_media(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.join("media").join(name), bytes).expect("write media");
    }

    pub fn publish(&self) -> hortus::posts::SyncReport {
        Site::open(&self.dir)
            .expect("open")
            .publish()
            .expect("publish")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn db(&self) -> rusqlite::Connection {
        hortus::db::open(&self.dir.join("hortus.db")).expect("db")
    }

    /// Runs `hortus serve` for this site as a separate process on the site's port (the test's
    /// listener is given up), and waits until it answers. `run` numbers the log files when a
    /// test starts it more than once.
    pub async fn spawn_serve(&mut self, run: u32) -> ServeProcess {
        self.spawn_serve_logging(run, "info").await
    }

    /// [`TestSite::spawn_serve`] with another `HORTUS_LOG` filter (e.g. `trace`, to prove what
    /// never reaches the log).
    pub async fn spawn_serve_logging(&mut self, run: u32, filter: &str) -> ServeProcess {
        drop(self.listener.take());
        let name = |ext: &str| self.tmp.path().join(format!("serve-{run}.{ext}"));
        let (stdout, stderr) = (name("out"), name("log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_hortus"))
            .arg("--dir")
            .arg(&self.dir)
            .arg("serve")
            .env("HORTUS_LOG", filter)
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn hortus serve");
        let server = ServeProcess {
            child,
            stdout,
            stderr,
        };
        let client = client();
        for _ in 0..200 {
            if let Ok(resp) = client
                .get(self.url("/users/alice"))
                .header("Accept", AP)
                .send()
                .await
                && resp.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("hortus serve did not start:\n{}", server.log());
    }

    /// Starts the server on the bound port; it stops when the test's runtime ends.
    pub async fn start(&mut self) -> Arc<AppState> {
        let site = Site::open(&self.dir).expect("open site");
        let state = app::state(&site).await.expect("state");
        let listener = self.listener.take().expect("started once");
        let server = app::server(state.clone(), listener).expect("server");
        tokio::spawn(server);
        self.workers = hortus::delivery::worker::start(&state)
            .await
            .expect("delivery workers");
        state
    }
}

/// `hortus serve` as a separate process (the real binary, `HORTUS_LOG=info`), its stdout and
/// stderr kept in files; killed and reaped when dropped, however the test ends.
pub struct ServeProcess {
    pub child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl ServeProcess {
    /// What it printed for the owner (publish reports, URLs).
    pub fn out(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Its log and warnings.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn dir_of(site: &TestSite) -> &Path {
    &site.dir
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn get(url: &str, accept: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("Accept", accept)
        .send()
        .await
        .expect("request")
}

pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let resp = get(url, AP).await;
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.text().await.expect("body");
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{url}: not JSON ({e}), content-type {ct}: {body}"));
    (status, json)
}
