//! Running Hortus as a service (issue 16): the systemd unit `hortus service` prints, checked by
//! `systemd-analyze verify` where systemd exists, and the log lines of the real binary when
//! stderr is a file (no colour codes), JSON (`--log-format json`) and a terminal.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestSite;

fn hortus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hortus"))
}

#[test]
fn service_prints_a_hardened_unit_that_systemd_analyze_accepts() {
    let site = TestSite::new("127.0.0.2");
    let parent = site.dir.parent().unwrap();
    // A relative --dir still gives absolute paths in the unit.
    let out = hortus()
        .current_dir(parent)
        .args(["--dir", "site", "service", "--user", "hortus"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = String::from_utf8(out.stdout).unwrap();
    let dir = site.dir.canonicalize().unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_hortus"))
        .canonicalize()
        .unwrap();
    let lines: Vec<&str> = unit.lines().collect();
    for expected in [
        "User=hortus".to_string(),
        format!("ExecStart={} --dir {} serve", exe.display(), dir.display()),
        format!("WorkingDirectory={}", dir.display()),
        format!("ReadWritePaths={}", dir.display()),
        "ProtectSystem=strict".into(),
        "NoNewPrivileges=true".into(),
        "PrivateTmp=true".into(),
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX".into(),
        "MemoryMax=512M".into(),
        "Restart=on-failure".into(),
        "KillSignal=SIGTERM".into(),
        "WantedBy=multi-user.target".into(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "missing {expected:?}:\n{unit}"
        );
    }
    // systemd must wait longer than the 11 s SIGTERM grace before it kills.
    let stop = lines
        .iter()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse::<u32>().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(stop > 11, "{stop}");

    // Root is refused, with the fix.
    let root = hortus()
        .args([
            "--dir",
            &site.dir.to_string_lossy(),
            "service",
            "--user",
            "root",
        ])
        .output()
        .unwrap();
    assert!(!root.status.success());
    assert!(String::from_utf8_lossy(&root.stderr).contains("useradd --system"));

    let Ok(analyze) = which("systemd-analyze") else {
        // CI installs it (scripts/install-test-deps.sh): there a missing tool is a failure.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is not installed: run scripts/install-test-deps.sh"
        );
        eprintln!(
            "SKIPPED systemd-analyze verify: systemd-analyze is not installed (apt-get install systemd)"
        );
        return;
    };
    let file = site.tmp.path().join("hortus.service");
    std::fs::write(&file, &unit).unwrap();
    let verify = Command::new(analyze)
        .arg("verify")
        // Off a terminal it logs to the journal otherwise, and stderr would prove nothing.
        .env("SYSTEMD_LOG_TARGET", "console")
        .arg(&file)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&verify.stderr);
    // It exits 0 on directives it merely ignores: any word on stderr is a failure too.
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify:\n{complaints}\n{unit}"
    );
    // And it does complain about a unit systemd would half-ignore: the check is real.
    let broken = site.tmp.path().join("broken.service");
    std::fs::write(&broken, unit.replace("MemoryMax=512M", "MemoryMax=lots")).unwrap();
    let verify = Command::new(which("systemd-analyze").unwrap())
        .arg("verify")
        // Off a terminal it logs to the journal otherwise, and stderr would prove nothing.
        .env("SYSTEMD_LOG_TARGET", "console")
        .arg(&broken)
        .output()
        .unwrap();
    let complaint = String::from_utf8_lossy(&verify.stderr);
    assert!(
        complaint.contains("broken.service:") && complaint.contains("'lots'"),
        "{complaint}"
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// Runs `hortus serve` with `extra` flags and stderr to a file, sends it one unsigned POST (a
/// refusal: one log line) and SIGTERM; returns what it logged.
async fn serve_log(extra: &[&str]) -> String {
    let mut site = TestSite::new("127.0.0.2");
    site.write_post(
        "nikki.md",
        "+++\ntitle = \"日記 — يوميات 📓\"\n+++\nHello 世界\n",
    );
    drop(site.listener.take());
    let log = site.tmp.path().join("serve.log");
    let mut child = hortus()
        .args(extra)
        .arg("--dir")
        .arg(&site.dir)
        .arg("serve")
        .env("HORTUS_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let client = common::client();
    let mut up = false;
    for _ in 0..200 {
        if client.get(site.url("/users/alice")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "serve did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let resp = client
        .post(site.url("/inbox"))
        .header("Content-Type", common::AP)
        .body(r#"{"type":"Follow","actor":"https://例え.jp/users/ユーザー"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "stopped cleanly on SIGTERM");
    String::from_utf8(std::fs::read(&log).unwrap()).expect("the log is UTF-8")
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_to_a_file_are_plain_text_without_escape_codes() {
    let log = serve_log(&[]).await;
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{log:?}"
    );
    let refused = log
        .lines()
        .find(|l| l.contains("inbox refused a request"))
        .unwrap_or_else(|| panic!("no refusal line:\n{log}"));
    assert!(
        refused.contains(" INFO ") || refused.contains(" WARN "),
        "{refused}"
    );
    assert!(refused.contains("check=\"signature syntax\""), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_format_json_writes_one_object_per_line() {
    let log = serve_log(&["--log-format", "json"]).await;
    assert!(!log.contains('\u{1b}'));
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{log}")))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "inbox refused a request"
                && l["check"] == "signature syntax"
                && l["status"] == 401),
        "the event's fields are top-level keys: {log}"
    );
    for line in &lines {
        assert!(line["level"].is_string(), "{line}");
        assert!(line["message"].is_string(), "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap()
            .contains("inbox refused a request")),
        "{log}"
    );

    // The error that ends a command is a log line too, for the collector.
    let out = hortus()
        .args([
            "--log-format",
            "json",
            "--dir",
            "/nonexistent/站点",
            "queue",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/站点"),
        "{stderr}"
    );
}

#[test]
fn logs_on_a_terminal_are_coloured() {
    // script(1) gives the command a pseudo-terminal.
    let Ok(script) = which("script") else {
        eprintln!("SKIPPED: script(1) is not installed (util-linux)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // `init` opens a new database: its migration logs a line at INFO.
    let init = format!(
        "{} --dir {}/site init --domain example.net --user alice",
        env!("CARGO_BIN_EXE_hortus"),
        tmp.path().display()
    );
    let out = Command::new(script)
        .args(["-qec", &init, "/dev/null"])
        .env("HORTUS_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("migrated"))
        .unwrap_or_else(|| panic!("no log line on the terminal:\n{text:?}"));
    assert!(line.contains('\u{1b}'), "colour on a terminal: {line:?}");
}
