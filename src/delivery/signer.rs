//! The signing threads: one per core, each taking the waiting signatures in batches and making
//! them in a tight loop, off the async threads (an RSA-2048 signature is about a quarter of a
//! millisecond of CPU, and every delivery attempt needs a fresh one: PROTOCOL.md §3).
//!
//! In a fan-out most requests wait for a signature. Before, each waited for a semaphore permit
//! (one per core) and then a job on tokio's blocking pool: two hand-offs and a wake-up per
//! signature. Here a request puts its job in one queue and waits for the answer; a thread that
//! wakes takes its share of everything queued (so both cores work on a burst) and signs it
//! without going back to the scheduler. Jobs are signed in arrival order, each at the moment
//! its thread reaches it (the `Date` is as fresh as before).
//!
//! A thread hands its batch's signatures back together, after the last one: each hand-off
//! wakes a sleeping runtime thread (a futex and two context switches on a machine whose cores
//! are busy signing), and one wake-up then sends the whole batch. The first signature of a
//! batch waits for the rest (at most [`BATCH`] signatures, about 4 ms): far inside any clock
//! window a peer allows.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use openssl::pkey::{PKey, Private};
use tokio::sync::oneshot;

use crate::httpsig::{SignError, SignatureForm};

/// The headers a signature adds (`Date`, `Digest`, `Signature`, or RFC 9421's).
pub type Signed = Vec<(String, String)>;

/// At most this many signatures taken by one thread at once: about 4 ms of work, so a burst is
/// shared between the threads and the first of it leaves early.
const BATCH: usize = 16;

struct Job {
    form: SignatureForm,
    url: url::Url,
    body: Bytes,
    done: oneshot::Sender<Result<Signed, SignError>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting for work: a new job wakes one only when some is idle.
    idle: usize,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    key: PKey<Private>,
    key_id: String,
    threads: usize,
}

/// The pool; dropping it lets the threads finish what is queued and end.
pub struct Signer {
    shared: Arc<Shared>,
}

impl Signer {
    /// One thread per core.
    pub fn new(key: PKey<Private>, key_id: String) -> std::io::Result<Signer> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            key,
            key_id,
            threads,
        });
        // Built first, so that if a later thread cannot start, dropping it stops the earlier ones.
        let signer = Signer { shared };
        for i in 0..threads {
            let shared = signer.shared.clone();
            std::thread::Builder::new()
                .name(format!("hortus-sign-{i}"))
                .spawn(move || shared.work())?;
        }
        Ok(signer)
    }

    /// Signs a POST of `body` to `url` in `form`, at the moment a thread reaches it.
    pub async fn sign(
        &self,
        form: SignatureForm,
        url: &url::Url,
        body: &Bytes,
    ) -> Result<Signed, SignFailure> {
        let (done, signed) = oneshot::channel();
        {
            let mut q = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            q.jobs.push_back(Job {
                form,
                url: url.clone(),
                body: body.clone(),
                done,
            });
            if q.idle > 0 {
                self.shared.ready.notify_one();
            }
        }
        signed
            .await
            .map_err(|_| SignFailure::Stopped)?
            .map_err(|e| SignFailure::Refused(e.to_string()))
    }
}

/// Why a signature was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignFailure {
    /// The signing threads are gone (shutting down, or a thread panicked with the job): nothing
    /// about the delivery is wrong, so it is tried again later.
    Stopped,
    /// Signing this request failed (e.g. a URL that cannot be signed): trying again cannot help.
    Refused(String),
}

impl std::fmt::Display for SignFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignFailure::Stopped => f.write_str("the signing threads have stopped"),
            SignFailure::Refused(e) => f.write_str(e),
        }
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.ready.notify_all();
    }
}

impl Shared {
    fn work(&self) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut signed_batch = Vec::with_capacity(BATCH);
        loop {
            {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                while q.jobs.is_empty() && !q.closed {
                    q.idle += 1;
                    q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
                    q.idle -= 1;
                }
                if q.jobs.is_empty() {
                    return;
                }
                // This thread's share of what waits, so that every core signs a burst.
                let share = q.jobs.len().div_ceil(self.threads).clamp(1, BATCH);
                batch.extend(q.jobs.drain(..share));
                // More left and a thread asleep: wake it for the rest.
                if !q.jobs.is_empty() && q.idle > 0 {
                    self.ready.notify_one();
                }
            }
            for job in batch.drain(..) {
                // The requester may have given up (shutdown): then nobody needs this one.
                if job.done.is_closed() {
                    continue;
                }
                // A panic in signing must not end the thread: jobs queued later would wait
                // forever. The job's sender is dropped instead, so its delivery is retried.
                let signed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    super::signing::sign_post(
                        job.form,
                        &job.url,
                        &job.body,
                        &self.key_id,
                        &self.key,
                        SystemTime::now(),
                    )
                }));
                if let Ok(signed) = signed {
                    signed_batch.push((job.done, signed));
                }
            }
            // Handed back together: one wake-up of the runtime for the batch.
            for (done, signed) in signed_batch.drain(..) {
                let _ = done.send(signed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many signatures at once, from many tasks: each comes back, verifies against the key with
    /// its own body and URL, and the threads end when the pool is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_is_signed_and_each_signature_verifies() {
        let (private, public) = crate::httpsig::generate_keypair().unwrap();
        let key = crate::httpsig::load_private_key(&private).unwrap();
        let signer =
            Arc::new(Signer::new(key, "https://me.example/actor#main-key".into()).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let signer = signer.clone();
            tasks.spawn(async move {
                let url =
                    url::Url::parse(&format!("https://s{}.example/users/読者{i}/inbox", i % 3))
                        .unwrap();
                let body = Bytes::from(format!("{{\"content\":\"حديقة 🌱 {i}\"}}"));
                let form = if i % 2 == 0 {
                    SignatureForm::Cavage
                } else {
                    SignatureForm::Rfc9421
                };
                let headers = signer.sign(form, &url, &body).await.unwrap();
                (url, body, form, headers)
            });
        }
        let mut n = 0;
        while let Some(joined) = tasks.join_next().await {
            let (url, body, form, headers) = joined.unwrap();
            let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
            match form {
                SignatureForm::Cavage => assert!(names.contains(&"Digest"), "{names:?}"),
                SignatureForm::Rfc9421 => {
                    assert!(
                        names
                            .iter()
                            .any(|n| n.eq_ignore_ascii_case("signature-input"))
                    )
                }
            }
            // The request as the peer sees it: the signed headers, Host and Content-Type.
            let mut all = headers.clone();
            all.push(("Host".into(), url.host_str().unwrap().to_string()));
            all.push((
                "Content-Type".into(),
                crate::activitypub::CONTENT_TYPE.into(),
            ));
            let parts = crate::httpsig::RequestParts {
                method: "POST",
                path_and_query: url.path(),
                headers: &all,
                body: Some(&body),
            };
            let pending = crate::httpsig::signature_key_id(&parts).unwrap();
            crate::httpsig::verify(&parts, &pending, &public, SystemTime::now())
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            n += 1;
        }
        assert_eq!(n, 40);
        let shared = Arc::downgrade(&signer.shared);
        drop(signer);
        // The threads hold the shared state until they end.
        for _ in 0..200 {
            if shared.strong_count() == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the signing threads did not end");
    }
}
