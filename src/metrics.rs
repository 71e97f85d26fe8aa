//! Prometheus text metrics: logins by tenant, console, outcome and code, a
//! verification latency histogram, and the store's failures and readiness.
//! Hand-rolled to stay small.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    logins: BTreeMap<(String, String, String, String), u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    store_errors: BTreeMap<&'static str, u64>,
    /// The last readiness probe's answer (`None` before the first).
    store_ready: Option<bool>,
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn login(&self, tenant: &str, console: &str, outcome: &str, code: &str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.logins
                .entry((tenant.into(), console.into(), outcome.into(), code.into()))
                .or_default() += 1;
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
    pub fn store_ready(&self, ready: bool) {
        if let Ok(mut m) = self.inner.lock() {
            m.store_ready = Some(ready);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else { return out };
        out.push_str(
            "# HELP fedgate_logins_total Login decisions by tenant, console, outcome and code.\n",
        );
        out.push_str("# TYPE fedgate_logins_total counter\n");
        for ((t, c, o, code), n) in &m.logins {
            let _ = writeln!(
                out,
                "fedgate_logins_total{{tenant=\"{}\",console=\"{}\",outcome=\"{}\",code=\"{}\"}} {n}",
                label(t), label(c), label(o), label(code)
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
        }
        out
    }
}
