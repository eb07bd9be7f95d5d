//! An unmodified snac2 (Debian's package) as a live peer: a fresh data directory per run, its
//! `httpd` as a child process, its command line to act, and its data (plain JSON files) to see
//! what it stored. snac 2.75 set-up takes well under a second, so nothing is cached between runs:
//! every run starts from `snac init` and is clean by construction.

#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Snac {
    pub dir: PathBuf,
    pub user: String,
    /// The web password `snac adduser` printed (HTTP basic auth on /USER/admin).
    pub password: String,
    /// Where `snac httpd` listens (plain http; the TLS front proxies to it).
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

fn snac_cmd(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new("snac");
    cmd.arg(args[0]).arg(dir).args(&args[1..]);
    cmd
}

impl Snac {
    /// `snac init` (host `host`, https, listening on `ip` and a port the OS gave) and
    /// `snac adduser USER`, in `work/snac`.
    pub fn create(work: &Path, host: &str, ip: &str, user: &str) -> Snac {
        let dir = work.join("snac");
        let port = TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port for snac")
            .port();
        // Answers to: network address, port, host name, URL prefix, admin e-mail.
        let answers = format!("{ip}\n{port}\n{host}\n\nadmin@{host}\n");
        let mut init = Command::new("snac")
            .arg("init")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run snac init");
        init.stdin
            .take()
            .expect("stdin")
            .write_all(answers.as_bytes())
            .expect("answer snac init");
        let out = init.wait_with_output().expect("snac init");
        assert!(
            out.status.success() && dir.join("server.json").is_file(),
            "snac init failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Log what it does (1 = requests and queue results), for the failure messages below.
        let cfg_path = dir.join("server.json");
        let mut cfg: Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("server.json"))
                .expect("server.json is JSON");
        cfg["dbglevel"] = 1.into();
        std::fs::write(&cfg_path, cfg.to_string()).expect("write server.json");

        let out = snac_cmd(&["adduser", user], &dir)
            .stdin(Stdio::null())
            .output()
            .expect("run snac adduser");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let password = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("User password is "))
            .unwrap_or_else(|| panic!("no password in snac adduser's output: {text}"))
            .trim()
            .to_string();
        Snac {
            log: work.join("snac-httpd.log"),
            dir,
            user: user.into(),
            password,
            addr: SocketAddr::new(ip.parse().expect("ip"), port),
            child: None,
        }
    }

    /// `snac httpd DIR`, waited for until it accepts connections.
    pub fn start(&mut self) {
        let log = std::fs::File::create(&self.log).expect("snac log");
        let child = Command::new("snac")
            .arg("httpd")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start snac httpd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("snac httpd exited ({status}):\n{}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!(
            "snac httpd did not listen on {} in 10 s:\n{}",
            self.addr,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `snac COMMAND DIR USER ARGS…`; panics with its output when it fails.
    pub fn cli(&self, command: &str, args: &[&str]) -> String {
        let mut all = vec![command, self.user.as_str()];
        all.extend_from_slice(args);
        let out = snac_cmd(&all, &self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run snac");
        assert!(
            out.status.success(),
            "snac {all:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `snac queue DIR USER`: sends what the user's queue holds now.
    pub fn flush(&self) -> String {
        self.cli("queue", &[])
    }

    /// Every object snac stored (`object/XX/HASH.json`), parsed.
    pub fn objects(&self) -> Vec<Value> {
        json_files(&self.dir.join("object"))
    }

    /// The stored object whose `id` is `id`.
    pub fn object(&self, id: &str) -> Option<Value> {
        self.objects().into_iter().find(|o| o["id"] == id)
    }

    /// The JSON files of one of the user's folders (`followers`, `following`, `queue`…).
    pub fn user_files(&self, folder: &str) -> Vec<Value> {
        json_files(&self.dir.join("user").join(&self.user).join(folder))
    }

    /// The actor URL of the user.
    pub fn actor(&self, host: &str) -> String {
        format!("https://{host}/{}", self.user)
    }
}

/// Parsed `*.json` files under `dir`, recursively; files being written (not JSON yet) skipped.
fn json_files(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(json_files(&path));
        } else if path.extension().is_some_and(|x| x == "json")
            && let Ok(v) = serde_json::from_slice(&std::fs::read(&path).unwrap_or_default())
        {
            out.push(v);
        }
    }
    out
}

impl Drop for Snac {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
