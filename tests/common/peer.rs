//! A pretend remote server on its own loopback address: serves one actor (and its key as a
//! separate document, GoToSocial-style), WebFinger, and an inbox that records what arrives.
//! It signs what it sends with its own RSA key.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
pub struct Peer {
    pub base: String,
    pub host: String,
    pub actor: String,
    pub key_id: String,
    pub private_pem: String,
    pub public_pem: String,
    pub log: Arc<Mutex<Vec<Received>>>,
    /// Display name served in the actor document (tests change it).
    pub name: Arc<Mutex<String>>,
    /// `alsoKnownAs` of the actor document, when not empty (moving house).
    pub also_known_as: Arc<Mutex<Vec<String>>>,
    /// Other documents served on GET, by path (e.g. `/notes/1`).
    pub documents: Arc<Mutex<std::collections::HashMap<String, Value>>>,
}

impl Peer {
    /// Starts a peer on `ip` (port from the OS). `separate_key` serves the key at
    /// `/users/bob/main-key` as its own document, as GoToSocial does.
    pub fn start(ip: &str, separate_key: bool) -> Peer {
        let listener = TcpListener::bind((ip, 0)).expect("bind peer");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let actor = format!("{base}/users/bob");
        let key_id = if separate_key {
            format!("{actor}/main-key")
        } else {
            format!("{actor}#main-key")
        };
        let (private_pem, public_pem) = hortus::httpsig::generate_keypair().expect("keys");
        let peer = Peer {
            base,
            host: addr.to_string(),
            actor,
            key_id,
            private_pem,
            public_pem,
            log: Arc::new(Mutex::new(Vec::new())),
            name: Arc::new(Mutex::new("Bob".into())),
            also_known_as: Arc::new(Mutex::new(Vec::new())),
            documents: Arc::new(Mutex::new(std::collections::HashMap::new())),
        };
        let data = web::Data::new(peer.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                .default_service(web::to(handle))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        peer
    }

    pub fn actor_doc(&self) -> Value {
        let mut doc = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.actor,
            "type": "Person",
            "preferredUsername": "bob",
            "name": *self.name.lock().unwrap(),
            "inbox": format!("{}/inbox", self.actor),
            "outbox": format!("{}/outbox", self.actor),
            "endpoints": {"sharedInbox": format!("{}/inbox", self.base)},
            "publicKey": {"id": self.key_id, "owner": self.actor, "publicKeyPem": self.public_pem},
        });
        let aliases = self.also_known_as.lock().unwrap().clone();
        if !aliases.is_empty() {
            doc["alsoKnownAs"] = json!(aliases);
        }
        doc
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    pub fn posts(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    /// Waits (bounded) until `pred` holds for what arrived; returns it.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; received: {got:#?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (bounded) for the first activity of type `kind` POSTed to this peer; returns it.
    pub async fn wait_for_activity(&self, kind: &str) -> Value {
        let is = |r: &Received| r.method == "POST" && r.json()["type"] == kind;
        let got = self
            .wait_for(&format!("a {kind}"), |r| r.iter().any(is))
            .await;
        got.iter().find(|r| is(r)).expect("just seen").json()
    }

    /// A signed POST of `activity` to `url`, as Mastodon sends it.
    pub async fn post(&self, url: &str, activity: &Value) -> reqwest::Response {
        self.post_raw(
            url,
            activity.to_string().as_bytes(),
            SystemTime::now(),
            |_| {},
        )
        .await
    }

    /// A signed POST with full control: the signing time and a hook to tamper with the
    /// headers after signing.
    pub async fn post_raw(
        &self,
        url: &str,
        body: &[u8],
        when: SystemTime,
        tamper: impl FnOnce(&mut Vec<(String, String)>),
    ) -> reqwest::Response {
        let parsed = url::Url::parse(url).expect("url");
        let key = hortus::httpsig::load_private_key(&self.private_pem).expect("key");
        let mut headers = hortus::httpsig::sign_post(
            &parsed,
            body,
            "application/activity+json",
            &self.key_id,
            &key,
            when,
        )
        .expect("sign");
        headers.push(("Content-Type".into(), "application/activity+json".into()));
        tamper(&mut headers);
        let mut req = reqwest::Client::new().post(url).body(body.to_vec());
        for (n, v) in headers {
            req = req.header(n, v);
        }
        req.send().await.expect("send")
    }

    pub fn activity(&self, kind: &str, object: Value) -> Value {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{}/activities/{}", self.base, uuid_like()),
            "type": kind,
            "actor": self.actor,
            "object": object,
        })
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

async fn handle(req: HttpRequest, peer: web::Data<Peer>, body: web::Bytes) -> HttpResponse {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    peer.log.lock().unwrap().push(Received {
        method: req.method().to_string(),
        path: path.clone(),
        headers,
        body: body.to_vec(),
    });
    let json = |v: Value| {
        HttpResponse::Ok()
            .content_type("application/activity+json")
            .body(v.to_string())
    };
    // A document set by the test wins over the built-in ones (a rotated key, say).
    if req.method() == "GET"
        && let Some(doc) = peer.documents.lock().unwrap().get(req.path()).cloned()
    {
        return json(doc);
    }
    match (req.method().as_str(), req.path()) {
        ("GET", "/users/bob") => json(peer.actor_doc()),
        ("GET", "/users/bob/main-key") => json(json!({
            "@context": "https://w3id.org/security/v1",
            "id": peer.key_id, "owner": peer.actor, "publicKeyPem": peer.public_pem,
        })),
        ("GET", "/.well-known/webfinger") => HttpResponse::Ok().content_type("application/jrd+json").body(
            json!({
                "subject": format!("acct:bob@{}", peer.host),
                "links": [{"rel": "self", "type": "application/activity+json", "href": peer.actor}],
            })
            .to_string(),
        ),
        ("POST", _) => HttpResponse::Accepted().finish(),
        ("GET", path) => match peer.documents.lock().unwrap().get(path).cloned() {
            Some(doc) => json(doc),
            None => HttpResponse::NotFound().finish(),
        },
        _ => HttpResponse::NotFound().finish(),
    }
}
