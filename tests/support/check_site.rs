//! One deployment for tests/check.rs: a site at `https://HOST` (handle `alice@DOMAIN`), the
//! real `hortus serve` binary on a loopback address, a throwaway CA with certificates for its
//! names, an nginx front on demand, and `hortus check --json` run against it with `--resolve`
//! and `--cacert`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::tls_front::{Certs, Nginx};

/// The handle's domain (and, unless a test splits them, the site's host).
pub const NAME: &str = "garden.test";
/// Text in several scripts, so pages and the Note carry more than ASCII through the proxy.
pub const POST: &str = "+++\nslug = \"niwa\"\ntitle = \"庭 — حديقة\"\n+++\n花が咲いた 🌸 — حديقة مغلقة — 정원 — cafe\u{301} 👩🏽‍🌾\n";

/// A site at `https://HOST` with the handle `alice@DOMAIN`, `hortus serve` running on `ip` and a
/// port from the OS.
pub struct Deployment {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub ip: &'static str,
    pub names: Vec<&'static str>,
    pub upstream: SocketAddr,
    pub certs: Certs,
    serve: Child,
}

impl Deployment {
    pub fn start(ip: &'static str) -> Deployment {
        Deployment::start_at(ip, NAME, NAME)
    }

    pub fn start_at(ip: &'static str, domain: &'static str, host: &'static str) -> Deployment {
        let mut names = vec![domain];
        if host != domain {
            names.push(host);
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("site");
        let upstream = TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .expect("a port");
        hortus::scaffold::init(&hortus::scaffold::InitOptions {
            dir: dir.clone(),
            domain: domain.into(),
            user: "alice".into(),
            name: Some("Alice 🌷".into()),
            base_url: Some(format!("https://{host}")),
            listen: Some(upstream.to_string()),
        })
        .expect("init");
        std::fs::write(dir.join("content/posts/niwa.md"), POST).expect("post");
        // Every request is https, but the name resolves to loopback (`--resolve`): a real
        // deployment's DNS check refuses private addresses, this one must allow them.
        let cfg = dir.join("hortus.toml");
        let text = std::fs::read_to_string(&cfg).expect("config");
        let edited = text.replace(
            "manually_approves_followers = false\n",
            "manually_approves_followers = false\nallow_private_addresses = true\n",
        );
        assert_ne!(text, edited, "hortus.toml changed shape: {text}");
        std::fs::write(&cfg, edited).expect("config");
        let certs = Certs::make(&tmp.path().join("certs"), &names);
        let log = std::fs::File::create(tmp.path().join("serve.log")).expect("log");
        let serve = Command::new(env!("CARGO_BIN_EXE_hortus"))
            .arg("--dir")
            .arg(&dir)
            .arg("serve")
            .env_remove("HORTUS_DIR")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn hortus serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&upstream, Duration::from_millis(100)).is_err() {
            assert!(
                Instant::now() < deadline,
                "hortus serve did not listen on {upstream}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Deployment {
            tmp,
            dir,
            ip,
            names,
            upstream,
            certs,
            serve,
        }
    }

    pub fn front(&self) -> SocketAddr {
        format!("{}:443", self.ip).parse().expect("front address")
    }

    /// nginx serving `server` (a `server { }` block for https://garden.test).
    pub fn nginx(&self, server: &str) -> Nginx {
        Nginx::start_servers(self.tmp.path(), server, &[self.front()])
    }

    /// `hortus check --json` for this site: its exit status and report.
    pub fn check(&self) -> (bool, Value) {
        self.check_trusting(&self.certs.ca)
    }

    /// `hortus check --json`, trusting the CAs in `ca` (a PEM bundle).
    pub fn check_trusting(&self, ca: &Path) -> (bool, Value) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hortus"));
        cmd.arg("--dir").arg(&self.dir).args(["check", "--json"]);
        for name in &self.names {
            cmd.args(["--resolve", &format!("{name}:{}", self.ip)]);
        }
        let out = cmd
            .arg("--cacert")
            .arg(ca)
            .env_remove("HORTUS_DIR")
            .output()
            .expect("run hortus check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {stdout}\n{}\n--- serve:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )
        });
        (out.status.success(), report)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("serve.log")).unwrap_or_default()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
    }
}
