//! A plain-HTTP hop with a slow clock, between a front and `hortus serve` (tests/check.rs):
//! what a cache replaying old answers, or a machine whose clock drifted, shows to peers.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// A plain-HTTP hop that forwards every request to `upstream` as it came (Host included) and
/// answers with the upstream's answer, its `Date` set `slow` in the past. Stopped when dropped.
pub struct SkewedHop {
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl SkewedHop {
    pub fn start(ip: &str, upstream: SocketAddr, slow: Duration) -> SkewedHop {
        let listener = TcpListener::bind((ip, 0)).expect("bind the hop");
        let addr = listener.local_addr().expect("hop address");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("client");
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(actix_web::web::Data::new((client.clone(), upstream, slow)))
                        .default_service(actix_web::web::to(forward_skewed))
                })
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run();
                tx.send(server.handle()).expect("send handle");
                let _ = server.await;
            });
        });
        let handle = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("hop started");
        SkewedHop { addr, handle }
    }
}

impl Drop for SkewedHop {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn forward_skewed(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    hop: actix_web::web::Data<(reqwest::Client, SocketAddr, Duration)>,
) -> actix_web::HttpResponse {
    let (client, upstream, slow) = hop.get_ref();
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let mut out = client.request(method, format!("http://{upstream}{target}"));
    for (n, v) in req.headers() {
        if n.as_str() != "content-length" {
            out = out.header(n.as_str(), v.as_bytes());
        }
    }
    let resp = out
        .body(body.to_vec())
        .send()
        .await
        .expect("upstream answers");
    let status = actix_web::http::StatusCode::from_u16(resp.status().as_u16()).expect("status");
    let mut answer = actix_web::HttpResponse::build(status);
    for (n, v) in resp.headers() {
        let skip = ["date", "content-length", "transfer-encoding", "connection"];
        if !skip.contains(&n.as_str()) {
            answer.append_header((n.as_str(), v.as_bytes()));
        }
    }
    answer.insert_header((
        "date",
        httpdate::fmt_http_date(std::time::SystemTime::now() - *slow),
    ));
    answer.body(resp.bytes().await.expect("upstream body").to_vec())
}
