//! What the running server counts, for Prometheus (`[metrics] listen`, served by
//! `ops::metrics`): deliveries by result, inbox activities by result and refusal reason, key
//! fetches by result, request latency by route, and the delivery queue's gauges (set from the
//! database at each scrape).
//!
//! One registry per process, at the bottom of the layers, so the inbox, the delivery workers and
//! the web server count where things happen without carrying a handle. Counting is a few atomic
//! operations; nothing is served unless `[metrics] listen` is set. Label values come from short
//! fixed sets (a route's pattern, never its path; a refusal's check, never its text), so a peer
//! cannot grow the series without bound.

use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels<const N: usize> = [(&'static str, String); N];

struct Metrics {
    registry: Registry,
    deliveries: Family<Labels<1>, Counter>,
    inbox: Family<Labels<2>, Counter>,
    key_fetches: Family<Labels<1>, Counter>,
    requests: Family<Labels<1>, Histogram, fn() -> Histogram>,
    queue_depth: Gauge,
    queue_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    paused_servers: Gauge,
}

/// 1 ms to about 16 s, doubling: pages answer in milliseconds, an inbox that fetches a key in
/// hundreds, a slow peer's key fetch in seconds.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("hortus");
        let (deliveries, inbox, key_fetches) =
            (Family::default(), Family::default(), Family::default());
        let requests: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let (queue_depth, queue_oldest, paused_servers) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "deliveries",
            "Delivery attempts by result: delivered, retry (will be tried again) or failed",
            deliveries.clone(),
        );
        registry.register(
            "inbox_activities",
            "Inbox POSTs by result (accepted, refused, probe) and the check that refused them",
            inbox.clone(),
        );
        registry.register(
            "key_fetches",
            "Public keys fetched from other servers, by result (ok, error)",
            key_fetches.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route pattern",
            requests.clone(),
        );
        registry.register(
            "delivery_queue_depth",
            "Deliveries waiting to be sent (pending)",
            queue_depth.clone(),
        );
        registry.register(
            "delivery_queue_oldest_age_seconds",
            "Age of the oldest pending delivery, 0 when none waits",
            queue_oldest.clone(),
        );
        registry.register(
            "delivery_paused_servers",
            "Servers whose circuit is open (paused after failures, or rate limited)",
            paused_servers.clone(),
        );
        Metrics {
            registry,
            deliveries,
            inbox,
            key_fetches,
            requests,
            queue_depth,
            queue_oldest,
            paused_servers,
        }
    })
}

/// One delivery attempt recorded: `delivered`, `retry` or `failed`.
pub fn delivery(result: &'static str) {
    metrics()
        .deliveries
        .get_or_create(&[("result", result.into())])
        .inc();
}

/// One inbox POST answered: `accepted`, `probe`, or `refused` with the check that refused it
/// (`reason` is empty for the first two).
pub fn inbox(result: &'static str, reason: &'static str) {
    metrics()
        .inbox
        .get_or_create(&[("result", result.into()), ("reason", reason.into())])
        .inc();
}

/// One key fetched from another server: `ok` or `error`.
pub fn key_fetch(result: &'static str) {
    metrics()
        .key_fetches
        .get_or_create(&[("result", result.into())])
        .inc();
}

/// A request answered in `seconds`; `route` is its pattern (`/users/{name}`), or `unmatched`.
pub fn request(route: &str, seconds: f64) {
    metrics()
        .requests
        .get_or_create(&[("route", route.to_string())])
        .observe(seconds);
}

/// The queue as the database has it now: set before each scrape.
pub fn set_queue(pending: u64, oldest_age_seconds: f64, paused_servers: u64) {
    let m = metrics();
    m.queue_depth
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
    m.queue_oldest.set(oldest_age_seconds);
    m.paused_servers
        .set(i64::try_from(paused_servers).unwrap_or(i64::MAX));
}

/// The exposition text (OpenMetrics text format, which Prometheus reads).
pub fn exposition() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &metrics().registry);
    out
}

/// The content type of [`exposition`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_exposition() {
        delivery("delivered");
        inbox("refused", "signature");
        key_fetch("ok");
        request("/users/{name}", 0.003);
        set_queue(7, 12.5, 1);
        let text = exposition();
        for line in [
            "hortus_deliveries_total{result=\"delivered\"}",
            "hortus_inbox_activities_total{result=\"refused\",reason=\"signature\"}",
            "hortus_key_fetches_total{result=\"ok\"}",
            "hortus_http_request_duration_seconds_bucket{le=\"0.004\",route=\"/users/{name}\"}",
            "hortus_delivery_queue_depth 7",
            "hortus_delivery_queue_oldest_age_seconds 12.5",
            "hortus_delivery_paused_servers 1",
        ] {
            assert!(text.contains(line), "{line} not in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
