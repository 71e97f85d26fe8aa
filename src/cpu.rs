//! The CPU pool: signature verification and signing run here, on threads of
//! their own (one per core by default), never on the async I/O threads. So
//! `/healthz`, `/readyz`, `/metrics` and the reading of requests never wait
//! behind a login's RSA operation or an expensive document.
//!
//! Admission control: new work (a SAML response or a token to verify) is
//! [`admitted`](CpuPool::admit) only while fewer than `queue` jobs wait;
//! past that the caller gets [`PoolError::Busy`] at once (503 with
//! `Retry-After`, code `server.busy`) instead of joining a queue that grows
//! without bound. Work that finishes a login already admitted (signing the
//! console's assertion or token) [`continues`](CpuPool::continue_with)
//! ahead of new work and is never refused: a verified, replay-claimed login
//! is never thrown away for lack of room. That second queue is bounded by
//! the admitted logins in flight.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::identity::ErrorCode;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The admission queue is full: fedgate is at capacity.
    #[error(
        "fedgate is at capacity ({waiting} verifications waiting for a CPU): try again in a second"
    )]
    Busy { waiting: usize },
    /// The job panicked (a bug): the request fails, the pool goes on.
    #[error("the verification worker failed (a bug: see the log)")]
    Failed,
}

impl ErrorCode for PoolError {
    fn code(&self) -> &'static str {
        match self {
            PoolError::Busy { .. } => "server.busy",
            PoolError::Failed => "internal.worker_failed",
        }
    }
}

/// How many seconds a refused client should wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u32 = 1;

struct Queues {
    /// Work that finishes an admitted login: taken first, never refused.
    continuing: VecDeque<Job>,
    /// New work, bounded by `capacity`.
    admitted: VecDeque<Job>,
    stopping: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    capacity: usize,
    busy_refusals: AtomicU64,
    jobs_done: AtomicU64,
}

/// A fixed set of worker threads with a bounded admission queue.
pub struct CpuPool {
    shared: Arc<Shared>,
    threads: usize,
}

impl CpuPool {
    /// `threads` workers (0: one per core), at most `queue` admitted jobs
    /// waiting (at least 1).
    pub fn new(threads: usize, queue: usize) -> CpuPool {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues {
                continuing: VecDeque::new(),
                admitted: VecDeque::new(),
                stopping: false,
            }),
            ready: Condvar::new(),
            capacity: queue.max(1),
            busy_refusals: AtomicU64::new(0),
            jobs_done: AtomicU64::new(0),
        });
        for i in 0..threads {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("fedgate-cpu-{i}"))
                .spawn(move || worker(&shared));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a CPU worker thread");
            }
        }
        CpuPool { shared, threads }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run new work, or refuse it at once when `queue` jobs already wait.
    pub async fn admit<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// Run work that finishes an already admitted login: ahead of new work,
    /// never refused.
    pub async fn continue_with<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<T, F>(&self, f: F, continuing: bool) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A panic drops `tx`: the caller gets `Failed`, the worker lives.
            if let Ok(out) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = tx.send(out);
            }
        });
        {
            let Ok(mut q) = self.shared.queues.lock() else {
                return Err(PoolError::Failed);
            };
            if continuing {
                q.continuing.push_back(job);
            } else if q.admitted.len() >= self.shared.capacity {
                self.shared.busy_refusals.fetch_add(1, Ordering::Relaxed);
                return Err(PoolError::Busy {
                    waiting: q.admitted.len(),
                });
            } else {
                q.admitted.push_back(job);
            }
        }
        self.shared.ready.notify_one();
        rx.await.map_err(|_| PoolError::Failed)
    }

    /// Jobs waiting now (continuing + admitted).
    pub fn waiting(&self) -> usize {
        self.shared
            .queues
            .lock()
            .map_or(0, |q| q.continuing.len() + q.admitted.len())
    }

    /// Prometheus lines for the pool.
    pub fn render_metrics(&self) -> String {
        format!(
            "# HELP fedgate_cpu_threads Worker threads for verification and signing.\n\
             # TYPE fedgate_cpu_threads gauge\n\
             fedgate_cpu_threads {}\n\
             # HELP fedgate_cpu_queue_capacity New verifications that may wait before fedgate answers 503 server.busy.\n\
             # TYPE fedgate_cpu_queue_capacity gauge\n\
             fedgate_cpu_queue_capacity {}\n\
             # HELP fedgate_cpu_waiting Jobs waiting for a worker now.\n\
             # TYPE fedgate_cpu_waiting gauge\n\
             fedgate_cpu_waiting {}\n\
             # HELP fedgate_cpu_busy_total Requests refused with 503 server.busy (admission queue full).\n\
             # TYPE fedgate_cpu_busy_total counter\n\
             fedgate_cpu_busy_total {}\n\
             # HELP fedgate_cpu_jobs_total Jobs the workers ran.\n\
             # TYPE fedgate_cpu_jobs_total counter\n\
             fedgate_cpu_jobs_total {}\n",
            self.threads,
            self.shared.capacity,
            self.waiting(),
            self.shared.busy_refusals.load(Ordering::Relaxed),
            self.shared.jobs_done.load(Ordering::Relaxed),
        )
    }
}

impl Drop for CpuPool {
    /// The workers finish what is queued, then exit.
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queues.lock() {
            q.stopping = true;
        }
        self.shared.ready.notify_all();
    }
}

fn worker(shared: &Shared) {
    loop {
        let job = {
            let Ok(mut q) = shared.queues.lock() else {
                return;
            };
            loop {
                if let Some(job) = q.continuing.pop_front().or_else(|| q.admitted.pop_front()) {
                    break job;
                }
                if q.stopping {
                    return;
                }
                q = match shared.ready.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        job();
        shared.jobs_done.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A pool whose one worker is held (by a continuing job, which is not
    /// counted against the queue) until the test lets it go.
    async fn held_pool(queue: usize) -> (Arc<CpuPool>, mpsc::Sender<()>) {
        let pool = Arc::new(CpuPool::new(1, queue));
        let (release, hold) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let p = pool.clone();
        tokio::spawn(async move {
            let _ = p
                .continue_with(move || {
                    let _ = started_tx.send(());
                    let _ = hold.recv();
                })
                .await;
        });
        let _ = started.await;
        (pool, release)
    }

    #[tokio::test]
    async fn runs_jobs_and_returns_their_values() {
        let pool = CpuPool::new(2, 4);
        assert_eq!(pool.admit(|| 6 * 7).await, Ok(42));
        assert_eq!(pool.continue_with(|| "signed").await, Ok("signed"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_new_work_at_once_but_never_continuing_work() {
        let (pool, release) = held_pool(2).await;
        let mut queued = Vec::new();
        for i in 0..2 {
            let p = pool.clone();
            queued.push(tokio::spawn(async move { p.admit(move || i).await }));
        }
        while pool.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        // The third is refused without waiting for the held worker.
        assert_eq!(
            pool.admit(|| 99).await,
            Err(PoolError::Busy { waiting: 2 }),
            "a full admission queue answers at once"
        );
        assert_eq!(PoolError::Busy { waiting: 2 }.code(), "server.busy");
        // Continuing work is taken even now, and ahead of the admitted jobs.
        let p = pool.clone();
        let cont = tokio::spawn(async move { p.continue_with(|| "sign").await });
        while pool.waiting() < 3 {
            tokio::task::yield_now().await;
        }
        let _ = release.send(());
        assert_eq!(cont.await.ok(), Some(Ok("sign")));
        let mut got = Vec::new();
        for q in queued {
            got.push(q.await.ok().and_then(Result::ok));
        }
        assert_eq!(got, vec![Some(0), Some(1)]);
        assert!(pool.render_metrics().contains("fedgate_cpu_busy_total 1\n"));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_request_and_the_pool_goes_on() {
        let pool = CpuPool::new(1, 4);
        #[allow(clippy::panic)]
        let failed = pool.admit(|| -> u8 { panic!("a bug") }).await;
        assert_eq!(failed, Err(PoolError::Failed));
        assert_eq!(pool.admit(|| 1).await, Ok(1));
    }
}
