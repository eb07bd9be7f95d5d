//! A pretend remote server's inbox for delivery tests and the delivery benchmark: a tiny
//! HTTP/1.1 server on its own loopback address (keep-alive, no framework, so hundreds can run in
//! one process) that VERIFIES every POST's signature with `hortus::httpsig::verify_with` against
//! the key it fetches from the signer's keyId, records what arrived, and answers as scripted.
//! Also: helpers that make a site's followers live on these servers.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// How the mock answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering (a slow server).
    pub delay: Duration,
    /// Never answer until [`MockInbox::release`] (a server that hangs mid-request).
    pub hang: bool,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            hang: false,
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
    pub fn hanging() -> Reply {
        Reply {
            hang: true,
            ..Reply::status(202)
        }
    }
}

/// One POST as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub activity: Value,
    /// `Ok(keyId)` when the signature (and its Digest) verified.
    pub verified: Result<String, String>,
    /// The status the mock answered (0 while hanging).
    pub answered: u16,
    /// When the request had been read, before verifying it.
    pub at: Instant,
}

struct State {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    keys: Mutex<HashMap<String, String>>,
    arrived: Notify,
    release: Notify,
    released: std::sync::atomic::AtomicBool,
    /// Check signatures (the benchmark may turn this off to measure only the sender).
    verify: bool,
    /// TCP connections accepted: a sender that reuses its connections opens few.
    connections: std::sync::atomic::AtomicUsize,
}

#[derive(Clone)]
pub struct MockInbox {
    pub addr: SocketAddr,
    /// `http://ip:port`
    pub base: String,
    state: Arc<State>,
}

impl MockInbox {
    /// Starts on `ip`, port from the OS, answering 202 unless told otherwise.
    pub async fn start(ip: &str) -> MockInbox {
        Self::start_with(ip, true).await
    }

    pub async fn start_with(ip: &str, verify: bool) -> MockInbox {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind mock inbox");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            received: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::status(202)),
            keys: Mutex::new(HashMap::new()),
            arrived: Notify::new(),
            release: Notify::new(),
            released: false.into(),
            verify,
            connections: 0.into(),
        });
        let accept_state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = accept_state.clone();
                state
                    .connections
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = serve_connection(stream, state).await;
                });
            }
        });
        MockInbox {
            base: format!("http://{addr}"),
            addr,
            state,
        }
    }

    /// The server's `host:port`, as the policy and `hortus queue` name it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn shared_inbox(&self) -> String {
        format!("{}/inbox", self.base)
    }

    pub fn actor(&self, name: &str) -> String {
        format!("{}/users/{name}", self.base)
    }

    pub fn actor_inbox(&self, name: &str) -> String {
        format!("{}/users/{name}/inbox", self.base)
    }

    /// The next requests get these replies, in order; then the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = reply;
    }

    /// Lets hanging requests (and every later one) answer.
    pub fn release(&self) {
        self.state
            .released
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.state.release.notify_waiters();
    }

    /// How many TCP connections this server has accepted so far.
    pub fn connections(&self) -> usize {
        self.state
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many requests arrived so far (without copying them).
    pub fn count(&self) -> usize {
        self.state.received.lock().unwrap().len()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Activities this server accepted (answered 2xx) with a valid signature.
    pub fn delivered(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|r| r.verified.is_ok() && (200..300).contains(&r.answered))
            .map(|r| r.activity)
            .collect()
    }

    /// Waits until `pred` holds for what arrived, up to `timeout`; returns whether it did.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if pred(&self.state.received.lock().unwrap()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&self.state.received.lock().unwrap());
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let close = headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"));

        let arrived_at = Instant::now();
        let reply = {
            let next = state.script.lock().unwrap().pop_front();
            next.unwrap_or_else(|| state.default.lock().unwrap().clone())
        };
        let verified = if method == "POST" {
            if state.verify {
                verify(&state, &method, &path, &headers, &body).await
            } else {
                Ok(String::new())
            }
        } else {
            Err(format!("{method} is not POST"))
        };
        let status = if verified.is_err() { 401 } else { reply.status };
        let hang = reply.hang && !state.released.load(std::sync::atomic::Ordering::SeqCst);
        {
            let mut received = state.received.lock().unwrap();
            received.push(Received {
                path: path.clone(),
                activity: serde_json::from_slice(&body).unwrap_or(Value::Null),
                verified,
                answered: if hang { 0 } else { status },
                at: arrived_at,
            });
        }
        if hang {
            let released = state.release.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            state.arrived.notify_waiters();
            if !state.released.load(std::sync::atomic::Ordering::SeqCst) {
                released.await;
            }
            // The client may be long gone; whatever it was, this request was never answered.
            return Ok(());
        }
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-length: 0\r\n",
            reason(status)
        );
        for (n, v) in &reply.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let written = write.write_all(head.as_bytes()).await;
        state.arrived.notify_waiters();
        written?;
        if close {
            return Ok(());
        }
    }
}

/// Verifies like a receiving server: parse the signature, fetch the keyId's actor (cached),
/// check the signature and the Digest against the raw body.
async fn verify(
    state: &State,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<String, String> {
    let parts = hortus::httpsig::RequestParts {
        method,
        path_and_query: path,
        headers,
        body: Some(body),
    };
    let pending = hortus::httpsig::signature_key_id(&parts).map_err(|e| e.to_string())?;
    let key_id = pending.key_id().to_string();
    let cached = state.keys.lock().unwrap().get(&key_id).cloned();
    let pem = match cached {
        Some(pem) => pem,
        None => {
            let pem = fetch_key(&key_id).await?;
            state
                .keys
                .lock()
                .unwrap()
                .insert(key_id.clone(), pem.clone());
            pem
        }
    };
    let opts = hortus::httpsig::VerifyOptions {
        scheme: "http",
        clock_window: hortus::httpsig::DEFAULT_CLOCK_WINDOW,
    };
    hortus::httpsig::verify_with(&parts, &pending, &pem, SystemTime::now(), &opts)
        .map(|v| v.key_id)
        .map_err(|e| e.to_string())
}

async fn fetch_key(key_id: &str) -> Result<String, String> {
    let actor_url = key_id.split('#').next().unwrap_or(key_id);
    // One client for every mock: building one loads the system's root certificates.
    static CLIENT: std::sync::LazyLock<reqwest::Client> =
        std::sync::LazyLock::new(reqwest::Client::new);
    let actor: Value = CLIENT
        .get(actor_url)
        .header("Accept", "application/activity+json")
        .send()
        .await
        .map_err(|e| format!("fetching {actor_url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("reading {actor_url}: {e}"))?;
    actor["publicKey"]["publicKeyPem"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{actor_url} has no publicKeyPem"))
}

/// Makes `actor` an accepted follower whose inbox is `inbox` (and shared inbox, if any), as the
/// inbox would after an accepted Follow.
pub fn add_follower(conn: &rusqlite::Connection, actor: &str, inbox: &str, shared: Option<&str>) {
    let host = url::Url::parse(actor)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    conn.execute(
        "INSERT INTO remote_actors (id, host, inbox, shared_inbox, raw, fetched_at)
         VALUES (?1, ?2, ?3, ?4, '{}', '2026-01-01T00:00:00Z')",
        rusqlite::params![actor, host, inbox, shared],
    )
    .expect("insert remote actor");
    conn.execute(
        "INSERT INTO followers (actor_id, follow_id, state, created_at)
         VALUES (?1, ?1 || '#follow', 'accepted', '2026-01-01T00:00:00Z')",
        [actor],
    )
    .expect("insert follower");
}
