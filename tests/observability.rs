//! What an operator sees of a running `hortus serve` (issue 16): the Prometheus endpoint of
//! `[metrics] listen`, scraped over loopback before and after real inbox traffic and real
//! deliveries (a signed Follow from a pretend peer, its Accept delivered back, an unsigned POST
//! refused), and the JSON log (`--log-format json`) of a serve that refuses a request, fails a
//! delivery and cannot publish a broken post: every stderr line one JSON object.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{AP, TestSite, peer::Peer};

/// A port from the OS on `ip`, free again when this returns.
fn free_addr(ip: &str) -> std::net::SocketAddr {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("a port")
}

/// `hortus serve` for `site` with `extra` global flags, stderr to `serve.log`; waits until it
/// answers. Killed when the returned guard drops.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve(site: &mut TestSite, extra: &[&str]) -> Serve {
    drop(site.listener.take());
    let child = Command::new(env!("CARGO_BIN_EXE_hortus"))
        .args(extra)
        .arg("--dir")
        .arg(&site.dir)
        .arg("serve")
        .env("HORTUS_LOG", "info")
        .env_remove("HORTUS_DIR")
        .env_remove("HORTUS_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(site.tmp.path().join("serve.log")).expect("log"))
        .spawn()
        .expect("spawn hortus serve");
    let guard = Serve(child);
    let client = common::client();
    for _ in 0..300 {
        if client.get(site.url("/users/alice")).send().await.is_ok() {
            return guard;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("hortus serve did not start:\n{}", log(site));
}

fn log(site: &TestSite) -> String {
    std::fs::read_to_string(site.tmp.path().join("serve.log")).unwrap_or_default()
}

/// The samples of an exposition: `name{labels}` → value. Checks the text's shape on the way:
/// every line is a comment or `series value`, and it ends with `# EOF`.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "no # EOF:\n{text}");
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not `series value`: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("{line:?}: value not a number ({e})"));
        samples.insert(series.to_string(), value);
    }
    samples
}

async fn scrape(addr: std::net::SocketAddr) -> HashMap<String, f64> {
    let resp = common::client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    parse_exposition(&resp.text().await.expect("body"))
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_inbox_traffic_deliveries_and_key_fetches() {
    let metrics = free_addr("127.0.43.2");
    let mut site = TestSite::federating_with("127.0.43.2", |cfg| {
        cfg.push_str(&format!("\n[metrics]\nlisten = \"{metrics}\"\n"));
    });
    site.write_post(
        "hana.md",
        "+++\ntitle = \"花 — زهرة\"\n+++\n咲いた 🌸 e\u{301}\n",
    );
    let peer = Peer::start("127.0.43.3", false);
    site.allow(&peer.host);
    let _serve = serve(&mut site, &[]).await;

    let before = scrape(metrics).await;
    // The public site does not serve it: the endpoint has its own listener.
    let public = common::client()
        .get(site.url("/metrics"))
        .send()
        .await
        .expect("public /metrics");
    assert_eq!(public.status(), 404);

    // A signed Follow: accepted (202), the key fetched, an Accept delivered back.
    let follow = peer.activity("Follow", serde_json::json!(site.url("/users/alice")));
    let resp = peer.post(&site.url("/inbox"), &follow).await;
    assert_eq!(resp.status(), 202, "{}", log(&site));
    peer.wait_for_activity("Accept").await;
    // An unsigned POST: refused by the signature's syntax check.
    let resp = common::client()
        .post(site.url("/users/alice/inbox"))
        .header("Content-Type", AP)
        .body(r#"{"type":"Like","actor":"https://例え.jp/ユーザー"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401);

    // The delivery is counted once its attempt is recorded, just after the peer answered.
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let s = scrape(metrics).await;
        if value(&s, "hortus_deliveries_total{result=\"delivered\"}") >= 1.0 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery counted: {s:#?}\n{}",
            log(&site)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let moved = |series: &str, by: f64| {
        let (b, a) = (value(&before, series), value(&after, series));
        assert!(a - b >= by, "{series}: {b} → {a}\n{after:#?}");
    };
    moved(
        "hortus_inbox_activities_total{result=\"accepted\",reason=\"\"}",
        1.0,
    );
    moved(
        "hortus_inbox_activities_total{result=\"refused\",reason=\"signature syntax\"}",
        1.0,
    );
    moved("hortus_deliveries_total{result=\"delivered\"}", 1.0);
    moved("hortus_key_fetches_total{result=\"ok\"}", 1.0);
    moved(
        "hortus_http_request_duration_seconds_count{route=\"/inbox\"}",
        1.0,
    );
    moved(
        "hortus_http_request_duration_seconds_count{route=\"/users/{name}/inbox\"}",
        1.0,
    );
    // Buckets are cumulative: +Inf holds every request of the route.
    assert_eq!(
        value(
            &after,
            "hortus_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/inbox\"}"
        ),
        value(
            &after,
            "hortus_http_request_duration_seconds_count{route=\"/inbox\"}"
        )
    );
    // Nothing waits: the queue's gauges are read from the database at the scrape.
    for gauge in [
        "hortus_delivery_queue_depth",
        "hortus_delivery_queue_oldest_age_seconds",
        "hortus_delivery_paused_servers",
    ] {
        assert_eq!(after.get(gauge), Some(&0.0), "{gauge}: {after:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_a_waiting_queue() {
    let metrics = free_addr("127.0.43.4");
    let mut site = TestSite::federating_with("127.0.43.4", |cfg| {
        cfg.push_str(&format!("\n[metrics]\nlisten = \"{metrics}\"\n"));
    });
    // A follower whose server does not answer: its delivery waits in the queue.
    let dead = free_addr("127.0.43.5");
    add_follower(&site, &dead.to_string());
    site.write_post("ame.md", "雨 ☔ — مطر\n");
    let _serve = serve(&mut site, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = scrape(metrics).await;
        if value(&s, "hortus_deliveries_total{result=\"retry\"}") >= 1.0 {
            assert!(value(&s, "hortus_delivery_queue_depth") >= 1.0, "{s:#?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no retry counted: {s:#?}\n{}",
            log(&site)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s = scrape(metrics).await;
    assert!(
        value(&s, "hortus_delivery_queue_oldest_age_seconds") >= 1.0,
        "{s:#?}"
    );
}

/// An accepted follower at `host` (allowed) whose inbox is `http://host/inbox`.
fn add_follower(site: &TestSite, host: &str) {
    site.allow(host);
    let actor = format!("http://{host}/users/kumo");
    site.db()
        .execute_batch(&format!(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
               VALUES ('{actor}', '{host}', 'http://{host}/inbox', 'kumo@{host}', '{{}}', '2026-01-01T00:00:00Z');
             INSERT INTO followers (actor_id, follow_id, state, created_at)
               VALUES ('{actor}', 'http://{host}/follows/1', 'accepted', '2026-01-01T00:00:00Z');"
        ))
        .expect("add follower");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_give_one_object_per_line_for_refusals_failed_deliveries_and_warnings() {
    let mut site = TestSite::federating("127.0.43.6");
    let dead = free_addr("127.0.43.7");
    add_follower(&site, &dead.to_string());
    site.write_post("kaze.md", "風 🍃 — ريح — 바람\n");
    let _serve = serve(&mut site, &["--log-format", "json"]).await;

    // A refused request.
    let resp = common::client()
        .post(site.url("/inbox"))
        .header("Content-Type", AP)
        .body(r#"{"type":"Follow"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401);
    // A post that cannot be published, saved while serving: a warning, as a log line.
    site.write_post("broken.md", "+++\ntitle = \"壊れた\nslug = \n+++\nx\n");

    let deadline = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let text = log(&site);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{text}"))
            })
            .collect();
        let has = |m: &str| lines.iter().any(|l| l["message"] == m);
        if has("delivery attempt failed")
            && has("inbox refused a request")
            && has("posts not published; what was online stays online")
        {
            break lines;
        }
        assert!(Instant::now() < deadline, "lines missing:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for line in &lines {
        for key in ["timestamp", "level", "message"] {
            assert!(line[key].is_string(), "{key} in {line}");
        }
    }
    let one = |m: &str| {
        let found: Vec<&serde_json::Value> = lines.iter().filter(|l| l["message"] == m).collect();
        assert_eq!(found.len(), 1, "{m}: {found:#?}");
        found[0].clone()
    };
    let refused = one("inbox refused a request");
    assert_eq!(refused["status"], 401);
    assert_eq!(refused["check"], "signature syntax");
    let failed = one("delivery attempt failed");
    assert_eq!(failed["inbox"], format!("http://{dead}/inbox"), "{failed}");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the reason: {failed}"
    );
    let warning = one("posts not published; what was online stays online");
    assert_eq!(warning["level"], "WARN");
    assert!(
        warning["error"]
            .as_str()
            .is_some_and(|e| e.contains("broken.md")),
        "names the file: {warning}"
    );
}
