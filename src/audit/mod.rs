//! One structured event per decision, as JSON lines an auditor can read:
//! who, from which tenant, which groups were seen, which console, the roles
//! granted or the denial code, the assertion id, the client address, the
//! outcome. Never the raw assertion or token.

pub mod chain;
pub mod query;
pub mod sink;

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

use crate::identity::{Grant, GroupsSource, Identity};

#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// The event schema ([`SCHEMA`]; docs/audit.md).
    pub schema: u8,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// `allowed` or `denied`.
    pub outcome: &'static str,
    /// The stable code of the denial, or `ok`.
    pub code: String,
    pub reason: String,
    /// fedgate's tenant id.
    pub tenant: String,
    pub console: Option<String>,
    pub subject: Option<String>,
    pub entra_tenant_id: Option<String>,
    pub object_id: Option<String>,
    pub upn: Option<String>,
    pub groups: Vec<String>,
    /// App roles the evidence carried (schema 2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<String>,
    /// `user` or `service_account` (schema 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::identity::PrincipalKind>,
    /// The application id of a token (`appid`/`azp`; schema 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    pub groups_overage: bool,
    /// Where `groups` came from: `idp` (the signed assertion or token) or
    /// `graph` (an overage resolved through Microsoft Graph). fedgate's own
    /// fact, never an attribute the IdP sent.
    pub groups_source: GroupsSource,
    /// `graph` when an overage was resolved through Microsoft Graph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups_resolved_by: Option<String>,
    pub roles_granted: Vec<Grant>,
    pub rules_matched: Vec<String>,
    pub assertion_id: Option<String>,
    pub mfa: Option<bool>,
    pub client: Option<String>,
    /// How the evidence arrived (`saml`, `jwt_v2`, …).
    pub via: String,
    /// The configuration version the decision was made under (its first
    /// 12 hex digits: `fedgate config history`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// For `config.applied` and `config.reload_refused`: what changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Box<ConfigChange>>,
}

/// A configuration applied (at start or by a reload) or refused.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigChange {
    /// The version (full hex SHA-256 of the file's bytes).
    pub version: String,
    /// The version in force before (none at a first start).
    pub previous: Option<String>,
    /// `start` or `reload`.
    pub source: String,
    pub file: String,
    /// The file's modification time and owner when it was read.
    #[serde(with = "time::serde::rfc3339::option")]
    pub modified: Option<OffsetDateTime>,
    pub owner_uid: Option<u32>,
    /// `FEDGATE_*` variables overriding keys (names only).
    pub env: Vec<String>,
    /// Lines added and removed against `previous`, and the unified diff,
    /// cut at [`DIFF_MAX`] bytes (`diff_truncated`).
    pub added: usize,
    pub removed: usize,
    pub diff: String,
    pub diff_truncated: bool,
}

/// The version of the event schema (docs/audit.md "The event schema"):
/// 2 added `schema`, `config`, `change`, `app_roles`, `kind`, `app_id`.
pub const SCHEMA: u8 = 2;

/// The most of a configuration diff one audit event carries.
pub const DIFF_MAX: usize = 16 * 1024;

impl AuditEvent {
    /// An event skeleton for a request from `client` to `tenant`.
    pub fn new(now: OffsetDateTime, tenant: &str, via: &str, client: Option<String>) -> Self {
        AuditEvent {
            schema: SCHEMA,
            time: now,
            outcome: "denied",
            code: String::new(),
            reason: String::new(),
            tenant: crate::util::clip(tenant, CLIP),
            console: None,
            subject: None,
            entra_tenant_id: None,
            object_id: None,
            upn: None,
            groups: Vec::new(),
            app_roles: Vec::new(),
            kind: None,
            app_id: None,
            groups_overage: false,
            groups_source: GroupsSource::Idp,
            groups_resolved_by: None,
            roles_granted: Vec::new(),
            rules_matched: Vec::new(),
            assertion_id: None,
            mfa: None,
            client,
            via: via.to_string(),
            config: None,
            change: None,
        }
    }

    /// Fill in who it is.
    pub fn with_identity(mut self, id: &Identity) -> Self {
        self.subject = Some(id.subject.clone());
        self.entra_tenant_id = id.tenant_id.clone();
        self.object_id = id.object_id.clone();
        self.upn = id.upn.clone();
        self.groups = id.groups.clone();
        self.app_roles = id.roles.clone();
        self.kind = Some(id.kind);
        self.app_id = id.app_id.clone();
        self.groups_overage = id.groups_overage;
        self.groups_source = id.groups_source;
        self.groups_resolved_by =
            (id.groups_source == GroupsSource::Graph).then(|| "graph".to_string());
        self.assertion_id = id.token_id.clone();
        self.mfa = Some(id.mfa);
        self
    }
}

/// Where events go: the log (target `audit`) always, and a JSON-lines file
/// when configured.
pub struct AuditLog {
    /// The file, and where its hash chain stands ([`chain`]).
    file: Option<Mutex<(std::fs::File, chain::Head)>>,
    /// Events written since the last checkpoint.
    unanchored: std::sync::atomic::AtomicU64,
    /// `fsync` after every event line (`audit.fsync = "event"`).
    sync_each: std::sync::atomic::AtomicBool,
    /// Written since the last fsync.
    dirty: std::sync::atomic::AtomicBool,
    /// The file's path, and the UTC day it was opened or last rotated.
    path: Option<std::path::PathBuf>,
    day: Mutex<time::Date>,
    /// Writes (events and checkpoints) that failed, and whether the last
    /// one did (`/readyz` with `audit.required`).
    write_failures: std::sync::atomic::AtomicU64,
    failing: std::sync::atomic::AtomicBool,
    checkpoints: std::sync::atomic::AtomicU64,
    /// The last decisions, for the admin page.
    recent: Mutex<std::collections::VecDeque<serde_json::Value>>,
    /// (second, written in it, suppressed since the last written one) for
    /// unknown-tenant/console events.
    unknown: Mutex<(i64, u32, u64)>,
    /// Where else every line goes (`audit.sinks`): [`sink`].
    sinks: sink::Sinks,
}

/// Longest tenant or console id kept from a request (configured ids are
/// shorter; anything longer came from a client).
pub const CLIP: usize = 64;

/// Events an unauthenticated client can cause as fast as it sends: requests
/// that reached no configured tenant or console (`tenant.unknown`,
/// `console.unknown`) and throttled admin-token tries (`admin.throttled`).
/// At most this many a second are written; the rest are counted and the
/// next one written says how many.
const UNKNOWN_PER_SECOND: u32 = 10;

/// How many decisions the admin page can show.
const RECENT: usize = 50;

impl AuditLog {
    /// Open (or create) the audit file; an existing file's chain goes on
    /// from its last line. A last line cut off (a crash mid-write) is ended
    /// with a newline and left as it is: `fedgate audit verify` reports it.
    pub fn new(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(p) => {
                let (head, cut) = chain_head(p)?;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?;
                if cut {
                    f.write_all(b"\n")?;
                }
                Some(Mutex::new((f, head)))
            }
            None => None,
        };
        Ok(AuditLog {
            file,
            sync_each: std::sync::atomic::AtomicBool::new(false),
            dirty: std::sync::atomic::AtomicBool::new(false),
            path: path.map(Path::to_path_buf),
            day: Mutex::new(OffsetDateTime::now_utc().date()),
            unanchored: std::sync::atomic::AtomicU64::new(0),
            write_failures: std::sync::atomic::AtomicU64::new(0),
            failing: std::sync::atomic::AtomicBool::new(false),
            checkpoints: std::sync::atomic::AtomicU64::new(0),
            recent: Mutex::new(std::collections::VecDeque::with_capacity(RECENT)),
            unknown: Mutex::new((0, 0, 0)),
            sinks: sink::Sinks::default(),
        })
    }

    /// Ship every line written from now on to `sinks` too.
    pub fn set_sinks(&mut self, sinks: sink::Sinks) {
        self.sinks = sinks;
    }

    /// The sinks (`audit.sinks`).
    pub fn sinks(&self) -> &sink::Sinks {
        &self.sinks
    }

    /// The last decisions, newest first.
    pub fn recent(&self) -> Vec<serde_json::Value> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn record(&self, event: &AuditEvent) {
        self.record_under(event, None)
    }

    /// [`AuditLog::record`], naming `config` (a configuration version) as
    /// the one the decision was made under, unless the event names one.
    pub fn record_under(&self, event: &AuditEvent, config: Option<&str>) {
        let config = config.filter(|_| event.config.is_none());
        let noted;
        let mut event = event;
        if matches!(
            event.code.as_str(),
            "tenant.unknown" | "console.unknown" | "admin.throttled"
        ) {
            // Rate-limited: a flood of made-up ids must not grow the file.
            let Ok(mut u) = self.unknown.lock() else {
                return;
            };
            let second = event.time.unix_timestamp();
            if u.0 != second {
                *u = (second, 0, u.2);
            }
            if u.1 >= UNKNOWN_PER_SECOND {
                u.2 += 1;
                return;
            }
            u.1 += 1;
            if u.2 > 0 {
                let mut copy = event.clone();
                copy.reason = format!(
                    "{} ({} similar events (unknown tenants or consoles, throttled admin-token tries) were not written before this one)",
                    copy.reason, u.2
                );
                noted = copy;
                u.2 = 0;
                event = &noted;
            }
        }
        let mut line = serde_json::to_string(event).unwrap_or_else(|e| {
            format!(
                "{{\"outcome\":\"{}\",\"error\":\"audit serialization: {e}\"}}",
                event.outcome
            )
        });
        // The version is hex (nothing to escape): appended as the object's
        // last member, without a copy of the event.
        if let Some(v) = config.filter(|v| v.bytes().all(|b| b.is_ascii_hexdigit())) {
            if line.ends_with('}') {
                line.pop();
                line.push_str(",\"config\":\"");
                line.push_str(v);
                line.push_str("\"}");
            }
        }
        tracing::info!(target: "audit", outcome = event.outcome, code = %event.code, tenant = %event.tenant,
            console = event.console.as_deref().unwrap_or("-"), subject = event.subject.as_deref().unwrap_or("-"), "decision");
        if let (Ok(mut r), Ok(mut v)) = (self.recent.lock(), serde_json::to_value(event)) {
            if let (Some(c), Some(map)) = (config, v.as_object_mut()) {
                map.insert("config".into(), c.into());
            }
            if r.len() == RECENT {
                r.pop_back();
            }
            r.push_front(v);
        }
        let sink_kind = match event.outcome {
            "allowed" => sink::LineKind::Allowed,
            _ => sink::LineKind::Denied,
        };
        if self.file.is_none() {
            self.sinks.offer(&line, sink_kind, None);
        }
        if let Some(f) = &self.file {
            if let Ok(mut guard) = f.lock() {
                let (file, head) = &mut *guard;
                // Chained and written under one lock: lines never interleave
                // and each names the one before it.
                let mut next = head.clone();
                let chained = next.chain_text(&line).unwrap_or(line);
                let each = self.sync_each.load(std::sync::atomic::Ordering::Relaxed);
                let written = file
                    .write_all(format!("{chained}\n").as_bytes())
                    .and_then(|()| if each { file.sync_data() } else { Ok(()) });
                match written {
                    Ok(()) => {
                        self.sinks.offer(&chained, sink_kind, Some(next.seq));
                        *head = next;
                        self.dirty
                            .store(!each, std::sync::atomic::Ordering::Relaxed);
                        self.unanchored
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.wrote(true);
                    }
                    Err(e) => {
                        self.wrote(false);
                        tracing::error!(target: "audit", "audit file write failed: {e}")
                    }
                }
            }
        }
    }

    /// Write a checkpoint signed with `key` (fedgate's current SAML signing
    /// key) if events were written since the last one, or when `always`
    /// (shutdown). Returns whether one was written.
    pub fn checkpoint(
        &self,
        key: &crate::trust::signing::SigningKey,
        now: OffsetDateTime,
        always: bool,
    ) -> bool {
        let Some(f) = &self.file else {
            return false;
        };
        if !always && self.unanchored.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return false;
        }
        let Ok(mut guard) = f.lock() else {
            return false;
        };
        let (file, head) = &mut *guard;
        let mut next = head.clone();
        let line = match next.checkpoint(key, &crate::timefmt::format(now)) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(target: "audit", "audit checkpoint failed: {e}");
                return false;
            }
        };
        match file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| file.sync_data())
        {
            Ok(()) => {
                self.sinks
                    .offer(&line, sink::LineKind::Checkpoint, Some(next.seq));
                *head = next;
                self.unanchored
                    .store(0, std::sync::atomic::Ordering::Relaxed);
                self.checkpoints
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.wrote(true);
                true
            }
            Err(e) => {
                self.wrote(false);
                tracing::error!(target: "audit", "audit checkpoint write failed: {e}");
                false
            }
        }
    }

    /// `fsync` every event line before `record` returns (`true`), or only
    /// at checkpoints and [`AuditLog::sync`] (`false`, the default).
    pub fn sync_each_event(&self, each: bool) {
        self.sync_each
            .store(each, std::sync::atomic::Ordering::Relaxed);
    }

    /// `fsync` what was written (`audit.fsync = "second"`'s tick).
    pub fn sync(&self) {
        if !self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Some(Ok(guard)) = self.file.as_ref().map(|f| f.lock()) {
            if let Err(e) = guard.0.sync_data() {
                self.wrote(false);
                tracing::error!(target: "audit", "audit file fsync failed: {e}");
            }
        }
    }

    /// Rotate the file when it has grown to `max_bytes` (0: never by size)
    /// or, with `daily`, when the UTC day has changed since it was opened:
    /// a signed checkpoint closes it, it is renamed `{file}.{UTC time}`,
    /// and the chain goes on in a new file (its first line names the
    /// checkpoint's hash: `fedgate audit verify OLD NEW` checks both).
    /// Returns the rotated file's new name.
    pub fn rotate_if_due(
        &self,
        key: &crate::trust::signing::SigningKey,
        now: OffsetDateTime,
        max_bytes: u64,
        daily: bool,
    ) -> Option<std::path::PathBuf> {
        let (Some(f), Some(path)) = (&self.file, &self.path) else {
            return None;
        };
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let new_day = self.day.lock().map(|d| *d != now.date()).unwrap_or(false);
        if size == 0 || !((max_bytes > 0 && size >= max_bytes) || (daily && new_day)) {
            return None;
        }
        self.checkpoint(key, now, true);
        let Ok(mut guard) = f.lock() else {
            return None;
        };
        let stamp = now
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        // Never over an earlier rotated file (two rotations in one second).
        let mut rotated = path.clone();
        for n in 0u32.. {
            let mut name = path.as_os_str().to_owned();
            name.push(match n {
                0 => format!(".{stamp}"),
                n => format!(".{stamp}.{n}"),
            });
            rotated = std::path::PathBuf::from(name);
            if !rotated.exists() || n > 1000 {
                break;
            }
        }
        let reopened = std::fs::rename(path, &rotated).and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        });
        match reopened {
            Ok(new) => {
                guard.0 = new;
                if let Ok(mut d) = self.day.lock() {
                    *d = now.date();
                }
                tracing::info!(target: "audit", file = %rotated.display(), "audit file rotated");
                Some(rotated)
            }
            Err(e) => {
                self.wrote(false);
                tracing::error!(target: "audit", "audit file rotation failed: {e}");
                None
            }
        }
    }

    fn wrote(&self, ok: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.failing.store(!ok, Relaxed);
        if !ok {
            self.write_failures.fetch_add(1, Relaxed);
        }
    }

    /// Whether the last write to the audit file failed.
    pub fn failing(&self) -> bool {
        self.failing.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The audit file's metrics, in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        if self.file.is_none() {
            return self.sinks.render_metrics();
        }
        self.sinks.render_metrics() + &format!(
            "# HELP fedgate_audit_write_failures_total Audit file writes (events, checkpoints) that failed.\n\
# TYPE fedgate_audit_write_failures_total counter\n\
fedgate_audit_write_failures_total {}\n\
# HELP fedgate_audit_failing Whether the last audit file write failed.\n\
# TYPE fedgate_audit_failing gauge\n\
fedgate_audit_failing {}\n\
# HELP fedgate_audit_checkpoints_total Signed checkpoints written to the audit file.\n\
# TYPE fedgate_audit_checkpoints_total counter\n\
fedgate_audit_checkpoints_total {}\n\
# HELP fedgate_audit_unanchored_events Events written since the last checkpoint.\n\
# TYPE fedgate_audit_unanchored_events gauge\n\
fedgate_audit_unanchored_events {}\n",
            self.write_failures.load(Relaxed),
            u8::from(self.failing()),
            self.checkpoints.load(Relaxed),
            self.unanchored.load(Relaxed),
        )
    }
}

/// Where an existing audit file's chain stands, read from its end (at most
/// the last 1 MiB), and whether its last line is cut off.
fn chain_head(path: &Path) -> std::io::Result<(chain::Head, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((chain::Head::default(), false))
        }
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        // A pipe or a device (a test's /dev/full): nothing to go on from.
        return Ok((chain::Head::default(), false));
    }
    let len = meta.len();
    let from = len.saturating_sub(1 << 20);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.take(1 << 20).read_to_end(&mut bytes)?;
    let tail = String::from_utf8_lossy(&bytes).into_owned();
    let cut = !tail.is_empty() && !tail.ends_with('\n');
    let complete = match tail.rfind('\n') {
        Some(i) if cut => &tail[..=i],
        _ => tail.as_str(),
    };
    // A file of events from before the chain (no seq) starts a new one.
    Ok((chain::Head::after(complete).unwrap_or_default(), cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An audit log writing to a new file in the temporary directory.
    fn temp_log() -> (AuditLog, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "fedgate-audit-test-{}",
            crate::util::random_id().unwrap_or_default()
        ));
        (AuditLog::new(Some(&path)).unwrap(), path)
    }

    #[test]
    fn throttled_admin_tries_are_rate_limited_like_unknown_tenants() {
        let (log, path) = temp_log();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for _ in 0..50 {
            let mut e = AuditEvent::new(t0, "-", "admin", Some("198.51.100.9".into()));
            e.code = "admin.throttled".into();
            log.record(&e);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(text.lines().count(), UNKNOWN_PER_SECOND as usize);
    }

    #[test]
    fn unknown_tenant_events_are_clipped_and_rate_limited_and_say_how_many_were_not_written() {
        let (log, path) = temp_log();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let junk = "x".repeat(10_000);
        for _ in 0..100 {
            let mut e = AuditEvent::new(t0, &junk, "saml", None);
            e.code = "tenant.unknown".into();
            log.record(&e);
        }
        // A real decision in the same second is never suppressed.
        let mut real = AuditEvent::new(t0, "contoso", "saml", None);
        real.code = "saml.replayed".into();
        log.record(&real);
        let mut next = AuditEvent::new(t0 + time::Duration::seconds(1), &junk, "saml", None);
        next.code = "tenant.unknown".into();
        log.record(&next);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            10 + 1 + 1,
            "10 a second, the real one, the next"
        );
        assert!(lines
            .iter()
            .all(|l| l["tenant"].as_str().unwrap().chars().count() <= CLIP + 1));
        assert_eq!(lines[10]["code"], "saml.replayed");
        assert!(
            lines[11]["reason"]
                .as_str()
                .unwrap()
                .contains("90 similar events"),
            "{}",
            lines[11]
        );
    }
}
