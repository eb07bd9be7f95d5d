//! The Fedify 1.5.9 peer of tests/peer/conversation_peer.mjs, as a test drives it: an
//! independent ActivityPub server that signs what it sends and verifies what it receives with
//! its own code. Needs `scripts/install-test-deps.sh` (tests/peer/node_modules).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::client;

/// The Fedify peer (tests/peer/conversation_peer.mjs), killed when dropped. Its stdin stays open
/// while it lives, so it also exits when the test process dies.
pub struct Fedify {
    child: std::process::Child,
    stderr: std::path::PathBuf,
    _dir: tempfile::TempDir,
    pub base: String,
    pub host: String,
    pub actor: String,
}

impl Fedify {
    pub async fn start(ip: &str, user: &str) -> Fedify {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let peer_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer");
        assert!(
            peer_dir.join("node_modules/@fedify/fedify").is_dir(),
            "tests/peer/node_modules is missing @fedify/fedify: run scripts/install-test-deps.sh first"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr = dir.path().join("stderr");
        let keys =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("conversation-peer-{user}.json"));
        let mut child = Command::new("node")
            .current_dir(&peer_dir)
            .args(["conversation_peer.mjs", ip, "--user", user, "--keys"])
            .arg(&keys)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node >= 20"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
        });
        let first = tokio::task::spawn_blocking(move || {
            rx.recv_timeout(std::time::Duration::from_secs(90))
        })
        .await
        .expect("join");
        let line = match first {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the Fedify peer did not start ({other:?}): {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            }
        };
        let info: Value = serde_json::from_str(&line).expect("start line");
        let field = |k: &str| info[k].as_str().expect(k).to_string();
        Fedify {
            base: field("base"),
            host: field("host"),
            actor: field("actor"),
            child,
            stderr,
            _dir: dir,
        }
    }

    /// A control request; `Err` with Fedify's answer unless it is 200.
    pub async fn try_control(&self, path: &str, body: Value) -> Result<Value, String> {
        let resp = client()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status != 200 {
            return Err(format!("{status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        match self.try_control(path, body.clone()).await {
            Ok(v) => v,
            Err(e) => panic!(
                "Fedify {path} {body}: {e}\nFedify's stderr:\n{}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            ),
        }
    }

    pub async fn log(&self) -> Value {
        client()
            .get(format!("{}/_control/log", self.base))
            .send()
            .await
            .expect("log")
            .json()
            .await
            .expect("log JSON")
    }
}

impl Drop for Fedify {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
