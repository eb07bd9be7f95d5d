//! Delivery benchmark: one Hortus site on 127.0.0.2 and a fleet of pretend servers on
//! 127.0.1.x that verify every signature. 1,000 followers on 200 servers: half the servers have
//! a shared inbox (one delivery each), half do not (one per follower); some answer slowly, some
//! fail with 503. Two posts are published in turn (cold: first contact, key fetches, new
//! connections; warm: the second post). Reports publish-to-first-delivery latency, the time to
//! reach every healthy server and deliveries per second, beside the RSA-2048 signatures per
//! second OpenSSL makes on this machine in the same run (every delivery costs one signature).
//!
//! First, issue 15's row: the end-to-end fan-out rate to fast inboxes (32 servers on 127.0.2.x
//! that answer 202 at once and verify nothing, 3,000 deliveries of one post, from `publish` to
//! the last delivery recorded done) against the RSA-2048 signatures per second Hortus's own
//! signer makes on all cores, measured in the same run, and the ratio.
//!
//! `cargo bench --bench delivery` (bounded: gives up after 120 s per post).
//! `cargo bench --bench delivery -- FOLLOWERS SERVERS` to change the fleet.
//! `cargo bench --bench delivery -- fast [DELIVERIES SERVERS]` for the fan-out rate alone.

#[path = "../tests/support/mock_inbox.rs"]
mod mock_inbox;

use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hortus::app::{self, Site};
use hortus::delivery::{Settings, SystemClock, Workers};
use mock_inbox::{MockInbox, Reply};

const SLOW_EVERY: usize = 10; // every 10th server answers after SLOW_DELAY
const SLOW_DELAY: Duration = Duration::from_millis(500);
const FAILING_EVERY: usize = 20; // every 20th server (offset by 5) answers 503
const LIMIT: Duration = Duration::from_secs(120);

fn main() {
    let fast_only = std::env::args().any(|a| a == "fast");
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if fast_only {
        let deliveries = args.first().copied().unwrap_or(3000);
        let servers = args.get(1).copied().unwrap_or(32).clamp(1, 250);
        println!("{}", rt.block_on(fast::run(deliveries, servers)));
        return;
    }
    println!("{}", rt.block_on(fast::run(3000, 32)));
    let followers = args.first().copied().unwrap_or(1000);
    let servers = args.get(1).copied().unwrap_or(200).clamp(1, 250);
    let report = rt.block_on(run(followers, servers));
    let openssl_1 = openssl_speed(1);
    let openssl_n = openssl_speed(cores());
    let in_process = sign_rate();
    println!("{report}");
    // Other work on the machine shares the cores with the sender: say how much there was.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("load average during the run: {}", load.join(" "));
    }
    println!(
        "RSA-2048 signatures/s on this machine: openssl speed 1 process {}, {} processes {}; \
         hortus::httpsig::sign_post on one thread {:.0}",
        openssl_1.map_or("n/a".into(), |r| format!("{r:.0}")),
        cores(),
        openssl_n.map_or("n/a".into(), |r| format!("{r:.0}")),
        in_process
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A site on 127.0.0.2 that federates over plain HTTP to loopback peers.
fn new_site(dir: &std::path::Path) -> TcpListener {
    let dir = dir.to_path_buf();
    let listener = TcpListener::bind("127.0.0.2:0").expect("bind site");
    let addr = listener.local_addr().expect("addr");
    hortus::scaffold::init(&hortus::scaffold::InitOptions {
        dir: dir.clone(),
        domain: addr.to_string(),
        user: "alice".into(),
        name: Some("Alice".into()),
        base_url: Some(format!("http://{addr}")),
        listen: Some(addr.to_string()),
    })
    .expect("init");
    std::fs::remove_file(dir.join("content/posts/hello.md")).ok();
    let cfg = dir.join("hortus.toml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    let text = text.replace("mode = \"allowlist\"", "mode = \"blocklist\"").replace(
        "manually_approves_followers = false\n",
        "manually_approves_followers = false\nallow_http = true\nallow_private_addresses = true\n",
    );
    std::fs::write(&cfg, text).expect("config");
    listener
}

async fn run(followers: usize, servers: usize) -> String {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("site");
    let listener = new_site(&dir);

    // The fleet.
    let mut fleet = Vec::with_capacity(servers);
    for i in 0..servers {
        let mock = MockInbox::start(&format!("127.0.1.{}", i + 1)).await;
        if i % FAILING_EVERY == 5 {
            mock.set_default(Reply::status(503));
        } else if i % SLOW_EVERY == 3 {
            mock.set_default(Reply::status(202).delayed(SLOW_DELAY));
        }
        fleet.push(mock);
    }
    let failing = |i: usize| i % FAILING_EVERY == 5;
    {
        let mut conn = hortus::db::open(&dir.join("hortus.db")).expect("db");
        let tx = conn.transaction().expect("tx");
        for f in 0..followers {
            let i = f % servers;
            let m = &fleet[i];
            let name = format!("u{f}");
            let shared = i.is_multiple_of(2).then(|| m.shared_inbox());
            tx.execute(
                "INSERT INTO remote_actors (id, host, inbox, shared_inbox, raw, fetched_at)
                 VALUES (?1, ?2, ?3, ?4, '{}', '2026-01-01T00:00:00Z')",
                rusqlite::params![m.actor(&name), m.host(), m.actor_inbox(&name), shared],
            )
            .expect("actor");
            tx.execute(
                "INSERT INTO followers (actor_id, follow_id, state, created_at)
                 VALUES (?1, ?1 || '#f', 'accepted', '2026-01-01T00:00:00Z')",
                [m.actor(&name)],
            )
            .expect("follower");
        }
        tx.commit().expect("commit");
    }

    let site = Site::open(&dir).expect("site");
    let state = app::state(&site).await.expect("state");
    let server = app::server(state.clone(), listener).expect("server");
    let server_handle = server.handle();
    tokio::spawn(server);
    let settings = Settings::default();
    let deliverer =
        hortus::delivery::Deliverer::new(&state, settings.clone(), Arc::new(SystemClock))
            .await
            .expect("deliverer");
    let workers = Workers::start(deliverer);

    let mut out = format!(
        "Delivery: {followers} followers on {servers} servers (127.0.1.x; even servers have a \
         shared inbox), every {SLOW_EVERY}th server slow ({} ms), every {FAILING_EVERY}th \
         failing (503); concurrency {} total / {} per server; mock inboxes verify every \
         signature; {} cores\n",
        SLOW_DELAY.as_millis(),
        settings.concurrency,
        settings.per_server,
        cores()
    );
    for (round, label) in [(0, "cold"), (1, "warm")] {
        let before: Vec<usize> = fleet.iter().map(|m| m.received().len()).collect();
        std::fs::write(
            dir.join(format!("content/posts/p{round}.md")),
            format!("Post {round} to {followers} followers"),
        )
        .expect("post");
        let t0 = Instant::now();
        let t0_at = std::time::Instant::now();
        let (_, queued) = site.publish_and_federate().expect("publish");
        let publish_time = t0.elapsed();
        let activity = queued.activities[0].1.clone();
        let expected_healthy: i64 = {
            let conn = hortus::db::open(&dir.join("hortus.db")).expect("db");
            let failing_hosts: Vec<String> = (0..servers)
                .filter(|i| failing(*i))
                .map(|i| fleet[i].host())
                .collect();
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM deliveries WHERE activity_id = ?1",
                    [&activity],
                    |r| r.get(0),
                )
                .expect("count");
            let bad: i64 = failing_hosts
                .iter()
                .map(|h| {
                    conn.query_row(
                        "SELECT COUNT(*) FROM deliveries WHERE activity_id = ?1 AND host = ?2",
                        [&activity, h],
                        |r| r.get::<_, i64>(0),
                    )
                    .expect("count")
                })
                .sum();
            n - bad
        };
        // Wait until every healthy server's delivery is done (polling the database the way
        // `hortus queue` would), bounded.
        let conn = hortus::db::open(&dir.join("hortus.db")).expect("db");
        let done = loop {
            let done: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM deliveries WHERE activity_id = ?1 AND state = 'done'",
                    [&activity],
                    |r| r.get(0),
                )
                .expect("count");
            if done >= expected_healthy || t0.elapsed() > LIMIT {
                break done;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let all_time = t0.elapsed();
        let first = fleet
            .iter()
            .zip(&before)
            .flat_map(|(m, skip)| m.received().into_iter().skip(*skip))
            .map(|r| r.at)
            .min()
            .map(|at| at.duration_since(t0_at));
        // The fast servers alone: what the sender manages when no peer holds it up.
        let fast: Vec<Instant> = fleet
            .iter()
            .enumerate()
            .filter(|(i, _)| !failing(*i) && i % SLOW_EVERY != 3)
            .flat_map(|(i, m)| m.received().into_iter().skip(before[i]))
            .map(|r| r.at)
            .collect();
        let fast_time = fast
            .iter()
            .max()
            .map_or(Duration::ZERO, |at| at.duration_since(t0_at));
        let bad_signatures = fleet
            .iter()
            .flat_map(|m| m.received())
            .filter(|r| r.verified.is_err())
            .count();
        let (retrying, failed): (i64, i64) = conn
            .query_row(
                "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'failed'), 0)
                 FROM deliveries WHERE activity_id = ?1",
                [&activity],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("count");
        out.push_str(&format!(
            "  {label}: {} deliveries queued in {:.1} ms; first delivery {:.1} ms after publish \
             started; {done}/{expected_healthy} healthy deliveries done in {:.0} ms \
             ({:.0} deliveries/s); the {} to fast servers all arrived within {:.0} ms \
             ({:.0}/s); {retrying} retrying (failing servers), {failed} failed, \
             {bad_signatures} bad signatures\n",
            queued.deliveries,
            publish_time.as_secs_f64() * 1e3,
            first.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
            all_time.as_secs_f64() * 1e3,
            done as f64 / all_time.as_secs_f64(),
            fast.len(),
            fast_time.as_secs_f64() * 1e3,
            fast.len() as f64 / fast_time.as_secs_f64(),
        ));
    }
    workers.shutdown().await;
    server_handle.stop(true).await;
    drop(tmp);
    out
}

/// `openssl speed -seconds 2 [-multi N] rsa2048`: RSA-2048 signatures per second.
fn openssl_speed(processes: usize) -> Option<f64> {
    let mut cmd = Command::new("openssl");
    cmd.args(["speed", "-seconds", "2"]);
    if processes > 1 {
        cmd.args(["-multi", &processes.to_string()]);
    }
    let out = cmd.arg("rsa2048").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The summary line: `rsa 2048 bits 0.000300s 0.000009s   3330.0 110000.0` (OpenSSL 3 may
    // add a key-type column); sign/s is the second-last number.
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("rsa") && l.contains("2048"))?;
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
    numbers.get(numbers.len().checked_sub(2)?).copied()
}

/// What one thread of Hortus's own signer makes in a second.
fn sign_rate() -> f64 {
    let (private, _) = hortus::httpsig::generate_keypair().expect("key");
    let key = hortus::httpsig::load_private_key(&private).expect("load key");
    let url = url::Url::parse("https://example.net/inbox").expect("url");
    let body = br#"{"type":"Create"}"#;
    let t0 = Instant::now();
    let mut n = 0u32;
    while t0.elapsed() < Duration::from_secs(1) {
        hortus::httpsig::sign_post(
            &url,
            body,
            "application/activity+json",
            "https://example.net/users/a#main-key",
            &key,
            SystemTime::now(),
        )
        .expect("sign");
        n += 1;
    }
    f64::from(n) / t0.elapsed().as_secs_f64()
}

/// Issue 15's fan-out row: deliveries per second to fast inboxes against signatures per second
/// on all cores.
mod fast {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub async fn run(deliveries: usize, servers: usize) -> String {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("site");
        let listener = new_site(&dir);
        // Fast peers: 202 at once, no signature check, nothing parsed or kept (the sender is
        // what is measured, and the receivers share its cores).
        let mut fleet = Vec::with_capacity(servers);
        for i in 0..servers {
            fleet.push(FastInbox::start(&format!("127.0.2.{}", i + 1)).await);
        }
        {
            let mut conn = hortus::db::open(&dir.join("hortus.db")).expect("db");
            let tx = conn.transaction().expect("tx");
            for f in 0..deliveries {
                let m = &fleet[f % servers];
                let name = format!("u{f}");
                // Each follower its own inbox: one delivery per follower.
                mock_inbox::add_follower(&tx, &m.actor(&name), &m.actor_inbox(&name), None);
            }
            tx.commit().expect("commit");
        }
        let site = Site::open(&dir).expect("site");
        let state = app::state(&site).await.expect("state");
        let server = app::server(state.clone(), listener).expect("server");
        let server_handle = server.handle();
        tokio::spawn(server);
        let settings = Settings::default();
        let deliverer =
            hortus::delivery::Deliverer::new(&state, settings.clone(), Arc::new(SystemClock))
                .await
                .expect("deliverer");
        let workers = Workers::start(deliverer);
        let conn = hortus::db::open(&dir.join("hortus.db")).expect("db");

        let mut rows = Vec::new();
        let mut body = String::new();
        for (round, label) in [(0, "first (new connections)"), (1, "second (measured)")] {
            let connections_before: usize = fleet.iter().map(FastInbox::connections).sum();
            std::fs::write(
                dir.join(format!("content/posts/p{round}.md")),
                format!("Post {round}: 庭 حديقة 🌱 to {deliveries} followers"),
            )
            .expect("post");
            let t0 = Instant::now();
            let cpu0 = cpu_time();
            let (_, queued) = site.publish_and_federate().expect("publish");
            let activity = queued.activities[0].1.clone();
            // Polled on the partial index of pending rows, its first entry only (the poller
            // shares the cores with the sender: a COUNT read every pending row 200 times a
            // second), then counted once.
            loop {
                let pending: bool = conn
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 'pending')",
                        [],
                        |r| r.get(0),
                    )
                    .expect("count");
                if !pending || t0.elapsed() > LIMIT {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let took = t0.elapsed();
            let cpu = cpu_time().saturating_sub(cpu0);
            let done: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM deliveries WHERE activity_id = ?1 AND state = 'done'",
                    [&activity],
                    |r| r.get(0),
                )
                .expect("count");
            let connections =
                fleet.iter().map(FastInbox::connections).sum::<usize>() - connections_before;
            body = conn
                .query_row(
                    "SELECT body FROM outgoing_activities WHERE id = ?1",
                    [&activity],
                    |r| r.get(0),
                )
                .expect("body");
            rows.push((label, done, took, cpu, connections));
        }
        workers.shutdown().await;
        server_handle.stop(true).await;
        drop(tmp);

        let (signs, sign_cpu) = tokio::task::spawn_blocking(move || sign_rate_all_cores(&body))
            .await
            .expect("sign");
        let mut out = format!(
            "Fan-out to fast inboxes: {deliveries} deliveries of one post (one inbox per \
             follower) to {servers} servers on 127.0.2.x that answer 202 at once and verify \
             nothing; concurrency {} total / {} per server; {} cores; from publish to the last \
             delivery recorded done\n",
            settings.concurrency,
            settings.per_server,
            cores()
        );
        out.push_str(
            "| post | done | time | deliveries/s | RSA-2048 signs/s, all cores | ratio | TCP connections opened | CPU µs per delivery | CPU µs per signature | CPU ratio |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let mut measured = 0.0;
        for (label, done, took, cpu, connections) in rows {
            let rate = done as f64 / took.as_secs_f64();
            measured = rate;
            let per_delivery = cpu.as_secs_f64() * 1e6 / (done.max(1) as f64);
            out.push_str(&format!(
                "| {label} | {done} | {:.0} ms | {rate:.0} | {signs:.0} | {:.2} | {connections} | {per_delivery:.0} | {sign_cpu:.0} | {:.2} |\n",
                took.as_secs_f64() * 1e3,
                rate / signs,
                sign_cpu / per_delivery
            ));
        }
        // The CPU columns (this process's user + system time, receivers included) hardly move
        // with other work on the machine, unlike the rates: `CPU ratio` is the ratio the row
        // would show if the fan-out kept every core busy, as the reference does.
        // Other work on the machine shares the cores (compare ratios within one run only).
        if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
            let load: Vec<&str> = load.split_whitespace().take(3).collect();
            out.push_str(&format!("load average after the run: {}\n", load.join(" ")));
        }
        // For benches/serve.sh, which prints issue 15's rows together.
        out.push_str(&format!(
            "fanout_per_s={measured:.0}\nsigns_per_s={signs:.0}\n"
        ));
        out
    }

    /// The cheapest receiver that is still a real keep-alive HTTP/1.1 server on its own
    /// loopback address: it reads each request's head and `Content-Length` bytes of body and
    /// answers `202` at once, without parsing JSON, verifying or keeping anything (the mock
    /// inbox of the tests does all three, which in this bench cost the sender's cores).
    struct FastInbox {
        base: String,
        connections: Arc<AtomicUsize>,
    }

    impl FastInbox {
        async fn start(ip: &str) -> FastInbox {
            let listener = tokio::net::TcpListener::bind((ip, 0))
                .await
                .expect("bind fast inbox");
            let base = format!("http://{}", listener.local_addr().expect("addr"));
            let connections = Arc::new(AtomicUsize::new(0));
            let counted = connections.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    counted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(answer_202(stream));
                }
            });
            FastInbox { base, connections }
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::Relaxed)
        }

        fn actor(&self, name: &str) -> String {
            format!("{}/users/{name}", self.base)
        }

        fn actor_inbox(&self, name: &str) -> String {
            format!("{}/users/{name}/inbox", self.base)
        }
    }

    async fn answer_202(mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
        loop {
            let head = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if buf.len() > 64 * 1024 || stream.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            };
            let length = std::str::from_utf8(&buf[..head])
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < head + length {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            }
            buf.drain(..head + length);
            stream
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .await?;
        }
    }

    /// This process's CPU time so far (user + system, every thread).
    fn cpu_time() -> Duration {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return Duration::ZERO;
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }

    /// `hortus::delivery::signing::sign_post` (what every delivery calls: digest, signing
    /// string, RSA-2048) on every core at once for two seconds, with the post's real body: the
    /// ceiling of fan-out speed on this machine, now. Returns signatures per second and CPU µs
    /// per signature.
    fn sign_rate_all_cores(body: &str) -> (f64, f64) {
        let (private, _) = hortus::httpsig::generate_keypair().expect("key");
        let key = hortus::httpsig::load_private_key(&private).expect("load key");
        let url = url::Url::parse("http://127.0.2.1:8080/users/u1/inbox").expect("url");
        let t0 = Instant::now();
        let cpu0 = cpu_time();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..cores())
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0u64;
                        while t0.elapsed() < Duration::from_secs(2) {
                            hortus::delivery::signing::sign_post(
                                hortus::httpsig::SignatureForm::Cavage,
                                &url,
                                body.as_bytes(),
                                "http://127.0.0.2:80/users/alice#main-key",
                                &key,
                                SystemTime::now(),
                            )
                            .expect("sign");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).sum()
        });
        let cpu = cpu_time().saturating_sub(cpu0);
        (
            total as f64 / t0.elapsed().as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / (total.max(1) as f64),
        )
    }
}
