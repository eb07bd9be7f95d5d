//! The streaming API under load, with a WebSocket client written here (RFC 6455's handshake and
//! frames, so the test controls when it reads): a new notification reaches the stream within a
//! second of the inbox accepting it, and an app that stops reading is dropped while another
//! gets every event at full speed.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use super::common::peer::Peer;
use super::common::{self, TestSite};
use super::*;

/// Opens `/api/v1/streaming?QUERY`; `recv_buffer` shrinks the socket's receive buffer (an app
/// on a stalled network).
async fn connect(base: &str, query: &str, recv_buffer: Option<u32>) -> TcpStream {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().expect("address");
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("buffer");
    }
    let mut stream = socket.connect(addr).await.expect("connect");
    let mut key = [0u8; 16];
    openssl::rand::rand_bytes(&mut key).expect("random");
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    let request = format!(
        "GET /api/v1/streaming?{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// The next frame from the server (unmasked): its opcode and payload; `None` at the end.
async fn frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).await.ok()?;
            u64::from(u16::from_be_bytes(n))
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n).await.ok()?;
            u64::from_be_bytes(n)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[0] & 0x0f, payload))
}

/// The next text frame's event, skipping pings; `None` when the stream ends or closes.
async fn event(stream: &mut TcpStream) -> Option<Value> {
    loop {
        match frame(stream).await? {
            (0x1, text) => return serde_json::from_slice(&text).ok(),
            (0x8, _) => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_notification_reaches_the_stream_within_a_second() {
    let mut site = TestSite::federating("127.0.13.40");
    let peers: Vec<Peer> = (41..44)
        .map(|n| Peer::start(&format!("127.0.13.{n}"), false))
        .collect();
    for p in &peers {
        site.allow(&p.host);
    }
    set_password(&site);
    let serve = site.spawn_serve(1).await;
    let http = common::client();
    let app = register(&http, &site.base, "read").await;
    let token = sign_in(&http, &site.base, &app, "read").await;
    let mut ws = connect(
        &site.base,
        &format!("stream=user:notification&access_token={token}"),
        None,
    )
    .await;
    // The feed starts with the first stream; what happens from then on is sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for peer in &peers {
        let follow = peer.activity("Follow", json!(site.url("/users/alice")));
        let sent = Instant::now();
        let resp = peer.post(&site.url("/inbox"), &follow).await;
        assert_eq!(resp.status(), 202);
        // The inbox answers 202 once the notification is stored: from then on, it is the
        // stream's time.
        let accepted = Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(5), event(&mut ws))
            .await
            .unwrap_or_else(|_| panic!("no notification in 5 s\n{}", serve.log()))
            .expect("an event");
        let (took, whole) = (accepted.elapsed(), sent.elapsed());
        eprintln!("notification on the stream {took:?} after the 202 ({whole:?} after the POST)");
        assert_eq!(got["event"], "notification", "{got}");
        assert_eq!(got["stream"], json!(["user:notification"]));
        let payload: Value = serde_json::from_str(got["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["type"], "follow");
        assert_eq!(payload["account"]["uri"], peer.actor.as_str());
        assert!(
            took < Duration::from_secs(1),
            "the notification took {took:?} from the inbox's 202 to the stream"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_stops_reading_is_dropped_and_the_others_get_everything_at_once() {
    const POSTS: usize = 200;
    let mut site = TestSite::new("127.0.13.45");
    set_password(&site);
    let serve = site.spawn_serve(1).await;
    let http = common::client();
    let app = register(&http, &site.base, "read").await;
    let token = sign_in(&http, &site.base, &app, "read").await;
    let query = format!("stream=user&access_token={token}");
    // The slow app: a 4 KiB receive buffer, and it never reads.
    let mut slow = connect(&site.base, &query, Some(4096)).await;
    let mut healthy = connect(&site.base, &query, None).await;
    let reader = tokio::spawn(async move {
        let started = Instant::now();
        let mut updates = 0;
        while updates < POSTS {
            match tokio::time::timeout(Duration::from_secs(60), event(&mut healthy)).await {
                Ok(Some(e)) if e["event"] == "update" => updates += 1,
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        (updates, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 200 posts of about 28 kB each (5.6 MB in all: more than the 4 MB the kernel may buffer
    // for a socket here), published by `hortus serve` as it watches the folder.
    let line = "庭の朝、雨が上がった 🌧️→☀️ الحديقة بعد المطر e\u{301}te\u{301} ";
    let text = line.repeat(250);
    for i in 0..POSTS {
        site.write_post(&format!("2026-11-29-{i:03}.md"), &format!("{i} {text}"));
    }
    let (updates, took) = reader.await.expect("reader");
    assert_eq!(
        updates,
        POSTS,
        "the healthy app missed updates\n{}",
        serve.log()
    );
    // The slow app is closed after it stalls (`streaming::SEND_WAIT`, 5 s); what it reads now
    // ends there, well short of everything.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut slow_updates = 0;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(e) = event(&mut slow).await {
            if e["event"] == "update" {
                slow_updates += 1;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the slow app's stream was never closed ({slow_updates} updates read)\n{}",
        serve.log()
    );
    assert!(slow_updates < POSTS, "{slow_updates}");
    assert!(
        serve.log().contains("stopped reading"),
        "no log line for the dropped stream\n{}",
        serve.log()
    );
    // The server is still quick: a new stream connects and the API answers.
    let started = Instant::now();
    let _again = connect(&site.base, &query, None).await;
    let resp = http
        .get(format!(
            "{}/api/v1/timelines/public?local=true&limit=1",
            site.base
        ))
        .send()
        .await
        .expect("timeline");
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    eprintln!(
        "healthy app: {updates} updates in {took:?}; slow app read {slow_updates} before it was dropped"
    );
}
