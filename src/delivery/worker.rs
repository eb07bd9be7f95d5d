//! The workers: lease due deliveries, sign each request at the moment it is sent, POST it,
//! record the answer. [`Deliverer`] does one step at a time ([`Deliverer::run_once`],
//! [`Deliverer::drain`]) for tests; [`Workers`] runs it in the background inside `hortus serve`.
//!
//! Crash safety: a delivery is leased before it is sent and marked done only after a 2xx. A
//! worker pool holds an exclusive lock on `hortus.delivery.lock` beside the database while it
//! lives; the OS drops the lock when the process dies, even by kill -9. So a pool that gets the
//! lock knows every other lease belongs to a dead process and sends those deliveries again at
//! once (at-least-once: a peer may see an activity twice and deduplicates by its id). A lease
//! also expires on its own, which covers anything the lock cannot.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use openssl::pkey::{PKey, Private};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::queue::{self, AttemptResult, ClaimLimits, Claimed, Recorded};
use super::schedule::{Backoff, Clock, Verdict, parse_retry_after, verdict};
use super::{DeliveryError, WAKE};
use crate::activitypub::CONTENT_TYPE;
use crate::config::FederationConfig;
use crate::context::Context;
use crate::db::Db;
use crate::federation::{self, PolicyHandle};
use crate::httpsig::SignatureForm;

/// The lock file beside the database that marks a live worker pool.
pub const LOCK_FILE: &str = "hortus.delivery.lock";

/// How the worker pool behaves. The defaults suit one person's server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requests in flight at once, all servers together.
    pub concurrency: usize,
    /// Requests in flight to one server at once.
    pub per_server: usize,
    /// How long a claimed delivery stays leased; longer than a request can take.
    pub lease: Duration,
    /// How often idle workers look for work queued by another process (`hortus publish`).
    pub idle_poll: Duration,
    /// On shutdown, how long in-flight requests may finish before they are abandoned (and
    /// their deliveries released for the next start).
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
    /// Finished deliveries are forgotten after this long.
    pub keep_finished: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            // Requests wait on the network, not the CPU: slow servers must not hold every slot.
            concurrency: 128,
            per_server: 4,
            lease: Duration::from_secs(120),
            idle_poll: Duration::from_millis(500),
            shutdown_grace: federation::guard::REQUEST_TIMEOUT + Duration::from_secs(1),
            backoff: Backoff::default(),
            keep_finished: Duration::from_secs(14 * 24 * 60 * 60),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    pub attempted: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl Step {
    fn add(&mut self, other: Step) {
        self.attempted += other.attempted;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
    }
}

/// Sends the queue's deliveries. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    /// The workers' own connection: claims and records never wait behind page requests.
    db: Db,
    http: reqwest::Client,
    policy: PolicyHandle,
    federation: FederationConfig,
    key: PKey<Private>,
    key_id: String,
    urls: crate::urls::Urls,
    /// The signature form each server accepted, when not draft-cavage.
    forms: super::signing::Forms,
    settings: Settings,
    clock: Arc<dyn Clock>,
    /// Names this pool's leases.
    owner: String,
    in_flight: Mutex<HashMap<String, usize>>,
    /// One signature per core at a time.
    signers: tokio::sync::Semaphore,
    /// Held for the pool's lifetime; the OS releases it when the process dies.
    _lock: File,
}

impl Deliverer {
    /// A worker pool for the site `state` serves. Fails with [`DeliveryError::Busy`] when another
    /// pool (another `hortus serve`) delivers for this site.
    pub async fn new(
        ctx: &Context,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Deliverer, DeliveryError> {
        let db_path = ctx.site_dir.join(crate::config::DB_FILE);
        let lock = take_lock(&ctx.site_dir.join(LOCK_FILE))?;
        // The queue is written at every step: the writer alone.
        let db = Db::open(&db_path, 0).await?;
        let owner = format!("{}:{}", std::process::id(), uuid::Uuid::now_v7());
        let recovered = {
            let owner = owner.clone();
            db.call(move |c| queue::recover_leases(c, &owner)).await?
        };
        let forms = super::signing::Forms::load(&db).await?;
        if recovered > 0 {
            tracing::info!(
                recovered,
                "deliveries left in flight by a stopped server are due again"
            );
        }
        Ok(Deliverer {
            inner: Arc::new(Inner {
                db,
                http: ctx.http.clone(),
                policy: ctx.policy.clone(),
                federation: ctx.config.federation.clone(),
                key: ctx.actor_key.private.clone(),
                key_id: ctx.urls.actor_key(),
                urls: ctx.urls.clone(),
                forms,
                settings,
                clock,
                owner,
                in_flight: Mutex::new(HashMap::new()),
                signers: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, |n| n.get()),
                ),
                _lock: lock,
            }),
        })
    }

    /// Leases what is due now (up to the concurrency limit), sends it all, records every answer.
    pub async fn run_once(&self) -> Result<Step, DeliveryError> {
        let claimed = self.claim(self.inner.settings.concurrency).await?;
        let mut set = JoinSet::new();
        for c in claimed {
            set.spawn(self.inner.clone().deliver(c));
        }
        let mut step = Step::default();
        while let Some(joined) = set.join_next().await {
            step.add(joined.map_err(|e| DeliveryError::Worker(e.to_string()))??);
        }
        Ok(step)
    }

    /// [`run_once`](Self::run_once) until nothing more is due at the clock's current time.
    pub async fn drain(&self) -> Result<Step, DeliveryError> {
        let mut total = Step::default();
        loop {
            let step = self.run_once().await?;
            if step.attempted == 0 {
                return Ok(total);
            }
            total.add(step);
        }
    }

    /// Leases up to `want` due deliveries and counts them in flight. Also picks up policy
    /// changes made by another process: deliveries go only where the policy allows *now*.
    async fn claim(&self, want: usize) -> Result<Vec<Claimed>, DeliveryError> {
        let inner = &self.inner;
        let in_flight = inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let limits = ClaimLimits {
            want,
            per_server: inner.settings.per_server,
            breaker_threshold: inner.settings.backoff.breaker_threshold,
            lease: inner.settings.lease,
        };
        let now = inner.clock.now();
        let owner = inner.owner.clone();
        let policy = inner.policy.clone();
        let claimed = inner
            .db
            .call(move |c| {
                if let Err(e) = policy.reload_if_changed(c) {
                    tracing::warn!(error = %e, "cannot reload the federation policy");
                }
                // A cheap read first: most polls find nothing and take no write lock.
                match queue::next_due_ms(c)? {
                    Some(due) if due <= super::unix_ms(now) => {}
                    _ => return Ok(Vec::new()),
                }
                queue::claim(c, &owner, now, limits, &in_flight)
            })
            .await?;
        let mut in_flight = inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for c in &claimed {
            *in_flight.entry(c.host.clone()).or_default() += 1;
        }
        Ok(claimed)
    }

    /// Gives back this pool's leases so the next start sends them at once.
    async fn release(&self) -> Result<usize, DeliveryError> {
        let owner = self.inner.owner.clone();
        self.inner.db.call(move |c| queue::release(c, &owner)).await
    }
}

impl Inner {
    /// One attempt and its record. The in-flight count is given back however this ends.
    async fn deliver(self: Arc<Self>, claimed: Claimed) -> Result<Step, DeliveryError> {
        let _slot = InFlight {
            inner: self.clone(),
            host: claimed.host.clone(),
        };
        let started = self.clock.now();
        let t0 = Instant::now();
        let (verdict, status, error) = self.send(&claimed, started).await;
        let result = AttemptResult {
            verdict,
            status,
            error,
            started,
            duration: t0.elapsed(),
        };
        match &result.error {
            None => {
                tracing::debug!(inbox = %claimed.inbox, activity = %claimed.activity_id, "delivered")
            }
            Some(e) => {
                tracing::info!(inbox = %claimed.inbox, activity = %claimed.activity_id, status = ?status, error = %e, "delivery attempt failed")
            }
        }
        let now = self.clock.now();
        let backoff = self.settings.backoff.clone();
        let recorded = self
            .db
            .call(move |c| queue::record(c, &claimed, &result, now, &backoff))
            .await?;
        let mut step = Step {
            attempted: 1,
            ..Step::default()
        };
        match recorded {
            Recorded::Done => step.delivered = 1,
            Recorded::Retrying(_) => step.retrying = 1,
            Recorded::Failed => step.failed = 1,
            Recorded::Stale => {}
        }
        match recorded {
            Recorded::Done => crate::metrics::delivery("delivered"),
            Recorded::Retrying(_) => crate::metrics::delivery("retry"),
            Recorded::Failed => crate::metrics::delivery("failed"),
            Recorded::Stale => {}
        }
        Ok(step)
    }

    /// Checks the policy, signs, POSTs. Never fails: every problem is a verdict to record.
    async fn send(&self, c: &Claimed, now: SystemTime) -> (Verdict, Option<u16>, Option<String>) {
        let url = match url::Url::parse(&c.inbox) {
            Ok(u) => u,
            Err(e) => return (Verdict::Rejected, None, Some(format!("bad inbox URL: {e}"))),
        };
        // The policy at the time of sending: a server blocked since the post was queued gets
        // nothing.
        if let Err(refused) = federation::check_url(&url, &self.federation, &self.policy.current())
        {
            return (Verdict::Rejected, None, Some(refused.to_string()));
        }
        let sync =
            crate::activitypub::follower_sync::delivery_header(&self.db, &self.urls, &c.body, &url)
                .await;
        let form = self.forms.get(&c.host);
        let first = self.post(c, &url, form, sync.as_deref(), now).await;
        if first.1 != Some(401) {
            return first;
        }
        // A 401 may mean "not this signature form" (PROTOCOL.md §3): the other form goes at
        // once, in this same attempt, and only its answer is recorded. Accepted, it is
        // remembered for the server, in the database.
        let other = super::signing::other(form);
        let second = self.post(c, &url, other, sync.as_deref(), now).await;
        if second.0 == Verdict::Delivered {
            self.forms.learn(&self.db, &c.host, other).await;
        }
        second
    }

    /// One signed POST in `form`, with FEP-8fcf's header when there is one.
    async fn post(
        &self,
        c: &Claimed,
        url: &url::Url,
        form: SignatureForm,
        sync: Option<&str>,
        now: SystemTime,
    ) -> (Verdict, Option<u16>, Option<String>) {
        let signed = match self.sign(form, url, &c.body).await {
            Ok(h) => h,
            Err(e) => return (Verdict::Rejected, None, Some(format!("cannot sign: {e}"))),
        };
        let mut request = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(c.body.clone());
        for (name, value) in signed {
            request = request.header(name, value);
        }
        if let Some(sync) = sync {
            request = request.header("Collection-Synchronization", sync);
        }
        match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now));
                // Read (a little of) the body so the connection can be reused, and keep the
                // start of an error answer for the owner.
                let text = federation::read_capped(resp, 64 * 1024)
                    .await
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let v = verdict(status, retry_after);
                let error = (v != Verdict::Delivered).then(|| {
                    let excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    let excerpt: String = excerpt.chars().take(200).collect();
                    if excerpt.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("HTTP {status}: {excerpt}")
                    }
                });
                (v, Some(status), error)
            }
            Err(e) => {
                let message = error_chain(&e);
                // A redirect the policy or the address guard refused will not change by waiting.
                let refused = e.is_redirect()
                    || std::error::Error::source(&e)
                        .is_some_and(|s| s.downcast_ref::<federation::RefusedFetch>().is_some());
                if refused {
                    (Verdict::Rejected, None, Some(message))
                } else {
                    (Verdict::Retry { retry_after: None }, None, Some(message))
                }
            }
        }
    }
}

impl Inner {
    /// Signs now, at every attempt: peers reject a stale Date (PROTOCOL.md §3). An RSA signature
    /// costs about a millisecond of CPU, so signing runs on the blocking pool, one signature per
    /// core at a time (in arrival order): the async threads stay free to move requests that are
    /// already signed, and the first delivery of a big fan-out leaves after one signature, not
    /// after the whole batch.
    async fn sign(
        &self,
        form: SignatureForm,
        url: &url::Url,
        body: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let _permit = self.signers.acquire().await.map_err(|e| e.to_string())?;
        let (url, body, key_id, key) = (
            url.clone(),
            body.to_string(),
            self.key_id.clone(),
            self.key.clone(),
        );
        tokio::task::spawn_blocking(move || {
            super::signing::sign_post(
                form,
                &url,
                body.as_bytes(),
                &key_id,
                &key,
                SystemTime::now(),
            )
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }
}

/// `error sending request: connection refused` rather than reqwest's outermost line only.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// One request in flight to a server; counted down on drop, even when the task is aborted.
struct InFlight {
    inner: Arc<Inner>,
    host: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.host) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.host);
            }
        }
    }
}

fn take_lock(path: &Path) -> Result<File, DeliveryError> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| DeliveryError::Lock(path.display().to_string(), e.to_string()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(DeliveryError::Busy(path.display().to_string())),
        Err(TryLockError::Error(e)) => Err(DeliveryError::Lock(
            path.display().to_string(),
            e.to_string(),
        )),
    }
}

/// The worker pool running in the background; [`Workers::shutdown`] stops it gracefully.
pub struct Workers {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Workers {
    /// Starts sending in the background on the current runtime.
    pub fn start(deliverer: Deliverer) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(deliverer, stopped));
        Workers { stop, task }
    }

    /// Stops claiming, lets in-flight requests finish within the grace period, abandons the
    /// rest and releases their leases, so nothing is lost and the next start sends them first.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "delivery workers stopped abnormally");
        }
    }
}

async fn run(d: Deliverer, mut stop: watch::Receiver<bool>) {
    let settings = d.inner.settings.clone();
    let mut set: JoinSet<Result<Step, DeliveryError>> = JoinSet::new();
    let mut last_prune: Option<Instant> = None;
    loop {
        // Listen before looking, so a wake-up during the claim is not missed.
        let notified = WAKE.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        while let Some(joined) = set.try_join_next() {
            log_task(joined);
        }
        if *stop.borrow() {
            break;
        }
        let free = settings.concurrency.saturating_sub(set.len());
        if free > 0 {
            match d.claim(free).await {
                Ok(claimed) => {
                    for c in claimed {
                        set.spawn(d.inner.clone().deliver(c));
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the delivery queue"),
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            last_prune = Some(Instant::now());
            let (now, keep) = (d.inner.clock.now(), settings.keep_finished);
            if let Err(e) = d.inner.db.call(move |c| queue::prune(c, now, keep)).await {
                tracing::warn!(error = %e, "cannot prune the delivery queue");
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            Some(joined) = set.join_next(), if !set.is_empty() => log_task(joined),
            _ = &mut notified => {}
            _ = tokio::time::sleep(settings.idle_poll) => {}
        }
    }
    // Shutdown: let what is in flight finish, within the grace period.
    let in_flight = set.len();
    let finished = tokio::time::timeout(settings.shutdown_grace, async {
        while let Some(joined) = set.join_next().await {
            log_task(joined);
        }
    })
    .await;
    if finished.is_err() {
        set.abort_all();
        while set.join_next().await.is_some() {}
    }
    match d.release().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            released = n,
            "unfinished deliveries released for the next start"
        ),
        Err(e) => tracing::error!(error = %e, "cannot release leases; they expire on their own"),
    }
    tracing::info!(in_flight, "delivery workers stopped");
}

fn log_task(joined: Result<Result<Step, DeliveryError>, tokio::task::JoinError>) {
    match joined {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot record a delivery attempt"),
        Err(e) if e.is_cancelled() => {}
        Err(e) => tracing::error!(error = %e, "a delivery task failed"),
    }
}

/// Starts the worker pool for a running server: `None` (with a warning) when another server
/// already delivers for this site.
pub async fn start(ctx: &Context) -> Result<Option<Workers>, DeliveryError> {
    match Deliverer::new(ctx, Settings::default(), Arc::new(super::SystemClock)).await {
        Ok(d) => Ok(Some(Workers::start(d))),
        Err(DeliveryError::Busy(path)) => {
            tracing::warn!(lock = %path, "another hortus serve delivers for this site; this one will not");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
