//! Prometheus text metrics: logins by tenant, console, outcome and code, a
//! verification latency histogram, and the store's failures and readiness.
//! Hand-rolled to stay small.
//!
//! Label values are bounded: `tenant` and `console` are configured ids only
//! (anything else, an id a client typed into a URL or a token-exchange
//! `audience`, is counted as `unknown`), and `outcome` and `code` are
//! fedgate's own `&'static str`s. So no request can add a series: the
//! number of series is fixed by the configuration.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// The label of a tenant or console fedgate is not configured with.
pub const UNKNOWN: &str = "unknown";

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// The configured tenant ids (the only `tenant` label values besides
    /// `-` and [`UNKNOWN`]) and console ids (the only `console` values):
    /// every configuration fedgate ran with since it started.
    known: std::sync::RwLock<(HashSet<String>, HashSet<String>)>,
    /// The HTTP server's connections (src/http/server.rs).
    pub connections: ConnectionMetrics,
}

#[derive(Default)]
struct Inner {
    logins: BTreeMap<(String, String, &'static str, &'static str), u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    store_errors: BTreeMap<&'static str, u64>,
    /// The last readiness probe's answer (`None` before the first).
    store_ready: Option<bool>,
    /// Readiness probes made of the store (at most one a second).
    store_probes: u64,
    /// Configuration reloads by result and code (SIGHUP).
    reloads: BTreeMap<(&'static str, &'static str), u64>,
    /// The version in force (its short hash) and whether the last reload
    /// was applied (or unchanged) rather than refused.
    config: Option<(String, bool)>,
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `id` if it is one of `known` (or `-`, "none"), else [`UNKNOWN`].
fn bounded(known: Option<&HashSet<String>>, id: &str) -> String {
    if id == "-" || known.is_some_and(|k| k.contains(id)) {
        id.to_string()
    } else {
        UNKNOWN.to_string()
    }
}

impl Metrics {
    /// Metrics whose `tenant` and `console` labels are these configured ids.
    pub fn new<'a>(
        tenants: impl IntoIterator<Item = &'a str>,
        consoles: impl IntoIterator<Item = &'a str>,
    ) -> Metrics {
        Metrics {
            inner: Mutex::default(),
            connections: ConnectionMetrics::default(),
            known: std::sync::RwLock::new((
                tenants.into_iter().map(str::to_string).collect(),
                consoles.into_iter().map(str::to_string).collect(),
            )),
        }
    }

    /// Admit the ids of a (reloaded) configuration as label values.
    pub fn admit<'a>(
        &self,
        tenants: impl IntoIterator<Item = &'a str>,
        consoles: impl IntoIterator<Item = &'a str>,
    ) {
        if let Ok(mut k) = self.known.write() {
            k.0.extend(tenants.into_iter().map(str::to_string));
            k.1.extend(consoles.into_iter().map(str::to_string));
        }
    }

    /// Count a login decision. `tenant` and `console` may be anything a
    /// client sent: unconfigured ones are counted as [`UNKNOWN`].
    pub fn login(&self, tenant: &str, console: &str, outcome: &'static str, code: &'static str) {
        let guard = self.known.read().ok();
        let known = guard.as_deref();
        let key = (
            bounded(known.map(|k| &k.0), tenant),
            bounded(known.map(|k| &k.1), console),
            outcome,
            code,
        );
        drop(guard);
        if let Ok(mut m) = self.inner.lock() {
            *m.logins.entry(key).or_default() += 1;
        }
    }

    pub fn verification_seconds(&self, secs: f64) {
        if let Ok(mut m) = self.inner.lock() {
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    m.latency_buckets[i] += 1;
                }
            }
            m.latency_count += 1;
            m.latency_sum += secs;
        }
    }

    /// A store operation failed (`op`: claim_once, get_session, ready, …).
    pub fn store_error(&self, op: &'static str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.store_errors.entry(op).or_default() += 1;
        }
    }

    /// What the last `/readyz` probe found.
    /// A readiness probe of the store was made and answered `ready`.
    pub fn store_ready(&self, ready: bool) {
        if let Ok(mut m) = self.inner.lock() {
            m.store_ready = Some(ready);
            m.store_probes += 1;
        }
    }

    /// Readiness probes made of the store so far.
    pub fn store_probes(&self) -> u64 {
        self.inner.lock().map_or(0, |m| m.store_probes)
    }

    /// The configuration version now in force (at start and after each
    /// reload applied).
    pub fn config_version(&self, short: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.config = Some((short.to_string(), true));
        }
    }

    /// A reload's result: `applied`, `unchanged` (code `ok`), or `refused`
    /// with its code; a refused one leaves the version in force.
    pub fn config_reload(&self, result: &'static str, code: &'static str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.reloads.entry((result, code)).or_default() += 1;
            if let Some((_, ok)) = &mut m.config {
                *ok = result != "refused";
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else { return out };
        if let Some((version, ok)) = &m.config {
            out.push_str("# HELP fedgate_config_info The configuration version in force (the first 12 hex digits of its SHA-256; fedgate config history).\n");
            out.push_str("# TYPE fedgate_config_info gauge\n");
            let _ = writeln!(
                out,
                "fedgate_config_info{{version=\"{}\"}} 1",
                label(version)
            );
            out.push_str("# HELP fedgate_config_last_reload_successful Whether the last configuration reload was applied (1) or refused (0: the version in force keeps serving).\n");
            out.push_str("# TYPE fedgate_config_last_reload_successful gauge\n");
            let _ = writeln!(
                out,
                "fedgate_config_last_reload_successful {}",
                u8::from(*ok)
            );
        }
        out.push_str("# HELP fedgate_config_reloads_total Configuration reloads (SIGHUP) by result and code.\n");
        out.push_str("# TYPE fedgate_config_reloads_total counter\n");
        for ((result, code), n) in &m.reloads {
            let _ = writeln!(
                out,
                "fedgate_config_reloads_total{{result=\"{result}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP fedgate_logins_total Login decisions by tenant, console, outcome and code.\n",
        );
        out.push_str("# TYPE fedgate_logins_total counter\n");
        for ((t, c, o, code), n) in &m.logins {
            let _ = writeln!(
                out,
                "fedgate_logins_total{{tenant=\"{}\",console=\"{}\",outcome=\"{}\",code=\"{}\"}} {n}",
                label(t), label(c), o, code
            );
        }
        out.push_str("# HELP fedgate_verification_seconds Time to verify inbound evidence.\n");
        out.push_str("# TYPE fedgate_verification_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "fedgate_verification_seconds_bucket{{le=\"{b}\"}} {}",
                m.latency_buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "fedgate_verification_seconds_bucket{{le=\"+Inf\"}} {}",
            m.latency_count
        );
        let _ = writeln!(out, "fedgate_verification_seconds_sum {}", m.latency_sum);
        let _ = writeln!(
            out,
            "fedgate_verification_seconds_count {}",
            m.latency_count
        );
        out.push_str("# HELP fedgate_store_errors_total Store operations that failed (fedgate failed closed).\n");
        out.push_str("# TYPE fedgate_store_errors_total counter\n");
        for (op, n) in &m.store_errors {
            let _ = writeln!(out, "fedgate_store_errors_total{{op=\"{op}\"}} {n}");
        }
        if let Some(ready) = m.store_ready {
            out.push_str(
                "# HELP fedgate_store_ready Whether the store answered the last readiness probe.\n",
            );
            out.push_str("# TYPE fedgate_store_ready gauge\n");
            let _ = writeln!(out, "fedgate_store_ready {}", u8::from(ready));
            out.push_str("# HELP fedgate_store_readiness_probes_total Readiness probes made of the store (/readyz answers from the last one for a second).\n");
            out.push_str("# TYPE fedgate_store_readiness_probes_total counter\n");
            let _ = writeln!(
                out,
                "fedgate_store_readiness_probes_total {}",
                m.store_probes
            );
        }
        self.connections.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_ids_become_labels() {
        let m = Metrics::new(["contoso"], ["acronis"]);
        m.login("contoso", "acronis", "allowed", "ok");
        m.login("contoso", "-", "denied", "tenant.unknown");
        let before = m.render();
        for i in 0..1000 {
            let junk = format!("{i}-{}\"\n", "x".repeat(500));
            m.login(&junk, "-", "denied", "tenant.unknown");
            m.login("-", &junk, "denied", "console.unknown");
        }
        let after = m.render();
        assert!(
            after.contains(r#"tenant="contoso",console="acronis",outcome="allowed",code="ok"} 1"#)
        );
        assert!(after.contains(
            r#"tenant="unknown",console="-",outcome="denied",code="tenant.unknown"} 1000"#
        ));
        assert!(after.contains(
            r#"tenant="-",console="unknown",outcome="denied",code="console.unknown"} 1000"#
        ));
        assert!(!after.contains("xxxx"));
        // Two more series, whatever the number of distinct ids.
        assert_eq!(after.lines().count(), before.lines().count() + 2);
    }
}

use std::sync::atomic;

/// Why the server closed a connection on a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionTimeout {
    /// The request head (or, idle, the next request) did not arrive in time.
    Header,
    /// The request body did not arrive in time (answered 408).
    Body,
    /// The TLS handshake did not finish in time.
    TlsHandshake,
}

impl ConnectionTimeout {
    const ALL: [ConnectionTimeout; 3] = [
        ConnectionTimeout::Header,
        ConnectionTimeout::Body,
        ConnectionTimeout::TlsHandshake,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ConnectionTimeout::Header => "header",
            ConnectionTimeout::Body => "body",
            ConnectionTimeout::TlsHandshake => "tls_handshake",
        }
    }
}

/// The server's connection counters: lock-free, as the accept loop reads
/// the open count for every connection it accepts.
#[derive(Default)]
pub struct ConnectionMetrics {
    open: atomic::AtomicU64,
    refused: atomic::AtomicU64,
    refused_per_client: atomic::AtomicU64,
    refused_body_budget: atomic::AtomicU64,
    head_too_large: atomic::AtomicU64,
    timeouts: [atomic::AtomicU64; 3],
}

impl ConnectionMetrics {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(atomic::Ordering::Relaxed)
    }

    pub fn opened(&self) {
        self.open.fetch_add(1, atomic::Ordering::Relaxed);
    }

    pub fn closed(&self) {
        // Never below zero, even if a close were counted twice.
        let _ = self
            .open
            .fetch_update(atomic::Ordering::Relaxed, atomic::Ordering::Relaxed, |n| {
                n.checked_sub(1)
            });
    }

    /// A connection closed at once because `server.max_connections` were open.
    pub fn refused(&self) {
        self.refused.fetch_add(1, atomic::Ordering::Relaxed);
    }

    pub fn refused_total(&self) -> u64 {
        self.refused.load(atomic::Ordering::Relaxed)
    }

    /// A connection closed at once because its client already had
    /// `server.max_connections_per_client` open.
    pub fn refused_per_client(&self) {
        self.refused_per_client
            .fetch_add(1, atomic::Ordering::Relaxed);
    }

    pub fn refused_per_client_total(&self) -> u64 {
        self.refused_per_client.load(atomic::Ordering::Relaxed)
    }

    /// A request answered 503 because `server.max_body_bytes_in_flight`
    /// were held.
    pub fn refused_body_budget(&self) {
        self.refused_body_budget
            .fetch_add(1, atomic::Ordering::Relaxed);
    }

    pub fn refused_body_budget_total(&self) -> u64 {
        self.refused_body_budget.load(atomic::Ordering::Relaxed)
    }

    /// A request head past `MAX_HEAD_BYTES` (answered 431 and closed).
    pub fn head_too_large(&self) {
        self.head_too_large.fetch_add(1, atomic::Ordering::Relaxed);
    }

    pub fn timed_out(&self, kind: ConnectionTimeout) {
        self.timeouts[kind as usize].fetch_add(1, atomic::Ordering::Relaxed);
    }

    pub fn timeouts_total(&self, kind: ConnectionTimeout) -> u64 {
        self.timeouts[kind as usize].load(atomic::Ordering::Relaxed)
    }

    fn render(&self, out: &mut String) {
        out.push_str("# HELP fedgate_connections_open HTTP connections open now.\n");
        out.push_str("# TYPE fedgate_connections_open gauge\n");
        let _ = writeln!(out, "fedgate_connections_open {}", self.open());
        out.push_str("# HELP fedgate_connections_refused_total Connections closed at once because server.max_connections were open.\n");
        out.push_str("# TYPE fedgate_connections_refused_total counter\n");
        let _ = writeln!(
            out,
            "fedgate_connections_refused_total {}",
            self.refused_total()
        );
        out.push_str("# HELP fedgate_connections_refused_per_client_total Connections closed at once because their client had server.max_connections_per_client open.\n");
        out.push_str("# TYPE fedgate_connections_refused_per_client_total counter\n");
        let _ = writeln!(
            out,
            "fedgate_connections_refused_per_client_total {}",
            self.refused_per_client_total()
        );
        out.push_str("# HELP fedgate_requests_refused_body_budget_total Requests answered 503 server.busy because server.max_body_bytes_in_flight were held.\n");
        out.push_str("# TYPE fedgate_requests_refused_body_budget_total counter\n");
        let _ = writeln!(
            out,
            "fedgate_requests_refused_body_budget_total {}",
            self.refused_body_budget_total()
        );
        out.push_str("# HELP fedgate_requests_head_too_large_total Requests whose head (request line and headers) passed 64 KiB: answered 431 and closed.\n");
        out.push_str("# TYPE fedgate_requests_head_too_large_total counter\n");
        let _ = writeln!(
            out,
            "fedgate_requests_head_too_large_total {}",
            self.head_too_large.load(atomic::Ordering::Relaxed)
        );
        out.push_str("# HELP fedgate_connection_timeouts_total Connections closed (or answered 408) on a timeout, by kind.\n");
        out.push_str("# TYPE fedgate_connection_timeouts_total counter\n");
        for kind in ConnectionTimeout::ALL {
            let _ = writeln!(
                out,
                "fedgate_connection_timeouts_total{{kind=\"{}\"}} {}",
                kind.label(),
                self.timeouts_total(kind)
            );
        }
    }
}
