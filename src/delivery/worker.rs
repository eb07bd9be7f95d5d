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

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::queue::{self, AttemptResult, ClaimLimits, Claimed, Recorded};
use super::recorder::{ToRecord, record_batches};
use super::schedule::{Backoff, Clock, Verdict};
use super::{DeliveryError, WAKE};
use crate::activitypub::follower_sync;
use crate::config::FederationConfig;
use crate::context::Context;
use crate::db::Db;
use crate::federation::{self, PolicyHandle};

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
            // A slot is held until its attempt is recorded (the recorder gathers up to 12 ms),
            // so one server passes at most `per_server` deliveries per (signing + round trip +
            // record): at 4, ~250/s, which left the cores idle in a fan-out to fast inboxes;
            // at 8 the fan-out nearly keeps up with the signing threads (issue 15: 0.57–0.70
            // → 0.66–0.73 of their rate, benches/README.md). Mastodon's senders have no
            // per-server limit at all.
            concurrency: 256,
            per_server: 8,
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
    policy: PolicyHandle,
    federation: FederationConfig,
    /// Signs and POSTs: one HTTP client for every delivery (connections pooled per server).
    sender: super::send::Sender,
    urls: crate::urls::Urls,
    /// The signature form each server accepted, when not draft-cavage.
    forms: super::signing::Forms,
    settings: Settings,
    clock: Arc<dyn Clock>,
    /// Names this pool's leases.
    owner: String,
    in_flight: Mutex<HashMap<String, usize>>,
    /// FEP-8fcf's header of each origin, kept between claims while the followers are unchanged.
    sync_headers: Arc<Mutex<follower_sync::HeaderCache>>,
    /// Attempts to record, taken in batches by [`record_batches`]: one transaction for all that
    /// finished together.
    recorder: mpsc::UnboundedSender<ToRecord>,
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
        let sender = super::send::Sender::new(
            ctx.http.get()?.clone(),
            ctx.actor_key.private.clone(),
            ctx.urls.actor_key(),
        )
        .map_err(|e| DeliveryError::Worker(format!("cannot start the signing threads: {e}")))?;
        let (recorder, to_record) = mpsc::unbounded_channel();
        tokio::spawn(record_batches(
            db.clone(),
            settings.backoff.clone(),
            to_record,
        ));
        Ok(Deliverer {
            inner: Arc::new(Inner {
                db,
                policy: ctx.policy.clone(),
                federation: ctx.config.federation.clone(),
                sender,
                urls: ctx.urls.clone(),
                forms,
                settings,
                clock,
                owner,
                in_flight: Mutex::new(HashMap::new()),
                sync_headers: Arc::default(),
                recorder,
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

    /// Leases up to `want` due deliveries and counts them in flight, with each one's FEP-8fcf
    /// header, all in one trip to the database. Also picks up policy changes made by another
    /// process: deliveries go only where the policy allows *now*.
    async fn claim(&self, want: usize) -> Result<Vec<Job>, DeliveryError> {
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
        let urls = inner.urls.clone();
        let sync_headers = inner.sync_headers.clone();
        let claimed = inner
            .db
            .call(move |c| {
                if let Err(e) = policy.reload_if_changed(c) {
                    tracing::warn!(error = %e, "cannot reload the federation policy");
                }
                // A cheap read first: most polls find nothing and take no write lock.
                if !queue::any_due(c, now)? {
                    return Ok(Vec::new());
                }
                let claimed = queue::claim(c, &owner, now, limits, &in_flight)?;
                let batch: Vec<(&str, &str)> = claimed
                    .iter()
                    .map(|c| (&*c.body, c.inbox.as_str()))
                    .collect();
                // A failure here costs the header, not the deliveries (their leases are taken).
                let mut cache = sync_headers.lock().unwrap_or_else(PoisonError::into_inner);
                let headers = follower_sync::delivery_headers(c, &urls, &batch, &mut cache)
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot read the followers for FEP-8fcf");
                        vec![None; batch.len()]
                    });
                // One `Bytes` per activity: its requests share it (no copy per request).
                let mut bodies: Vec<(Arc<str>, Bytes)> = Vec::new();
                let mut body_of = |text: &Arc<str>| match bodies
                    .iter()
                    .find(|(shared, _)| Arc::ptr_eq(shared, text))
                {
                    Some((_, bytes)) => bytes.clone(),
                    None => {
                        let bytes = Bytes::copy_from_slice(text.as_bytes());
                        bodies.push((text.clone(), bytes.clone()));
                        bytes
                    }
                };
                Ok::<_, DeliveryError>(
                    claimed
                        .into_iter()
                        .zip(headers)
                        .map(|(claimed, sync)| Job {
                            body: body_of(&claimed.body),
                            claimed,
                            sync,
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .await?;
        let mut in_flight = inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for job in &claimed {
            *in_flight.entry(job.claimed.host.clone()).or_default() += 1;
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
    async fn deliver(self: Arc<Self>, job: Job) -> Result<Step, DeliveryError> {
        let Job {
            claimed,
            body,
            sync,
        } = job;
        let _slot = InFlight {
            inner: self.clone(),
            host: claimed.host.clone(),
        };
        let started = self.clock.now();
        let t0 = Instant::now();
        let (verdict, status, error) = self.send(&claimed, &body, sync.as_deref(), started).await;
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
        let (done, recorded) = oneshot::channel();
        let now = self.clock.now();
        self.recorder
            .send((claimed, result, now, done))
            .map_err(|_| DeliveryError::Worker("the recorder has stopped".into()))?;
        let recorded = recorded
            .await
            .map_err(|_| DeliveryError::Worker("the recorder has stopped".into()))??;
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
    async fn send(
        &self,
        c: &Claimed,
        body: &Bytes,
        sync: Option<&str>,
        now: SystemTime,
    ) -> (Verdict, Option<u16>, Option<String>) {
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
        let form = self.forms.get(&c.host);
        let first = self.sender.post(body, &url, form, sync, now).await;
        if first.1 != Some(401) {
            return first;
        }
        // A 401 may mean "not this signature form" (PROTOCOL.md §3): the other form goes at
        // once, in this same attempt, and only its answer is recorded. Accepted, it is
        // remembered for the server, in the database.
        let other = super::signing::other(form);
        let second = self.sender.post(body, &url, other, sync, now).await;
        if second.0 == Verdict::Delivered {
            self.forms.learn(&self.db, &c.host, other).await;
        }
        second
    }
}

/// A claimed delivery, its activity's body as sent, and its `Collection-Synchronization` header
/// (FEP-8fcf), read at the claim.
struct Job {
    claimed: Claimed,
    body: Bytes,
    sync: Option<String>,
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
    // The claim is the queue's one SQL on the way out: instead of one claim per finished
    // delivery, claim again once a quarter of what was in flight has finished (or when idle,
    // woken, or at the poll interval), so a fan-out is claimed in batches.
    let (mut finished, mut refill_at, mut must_claim) = (0usize, 1usize, true);
    loop {
        // Listen before looking, so a wake-up during the claim is not missed.
        let notified = WAKE.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        while let Some(joined) = set.try_join_next() {
            log_task(joined);
            finished += 1;
        }
        if *stop.borrow() {
            break;
        }
        let free = settings.concurrency.saturating_sub(set.len());
        if free > 0 && (must_claim || set.is_empty() || finished >= refill_at) {
            match d.claim(free).await {
                Ok(claimed) => {
                    for job in claimed {
                        set.spawn(d.inner.clone().deliver(job));
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the delivery queue"),
            }
            finished = 0;
            refill_at = (set.len() / 4).max(1);
        }
        must_claim = false;
        if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            last_prune = Some(Instant::now());
            let (now, keep) = (d.inner.clock.now(), settings.keep_finished);
            if let Err(e) = d.inner.db.call(move |c| queue::prune(c, now, keep)).await {
                tracing::warn!(error = %e, "cannot prune the delivery queue");
            }
        }
        tokio::select! {
            // Closed: the handle was dropped without `shutdown`. Stopping is the only answer;
            // `changed` would return at once on every turn and the loop would spin.
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(joined) = set.join_next(), if !set.is_empty() => {
                log_task(joined);
                finished += 1;
            }
            _ = &mut notified => must_claim = true,
            _ = tokio::time::sleep(settings.idle_poll) => must_claim = true,
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
