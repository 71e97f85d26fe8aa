//! The webhook sink: batches of lines POSTed as a JSON array, retried with
//! backoff on connection errors, 5xx and 429; another 4xx drops the batch.

use super::*;

pub(super) struct Webhook {
    pub(super) url: String,
    /// The bearer token (never logged).
    pub(super) token: Option<String>,
    pub(super) client: reqwest::Client,
    pub(super) batch: usize,
    pub(super) linger: Duration,
    pub(super) backoff: Backoff,
}

/// What one POST came to.
enum Posted {
    Ok,
    /// Retry (connection error, 5xx, 429), after the server's hint if any.
    Retry(String, Option<Duration>),
    /// Never retried: the receiver refuses this batch.
    Refused(u16),
}

impl Webhook {
    pub(super) async fn run(mut self, shared: Arc<Shared>) {
        loop {
            shared.wait_for_line().await;
            // A batch: up to `batch` lines, or what came within `linger`.
            let deadline = tokio::time::Instant::now() + self.linger;
            while shared.len() < self.batch {
                let notified = shared.wake.notified();
                if shared.len() >= self.batch
                    || tokio::time::timeout_at(deadline, notified).await.is_err()
                {
                    break;
                }
            }
            loop {
                let items = shared.front(self.batch);
                if items.is_empty() {
                    break;
                }
                match self.post(&items).await {
                    Posted::Ok => {
                        shared.sent.fetch_add(items.len() as u64, Relaxed);
                        shared.pop(items.len());
                        shared.set_up(true);
                        self.backoff.reset();
                        if shared.len() < self.batch {
                            break;
                        }
                    }
                    Posted::Refused(status) => {
                        shared.rejected.fetch_add(items.len() as u64, Relaxed);
                        shared.pop(items.len());
                        shared.set_up(true);
                        tracing::error!(target: "audit", sink = %shared.label, status, lines = items.len(),
                            "audit webhook refused a batch (a 4xx is not retried): its lines are dropped for this sink (fedgate_audit_sink_rejected_total)");
                        break;
                    }
                    Posted::Retry(error, hint) => {
                        shared.retries.fetch_add(1, Relaxed);
                        if shared.up.load(Relaxed) {
                            tracing::warn!(target: "audit", sink = %shared.label, error = %error, "audit sink (webhook) failed; retrying");
                        }
                        shared.set_up(false);
                        tokio::time::sleep(self.backoff.wait(hint)).await;
                    }
                }
            }
        }
    }

    async fn post(&self, items: &[Item]) -> Posted {
        let mut body =
            String::with_capacity(items.iter().map(|i| i.text.len() + 1).sum::<usize>() + 2);
        body.push('[');
        for (n, i) in items.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&i.text);
        }
        body.push(']');
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Err(e) => Posted::Retry(e.without_url().to_string(), None),
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    Posted::Ok
                } else if status.as_u16() == 429 || status.is_server_error() {
                    let hint = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    Posted::Retry(format!("HTTP {}", status.as_u16()), hint)
                } else {
                    Posted::Refused(status.as_u16())
                }
            }
        }
    }
}
