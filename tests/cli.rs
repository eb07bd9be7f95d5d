//! The command line as users script it: exit codes, messages that name the file and line.

mod common;

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

/// Issue 9.3: one Japanese sentence with `&` panicked every path that builds the post's Note.
#[test]
fn publish_and_export_posts_of_multi_script_text_with_ampersands() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_site(&tmp, "");
    std::fs::write(
        dir.join("content/posts/kansai.md"),
        "+++\ntitle = \"東京&大阪府\"\n+++\n東京&大阪府 — مرحبا & שלום 👩‍👩‍👧 e\u{301}&#x1F600;\n",
    )
    .unwrap();
    let long: String = "東京&大阪府、京都&奈良。مرحبا & 👩‍👩‍👧 ".repeat(40);
    std::fs::write(dir.join("content/posts/long.md"), format!("{long}\n")).unwrap();
    let out = hortus(&dir, &["publish"]);
    assert!(out.status.success(), "{}", text(&out));
    let site = tmp.path().join("out");
    let out = hortus(&dir, &["export", site.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let notes: Vec<String> = walk(&site)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|t| t.contains("\"Note\"") && t.contains("東京&amp;大阪府"))
        .collect();
    assert!(notes.len() >= 2, "both Notes exported: {}", notes.len());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
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
    assert!(msg.contains("fix: use one of the values"), "{msg}");

    // A syntax slip and a misspelt key: each named by line, each with its fix.
    for (bad, fix) in [
        ("domain = example.net", "fix: fix the TOML syntax"),
        (
            "domian = \"example.net\"",
            "fix: remove this key or correct its spelling",
        ),
    ] {
        std::fs::write(&cfg, text_cfg.replace("domain = \"example.net\"", bad)).unwrap();
        let msg = text(&hortus(&dir, &["publish"]));
        let line = text_cfg
            .lines()
            .position(|l| l.starts_with("domain ="))
            .unwrap()
            + 1;
        assert!(
            msg.contains(&format!("hortus.toml:{line}:")),
            "{bad}: {msg}"
        );
        assert!(msg.contains(fix), "{bad}: {msg}");
    }
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
    for cmd in [
        "init",
        "new",
        "publish",
        "serve",
        "demo",
        "allow",
        "block",
        "knocks",
        "followers",
        "follow",
        "unfollow",
        "following",
    ] {
        let out = hortus(tmp.path(), &[cmd, "--help"]);
        assert!(out.status.success(), "{cmd}");
        assert!(text(&out).contains("Usage"), "{cmd}");
    }
}

fn init_site(tmp: &tempfile::TempDir, extra: &str) -> std::path::PathBuf {
    let dir = tmp.path().join("site");
    assert!(
        hortus(
            &dir,
            &["init", "--domain", "example.net", "--user", "alice"]
        )
        .status
        .success()
    );
    if !extra.is_empty() {
        let cfg = dir.join("hortus.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(
            &cfg,
            text.replace("manually_approves_followers = false", extra),
        )
        .unwrap();
    }
    dir
}

#[test]
fn allow_and_block_lists_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_site(&tmp, "");
    let out = hortus(&dir, &["allow", "add", "Mastodon.Social"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("allowed mastodon.social"),
        "normalised: {}",
        text(&out)
    );
    let out = hortus(&dir, &["allow", "add", "*.example.org"]);
    assert!(out.status.success(), "{}", text(&out));
    let list = text(&hortus(&dir, &["allow", "list"]));
    assert!(
        list.contains("mastodon.social") && list.contains("*.example.org"),
        "{list}"
    );

    let out = hortus(&dir, &["allow", "add", "not a domain!"]);
    assert!(!out.status.success(), "junk is refused");

    let blocks = tmp.path().join("blocks.csv");
    std::fs::write(
        &blocks,
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\nbad.example,suspend,true,true,spam,false\nmeh.example,noop,false,false,,false\nobf*.example,suspend,true,true,,true\n",
    )
    .unwrap();
    let out = hortus(&dir, &["block", "import", blocks.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 added"), "{}", text(&out));
    assert!(text(&hortus(&dir, &["block", "list"])).contains("bad.example"));

    let out = hortus(&dir, &["allow", "remove", "mastodon.social"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&hortus(&dir, &["allow", "list"])).contains("mastodon.social"));
}

#[test]
fn knocks_and_followers_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_site(&tmp, "manually_approves_followers = true");
    assert!(text(&hortus(&dir, &["knocks"])).contains("No one has knocked"));
    {
        let conn = hortus::db::open(&dir.join("hortus.db")).unwrap();
        hortus::federation::record_knock(
            &conn,
            "knocker.example",
            Some("https://knocker.example/u/x"),
            Some("Follow"),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
               VALUES ('https://friend.example/u/bob', 'friend.example', 'https://friend.example/u/bob/inbox', 'bob@friend.example', '{}', '2026-01-01T00:00:00Z');
             INSERT INTO followers (actor_id, follow_id, state, created_at)
               VALUES ('https://friend.example/u/bob', 'https://friend.example/follows/1', 'pending', '2026-01-01T00:00:00Z');",
        )
        .unwrap();
    }
    let knocks = text(&hortus(&dir, &["knocks"]));
    assert!(
        knocks.contains("knocker.example") && knocks.contains("hortus allow add knocker.example"),
        "{knocks}"
    );

    let pending = text(&hortus(&dir, &["followers", "pending"]));
    assert!(pending.contains("bob@friend.example"), "{pending}");
    assert!(
        hortus(&dir, &["allow", "add", "friend.example"])
            .status
            .success()
    );
    let out = hortus(&dir, &["followers", "approve", "bob@friend.example"]);
    assert!(out.status.success(), "{}", text(&out));
    let conn = hortus::db::open(&dir.join("hortus.db")).unwrap();
    let state: String = conn
        .query_row("SELECT state FROM followers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "accepted");
    let (inbox, body): (String, String) = conn
        .query_row(
            "SELECT d.inbox, a.body FROM deliveries d JOIN outgoing_activities a ON a.id = d.activity_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(inbox, "https://friend.example/u/bob/inbox");
    let accept: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(accept["type"], "Accept");
    assert_eq!(accept["object"]["id"], "https://friend.example/follows/1");

    // Blocking the server suspends the follower, reversibly and visibly.
    let out = hortus(&dir, &["block", "add", "friend.example"]);
    assert!(text(&out).contains("suspended"), "{}", text(&out));
    assert!(text(&hortus(&dir, &["followers"])).contains("suspended"));
    assert!(
        hortus(&dir, &["block", "remove", "friend.example"])
            .status
            .success()
    );
    assert!(
        text(&hortus(&dir, &["followers"])).contains("suspended"),
        "not restored silently"
    );
    let out = hortus(&dir, &["followers", "restore", "friend.example"]);
    assert!(text(&out).contains("restored"), "{}", text(&out));
    assert!(text(&hortus(&dir, &["followers"])).starts_with("accepted"));
}

/// OpenSSL is linked into `hortus` (.cargo/config.toml; issue 15: the shared libcrypto and
/// libssl held 4.5 MiB of `serve`): a running `serve`, which builds its TLS client at start, maps
/// neither. Unless the builder asked for the shared libraries (`…_OPENSSL_STATIC=0`).
#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
#[tokio::test]
async fn serve_runs_with_openssl_linked_in() {
    // Only where .cargo/config.toml asked for it (not with `..._STATIC=0`, nor a build that
    // did not read that file).
    if option_env!("X86_64_UNKNOWN_LINUX_GNU_OPENSSL_STATIC") != Some("1") {
        return;
    }
    let mut site = common::TestSite::new("127.0.0.44");
    let serve = site.spawn_serve(1).await;
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", serve.child.id())).unwrap();
    assert!(maps.contains("/hortus"), "not the binary's maps:\n{maps}");
    for lib in ["libcrypto.so", "libssl.so"] {
        assert!(!maps.contains(lib), "{lib} is mapped:\n{maps}");
    }
}

/// `hortus --version` names the OpenSSL the binary carries: linked in, it is updated only by a
/// rebuild, so the owner must be able to see which one runs.
#[test]
fn version_names_the_openssl_linked_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = hortus(dir.path(), &["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("hortus {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "TLS and signatures: {}",
            openssl::version::version()
        )),
        "{text}"
    );
}

/// The hot-function list the linker orders `hortus` by (`link/hot-functions.txt`, build.rs)
/// names symbols whose hashes come from the crate graph: after a Cargo.lock change it mostly
/// misses, and `serve` keeps ~6 MiB more resident (issue 15's memory row) without any other
/// sign. The build only warns; this fails, so a dependency change cannot land without it.
#[test]
fn hot_function_list_was_made_for_this_cargo_lock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = std::fs::read_to_string(root.join("link/hot-functions.txt")).unwrap();
    let lock = std::fs::read(root.join("Cargo.lock")).unwrap();
    let mut sha = openssl::sha::Sha256::new();
    sha.update(&lock);
    let hex: String = sha.finish().iter().map(|b| format!("{b:02x}")).collect();
    let recorded = list
        .lines()
        .find_map(|l| l.strip_prefix("# Cargo.lock:"))
        .map(str::trim);
    assert_eq!(
        recorded,
        Some(hex.as_str()),
        "link/hot-functions.txt was made for another Cargo.lock; regenerate it: \
         cargo build --release && benches/hot-functions.sh && cargo build --release"
    );
    // The list must be non-trivial: an empty one orders nothing.
    let names = list.lines().filter(|l| !l.starts_with('#')).count();
    assert!(names > 1000, "only {names} names in link/hot-functions.txt");
}

/// A running `hortus serve` publishes what the owner saves, edits and removes in content/,
/// and a file with a mistake changes nothing online.
#[tokio::test]
async fn serve_publishes_saved_posts_without_a_separate_publish() {
    let mut site = common::TestSite::new("127.0.0.40");
    let dir = site.dir.clone();
    let base = site.base.clone();
    let serve = site.spawn_serve(1).await;
    let http = reqwest::Client::new();
    let page = format!("{base}/posts/watched");
    // Polls `page` until `ok` holds for (status, body), for at most 10 seconds.
    let wait_for = |what: &'static str, ok: fn(u16, &str) -> bool| {
        let (http, page) = (http.clone(), page.clone());
        async move {
            for _ in 0..100 {
                if let Ok(resp) = http.get(&page).send().await {
                    let status = resp.status().as_u16();
                    let body = resp.text().await.unwrap_or_default();
                    if ok(status, &body) {
                        return;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("{what}: not seen within 10 s");
        }
    };
    wait_for("no such post yet", |s, _| s == 404).await;

    let post = dir.join("content/posts/watched.md");
    std::fs::write(&post, "+++\ntitle = \"Watched\"\n+++\nThe first version.\n").unwrap();
    wait_for("the new post", |s, b| {
        s == 200 && b.contains("The first version.")
    })
    .await;
    // Publishing reads every post; those reads must not count as changes (or each run would
    // start the next, forever).
    let runs = || serve.log().matches("content changed: publishing").count();
    let after_first = runs();
    assert!(after_first >= 1, "the watcher said nothing");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(runs(), after_first, "publishing again with nothing changed");

    std::fs::write(
        &post,
        "+++\ntitle = \"Watched\"\n+++\nThe second version.\n",
    )
    .unwrap();
    wait_for("the edit", |s, b| {
        s == 200 && b.contains("The second version.")
    })
    .await;

    // A mistake in another file: nothing changes online, the owner is told which file.
    let broken = dir.join("content/posts/broken.md");
    std::fs::write(&broken, "+++\ntitle = \n+++\noops\n").unwrap();
    std::fs::remove_file(&post).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    wait_for("the post kept", |s, b| {
        s == 200 && b.contains("The second version.")
    })
    .await;
    let err = serve.log();
    assert!(err.contains("broken.md"), "{err}");

    std::fs::remove_file(&broken).unwrap();
    wait_for("the removal", |s, _| s == 410).await;
    let out = serve.out();
    assert!(out.contains("deleted  watched"), "{out}");
}

#[test]
fn demo_refuses_an_address_its_links_do_not_point_at() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo-site");
    assert!(hortus::scaffold::ensure_demo(&demo, "127.0.0.1:8080").unwrap());
    let out = hortus(
        tmp.path(),
        &[
            "demo",
            "--path",
            demo.to_str().unwrap(),
            "--listen",
            "127.0.0.45:8081",
        ],
    );
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("made for http://127.0.0.1:8080"), "{msg}");
    assert!(
        msg.contains("fix: run `hortus demo --listen 127.0.0.1:8080`"),
        "{msg}"
    );
}

/// Issue 9.4: remote names, handles and ids reach the owner's terminal without the control
/// characters that would retitle it, rewrite its screen or flip the text around them.
#[test]
fn remote_strings_reach_the_terminal_without_control_characters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_site(&tmp, "");
    let evil = "\x1b]0;pwned\x07";
    let handle = format!("مريم{evil}\u{202e}moc.knab\u{2066}@東京.example\x1b[2J\u{9b}31m");
    {
        let conn = hortus::db::open(&dir.join("hortus.db")).unwrap();
        conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, handle, name, raw, fetched_at)
             VALUES (?1, 'xn--1lqs71d.example', 'https://xn--1lqs71d.example/inbox', ?2, ?2, '{}',
                     '2026-01-01T00:00:00Z')",
            rusqlite::params![
                format!("https://xn--1lqs71d.example/u/ユーザー{evil}"),
                handle
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO followers (actor_id, follow_id, state, created_at)
             SELECT id, 'https://xn--1lqs71d.example/f/1', 'pending', '2026-01-01T00:00:00Z'
             FROM remote_actors",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO following (actor_id, follow_id, state, created_at)
             SELECT id, 'https://example.net/f/1', 'accepted', '2026-01-01T00:00:00Z'
             FROM remote_actors",
            [],
        )
        .unwrap();
        // A row stored before knock fields were cleaned on the way in.
        conn.execute(
            "INSERT INTO knocks (host, actor, activity_type, count, first_seen, last_seen)
             VALUES ('spam.example', ?1, ?2, 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            rusqlite::params![
                format!("https://spam.example/{evil}\u{202e}ユーザー"),
                format!("Follow\n{evil}")
            ],
        )
        .unwrap();
    }
    for args in [
        &["inbox"][..],
        &["inbox", "--json"],
        &["followers"],
        &["followers", "pending"],
        &["following"],
        &["knocks"],
    ] {
        let out = hortus(&dir, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        let shown = String::from_utf8(out.stdout).unwrap();
        assert!(
            !shown.contains(['\x1b', '\x07', '\u{9b}', '\u{202e}', '\u{2066}']),
            "{args:?} printed control characters: {shown:?}"
        );
        assert!(
            shown.contains("مريم]0;pwnedmoc.knab@東京.example")
                || shown.contains("https://spam.example/]0;pwnedユーザー"),
            "{args:?}: {shown:?}"
        );
    }
}
