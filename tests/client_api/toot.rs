//! A real Mastodon client app against Hortus: toot, the command-line app (PyPI, pinned in
//! tests/peer/requirements.txt, installed by scripts/install-test-deps.sh into
//! tests/peer/.venv). It signs in through its own browser flow (`toot login`: it prints the
//! authorization URL and waits for the code; the test opens the URL as the browser would,
//! types the password into the site's own page and gives toot the code on its stdin), then
//! reads who it is, changes the profile, posts with an image and its description, favourites
//! and boosts its own post and reads the timeline, each through toot's own commands.

use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::common::{self, TestSite};
use super::*;

fn toot_bin() -> std::path::PathBuf {
    peer_dir().join(".venv/bin/toot")
}

fn toot(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(toot_bin())
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env("HOME", config)
        .output()
        .expect("run toot");
    assert!(
        out.status.success(),
        "toot {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toot_signs_in_through_its_browser_flow_posts_an_image_and_edits_the_profile() {
    assert!(
        toot_bin().is_file(),
        "tests/peer/.venv has no toot: run scripts/install-test-deps.sh first"
    );
    let mut site = TestSite::new("127.0.13.50");
    set_password(&site);
    let serve = site.spawn_serve(1).await;
    let config = site.tmp.path().join("toot-config");
    std::fs::create_dir_all(&config).expect("config dir");

    // `toot login`: it registers itself, prints the URL, asks whether to open a browser (no),
    // then waits for the code.
    let mut login = Command::new(toot_bin())
        .args(["login", "--instance", &site.base])
        .env("XDG_CONFIG_HOME", &config)
        .env("HOME", &config)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("toot login");
    let mut stdin = login.stdin.take().expect("stdin");
    let stdout = login.stdout.take().expect("stdout");
    // Every line toot prints is read (a closed pipe would end it), the URL handed over.
    let (tx, rx) = std::sync::mpsc::channel();
    let base = site.base.clone();
    let printed = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with(&base) {
                let _ = tx.send(line.clone());
            }
            all.push(line);
        }
        all.join("\n")
    });
    let url = tokio::task::block_in_place(|| rx.recv_timeout(std::time::Duration::from_secs(30)))
        .unwrap_or_else(|_| panic!("toot printed no login URL\n{}", serve.log()));
    assert!(url.contains("/oauth/authorize"), "{url}");
    stdin.write_all(b"n\n").expect("no browser");
    // The browser's part: the site's own sign-in page, the password, the code.
    let http = common::client();
    let page = page_of(http.get(&url).send().await.expect("page")).await;
    assert_eq!(page.status, 200, "{url}: {}", page.html);
    assert!(page.html.contains("toot"), "the page names the app");
    let fields = with(
        &hidden_fields(&page.html),
        &[("password", PASSWORD), ("decision", "allow")],
    );
    let done = submit(&http, &site.base, &fields, page.cookie.as_deref()).await;
    assert_eq!(done.status, 200, "{}", done.html);
    stdin
        .write_all(format!("{}\n", code_of(&done.html)).as_bytes())
        .expect("code");
    drop(stdin);
    let out = tokio::task::block_in_place(|| login.wait_with_output()).expect("login");
    let printed = printed.join().expect("toot's output");
    assert!(
        out.status.success() && printed.contains("Successfully logged in"),
        "toot login failed: {}\n{printed}\n{}",
        String::from_utf8_lossy(&out.stderr),
        serve.log()
    );

    let me = toot(&config, &["whoami", "--json"]);
    let me: Value = serde_json::from_str(&me).expect("whoami JSON");
    assert_eq!(me["acct"], "alice");

    // The profile, from toot's update-account.
    toot(
        &config,
        &[
            "update-account",
            "--display-name",
            "Ālice 庭師 🌿",
            "--note",
            "Writes from the terminal — من الطرفية",
        ],
    );
    let toml = std::fs::read_to_string(site.dir.join("hortus.toml")).expect("toml");
    assert!(toml.contains("display_name = \"Ālice 庭師 🌿\""), "{toml}");
    assert!(
        toml.contains("# Hortus site configuration."),
        "comments kept"
    );
    let (_, actor) = common::get_json(&site.url("/users/alice")).await;
    assert_eq!(actor["name"], "Ālice 庭師 🌿");

    // A post with an image and its description: a Markdown file with the alt text.
    let image = site.tmp.path().join("garden.png");
    std::fs::write(&image, include_bytes!("../../static/avatar.png")).expect("image");
    let image = image.to_string_lossy().into_owned();
    let posted = toot(
        &config,
        &[
            "post",
            "--json",
            "--media",
            &image,
            "--description",
            "A rosemary bush in rain — إكليل الجبل",
            "--language",
            "en",
            "Rain on the rosemary ☔ 迷迭香",
        ],
    );
    let status: Value = serde_json::from_str(&posted).expect("post JSON");
    let id = status["id"].as_str().expect("id").to_string();
    let files = post_files(&site);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).expect("file");
    assert!(text.contains("Rain on the rosemary ☔ 迷迭香"), "{text}");
    assert!(
        text.contains("A rosemary bush in rain — إكليل الجبل"),
        "{text}"
    );

    // Its own post, favourited and boosted, as Mastodon allows.
    toot(&config, &["favourite", &id]);
    toot(&config, &["reblog", &id]);
    let shown = toot(&config, &["status", &id, "--json"]);
    let shown: Value = serde_json::from_str(&shown).expect("status JSON");
    assert_eq!(shown["favourited"], true, "{shown:#}");
    assert_eq!(shown["reblogged"], true);
    let timeline = toot(
        &config,
        &["timelines", "public", "--local", "--no-pager", "--no-clear"],
    );
    assert!(timeline.contains("Rain on the rosemary"), "{timeline}");
}
