//! Shipping the audit stream off the box (`[[audit.sinks]]`): every line
//! fedgate writes to the audit file — events and checkpoints, exactly as
//! written, `seq` and `prev` included, so the copy verifies like the file —
//! is offered to every configured sink:
//!
//! - `syslog`: RFC 5424 messages over TCP (`tcp://host:port`) or TLS
//!   (`tls://host:port`, RFC 5425), framed by octet counting (RFC 6587
//!   §3.4.1: `LEN SP MSG`), each message
//!   `<PRI>1 TIMESTAMP HOSTNAME fedgate PROCID MSGID - JSON`. Every header
//!   field is fedgate's own (its host name, its pid, `decision`,
//!   `checkpoint` or `dropped`); what a tenant controls is only ever inside
//!   the JSON, which serde_json escaped.
//! - `webhook`: an HTTPS POST of a JSON array of lines (a batch), with an
//!   optional bearer token from a file; retried with exponential backoff
//!   and jitter on connection errors, 5xx and 429 (`Retry-After` honoured);
//!   another 4xx drops the batch (it would never succeed), logged and
//!   counted.
//!
//! Each sink is a background task fed by a bounded buffer
//! (`buffer_events`): offering a line never waits (the login path takes a
//! short lock, pushes, and goes on). When the buffer is full the new line
//! is dropped for that sink and counted; the next line it takes is
//! preceded by one notice (`{"notice":"audit.sink_dropped",…}`) saying how
//! many were dropped and which `seq`s, so the gap is visible in the SIEM.
//! With `on_full = "refuse"` fedgate is also not ready (`/readyz` 503)
//! while that buffer is full.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use crate::config::{AuditSink as SinkConfig, AuditSinkKind, AuditSinkOnFull};
use crate::identity::ErrorCode;

mod syslog;
mod webhook;

pub use syslog::syslog_frame;
use syslog::{hostname, tls_connector, Syslog};
use webhook::Webhook;

/// A sink that cannot be set up (at start).
#[derive(Debug, thiserror::Error)]
#[error("audit.sinks[{index}]: {message}")]
pub struct SinkError {
    pub index: usize,
    /// `audit.sink_url`, `audit.sink_ca_file`, `audit.sink_token_file`,
    /// `audit.sink_client`.
    pub code: &'static str,
    pub message: String,
}

impl ErrorCode for SinkError {
    fn code(&self) -> &'static str {
        self.code
    }
}

/// What a line offered to the sinks is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Allowed,
    Denied,
    Checkpoint,
    /// fedgate's own notice of lines a sink dropped (not a chain line).
    Notice,
}

impl LineKind {
    /// The RFC 5424 MSGID.
    pub fn msgid(self) -> &'static str {
        match self {
            LineKind::Allowed | LineKind::Denied => "decision",
            LineKind::Checkpoint => "checkpoint",
            LineKind::Notice => "dropped",
        }
    }

    /// The RFC 5424 severity: informational (6), notice (5) for a denial,
    /// warning (4) for dropped lines.
    pub fn severity(self) -> u8 {
        match self {
            LineKind::Allowed | LineKind::Checkpoint => 6,
            LineKind::Denied => 5,
            LineKind::Notice => 4,
        }
    }
}

/// Where a sink sends: parsed from its `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Tls { host: String, port: u16 },
    Http(String),
}

/// `url` for a sink of `kind`, or why not (a sentence for the config error).
pub fn target(kind: AuditSinkKind, url: &str) -> Result<Target, String> {
    match kind {
        AuditSinkKind::Syslog => {
            let (tls, rest) = if let Some(r) = url.strip_prefix("tcp://") {
                (false, r)
            } else if let Some(r) = url.strip_prefix("tls://") {
                (true, r)
            } else {
                return Err(format!(
                    "{url:?}: a syslog sink's url is tcp://host:port or tls://host:port (RFC 5425)"
                ));
            };
            let Some((host, port)) = rest.rsplit_once(':') else {
                return Err(format!("{url:?}: name the port (tcp://host:port)"));
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{url:?}: the port is not a number from 1 to 65535"))?;
            if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
                return Err(format!("{url:?}: the host is missing or not a host name"));
            }
            let host = host.to_string();
            Ok(if tls {
                Target::Tls { host, port }
            } else {
                Target::Tcp { host, port }
            })
        }
        AuditSinkKind::Webhook => {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
            let host = parsed.host_str().unwrap_or_default();
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback());
            match parsed.scheme() {
                "https" => Ok(Target::Http(url.to_string())),
                "http" if loopback => Ok(Target::Http(url.to_string())),
                _ => Err(format!(
                    "{url:?}: a webhook's url is https:// (plain http only to loopback)"
                )),
            }
        }
    }
}

/// The syslog facility code of a name (RFC 5424 §6.2.1).
pub fn facility(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "authpriv" => 10,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// One line waiting in a sink's buffer.
#[derive(Debug, Clone)]
struct Item {
    text: Arc<str>,
    kind: LineKind,
    time: OffsetDateTime,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Lines dropped since the buffer last took one, and their `seq`s.
    dropped: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

/// A sink's buffer and counters, shared by the login path (which offers)
/// and the sink's task (which sends).
struct Shared {
    label: String,
    kind: AuditSinkKind,
    on_full: AuditSinkOnFull,
    capacity: usize,
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    sent: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
    up: AtomicBool,
}

impl Shared {
    fn offer(&self, text: &Arc<str>, kind: LineKind, seq: Option<u64>, now: OffsetDateTime) {
        let Ok(mut q) = self.queue.lock() else {
            self.dropped.fetch_add(1, Relaxed);
            return;
        };
        if q.items.len() >= self.capacity {
            if q.dropped == 0 {
                tracing::warn!(target: "audit", sink = %self.label, buffer = self.capacity,
                    "audit sink buffer full: lines are dropped for this sink until it takes them again (fedgate_audit_sink_dropped_total)");
            }
            q.dropped += 1;
            if q.first_seq.is_none() {
                q.first_seq = seq;
            }
            if seq.is_some() {
                q.last_seq = seq;
            }
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        self.push_notice(&mut q, now);
        q.items.push_back(Item {
            text: text.clone(),
            kind,
            time: now,
        });
        drop(q);
        self.wake.notify_one();
    }

    /// The notice of the lines dropped since the buffer last took one, in
    /// the place they would have had (nothing when none were).
    fn push_notice(&self, q: &mut Queue, now: OffsetDateTime) {
        if q.dropped == 0 {
            return;
        }
        let notice = serde_json::json!({
            "notice": "audit.sink_dropped",
            "time": crate::timefmt::format(now),
            "sink": self.label,
            "dropped": q.dropped,
            "first_seq": q.first_seq,
            "last_seq": q.last_seq,
            "reason": format!("{} audit line(s) were not sent to this sink: its buffer of {} was full", q.dropped, self.capacity),
        });
        q.items.push_back(Item {
            text: Arc::from(notice.to_string()),
            kind: LineKind::Notice,
            time: now,
        });
        q.dropped = 0;
        q.first_seq = None;
        q.last_seq = None;
    }

    fn len(&self) -> usize {
        self.queue.lock().map(|q| q.items.len()).unwrap_or(0)
    }

    fn full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Up to `n` lines from the front (they stay there until sent).
    fn front(&self, n: usize) -> Vec<Item> {
        self.queue
            .lock()
            .map(|q| q.items.iter().take(n).cloned().collect())
            .unwrap_or_default()
    }

    /// The `n` lines from the front are done with; the buffer has room
    /// again, so a notice of lines dropped meanwhile goes next.
    fn pop(&self, n: usize) {
        if let Ok(mut q) = self.queue.lock() {
            let n = n.min(q.items.len());
            q.items.drain(..n);
            if q.items.len() < self.capacity {
                self.push_notice(&mut q, OffsetDateTime::now_utc());
            }
        }
    }

    fn set_up(&self, up: bool) {
        if self.up.swap(up, Relaxed) != up {
            if up {
                tracing::info!(target: "audit", sink = %self.label, "audit sink up");
            } else {
                tracing::warn!(target: "audit", sink = %self.label, "audit sink down: lines are buffered and retried");
            }
        }
    }

    /// Until there is a line to send.
    async fn wait_for_line(&self) {
        loop {
            let notified = self.wake.notified();
            if self.len() > 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Every configured sink.
#[derive(Default)]
pub struct Sinks {
    sinks: Vec<Arc<Shared>>,
    /// Each sink's sender, until [`Sinks::spawn`] hands it to its task.
    pending: Mutex<Vec<(Arc<Shared>, Sender)>>,
}

/// How a sink's task sends.
enum Sender {
    Syslog(Box<Syslog>),
    Webhook(Box<Webhook>),
}

impl Sinks {
    /// The sinks of `audit.sinks`, ready to take lines; their tasks start
    /// with [`Sinks::spawn`] (inside the runtime). Reads `ca_file` and
    /// `token_file` now.
    pub fn from_config(configs: &[SinkConfig]) -> Result<Sinks, SinkError> {
        crate::trust::install_crypto_provider();
        let hostname = hostname();
        let mut sinks = Vec::new();
        let mut pending = Vec::new();
        for (index, c) in configs.iter().enumerate() {
            let fail = |code: &'static str, message: String| SinkError {
                index,
                code,
                message,
            };
            let target = target(c.kind, &c.url).map_err(|m| fail("audit.sink_url", m))?;
            let ca = match &c.ca_file {
                Some(p) => Some(std::fs::read(p).map_err(|e| {
                    fail(
                        "audit.sink_ca_file",
                        format!("ca_file {}: {e}", p.display()),
                    )
                })?),
                None => None,
            };
            let timeout = Duration::from_millis(c.timeout_ms.max(1));
            let backoff = Backoff::new(Duration::from_millis(c.retry_max_ms.max(100)));
            let sender = match target {
                Target::Tcp { host, port } | Target::Tls { host, port } => {
                    let tls = match c.url.starts_with("tls://") {
                        true => Some(
                            tls_connector(ca.as_deref(), &host)
                                .map_err(|m| fail("audit.sink_ca_file", m))?,
                        ),
                        false => None,
                    };
                    Sender::Syslog(Box::new(Syslog {
                        host,
                        port,
                        tls,
                        facility: facility(&c.facility).unwrap_or(10),
                        hostname: hostname.clone(),
                        procid: std::process::id().to_string(),
                        timeout,
                        backoff,
                        conn: None,
                    }))
                }
                Target::Http(url) => {
                    let token = match &c.token_file {
                        Some(p) => {
                            let t = std::fs::read_to_string(p).map_err(|e| {
                                fail(
                                    "audit.sink_token_file",
                                    format!("token_file {}: {e}", p.display()),
                                )
                            })?;
                            let t = t.trim().to_string();
                            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
                                return Err(fail(
                                    "audit.sink_token_file",
                                    format!(
                                        "token_file {}: empty, or not a token (printable ASCII, no spaces)",
                                        p.display()
                                    ),
                                ));
                            }
                            Some(t)
                        }
                        None => None,
                    };
                    let mut b = reqwest::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .connect_timeout(timeout)
                        .timeout(timeout);
                    if let Some(pem) = &ca {
                        let certs = reqwest::Certificate::from_pem_bundle(pem)
                            .ok()
                            .filter(|c| !c.is_empty())
                            .ok_or_else(|| {
                                fail(
                                    "audit.sink_ca_file",
                                    "ca_file holds no PEM certificate".into(),
                                )
                            })?;
                        b = b.tls_built_in_root_certs(false);
                        for cert in certs {
                            b = b.add_root_certificate(cert);
                        }
                    }
                    let client = b
                        .build()
                        .map_err(|e| fail("audit.sink_client", e.to_string()))?;
                    Sender::Webhook(Box::new(Webhook {
                        url,
                        token,
                        client,
                        batch: c.batch_events.max(1),
                        linger: Duration::from_millis(c.batch_ms),
                        backoff,
                    }))
                }
            };
            let shared = Arc::new(Shared {
                label: c.name.clone().unwrap_or_else(|| index.to_string()),
                kind: c.kind,
                on_full: c.on_full,
                capacity: c.buffer_events.max(1),
                queue: Mutex::new(Queue::default()),
                wake: tokio::sync::Notify::new(),
                sent: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                up: AtomicBool::new(true),
            });
            sinks.push(shared.clone());
            pending.push((shared, sender));
        }
        Ok(Sinks {
            sinks,
            pending: Mutex::new(pending),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Offer one line (as written, without its newline) to every sink.
    /// Never waits: a full buffer drops the line for that sink.
    pub fn offer(&self, line: &str, kind: LineKind, seq: Option<u64>) {
        if self.sinks.is_empty() {
            return;
        }
        let text: Arc<str> = Arc::from(line);
        let now = OffsetDateTime::now_utc();
        for s in &self.sinks {
            s.offer(&text, kind, seq, now);
        }
    }

    /// Start each sink's task (once; later calls do nothing).
    pub fn spawn(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let pending = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Vec::new(),
        };
        pending
            .into_iter()
            .map(|(shared, sender)| {
                tokio::spawn(async move {
                    match sender {
                        Sender::Syslog(s) => s.run(shared).await,
                        Sender::Webhook(w) => w.run(shared).await,
                    }
                })
            })
            .collect()
    }

    /// Wait until every buffer is empty (sent), at most `within`; returns
    /// how many lines were left unsent (logged).
    pub async fn flush(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let left: usize = self.sinks.iter().map(|s| s.len()).sum();
            if left == 0 {
                return 0;
            }
            if Instant::now() >= deadline {
                tracing::warn!(target: "audit", unsent = left, "audit sinks not flushed at shutdown: lines left unsent");
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Why fedgate is not ready, when a sink with `on_full = "refuse"` has
    /// a full buffer.
    pub fn refusing(&self) -> Option<String> {
        self.sinks
            .iter()
            .find(|s| s.on_full == AuditSinkOnFull::Refuse && s.full())
            .map(|s| {
                format!(
                    "audit sink {:?} cannot take events (its buffer of {} is full; on_full = \"refuse\"): see fedgate_audit_sink_up",
                    s.label, s.capacity
                )
            })
    }

    /// The sinks' metrics, in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        if self.sinks.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        type Family = (&'static str, &'static str, &'static str, fn(&Shared) -> u64);
        let families: [Family; 6] = [
            ("fedgate_audit_sink_sent_total", "counter", "Audit lines a sink delivered.", |s| s.sent.load(Relaxed)),
            ("fedgate_audit_sink_dropped_total", "counter", "Audit lines dropped for a sink because its buffer was full.", |s| s.dropped.load(Relaxed)),
            ("fedgate_audit_sink_rejected_total", "counter", "Audit lines dropped because the webhook refused their batch (a 4xx other than 429).", |s| s.rejected.load(Relaxed)),
            ("fedgate_audit_sink_retries_total", "counter", "Failed attempts to deliver to a sink (each retried).", |s| s.retries.load(Relaxed)),
            ("fedgate_audit_sink_queue_events", "gauge", "Audit lines waiting in a sink's buffer.", |s| s.len() as u64),
            ("fedgate_audit_sink_up", "gauge", "Whether a sink's last attempt succeeded.", |s| u64::from(s.up.load(Relaxed))),
        ];
        for (name, kind, help, value) in families {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for s in &self.sinks {
                let k = match s.kind {
                    AuditSinkKind::Syslog => "syslog",
                    AuditSinkKind::Webhook => "webhook",
                };
                out.push_str(&format!(
                    "{name}{{sink=\"{}\",kind=\"{k}\"}} {}\n",
                    s.label,
                    value(s)
                ));
            }
        }
        out
    }
}

/// Exponential backoff with jitter: 100 ms, doubling, up to `max`, each
/// wait a random 50–100 % of that.
struct Backoff {
    next: Duration,
    max: Duration,
}

const BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest `Retry-After` fedgate waits for.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

impl Backoff {
    fn new(max: Duration) -> Self {
        Backoff {
            next: BACKOFF_START,
            max,
        }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_START;
    }

    /// The wait before the next try (`hint`: a server's Retry-After).
    fn wait(&mut self, hint: Option<Duration>) -> Duration {
        let base = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        if let Some(h) = hint {
            return h.min(RETRY_AFTER_MAX);
        }
        let mut r = [0u8; 2];
        let _ = aws_lc_rs::rand::fill(&mut r);
        let frac = 0.5 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX) / 2.0;
        base.mul_f64(frac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_octet_counted_rfc_5424_with_fedgates_header_and_the_json_as_it_is() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let json = r#"{"upn":"é <x> \n","seq":1}"#;
        let f = syslog_frame(10, LineKind::Denied, t, "gw1", "42", json);
        let (len, msg) = f.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len(), "bytes, not chars");
        assert_eq!(
            msg,
            format!("<85>1 2027-01-15T08:00:00.000000Z gw1 fedgate 42 decision - {json}")
        );
    }

    #[test]
    fn urls_and_facilities_are_read_as_documented() {
        use AuditSinkKind::*;
        assert_eq!(
            target(Syslog, "tls://siem.example:6514"),
            Ok(Target::Tls {
                host: "siem.example".into(),
                port: 6514
            })
        );
        assert!(target(Syslog, "udp://siem:514").is_err());
        assert!(target(Syslog, "tcp://siem").is_err());
        assert!(target(Syslog, "tcp://siem:0").is_err());
        assert!(target(Webhook, "https://siem.example/in").is_ok());
        assert!(target(Webhook, "http://127.0.0.1:9/in").is_ok());
        assert!(target(Webhook, "http://siem.example/in").is_err());
        assert_eq!(facility("authpriv"), Some(10));
        assert_eq!(facility("auth"), Some(4));
        assert_eq!(facility("mail"), None);
    }

    #[test]
    fn a_full_buffer_drops_new_lines_and_the_next_one_taken_follows_a_notice() {
        let c: SinkConfig = toml::from_str("kind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nbuffer_events = 2\non_full = \"refuse\"\nname = \"siem\"").unwrap();
        let sinks = Sinks::from_config(&[c]).unwrap();
        for seq in 1..=5 {
            sinks.offer(&format!("{{\"seq\":{seq}}}"), LineKind::Allowed, Some(seq));
        }
        assert!(sinks.refusing().is_some());
        let m = sinks.render_metrics();
        assert!(
            m.contains("fedgate_audit_sink_dropped_total{sink=\"siem\",kind=\"webhook\"} 3\n"),
            "{m}"
        );
        sinks.sinks[0].pop(2);
        assert!(sinks.refusing().is_none());
        sinks.offer("{\"seq\":6}", LineKind::Allowed, Some(6));
        let q = sinks.sinks[0].front(10);
        assert_eq!(q.len(), 2, "the notice, then the line");
        let notice: serde_json::Value = serde_json::from_str(&q[0].text).unwrap();
        assert_eq!(notice["notice"], "audit.sink_dropped");
        assert_eq!(
            (
                notice["dropped"].as_u64(),
                notice["first_seq"].as_u64(),
                notice["last_seq"].as_u64()
            ),
            (Some(3), Some(3), Some(5))
        );
        assert_eq!(&*q[1].text, "{\"seq\":6}");
    }
}
