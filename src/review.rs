//! Access reviews (SOC 2 CC6.2/6.3): who could reach a console at a date.
//!
//! Three sources, each named in the output for what it is:
//! - the **rules in force** at the date, from the configuration history
//!   ([`crate::config::history`]): each rule with what grants it (groups,
//!   app roles, service accounts), the console roles and the scope;
//! - the **users seen**, from the audit trail: each user's last sign-in at
//!   or before the date, with the groups and app roles the tenant sent
//!   then, matched against those rules ([`crate::policy::membership`]);
//! - optionally the **current members** of each rule's groups, through
//!   Microsoft Graph (`transitiveMembers`) where the tenant has Graph
//!   credentials: membership now, not as of the date, and marked so.
//!
//! A user who never signed in is not in the audit trail: only Graph shows
//! them. A user whose last sign-in before the date is older than a group
//! change shows the groups of that sign-in: the review says when it was.
//!
//! The audit files are streamed line by line; memory grows with the number
//! of distinct users, never with the file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::history::{self, Entry, History, HistoryError};
use crate::identity::PrincipalKind;
use crate::policy::Rule;

/// Why a review cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("no configuration was in force at {0} (the history starts later, or is empty: fedgate serve writes it)")]
    NoVersion(String),
    #[error("version {0}'s rules cannot be read by this build: {1}")]
    Rules(String, String),
    #[error("{0}: {1}")]
    Audit(String, String),
}

impl crate::identity::ErrorCode for ReviewError {
    fn code(&self) -> &'static str {
        match self {
            ReviewError::History(e) => e.code(),
            ReviewError::NoVersion(_) => "review.no_version",
            ReviewError::Rules(..) => "review.rules_unreadable",
            ReviewError::Audit(..) => "review.audit_unreadable",
        }
    }
}

/// The rules of a stored configuration (read alone: the rest of an old
/// configuration need not load today).
#[derive(Deserialize)]
struct RulesOnly {
    #[serde(default)]
    rules: Vec<Rule>,
}

/// The configuration in force at `at` and its rules for `console` (all
/// consoles when `None`), with when the next version was applied.
pub fn rules_at(
    hist: &History,
    at: OffsetDateTime,
    console: Option<&str>,
) -> Result<(Entry, Vec<Rule>, Option<OffsetDateTime>), ReviewError> {
    let (entries, _) = hist.entries()?;
    let idx = entries
        .iter()
        .rposition(|e| e.applied <= at)
        .ok_or_else(|| ReviewError::NoVersion(crate::timefmt::format(at)))?;
    let entry = entries[idx].clone();
    let next = entries[idx + 1..]
        .iter()
        .find(|e| e.version != entry.version)
        .map(|e| e.applied);
    let text = hist.text(&entry.version)?;
    let parsed: RulesOnly = toml::from_str::<toml::Table>(&text)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            toml::Value::Table(t)
                .try_into()
                .map_err(|e: toml::de::Error| e.to_string())
        })
        .map_err(|e| ReviewError::Rules(history::short(&entry.version).into(), e))?;
    let rules = parsed
        .rules
        .into_iter()
        .filter(|r| console.is_none_or(|c| r.console == c))
        .collect();
    Ok((entry, rules, next))
}

/// A user's last sign-in at or before the date, as the audit trail has it.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    pub tenant: String,
    pub subject: String,
    pub upn: Option<String>,
    pub object_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub groups: Vec<String>,
    pub app_roles: Vec<String>,
    pub kind: PrincipalKind,
    pub app_id: Option<String>,
}

/// What the audit files held.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditRead {
    pub files: Vec<String>,
    pub lines: u64,
    /// Sign-ins (allowed, denied, step-up) at or before the date.
    pub sign_ins: u64,
    pub unreadable: u64,
}

#[derive(Deserialize)]
struct Line {
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    via: String,
    subject: Option<String>,
    upn: Option<String>,
    object_id: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    app_roles: Vec<String>,
    kind: Option<PrincipalKind>,
    app_id: Option<String>,
    /// Only sign-ins count: logouts and configuration changes carry no
    /// fresh claims.
    #[serde(default)]
    code: String,
}

/// Users by (tenant, subject).
pub type SeenUsers = BTreeMap<(String, String), Seen>;

/// Each user's last sign-in at or before `until` (one per tenant and
/// subject), streaming over `files` in order.
pub fn users_seen(
    files: &[PathBuf],
    until: OffsetDateTime,
) -> Result<(SeenUsers, AuditRead), ReviewError> {
    let mut seen = SeenUsers::new();
    let mut read = AuditRead::default();
    for path in files {
        let name = path.display().to_string();
        let f = std::fs::File::open(path)
            .map_err(|e| ReviewError::Audit(name.clone(), e.to_string()))?;
        read.files.push(name.clone());
        let mut r = std::io::BufReader::new(f);
        let mut buf = String::new();
        loop {
            buf.clear();
            match r.read_line(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(ReviewError::Audit(name, e.to_string())),
            }
            read.lines += 1;
            if buf.starts_with("{\"checkpoint\"") {
                continue;
            }
            let Ok(l) = serde_json::from_str::<Line>(&buf) else {
                read.unreadable += 1;
                continue;
            };
            let Some(subject) = l.subject else { continue };
            if l.time > until || matches!(l.via.as_str(), "logout" | "config") || l.code == "logout"
            {
                continue;
            }
            read.sign_ins += 1;
            let key = (l.tenant.clone(), subject.clone());
            if seen.get(&key).is_some_and(|s| s.time > l.time) {
                continue;
            }
            seen.insert(
                key,
                Seen {
                    tenant: l.tenant,
                    subject,
                    upn: l.upn,
                    object_id: l.object_id,
                    time: l.time,
                    groups: l.groups,
                    app_roles: l.app_roles,
                    kind: l.kind.unwrap_or(PrincipalKind::User),
                    app_id: l.app_id,
                },
            );
        }
    }
    Ok((seen, read))
}

/// One user a rule grants, by their last sign-in.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub console: String,
    pub rule: String,
    pub tenant: String,
    pub subject: String,
    pub upn: Option<String>,
    pub object_id: Option<String>,
    /// What matched (`member of group …`).
    pub matched: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_sign_in: OffsetDateTime,
}

/// A current member of a rule's group (Graph), not as of the date.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentMember {
    pub console: String,
    pub rule: String,
    pub tenant: String,
    pub group: String,
    pub id: String,
    pub upn: Option<String>,
    pub kind: String,
}

/// Who could reach a console at a date.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub console: Option<String>,
    /// The configuration in force, and when the next one was applied.
    pub version: Entry,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    pub rules: Vec<Rule>,
    pub access: Vec<Access>,
    pub audit: AuditRead,
    /// Filled by [`Review::add_graph`]: current membership, not as of `at`.
    pub current_members: Vec<CurrentMember>,
    pub graph_notes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub generated: OffsetDateTime,
}

/// The review of `console` (every console when `None`) at `at`.
pub fn review(
    hist: &History,
    files: &[PathBuf],
    console: Option<&str>,
    at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Review, ReviewError> {
    let (version, rules, until) = rules_at(hist, at, console)?;
    let (seen, audit) = users_seen(files, at)?;
    let access = grants(&rules, &seen);
    Ok(Review {
        at,
        console: console.map(str::to_string),
        version,
        until,
        rules,
        access,
        audit,
        current_members: Vec::new(),
        graph_notes: Vec::new(),
        generated: now,
    })
}

/// Every (rule, user) pair where the user's claims at their last sign-in
/// match the rule, sorted.
pub fn grants(rules: &[Rule], seen: &SeenUsers) -> Vec<Access> {
    let mut out = Vec::new();
    for rule in rules {
        for s in seen.values().filter(|s| s.tenant == rule.tenant) {
            if let Some(m) = crate::policy::membership(
                rule,
                s.kind,
                &s.groups,
                &s.app_roles,
                s.app_id.as_deref(),
            ) {
                out.push(Access {
                    console: rule.console.clone(),
                    rule: rule.id.clone(),
                    tenant: s.tenant.clone(),
                    subject: s.subject.clone(),
                    upn: s.upn.clone(),
                    object_id: s.object_id.clone(),
                    matched: m,
                    last_sign_in: s.time,
                });
            }
        }
    }
    out.sort();
    out
}

/// Most members listed per group (a review is for people to read).
pub const GRAPH_MAX_MEMBERS: usize = 5_000;

impl Review {
    /// Add the current members of each rule's groups, through the Graph
    /// client of the rule's tenant (`graph`: by fedgate tenant id). Groups
    /// named by display name (`group_names`) cannot be looked up by id and
    /// are noted; so is every failure (never "no members").
    pub async fn add_graph(&mut self, graph: &HashMap<String, &crate::trust::graph::GraphClient>) {
        for rule in &self.rules {
            let Some(client) = graph.get(&rule.tenant) else {
                if !rule.groups.is_empty() {
                    self.graph_notes.push(format!(
                        "rule {}: tenant {} has no [tenants.graph] credentials: current members not listed",
                        rule.id, rule.tenant
                    ));
                }
                continue;
            };
            if !rule.group_names.is_empty() {
                self.graph_notes.push(format!(
                    "rule {}: groups named by display name ({:?}) are not looked up",
                    rule.id, rule.group_names
                ));
            }
            for g in &rule.groups {
                match client.group_members(g).await {
                    Ok(members) => {
                        if members.len() > GRAPH_MAX_MEMBERS {
                            self.graph_notes.push(format!(
                                "rule {}: group {g} has {} members; the first {GRAPH_MAX_MEMBERS} are listed",
                                rule.id,
                                members.len()
                            ));
                        }
                        for m in members.into_iter().take(GRAPH_MAX_MEMBERS) {
                            self.current_members.push(CurrentMember {
                                console: rule.console.clone(),
                                rule: rule.id.clone(),
                                tenant: rule.tenant.clone(),
                                group: g.clone(),
                                id: m.id,
                                upn: m.upn,
                                kind: m.kind.trim_start_matches("#microsoft.graph.").to_string(),
                            });
                        }
                    }
                    Err(e) => self.graph_notes.push(format!(
                        "rule {}: group {g}: {} ({e}): current members unknown",
                        rule.id,
                        crate::identity::ErrorCode::code(&e)
                    )),
                }
            }
        }
    }

    /// One row per rule and user, then per rule and current member; a rule
    /// that grants nobody seen has a row of its own.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "console,rule,tenant,grants_via,roles,scope,require_mfa,source,user,subject,object_id,matched,last_sign_in\n",
        );
        let config = format!(
            "configuration {} (applied {})",
            history::short(&self.version.version),
            crate::timefmt::format(self.version.applied)
        );
        for rule in &self.rules {
            let head = [
                rule.console.clone(),
                rule.id.clone(),
                rule.tenant.clone(),
                grants_via(rule),
                rule.roles.join(" "),
                rule.scope.clone(),
                rule.require_mfa.to_string(),
            ];
            let mut any = false;
            for a in self.access.iter().filter(|a| a.rule == rule.id) {
                any = true;
                row(
                    &mut out,
                    &head,
                    &[
                        "audit trail: groups at last sign-in".into(),
                        a.upn.clone().unwrap_or_default(),
                        a.subject.clone(),
                        a.object_id.clone().unwrap_or_default(),
                        a.matched.clone(),
                        crate::timefmt::format(a.last_sign_in),
                    ],
                );
            }
            for m in self.current_members.iter().filter(|m| m.rule == rule.id) {
                any = true;
                row(
                    &mut out,
                    &head,
                    &[
                        "Microsoft Graph: current membership, not as of the date".into(),
                        m.upn.clone().unwrap_or_default(),
                        String::new(),
                        m.id.clone(),
                        format!("member of group {} ({})", m.group, m.kind),
                        String::new(),
                    ],
                );
            }
            if !any {
                row(
                    &mut out,
                    &head,
                    &[
                        config.clone(),
                        String::new(),
                        String::new(),
                        String::new(),
                        "nobody seen".into(),
                        String::new(),
                    ],
                );
            }
        }
        out
    }

    /// A printable page: the date, the configuration, the rules, the users.
    pub fn to_html(&self) -> String {
        let rules: Vec<minijinja::Value> = self
            .rules
            .iter()
            .map(|r| {
                minijinja::context! {
                    id => r.id, console => r.console, tenant => r.tenant, via => grants_via(r),
                    roles => r.roles.join(", "), scope => r.scope, mfa => r.require_mfa,
                    users => self.access.iter().filter(|a| a.rule == r.id).map(|a| minijinja::context! {
                        upn => a.upn.clone().unwrap_or_default(), subject => a.subject, matched => a.matched,
                        last => crate::timefmt::format(a.last_sign_in),
                    }).collect::<Vec<_>>(),
                    current => self.current_members.iter().filter(|m| m.rule == r.id).map(|m| minijinja::context! {
                        upn => m.upn.clone().unwrap_or_default(), id => m.id, group => m.group, kind => m.kind,
                    }).collect::<Vec<_>>(),
                }
            })
            .collect();
        render(
            REVIEW_HTML,
            minijinja::context! {
                at => crate::timefmt::format(self.at),
                console => self.console.clone().unwrap_or_else(|| "every console".into()),
                version => history::short(&self.version.version),
                applied => crate::timefmt::format(self.version.applied),
                until => self.until.map(crate::timefmt::format).unwrap_or_else(|| "still in force when the history ends".into()),
                file => self.version.file,
                rules => rules,
                files => self.audit.files.join(", "),
                sign_ins => self.audit.sign_ins,
                unreadable => self.audit.unreadable,
                notes => self.graph_notes,
                graph => !self.current_members.is_empty() || !self.graph_notes.is_empty(),
                generated => crate::timefmt::format(self.generated),
            },
        )
    }
}

/// What grants a rule, in words.
pub fn grants_via(r: &Rule) -> String {
    let mut via = Vec::new();
    via.extend(r.groups.iter().map(|g| format!("group {g}")));
    via.extend(r.group_names.iter().map(|g| format!("group named {g:?}")));
    via.extend(r.app_roles.iter().map(|g| format!("app role {g}")));
    via.extend(r.app_ids.iter().map(|g| format!("service account {g}")));
    via.join("; ")
}

fn row(out: &mut String, head: &[String], tail: &[String]) {
    let cells: Vec<String> = head
        .iter()
        .chain(tail)
        .map(|c| crate::audit::query::csv_cell(c).into_owned())
        .collect();
    out.push_str(&cells.join(","));
    out.push('\n');
}

fn render(template: &str, ctx: minijinja::Value) -> String {
    let mut env = minijinja::Environment::new();
    // Named .html: auto-escaped (hostile UPNs and group names stay text).
    if env.add_template("review.html", template).is_err() {
        return String::new();
    }
    env.get_template("review.html")
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| format!("<p>review page: {e}</p>"))
}

/// What changed between two dates.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewDiff {
    pub from: Review,
    pub to: Review,
    pub rules_added: Vec<String>,
    pub rules_removed: Vec<String>,
    /// Rules with the same id whose grant, roles or scope changed.
    pub rules_changed: Vec<String>,
    /// (console, tenant, user) that could reach at the second date, not the first…
    pub gained: Vec<(String, String, String)>,
    /// …and the other way round.
    pub lost: Vec<(String, String, String)>,
}

/// `fedgate access review --diff D1 D2`.
pub fn diff(
    hist: &History,
    files: &[PathBuf],
    console: Option<&str>,
    d1: OffsetDateTime,
    d2: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<ReviewDiff, ReviewError> {
    let from = review(hist, files, console, d1, now)?;
    let to = review(hist, files, console, d2, now)?;
    let ids = |r: &Review| -> BTreeMap<String, String> {
        r.rules
            .iter()
            .map(|x| (x.id.clone(), serde_json::to_string(x).unwrap_or_default()))
            .collect()
    };
    let (a, b) = (ids(&from), ids(&to));
    let who = |r: &Review| -> BTreeSet<(String, String, String)> {
        r.access
            .iter()
            .map(|x| {
                (
                    x.console.clone(),
                    x.tenant.clone(),
                    x.upn.clone().unwrap_or_else(|| x.subject.clone()),
                )
            })
            .collect()
    };
    let (wa, wb) = (who(&from), who(&to));
    Ok(ReviewDiff {
        rules_added: b.keys().filter(|k| !a.contains_key(*k)).cloned().collect(),
        rules_removed: a.keys().filter(|k| !b.contains_key(*k)).cloned().collect(),
        rules_changed: a
            .iter()
            .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
            .map(|(k, _)| k.clone())
            .collect(),
        gained: wb.difference(&wa).cloned().collect(),
        lost: wa.difference(&wb).cloned().collect(),
        from,
        to,
    })
}

impl ReviewDiff {
    pub fn to_csv(&self) -> String {
        let mut out = String::from("change,console,tenant,what\n");
        let r = |c: &str, x: &str| format!("{c},,,{}\n", crate::audit::query::csv_cell(x));
        for id in &self.rules_added {
            out.push_str(&r("rule_added", id));
        }
        for id in &self.rules_removed {
            out.push_str(&r("rule_removed", id));
        }
        for id in &self.rules_changed {
            out.push_str(&r("rule_changed", id));
        }
        for (kind, list) in [("access_gained", &self.gained), ("access_lost", &self.lost)] {
            for (c, t, u) in list {
                let cells = [kind, c, t, u].map(|x| crate::audit::query::csv_cell(x).into_owned());
                out.push_str(&cells.join(","));
                out.push('\n');
            }
        }
        out
    }

    pub fn to_html(&self) -> String {
        let list = |l: &[(String, String, String)]| -> Vec<minijinja::Value> {
            l.iter()
                .map(|(c, t, u)| minijinja::context! { console => c, tenant => t, user => u })
                .collect()
        };
        render(
            DIFF_HTML,
            minijinja::context! {
                from => crate::timefmt::format(self.from.at), to => crate::timefmt::format(self.to.at),
                v1 => history::short(&self.from.version.version), v2 => history::short(&self.to.version.version),
                added => self.rules_added, removed => self.rules_removed, changed => self.rules_changed,
                gained => list(&self.gained), lost => list(&self.lost),
                generated => crate::timefmt::format(self.from.generated),
            },
        )
    }
}

const REVIEW_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Access review: {{ console }} at {{ at }}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#eee}.note{color:#555}.sign{margin-top:3em}.sign span{display:inline-block;width:20em;border-top:1px solid #000;margin-right:3em;padding-top:.2em}@media print{body{margin:0}}</style></head>
<body>
<h1>Access review: {{ console }}</h1>
<p>Who could reach <b>{{ console }}</b> at <b>{{ at }}</b>, by fedgate.</p>
<ul>
<li>Rules in force: configuration <code>{{ version }}</code>, applied {{ applied }} from {{ file }}; next change: {{ until }}.</li>
<li>Users: their last sign-in at or before the date in the audit trail ({{ files }}; {{ sign_ins }} sign-ins read{% if unreadable %}, {{ unreadable }} unreadable lines{% endif %}), with the groups and app roles the tenant sent then. A user who never signed in is not in the trail.</li>
{% if graph %}<li>Current members: Microsoft Graph <code>transitiveMembers</code> of each rule's groups, <b>current membership, not as of {{ at }}</b>.</li>{% endif %}
</ul>
{% for r in rules %}
<h2>Rule <code>{{ r.id }}</code></h2>
<p>Tenant <code>{{ r.tenant }}</code>, console <code>{{ r.console }}</code>: {{ r.via }} → roles <b>{{ r.roles }}</b>{% if r.scope %} in scope <code>{{ r.scope }}</code>{% endif %}{% if r.mfa %}, MFA required{% endif %}.</p>
<table><tr><th>User</th><th>Subject</th><th>Matched</th><th>Last sign-in</th></tr>
{% for u in r.users %}<tr><td>{{ u.upn }}</td><td>{{ u.subject }}</td><td>{{ u.matched }}</td><td>{{ u.last }}</td></tr>
{% else %}<tr><td colspan="4" class="note">nobody seen with these groups at their last sign-in</td></tr>{% endfor %}
</table>
{% if r.current %}<table><tr><th>Current member (Graph, not as of the date)</th><th>Object id</th><th>Group</th><th>Kind</th></tr>
{% for m in r.current %}<tr><td>{{ m.upn }}</td><td>{{ m.id }}</td><td>{{ m.group }}</td><td>{{ m.kind }}</td></tr>{% endfor %}
</table>{% endif %}
{% else %}<p>No rule grants this console: nobody could reach it through fedgate.</p>
{% endfor %}
{% for n in notes %}<p class="note">{{ n }}</p>{% endfor %}
<p class="note">Generated {{ generated }}.</p>
<p class="sign"><span>Reviewed by</span><span>Date</span></p>
</body></html>
"#;

const DIFF_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Access changes {{ from }} → {{ to }}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}th,td{border:1px solid #999;padding:.25em .5em;text-align:left}th{background:#eee}</style></head>
<body>
<h1>Access changes from {{ from }} to {{ to }}</h1>
<p>Configuration <code>{{ v1 }}</code> → <code>{{ v2 }}</code>.</p>
<h2>Rules</h2>
<ul>{% for r in added %}<li>added: <code>{{ r }}</code></li>{% endfor %}{% for r in removed %}<li>removed: <code>{{ r }}</code></li>{% endfor %}{% for r in changed %}<li>changed: <code>{{ r }}</code></li>{% endfor %}{% if not added and not removed and not changed %}<li>no change</li>{% endif %}</ul>
<h2>Users who gained access</h2>
<table><tr><th>Console</th><th>Tenant</th><th>User</th></tr>{% for g in gained %}<tr><td>{{ g.console }}</td><td>{{ g.tenant }}</td><td>{{ g.user }}</td></tr>{% else %}<tr><td colspan="3">none</td></tr>{% endfor %}</table>
<h2>Users who lost access</h2>
<table><tr><th>Console</th><th>Tenant</th><th>User</th></tr>{% for g in lost %}<tr><td>{{ g.console }}</td><td>{{ g.tenant }}</td><td>{{ g.user }}</td></tr>{% else %}<tr><td colspan="3">none</td></tr>{% endfor %}</table>
<p>Generated {{ generated }}.</p>
</body></html>
"#;
