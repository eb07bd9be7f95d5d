//! Real servers by their real names, on loopback: a throwaway CA (made here with openssl), a
//! pretend server serving TLS for one host name (`gts.test`, `snac.test`…) on its own
//! 127.0.0.x, and a Hortus site at `https://alice.test` whose HTTP client reaches those names
//! through `reqwest::ClientBuilder::resolve` and trusts the CA (the federation guard still
//! checks every hop). Captured requests are then sent to Hortus with their exact headers.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::Value;

use super::peer::Received;

/// A certificate authority that exists for one test run.
pub struct Ca {
    cert: X509,
    key: PKey<Private>,
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().expect("name");
    n.append_entry_by_text("CN", cn).expect("CN");
    n.build()
}

fn builder(
    serial: u32,
    subject: &str,
    issuer: &openssl::x509::X509NameRef,
    key: &PKey<Private>,
) -> openssl::x509::X509Builder {
    let mut b = X509::builder().expect("x509");
    b.set_version(2).expect("v3");
    let serial = BigNum::from_u32(serial)
        .and_then(|n| n.to_asn1_integer())
        .expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name(subject)).expect("subject");
    b.set_issuer_name(issuer).expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(2).expect("later"))
        .expect("not after");
    b
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey")
}

impl Ca {
    pub fn new() -> Ca {
        let key = rsa_key();
        let subject = name("Hortus throwaway test CA");
        let mut b = builder(1, "Hortus throwaway test CA", &subject, &key);
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
            .expect("bc");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .expect("ku"),
        )
        .expect("ku");
        b.sign(&key, MessageDigest::sha256()).expect("sign CA");
        Ca {
            cert: b.build(),
            key,
        }
    }

    /// What a client adds to its roots.
    pub fn certificate(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&self.cert.to_pem().expect("pem")).expect("cert")
    }

    /// A server certificate for `host`, signed by this CA, with its key.
    fn leaf(&self, host: &str) -> (X509, PKey<Private>) {
        let key = rsa_key();
        let mut b = builder(2, host, self.cert.subject_name(), &key);
        let san = SubjectAlternativeName::new()
            .dns(host)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .expect("san");
        b.append_extension(san).expect("san");
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().expect("eku"))
            .expect("eku");
        b.sign(&self.key, MessageDigest::sha256())
            .expect("sign leaf");
        (b.build(), key)
    }
}

/// One answer the pretend server gives on GET.
#[derive(Clone)]
pub struct Doc {
    pub status: u16,
    pub body: Value,
    pub content_type: &'static str,
    /// Answer 401 to a GET without a `Signature` header, as GoToSocial does for its actors.
    pub signed_only: bool,
}

/// A pretend server for `host` over TLS on its own loopback address.
#[derive(Clone)]
pub struct TlsPeer {
    pub host: String,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Received>>>,
    /// GET answers by path (without the query).
    pub docs: Arc<Mutex<HashMap<String, Doc>>>,
    /// The HTTP version of each request, in arrival order (HTTP/2 is offered by ALPN).
    pub versions: Arc<Mutex<Vec<actix_web::http::Version>>>,
}

impl TlsPeer {
    pub fn start(ip: &str, host: &str, ca: &Ca) -> TlsPeer {
        let listener = TcpListener::bind((ip, 0)).expect("bind peer");
        let addr = listener.local_addr().expect("addr");
        let peer = TlsPeer {
            host: host.to_string(),
            addr,
            log: Arc::default(),
            docs: Arc::default(),
            versions: Arc::default(),
        };
        let (cert, key) = ca.leaf(host);
        let mut tls = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("tls");
        tls.set_private_key(&key).expect("key");
        tls.set_certificate(&cert).expect("cert");
        let data = web::Data::new(peer.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(handle))
        })
        .workers(1)
        .listen_openssl(listener, tls)
        .expect("listen")
        .run();
        tokio::spawn(server);
        peer
    }

    /// Serves `body` as ActivityPub JSON at `path`.
    pub fn serve(&self, path: &str, body: Value, signed_only: bool) {
        self.docs.lock().unwrap().insert(
            path.to_string(),
            Doc {
                status: 200,
                body,
                content_type: "application/activity+json",
                signed_only,
            },
        );
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) for a POST to `path`; returns its body.
    pub async fn wait_for_post(&self, path: &str) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(r) = self
                .received()
                .into_iter()
                .find(|r| r.method == "POST" && r.path == path)
            {
                return r;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{}: no POST to {path}; received: {:#?}",
                    self.host,
                    self.received()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn handle(req: HttpRequest, peer: web::Data<TlsPeer>, body: web::Bytes) -> HttpResponse {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let signed = headers.iter().any(|(n, _)| n == "signature");
    peer.versions.lock().unwrap().push(req.version());
    peer.log.lock().unwrap().push(Received {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or("/".into(), |p| p.to_string()),
        headers,
        body: body.to_vec(),
    });
    if req.method() == "POST" {
        return HttpResponse::Accepted().finish();
    }
    match peer.docs.lock().unwrap().get(req.path()).cloned() {
        Some(doc) if doc.signed_only && !signed => HttpResponse::Unauthorized().finish(),
        Some(doc) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(doc.status).unwrap_or_default(),
        )
        .content_type(doc.content_type)
        .body(doc.body.to_string()),
        None => HttpResponse::NotFound().finish(),
    }
}

/// A Hortus site at `https://alice.test` (user `alice`), served over plain HTTP on `ip` as it
/// is behind a TLS front; its outgoing requests reach `peers` by name over TLS, and its inbox
/// judges signatures at whatever time `clock` holds.
pub struct Alice {
    pub tmp: tempfile::TempDir,
    pub addr: SocketAddr,
    pub state: Arc<hortus::web::AppState>,
    pub clock: Arc<Mutex<SystemTime>>,
    pub workers: Option<hortus::delivery::worker::Workers>,
}

impl Alice {
    pub async fn start(ip: &str, peers: &[&TlsPeer], ca: &Ca) -> Alice {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("site");
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        hortus::scaffold::init(&hortus::scaffold::InitOptions {
            dir: dir.clone(),
            domain: "alice.test".into(),
            user: "alice".into(),
            name: Some("Alice 🌷".into()),
            base_url: Some("https://alice.test".into()),
            listen: Some(addr.to_string()),
        })
        .expect("init");
        std::fs::remove_file(dir.join("content/posts/hello.md")).expect("remove example");
        let site = hortus::app::Site::open(&dir).expect("open");
        {
            let db = hortus::db::open(&site.db_path()).expect("db");
            for p in peers {
                hortus::federation::allow_add(&db, &p.host).expect("allow");
            }
        }
        let mut ctx = hortus::app::context(&site).await.expect("context");
        let clock = Arc::new(Mutex::new(SystemTime::now()));
        {
            let s = Arc::get_mut(&mut ctx).expect("context not shared yet");
            let roots = ca.certificate();
            let names: Vec<(String, SocketAddr)> =
                peers.iter().map(|p| (p.host.clone(), p.addr)).collect();
            s.http.set(
                hortus::federation::http_client_with(
                    &s.config.federation,
                    s.policy.clone(),
                    "Hortus test",
                    move |mut b| {
                        for (host, addr) in &names {
                            b = b.resolve(host, *addr);
                        }
                        b.add_root_certificate(roots)
                    },
                )
                .expect("client"),
            );
            let c = clock.clone();
            s.clock = Arc::new(move || *c.lock().unwrap());
        }
        let state = Arc::new(hortus::web::AppState::new(ctx));
        let server = hortus::app::server(state.clone(), listener).expect("server");
        tokio::spawn(server);
        let workers = hortus::delivery::worker::start(&state)
            .await
            .expect("workers");
        Alice {
            tmp,
            addr,
            state,
            clock,
            workers,
        }
    }

    pub fn set_clock(&self, at: SystemTime) {
        *self.clock.lock().unwrap() = at;
    }

    pub fn db(&self) -> rusqlite::Connection {
        hortus::db::open(&self.tmp.path().join("site/hortus.db")).expect("db")
    }

    /// Sends a request with exactly these headers (`Host` included; `Content-Length` is the
    /// body's) to the site; returns the status and the body of the answer.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, String) {
        let client = reqwest::Client::new();
        let url = format!("http://{}{path}", self.addr);
        let mut req = match method {
            "POST" => client.post(&url).body(body.to_vec()),
            _ => client.get(&url),
        };
        for (n, v) in headers {
            if !n.eq_ignore_ascii_case("content-length") {
                req = req.header(n.as_str(), v.as_str());
            }
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }
}
