//! The Evidence tab (issue 18, part 3): `fedgate audit query`'s filters
//! over the configured `audit.file` and its rotated siblings (oldest
//! first), the events that match (the newest [`SHOWN`]), a CSV download
//! that is `fedgate audit query --csv` byte for byte (`/admin/evidence.csv`,
//! streamed), and the allowed and denied logins per console per day as an
//! inline SVG chart beside a table of the same counts.
//!
//! Everything is read on the blocking pool (`spawn_blocking`), a line at a
//! time, through the same matcher as the command line
//! ([`crate::audit::query::scan`]): memory does not grow with the files.
//! What is kept is bounded: [`SHOWN`] events, and counts for the
//! configured consoles plus one "other consoles" bucket over at most
//! [`DAYS`] days.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use time::Date;

use crate::audit::query::{self, Counts, Event, Filter, FilterError, Format};
use crate::gateway::App;
use crate::identity::ErrorCode;

/// Matched events shown on the page at most (the newest); the CSV has all.
pub(super) const SHOWN: usize = 500;
/// Days charted at most: the latest 366 (a year, leap or not).
pub(super) const DAYS: i64 = 366;
/// Characters of one field shown at most (the CSV has them whole).
const FIELD: usize = 300;
/// Bytes of CSV sent at a time; at most `QUEUE` chunks wait for the client.
const CHUNK: usize = 64 * 1024;
const QUEUE: usize = 4;

/// The filters, in the order of the form (and of the CSV link's query).
const FIELDS: [&str; 7] = [
    "console", "tenant", "user", "outcome", "code", "since", "until",
];

pub(super) const PAGE: &str = r##"{% extends "layout.html" %}{% block body %}<h1>Evidence</h1>
<form method="get" action="/admin/evidence" class="filters">
<label>Console <input name="console" list="evidence-consoles" value="{{ p.console }}" size="16"></label>
<label>Tenant <input name="tenant" list="evidence-tenants" value="{{ p.tenant }}" size="14"></label>
<label>User <input name="user" value="{{ p.user }}" size="26" placeholder="UPN, subject or object id"></label>
<label>Outcome <input name="outcome" list="evidence-outcomes" value="{{ p.outcome }}" size="9"></label>
<label>Code <input name="code" value="{{ p.code }}" size="22" placeholder="policy.no_rule_matched"></label>
<label>Since <input name="since" value="{{ p.since }}" size="22" placeholder="YYYY-MM-DD or RFC 3339"></label> (inclusive)
<label>Until <input name="until" value="{{ p.until }}" size="22" placeholder="YYYY-MM-DD or RFC 3339"></label> (exclusive)
<button>Apply</button> <a href="/admin/evidence">Clear</a>
<datalist id="evidence-consoles">{% for c in consoles %}<option value="{{ c.id }}">{{ c.name }}</option>{% endfor %}</datalist>
<datalist id="evidence-tenants">{% for t in tenants %}<option value="{{ t }}">{% endfor %}</datalist>
<datalist id="evidence-outcomes"><option value="allowed"><option value="denied"><option value="step_up"></datalist></form>
<p><small>As <code>fedgate audit query</code>: every given filter must match; a user is a UPN (any case), a subject or an object id; a day is its midnight, UTC.
Read: <code>audit.file</code> and its rotated files, oldest first{% if files %} ({% for f in files %}<code>{{ f }}</code>{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}.</small></p>
{% if error %}<p class="err" id="evidence-error">{{ error.message }} (<code>{{ error.code }}</code>)</p>{% endif %}
{% if result %}<p id="evidence-counts"><span id="count-lines" data-count="{{ result.lines }}">{{ result.lines }}</span> lines read,
<span id="count-matched" data-count="{{ result.matched }}">{{ result.matched }}</span> matched,
<span id="count-unreadable" data-count="{{ result.unreadable }}" class="{{ 'warn' if result.unreadable else '' }}">{{ result.unreadable }}</span> not JSON (skipped: <code>fedgate audit verify</code> says why).
<a id="evidence-csv" href="{{ csv_url }}">Download the CSV</a> (every matched event, as <code>fedgate audit query --csv</code> writes it).</p>
<h2>Logins per console per day</h2>
<p><small>Allowed and denied events that name a console, by UTC day (sign-outs and events without a console are not logins{% if chart.no_console %}: {{ chart.no_console }} left out{% endif %}).
Consoles as configured; any other console id under "other consoles". At most the latest {{ days }} days{% if chart.outside %}: <span id="chart-outside">{{ chart.outside }}</span> logins on earlier days are not charted (narrow "since"/"until"){% endif %}.</small></p>
{% for c in chart.consoles %}<section class="chart"><h3>{{ c.name }} <small><code>{{ c.key }}</code></small></h3><div class="pair">
<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="allowed and denied logins per day at {{ c.key }}, {{ c.first }} to {{ c.last }}" width="{{ c.width }}" height="{{ c.height }}" viewBox="0 0 {{ c.width }} {{ c.height }}" style="max-width:100%;height:auto">
<line x1="{{ c.left }}" y1="{{ c.base }}" x2="{{ c.width }}" y2="{{ c.base }}" stroke="#888"/>
<text x="{{ c.left - 4 }}" y="{{ c.top + 4 }}" font-size="10" text-anchor="end">{{ c.max }}</text><text x="{{ c.left - 4 }}" y="{{ c.base }}" font-size="10" text-anchor="end">0</text>
{% for b in c.bars %}<rect x="{{ b.x }}" y="{{ b.y }}" width="{{ b.w }}" height="{{ b.h }}" fill="{{ '#2e7d32' if b.allowed else '#c62828' }}"><title>{{ b.day }}: {{ b.n }} {{ 'allowed' if b.allowed else 'denied' }}</title></rect>{% endfor %}
<text x="{{ c.left }}" y="{{ c.height - 4 }}" font-size="10">{{ c.first }}</text>{% if c.last != c.first %}<text x="{{ c.width }}" y="{{ c.height - 4 }}" font-size="10" text-anchor="end">{{ c.last }}</text>{% endif %}
</svg>
<table class="counts" data-console="{{ c.key }}"><tr><th>day (UTC)</th><th><span class="ok">■</span> allowed</th><th><span class="err">■</span> denied</th></tr>
{% for r in c.rows %}<tr data-day="{{ r.day }}" data-allowed="{{ r.allowed }}" data-denied="{{ r.denied }}"><td>{{ r.day }}</td><td>{{ r.allowed }}</td><td>{{ r.denied }}</td></tr>{% endfor %}
<tr class="total" data-allowed="{{ c.allowed }}" data-denied="{{ c.denied }}"><th>total</th><th>{{ c.allowed }}</th><th>{{ c.denied }}</th></tr></table></div></section>
{% else %}<p id="chart-empty">No login to chart.</p>{% endfor %}
<h2>Events</h2>{% if more %}<p id="evidence-more">The newest {{ shown|length }} are shown, newest first: <span data-count="{{ more }}">{{ more }}</span> more matched: <a href="{{ csv_url }}">download the CSV</a>.</p>{% endif %}
<table id="evidence-events"><tr><th>time</th><th>outcome</th><th>code</th><th>tenant</th><th>console</th><th>user</th><th>roles</th><th>reason</th></tr>
{% for e in shown %}<tr><td>{{ e.time }}</td><td class="{{ 'ok' if e.outcome == 'allowed' else 'err' }}">{{ e.outcome }}</td><td><code>{{ e.code }}</code></td><td>{{ e.tenant }}</td><td>{{ e.console or '-' }}</td><td>{{ e.user or '-' }}</td><td>{{ e.roles }}</td><td>{{ e.reason }}</td></tr>
{% else %}<tr><td colspan="8">No event matches.</td></tr>{% endfor %}</table>{% endif %}
{% endblock %}"##;

/// The form's values as given (trimmed, clipped), in [`FIELDS`] order.
struct Params(Vec<(&'static str, String)>);

impl Params {
    fn from(q: &HashMap<String, String>) -> Params {
        Params(
            FIELDS
                .iter()
                .map(|k| {
                    let v = q.get(*k).map(|v| v.trim()).unwrap_or_default();
                    (*k, crate::util::clip(v, 512))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    fn filter(&self) -> Result<Filter, FilterError> {
        let g = |k| self.get(k);
        Filter::from_text(
            g("console"),
            g("tenant"),
            g("user"),
            g("outcome"),
            g("code"),
            g("since"),
            g("until"),
        )
    }

    fn value(&self) -> minijinja::Value {
        self.0
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect::<BTreeMap<&str, String>>()
            .into()
    }

    /// `/admin/evidence.csv` with the given filters.
    fn csv_url(&self) -> String {
        let q: Vec<String> = self
            .0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect();
        if q.is_empty() {
            "/admin/evidence.csv".into()
        } else {
            format!("/admin/evidence.csv?{}", q.join("&"))
        }
    }
}

/// Percent-encoding of a query value: everything but RFC 3986's unreserved.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One matched event as the page shows it.
#[derive(serde::Serialize)]
struct Shown {
    time: String,
    outcome: String,
    code: String,
    tenant: String,
    console: Option<String>,
    user: String,
    roles: String,
    reason: String,
}

impl Shown {
    fn of(e: &Event) -> Shown {
        let c = |s: &str| crate::util::clip(s, FIELD);
        Shown {
            time: c(e.time()),
            outcome: c(e.outcome()),
            code: c(e.code()),
            tenant: c(e.tenant()),
            console: e.console().map(c),
            user: c(e.user()),
            roles: c(&e.roles()),
            reason: c(e.reason()),
        }
    }
}

/// Allowed and denied logins per (console, UTC day), bounded: the
/// configured consoles and one bucket for any other console id (index
/// `consoles.len()`), the latest [`DAYS`] days.
struct Chart {
    consoles: Vec<String>,
    days: BTreeMap<Date, Vec<[u64; 2]>>,
    latest: Option<Date>,
    /// Logins on days before the charted window.
    outside: u64,
    /// Allowed/denied events without a console, and sign-outs.
    no_console: u64,
}

impl Chart {
    fn new(consoles: Vec<String>) -> Chart {
        Chart {
            consoles,
            days: BTreeMap::new(),
            latest: None,
            outside: 0,
            no_console: 0,
        }
    }

    fn first_day(latest: Date) -> Date {
        latest
            .checked_sub(time::Duration::days(DAYS - 1))
            .unwrap_or(Date::MIN)
    }

    fn add(&mut self, e: &Event) {
        let column = match e.outcome() {
            "allowed" => 0,
            "denied" => 1,
            _ => return,
        };
        let console = match e.console() {
            Some(c) if e.code() != "logout" => c,
            _ => {
                self.no_console += 1;
                return;
            }
        };
        let Some(day) = e.day() else {
            return;
        };
        match self.latest {
            Some(latest) if day < Self::first_day(latest) => {
                self.outside += 1;
                return;
            }
            Some(latest) if day <= latest => {}
            _ => {
                self.latest = Some(day);
                let first = Self::first_day(day);
                while let Some(entry) = self.days.first_entry() {
                    if *entry.key() >= first {
                        break;
                    }
                    self.outside += entry.remove().iter().flatten().sum::<u64>();
                }
            }
        }
        let i = self
            .consoles
            .iter()
            .position(|c| c == console)
            .unwrap_or(self.consoles.len());
        let n = self.consoles.len() + 1;
        if let Some(cell) = self
            .days
            .entry(day)
            .or_insert_with(|| vec![[0, 0]; n])
            .get_mut(i)
        {
            cell[column] += 1;
        }
    }

    /// The template's view: one chart (SVG geometry and table rows) per
    /// console with a login, every day of the window on its axis.
    fn view(&self, names: &[String]) -> minijinja::Value {
        const LEFT: u64 = 36;
        const TOP: u64 = 8;
        const PLOT: u64 = 100;
        let (Some((&first, _)), Some(last)) = (self.days.first_key_value(), self.latest) else {
            return context! { consoles => Vec::<minijinja::Value>::new(), outside => self.outside, no_console => self.no_console };
        };
        let mut axis = vec![first];
        while let Some(next) = axis.last().and_then(|d| d.next_day()) {
            if next > last || axis.len() as i64 >= DAYS {
                break;
            }
            axis.push(next);
        }
        // A day's two bars and a gap: wide for a few days, at least 8
        // pixels for a year (the SVG then scales down to the page).
        let group = (360 / axis.len() as u64).clamp(8, 40);
        let bar = (group - 2) / 2;
        // Wide enough for the first and the last day's labels.
        let width = (LEFT + 2 + axis.len() as u64 * group + 8).max(LEFT + 160);
        let mut charts = Vec::new();
        for i in 0..=self.consoles.len() {
            let at = |d: &Date| {
                self.days
                    .get(d)
                    .and_then(|v| v.get(i))
                    .copied()
                    .unwrap_or([0, 0])
            };
            let total = axis
                .iter()
                .map(at)
                .fold([0, 0], |t, c| [t[0] + c[0], t[1] + c[1]]);
            if total == [0, 0] {
                continue;
            }
            let max = axis.iter().flat_map(at).max().unwrap_or(1).max(1);
            let mut bars = Vec::new();
            let mut rows = Vec::new();
            for (n, d) in axis.iter().enumerate() {
                let c = at(d);
                if c != [0, 0] {
                    rows.push(context! { day => d.to_string(), allowed => c[0], denied => c[1] });
                }
                for (k, count) in c.iter().enumerate() {
                    if *count == 0 {
                        continue;
                    }
                    let h = (count * PLOT / max).max(1);
                    bars.push(context! {
                        x => LEFT + 2 + n as u64 * group + k as u64 * bar, y => TOP + PLOT - h, w => bar, h => h,
                        allowed => k == 0, n => count, day => d.to_string(),
                    });
                }
            }
            let (key, name) = match self.consoles.get(i) {
                Some(id) => (
                    id.clone(),
                    names.get(i).cloned().unwrap_or_else(|| id.clone()),
                ),
                None => ("other".to_string(), "Other consoles".to_string()),
            };
            charts.push(context! {
                key => key, name => name, rows => rows, bars => bars, max => max,
                allowed => total[0], denied => total[1],
                first => first.to_string(), last => last.to_string(),
                left => LEFT, top => TOP, base => TOP + PLOT,
                width => width, height => TOP + PLOT + 18,
            });
        }
        context! { consoles => charts, outside => self.outside, no_console => self.no_console }
    }
}

/// What one read of the chain gave.
struct Collected {
    files: Vec<String>,
    counts: Counts,
    /// Newest first.
    shown: Vec<Shown>,
    chart: Chart,
}

fn collect(file: &Path, filter: &Filter, consoles: Vec<String>) -> std::io::Result<Collected> {
    let opened = query::open_chain(file)?;
    let files = names(&opened);
    let mut readers: Vec<_> = opened.into_iter().map(|(_, r)| r).collect();
    let mut shown = VecDeque::with_capacity(SHOWN);
    let mut chart = Chart::new(consoles);
    let counts = query::scan(&mut readers, filter, &mut |e| {
        chart.add(e);
        if shown.len() == SHOWN {
            shown.pop_front();
        }
        shown.push_back(Shown::of(e));
        Ok(())
    })?;
    Ok(Collected {
        files,
        counts,
        shown: shown.into_iter().rev().collect(),
        chart,
    })
}

fn names<R>(opened: &[(std::path::PathBuf, R)]) -> Vec<String> {
    opened
        .iter()
        .map(|(p, _)| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string())
        })
        .collect()
}

/// A stable code and a message for the page.
fn problem(code: &str, message: impl std::fmt::Display) -> minijinja::Value {
    context! { code => code, message => message.to_string() }
}

#[allow(clippy::too_many_arguments)]
fn page(
    app: &App,
    session: &str,
    admin: &crate::identity::Identity,
    params: &Params,
    status: StatusCode,
    error: Option<minijinja::Value>,
    found: Option<Collected>,
) -> Response {
    let consoles: Vec<minijinja::Value> = app
        .config
        .consoles
        .iter()
        .map(|c| context! { id => c.id, name => c.display_name })
        .collect();
    let mut tenants: Vec<&String> = app.tenants.keys().collect();
    tenants.sort();
    let names: Vec<String> = app
        .config
        .consoles
        .iter()
        .map(|c| c.display_name.clone())
        .collect();
    let (files, result, shown, chart, more) = match &found {
        Some(f) => (
            f.files.clone(),
            Some(
                context! { lines => f.counts.lines, matched => f.counts.matched, unreadable => f.counts.unreadable },
            ),
            f.shown.iter().collect::<Vec<_>>(),
            f.chart.view(&names),
            f.counts.matched.saturating_sub(f.shown.len() as u64),
        ),
        None => (vec![], None, vec![], minijinja::Value::UNDEFINED, 0),
    };
    let mut resp = super::render(
        "evidence.html",
        context! {
            title => "evidence", admin => super::who(admin), csrf => super::csrf_of(session),
            p => params.value(), consoles => consoles, tenants => tenants, files => files,
            error => error, result => result, shown => shown, chart => chart, more => more,
            csv_url => params.csv_url(), days => DAYS,
        },
    );
    *resp.status_mut() = status;
    resp
}

fn configured_consoles(app: &App) -> Vec<String> {
    app.config.consoles.iter().map(|c| c.id.clone()).collect()
}

/// What both evidence handlers start from: the admin's session and the
/// filters asked for, so that every refusal is the same page.
struct Asked {
    session: String,
    signed_in: crate::store::Session,
    params: Params,
}

impl Asked {
    /// The signed-in admin's request, its filter and the audit file; or
    /// the page that says why not (the login page, a bad filter, no file).
    async fn read(
        app: &App,
        headers: &HeaderMap,
        q: &HashMap<String, String>,
    ) -> Result<(Asked, Filter, std::path::PathBuf), Response> {
        let Some((session, signed_in)) = super::admin_session(app, headers).await else {
            return Err(super::login_page(app, None, StatusCode::UNAUTHORIZED));
        };
        let asked = Asked {
            session,
            signed_in,
            params: Params::from(q),
        };
        let filter = match asked.params.filter() {
            Ok(f) => f,
            Err(e) => return Err(asked.fail(app, StatusCode::BAD_REQUEST, e.code(), e)),
        };
        let Some(file) = app.config.audit.file.clone() else {
            return Err(asked.fail(
                app,
                StatusCode::NOT_FOUND,
                "admin.evidence_no_audit_file",
                "no audit.file is configured: fedgate writes its decisions to the log only",
            ));
        };
        Ok((asked, filter, file))
    }

    fn page(
        &self,
        app: &App,
        status: StatusCode,
        error: Option<minijinja::Value>,
        found: Option<Collected>,
    ) -> Response {
        page(
            app,
            &self.session,
            &self.signed_in.identity,
            &self.params,
            status,
            error,
            found,
        )
    }

    fn fail(
        &self,
        app: &App,
        status: StatusCode,
        code: &str,
        message: impl std::fmt::Display,
    ) -> Response {
        self.page(app, status, Some(problem(code, message)), None)
    }

    /// The audit files could not be read (`what` failed).
    fn unreadable(&self, app: &App, what: &str, e: impl std::fmt::Display) -> Response {
        self.fail(
            app,
            StatusCode::INTERNAL_SERVER_ERROR,
            "admin.evidence_unreadable",
            format!("{what} the audit files: {e}"),
        )
    }
}

/// `GET /admin/evidence?console=…&tenant=…&user=…&outcome=…&code=…&since=…&until=…`.
pub async fn evidence(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (asked, filter, file) = match Asked::read(&app, &headers, &q).await {
        Ok(a) => a,
        Err(page) => return page,
    };
    let consoles = configured_consoles(&app);
    match tokio::task::spawn_blocking(move || collect(&file, &filter, consoles)).await {
        Ok(Ok(found)) => asked.page(&app, StatusCode::OK, None, Some(found)),
        Ok(Err(e)) => asked.unreadable(&app, "reading", e),
        Err(e) => asked.unreadable(&app, "reading", e),
    }
}

/// The CSV body as it is made: chunks of [`CHUNK`] bytes through a queue
/// of [`QUEUE`], so a slow client holds back the reading (bounded memory);
/// a client gone stops it.
struct Chunks {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for Chunks {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

/// `GET /admin/evidence.csv?…` (the same filters): what
/// `fedgate audit query --csv` writes for the same files and filters.
pub async fn evidence_csv(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (asked, filter, file) = match Asked::read(&app, &headers, &q).await {
        Ok(a) => a,
        Err(page) => return page,
    };
    // Opened before the answer starts, so that a failure is a page, not a
    // cut download.
    let opened = match tokio::task::spawn_blocking(move || query::open_chain(&file)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return asked.unreadable(&app, "opening", e),
        Err(e) => return asked.unreadable(&app, "opening", e),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut readers: Vec<_> = opened.into_iter().map(|(_, r)| r).collect();
        let mut out = Chunks {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let done = query::run(&mut readers, &filter, Format::Csv, &mut out).and_then(|counts| {
            out.flush()?;
            Ok(counts)
        });
        match done {
            Ok(counts) => tracing::debug!(
                lines = counts.lines,
                matched = counts.matched,
                "evidence CSV sent"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                tracing::warn!("evidence CSV cut short: {e}");
                // The download ends in an error, not in a short file that
                // looks whole.
                let _ = out.tx.blocking_send(Err(e));
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let stamp = app
        .now()
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let mut resp = super::secure(body.into_response());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"fedgate-evidence-{stamp}.csv\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str, each: &mut dyn FnMut(&Event)) {
        let mut inputs = [std::io::Cursor::new(text.as_bytes())];
        query::scan(&mut inputs, &Filter::default(), &mut |e| {
            each(e);
            Ok(())
        })
        .unwrap();
    }

    fn line(day: &str, console: &str, outcome: &str) -> String {
        format!("{{\"time\":\"{day}T10:00:00Z\",\"outcome\":\"{outcome}\",\"code\":\"ok\",\"tenant\":\"t\",\"console\":\"{console}\"}}\n")
    }

    #[test]
    fn the_chart_counts_per_console_and_day_within_bounds() {
        let mut chart = Chart::new(vec!["vault".into()]);
        let mut text = String::new();
        text.push_str(&line("2024-12-01", "vault", "allowed"));
        text.push_str(&line("2026-01-01", "vault", "allowed"));
        text.push_str(&line("2026-01-01", "vault", "denied"));
        text.push_str(&line("2026-01-01", "<made-up>", "denied"));
        text.push_str(&line("2026-01-03", "vault", "step_up"));
        text.push_str("{\"time\":\"2026-01-03T10:00:00Z\",\"outcome\":\"allowed\",\"code\":\"logout\",\"console\":\"vault\"}\n");
        text.push_str(
            "{\"time\":\"2026-01-03T10:00:00Z\",\"outcome\":\"allowed\",\"code\":\"ok\"}\n",
        );
        // Older than the window once 2026 is seen.
        text.push_str(&line("2024-12-02", "vault", "allowed"));
        event(&text, &mut |e| chart.add(e));
        assert_eq!(chart.outside, 2, "2024-12-01 dropped, 2024-12-02 refused");
        assert_eq!(chart.no_console, 2);
        let day = time::macros::date!(2026 - 01 - 01);
        assert_eq!(chart.days.get(&day), Some(&vec![[1, 1], [0, 1]]));
        assert_eq!(chart.days.len(), 1);
        let v = chart.view(&["Vault".into()]);
        let consoles = v.get_attr("consoles").unwrap();
        assert_eq!(consoles.len(), Some(2), "vault and other");
    }

    #[test]
    fn the_window_is_at_most_a_year_of_days() {
        let mut chart = Chart::new(vec![]);
        let mut text = String::new();
        let mut d = time::macros::date!(2025 - 01 - 01);
        for _ in 0..400 {
            text.push_str(&line(&d.to_string(), "x", "allowed"));
            d = d.next_day().unwrap();
        }
        event(&text, &mut |e| chart.add(e));
        assert_eq!(chart.days.len() as i64, DAYS);
        assert_eq!(chart.outside, 400 - DAYS as u64);
    }

    #[test]
    fn the_csv_goes_out_in_bounded_chunks_and_stops_when_the_client_goes() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUE);
        let writer = std::thread::spawn(move || {
            let mut out = Chunks {
                tx,
                buf: Vec::new(),
            };
            let line = [b'x'; 1000];
            for _ in 0..200 {
                out.write_all(&line)?;
            }
            out.flush()
        });
        let mut sizes = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            sizes.push(chunk.unwrap().len());
        }
        writer.join().unwrap().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 200_000);
        assert!(sizes.len() >= 3, "{sizes:?}");
        assert!(sizes.iter().all(|s| *s < CHUNK + 1000), "{sizes:?}");

        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        drop(rx);
        let mut out = Chunks {
            tx,
            buf: Vec::new(),
        };
        let gone = out.write_all(&vec![b'x'; CHUNK]).unwrap_err();
        assert_eq!(gone.kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn the_csv_link_carries_the_filters_encoded() {
        let q: HashMap<String, String> = [
            ("user".to_string(), "a b&c=d@x".to_string()),
            ("since".to_string(), " 2026-12-01 ".to_string()),
            ("other".to_string(), "ignored".to_string()),
        ]
        .into();
        let p = Params::from(&q);
        assert_eq!(
            p.csv_url(),
            "/admin/evidence.csv?user=a%20b%26c%3Dd%40x&since=2026-12-01"
        );
        assert!(p.filter().unwrap().since.is_some());
        assert_eq!(
            Params::from(&HashMap::new()).csv_url(),
            "/admin/evidence.csv"
        );
    }
}
