//! How often a refused request may write a knock (issue 9.4). A knock is written after only a
//! syntax check, so anyone can ask for one: writes are limited per source address, per claimed
//! host and in total, in memory, with maps of bounded size. A request over a limit still gets
//! its 403; it just writes nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits; [`Default`] is what the server uses.
#[derive(Debug, Clone, Copy)]
pub struct KnockLimits {
    /// At most one write per host in this interval.
    pub per_host: Duration,
    /// Writes one address may make at once…
    pub address_burst: u32,
    /// …and the time it takes to earn one more.
    pub address_refill: Duration,
    /// Writes per second from everyone together (many addresses cannot swamp the database).
    pub total_per_second: u32,
    /// Hosts and addresses remembered; beyond that, new ones write nothing until old ones expire.
    pub max_tracked: usize,
}

impl Default for KnockLimits {
    fn default() -> Self {
        KnockLimits {
            per_host: Duration::from_secs(1),
            address_burst: 10,
            address_refill: Duration::from_secs(6),
            total_per_second: 20,
            max_tracked: 4096,
        }
    }
}

/// One per server, shared by every request (see `app::Shared`).
#[derive(Debug, Default)]
pub struct KnockLimiter {
    limits: KnockLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    hosts: HashMap<String, Instant>,
    addresses: HashMap<IpAddr, Bucket>,
    second: Option<Instant>,
    written_this_second: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    since: Instant,
}

impl KnockLimiter {
    pub fn new(limits: KnockLimits) -> KnockLimiter {
        KnockLimiter {
            limits,
            state: Mutex::default(),
        }
    }

    /// Whether a refused request from `address` claiming `host` may write a knock now; if so,
    /// the write is counted.
    pub fn admit(&self, address: Option<IpAddr>, host: &str, now: Instant) -> bool {
        let l = self.limits;
        // A panic elsewhere while holding the lock leaves counters, not broken invariants.
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.second
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            s.second = Some(now);
            s.written_this_second = 0;
        }
        if s.written_this_second >= l.total_per_second {
            return false;
        }
        if s.hosts
            .get(host)
            .is_some_and(|t| now.saturating_duration_since(*t) < l.per_host)
        {
            return false;
        }
        let address = address.map(network_of);
        let bucket = address.map(|a| {
            let b = s.addresses.get(&a).copied().unwrap_or(Bucket {
                tokens: l.address_burst,
                since: now,
            });
            refill(b, now, &l)
        });
        if bucket.is_some_and(|b| b.tokens == 0) {
            return false;
        }
        // Room for whatever is new, after forgetting what no longer limits anyone.
        if s.hosts.len() >= l.max_tracked && !s.hosts.contains_key(host) {
            s.hosts
                .retain(|_, t| now.saturating_duration_since(*t) < l.per_host);
        }
        if let Some(a) = address
            && s.addresses.len() >= l.max_tracked
            && !s.addresses.contains_key(&a)
        {
            s.addresses
                .retain(|_, b| refill(*b, now, &l).tokens < l.address_burst);
        }
        let address_full = address
            .is_some_and(|a| s.addresses.len() >= l.max_tracked && !s.addresses.contains_key(&a));
        if address_full || (s.hosts.len() >= l.max_tracked && !s.hosts.contains_key(host)) {
            return false;
        }
        if let (Some(a), Some(b)) = (address, bucket) {
            s.addresses.insert(
                a,
                Bucket {
                    tokens: b.tokens - 1,
                    since: b.since,
                },
            );
        }
        s.hosts.insert(host.to_string(), now);
        s.written_this_second += 1;
        true
    }
}

/// Tokens earned since the bucket was last filled, up to the burst.
fn refill(b: Bucket, now: Instant, l: &KnockLimits) -> Bucket {
    let step = l.address_refill.max(Duration::from_millis(1));
    let earned = now.saturating_duration_since(b.since).as_millis() / step.as_millis();
    let earned = u32::try_from(earned).unwrap_or(u32::MAX);
    if earned == 0 {
        return b;
    }
    Bucket {
        tokens: b.tokens.saturating_add(earned).min(l.address_burst),
        since: now,
    }
}

/// One IPv6 host usually holds a whole /64: count it as one address (the sign-in throttle of
/// `api::throttle` counts the same way).
pub fn network_of(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => a,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn one_write_per_host_per_interval() {
        let l = KnockLimiter::default();
        let t = Instant::now();
        assert!(l.admit(ip("192.0.2.1"), "東京.example", t));
        assert!(!l.admit(
            ip("192.0.2.2"),
            "東京.example",
            t + Duration::from_millis(500)
        ));
        assert!(l.admit(
            ip("192.0.2.2"),
            "大阪.example",
            t + Duration::from_millis(500)
        ));
        assert!(l.admit(
            ip("192.0.2.3"),
            "東京.example",
            t + Duration::from_millis(1000)
        ));
    }

    #[test]
    fn an_address_has_a_budget_whatever_hosts_it_names() {
        let l = KnockLimiter::default();
        let t = Instant::now();
        let admitted = (0..1000)
            .filter(|i| l.admit(ip("2001:db8::1"), &format!("h{i}.مثال"), t))
            .count();
        assert_eq!(admitted, 10);
        // The same /64 is the same budget; another address has its own.
        assert!(!l.admit(ip("2001:db8::ffff"), "x.example", t));
        assert!(l.admit(ip("2001:db8:1::1"), "x.example", t));
        // One more write is earned per refill interval.
        let later = t + Duration::from_secs(6);
        assert!(l.admit(ip("2001:db8::1"), "y.example", later));
        assert!(!l.admit(ip("2001:db8::1"), "z.example", later));
    }

    #[test]
    fn totals_and_memory_are_bounded() {
        let l = KnockLimiter::new(KnockLimits {
            max_tracked: 8,
            ..KnockLimits::default()
        });
        let t = Instant::now();
        let n = (0..100u8)
            .filter(|i| l.admit(ip(&format!("198.51.100.{i}")), &format!("h{i}.例"), t))
            .count();
        assert_eq!(
            n, 8,
            "no more hosts and addresses remembered than the bound"
        );
        let s = l.state.lock().unwrap();
        assert!(s.hosts.len() <= 8 && s.addresses.len() <= 8);
        drop(s);
        // Once the remembered ones no longer limit anyone, room is made for new ones.
        let later = t + Duration::from_secs(120);
        assert!(l.admit(ip("203.0.113.9"), "new.example", later));

        let l = KnockLimiter::default();
        let n = (0..100u8)
            .filter(|i| l.admit(ip(&format!("198.51.100.{i}")), &format!("h{i}.example"), t))
            .count();
        assert_eq!(n, 20, "at most 20 writes a second in total");
    }
}
