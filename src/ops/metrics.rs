//! `[metrics] listen`: the Prometheus endpoint of a running `hortus serve`, on its own listener
//! (keep it on loopback or a private network: it is not part of the public site), and the
//! middleware that times every request of the public server by route. The counters themselves
//! live in `crate::metrics`, where every layer bumps them.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::context::Context;

/// Times one request of the public server; the route is the matched pattern
/// (`/users/{name}/inbox`), never the path itself, so the series stay few.
pub async fn time_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    crate::metrics::request(&route, started.elapsed().as_secs_f64());
    Ok(res)
}

/// `GET /metrics`: the queue's gauges read from the database now, then every metric.
async fn scrape(ctx: web::Data<Arc<Context>>) -> HttpResponse {
    let now = SystemTime::now();
    let gauges = ctx
        .db
        .read(move |c| crate::delivery::status::gauges(c, now))
        .await;
    match gauges {
        Ok(g) => {
            let oldest = g.oldest_created_ms.map_or(0.0, |created| {
                (crate::delivery::unix_ms(now).saturating_sub(created)).max(0) as f64 / 1000.0
            });
            crate::metrics::set_queue(g.pending, oldest, g.paused_servers);
        }
        // The counters are still worth serving; the gauges keep their last values.
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the delivery queue"),
    }
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::exposition())
}

/// The metrics server on `listener`: `/metrics` only, one worker.
pub fn server(ctx: Arc<Context>, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(ctx);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .listen(listener)?
    .shutdown_timeout(1)
    .run())
}
