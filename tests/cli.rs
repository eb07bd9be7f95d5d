//! The command line as users script it: exit codes, messages that name the file and line.

use std::path::Path;
use std::process::{Command, Output};

fn hortus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hortus"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("HORTUS_LOG", "warn")
        .output()
        .expect("run hortus")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn init_new_publish_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    let out = hortus(
        &dir,
        &[
            "init",
            "--domain",
            "example.net",
            "--user",
            "alice",
            "--name",
            "Alice",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("@alice@example.net"));

    let again = hortus(
        &dir,
        &["init", "--domain", "example.net", "--user", "alice"],
    );
    assert!(!again.status.success());
    assert!(
        text(&again).contains("refusing to overwrite"),
        "{}",
        text(&again)
    );

    let new = hortus(&dir, &["new", "--title", "My first post"]);
    assert!(new.status.success(), "{}", text(&new));
    let path = String::from_utf8_lossy(&new.stdout).trim().to_string();
    assert!(path.ends_with("-my-first-post.md"), "{path}");
    assert!(Path::new(&path).is_file());

    let publish = hortus(&dir, &["publish"]);
    assert!(publish.status.success(), "{}", text(&publish));
    assert!(text(&publish).contains("2 created"), "{}", text(&publish));
    let twice = hortus(&dir, &["publish"]);
    assert!(
        text(&twice).contains("0 created, 0 updated, 0 deleted, 2 unchanged"),
        "{}",
        text(&twice)
    );
}

#[test]
fn bad_front_matter_names_file_line_and_fix_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    assert!(
        hortus(
            &dir,
            &["init", "--domain", "example.net", "--user", "alice"]
        )
        .status
        .success()
    );
    std::fs::write(
        dir.join("content/posts/broken.md"),
        "+++\ntitle = \"Broken\"\ndate = \"yesterday\"\n+++\nbody\n",
    )
    .unwrap();
    let out = hortus(&dir, &["publish"]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("content/posts/broken.md:3:"), "{msg}");
    assert!(msg.contains("fix:"), "{msg}");
    assert!(msg.contains("nothing was published"), "{msg}");
    let conn = hortus::db::open(&dir.join("hortus.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "the good post was not half-published either");
}

#[test]
fn bad_config_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    assert!(
        hortus(
            &dir,
            &["init", "--domain", "example.net", "--user", "alice"]
        )
        .status
        .success()
    );
    let cfg = dir.join("hortus.toml");
    let text_cfg = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text_cfg.replace("mode = \"allowlist\"", "mode = \"open\""),
    )
    .unwrap();
    let out = hortus(&dir, &["publish"]);
    assert!(!out.status.success());
    let msg = text(&out);
    let line = std::fs::read_to_string(&cfg)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("mode ="))
        .unwrap()
        + 1;
    assert!(msg.contains(&format!("hortus.toml:{line}:")), "{msg}");
}

#[test]
fn missing_site_explains_how_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = hortus(tmp.path(), &["serve"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("hortus init"), "{}", text(&out));
}

#[test]
fn every_command_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in ["init", "new", "publish", "serve", "demo"] {
        let out = hortus(tmp.path(), &[cmd, "--help"]);
        assert!(out.status.success(), "{cmd}");
        assert!(text(&out).contains("Usage"), "{cmd}");
    }
}
