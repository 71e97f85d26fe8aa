//! The admin page (`/admin`): a dashboard of tenants, consoles and the last
//! decisions; a "test" tab that decodes, verifies and explains a pasted
//! SAMLResponse, token or metadata document; a launcher for the consoles the
//! signed-in admin may reach; the Evidence tab (`evidence`): the audit
//! trail filtered as `fedgate audit query` filters it, as a table, a CSV
//! download and a chart of logins per console per day.
//!
//! - Access: a fedgate session whose Identity is an admin (`[admin]`:
//!   a user of `tenant` with one of `groups` or `app_roles`, signed in by
//!   SSO at `/admin/sso`), or — for first setup — the local token in
//!   `FEDGATE_ADMIN_TOKEN` (at least 16 characters; without it, token login
//!   is off).
//! - Server-rendered (minijinja, autoescaped), no external assets, no
//!   JavaScript. A strict Content-Security-Policy, no framing, no caching.
//! - CSRF: every form carries a token. Signed in, it is derived from the
//!   session id (which scripts cannot read: HttpOnly); the login form uses a
//!   double-submit cookie (SameSite=Strict). A POST without the right token
//!   is refused (403, `admin.csrf`).
//! - No secret is ever rendered: no key, no client secret, no token of
//!   fedgate's; what an admin pastes is shown back decoded, never logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment};
use time::{Duration, OffsetDateTime};

use super::cookie;
use crate::gateway::{App, Outcome};
use crate::identity::{ErrorCode, Identity};
use crate::store::{AdminRight, Session};
use crate::util::random_id;

mod evidence;
pub use evidence::{evidence, evidence_csv};

const SESSION_COOKIE: &str = "fedgate_session";
const CSRF_COOKIE: &str = "fedgate_csrf";

const LAYOUT: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fedgate admin{% if title %} · {{ title }}{% endif %}</title>
<style>body{font-family:system-ui,sans-serif;margin:0;color:#222}header{background:#1f3a5f;color:#fff;padding:.6em 1.2em}header a{color:#fff;margin-right:1em}
main{max-width:70em;margin:1em auto;padding:0 1em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;font-size:.92em;vertical-align:top}
.ok{color:#176b2c}.warn{color:#9a5b00}.err{color:#a11}code{background:#f3f3f3;padding:.1em .3em}textarea{width:100%;height:12em;font-family:monospace}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:30em}form.inline{display:inline}
form.filters label{display:inline-block;margin:0 .8em .4em 0}.pair{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}table.counts{width:auto}</style></head><body>
<header><strong>fedgate</strong> &nbsp; {% if admin %}<a href="/admin">Dashboard</a><a href="/admin/test">Test</a><a href="/admin/evidence">Evidence</a>
<form class="inline" method="post" action="/admin/logout"><input type="hidden" name="csrf" value="{{ csrf }}"><button>Sign out ({{ admin }})</button></form>{% endif %}</header>
<main>{% block body %}{% endblock %}</main></body></html>"#;

const LOGIN: &str = r#"{% extends "layout.html" %}{% block body %}<h1>Sign in to the admin page</h1>
{% if error %}<p class="err">{{ error }}</p>{% endif %}
{% if sso %}<p><a href="/admin/sso">Sign in with your organisation ({{ sso }})</a></p>{% endif %}
{% if token_login %}<form method="post" action="/admin/login"><input type="hidden" name="csrf" value="{{ csrf }}">
<p><label>Local admin token (first setup: <code>FEDGATE_ADMIN_TOKEN</code>)<br><input type="password" name="token" autocomplete="off" size="40"></label></p>
<p><button>Sign in</button></p></form>{% else %}<p>Token sign-in is off (no <code>FEDGATE_ADMIN_TOKEN</code> of at least 16 characters).</p>{% endif %}
{% endblock %}"#;

const DASHBOARD: &str = r#"{% extends "layout.html" %}{% block body %}<h1>Dashboard</h1>
<p>Configuration {% if config %}<code>{{ config }}</code> in force (<code>fedgate config history</code> lists every version applied){% else %}not versioned (not started from a file){% endif %}.</p>
<h2>Tenants</h2><table><tr><th>tenant</th><th>sign-in</th><th>metadata</th><th>signing certificates (days left)</th></tr>
{% for t in tenants %}<tr><td>{{ t.id }}<br><small>{{ t.entra_tenant_id }}</small></td><td>{{ t.signin }}</td><td>{{ t.metadata }}</td>
<td>{% for c in t.certs %}<code>{{ c.thumb }}</code> <span class="{{ c.class }}">{{ c.days }} d</span><br>{% endfor %}</td></tr>{% endfor %}</table>
<h2>Consoles</h2><table><tr><th>console</th><th>kind</th><th>delivery</th><th>rules</th></tr>
{% for c in consoles %}<tr><td>{{ c.name }}<br><small>{{ c.id }}</small></td><td>{{ c.kind }}</td><td>{{ c.delivery }}</td><td>{{ c.rules }}</td></tr>{% endfor %}</table>
{% if launch %}<h2>Your consoles</h2><ul>{% for c in launch %}<li><a href="/launch/{{ c.id }}">{{ c.name }}</a></li>{% endfor %}</ul>{% endif %}
<h2>Expiring credentials</h2><table><tr><th>owner</th><th>kind</th><th>thumbprint</th><th>days left</th></tr>
{% for e in expiries %}<tr><td>{{ e.owner }}</td><td>{{ e.kind }}</td><td><code>{{ e.thumb }}</code></td><td class="{{ e.class }}">{{ e.days }}</td></tr>{% endfor %}</table>
<h2>Last decisions</h2><table><tr><th>time</th><th>outcome</th><th>code</th><th>tenant</th><th>console</th><th>subject</th><th>reason</th></tr>
{% for d in decisions %}<tr><td>{{ d.time }}</td><td class="{{ 'ok' if d.outcome == 'allowed' else 'err' }}">{{ d.outcome }}</td><td><code>{{ d.code }}</code></td><td>{{ d.tenant }}</td><td>{{ d.console or '-' }}</td><td>{{ d.subject or '-' }}</td><td>{{ d.reason }}</td></tr>
{% else %}<tr><td colspan="7">No decision yet.</td></tr>{% endfor %}</table>{% endblock %}"#;

const TEST: &str = r#"{% extends "layout.html" %}{% block body %}<h1>Test</h1>
<form method="post" action="/admin/test"><input type="hidden" name="csrf" value="{{ csrf }}">
<p><label>What <select name="kind">{% for k in kinds %}<option value="{{ k }}"{% if k == kind %} selected{% endif %}>{{ k }}</option>{% endfor %}</select></label>
<label>Tenant <select name="tenant">{% for t in tenants %}<option{% if t == tenant %} selected{% endif %}>{{ t }}</option>{% endfor %}</select></label>
<label>Console <select name="console">{% for c in consoles %}<option{% if c == console %} selected{% endif %}>{{ c }}</option>{% endfor %}</select></label></p>
<p><textarea name="input" placeholder="Paste a SAMLResponse (base64 or XML), an access token, or a metadata document">{{ input }}</textarea></p>
<p><button>Test</button></p></form>
{% if result %}<h2>Verdict: <span class="{{ 'ok' if result.ok else 'err' }}">{{ result.verdict }}</span></h2>
{% if result.code %}<p>Code: <code id="verdict-code">{{ result.code }}</code> — {{ result.message }}</p>{% endif %}
{% if result.rules %}<h3>Rules</h3><table><tr><th>rule</th><th>matched</th><th>why</th></tr>{% for r in result.rules %}<tr><td>{{ r.rule }}</td><td>{{ 'yes' if r.matched else 'no' }}</td><td>{{ r.reason }}</td></tr>{% endfor %}</table>{% endif %}
{% if result.grants %}<p>Granted: {% for g in result.grants %}<code>{{ g.role }} @ {{ g.scope }}</code> {% endfor %}</p>{% endif %}
{% if result.decoded %}<h3>Decoded</h3><pre>{{ result.decoded }}</pre>{% endif %}{% endif %}
{% endblock %}"#;

fn env() -> Environment<'static> {
    let mut e = Environment::new();
    // Templates are compiled in; a failure here is a programming error that
    // the tests catch, and the page then says so instead of panicking.
    for (name, src) in [
        ("layout.html", LAYOUT),
        ("login.html", LOGIN),
        ("dashboard.html", DASHBOARD),
        ("test.html", TEST),
        ("evidence.html", evidence::PAGE),
    ] {
        if let Err(err) = e.add_template(name, src) {
            tracing::error!(template = name, error = %err, "admin template does not compile");
        }
    }
    e
}

fn render(name: &str, ctx: minijinja::Value) -> Response {
    let page = env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| format!("admin page error: {e}"));
    secure(Html(page).into_response())
}

/// Headers every admin response carries.
fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (k, v) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

fn sha256_hex(s: &str) -> String {
    crate::util::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref())
}

/// Equal, in time independent of where they differ (digests compared).
fn same(a: &str, b: &str) -> bool {
    #[allow(deprecated)]
    let eq = aws_lc_rs::constant_time::verify_slices_are_equal(
        sha256_hex(a).as_bytes(),
        sha256_hex(b).as_bytes(),
    )
    .is_ok();
    eq && !a.is_empty()
}

/// The CSRF token of a session.
fn csrf_of(session: &str) -> String {
    sha256_hex(&format!("fedgate-admin-csrf\u{0}{session}"))[..32].to_string()
}

fn secure_cookie(app: &App) -> &'static str {
    if app.config.server.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// Whether this session may use the admin page: from its typed fields and
/// the `[admin]` rule only (checked again now, so a changed rule counts),
/// never from an attribute the IdP sent.
pub fn is_admin(app: &App, session: &Session) -> bool {
    match (session.admin, session.tenant.as_deref()) {
        (AdminRight::LocalToken, _) => true,
        (AdminRight::Rule, Some(tenant)) => {
            crate::policy::admin::by_rule(&app.config.admin, tenant, &session.identity)
        }
        _ => false,
    }
}

/// The signed-in admin: (session id, session).
async fn admin_session(app: &App, headers: &HeaderMap) -> Option<(String, Session)> {
    let s = cookie(headers, SESSION_COOKIE)?;
    let found = app.open_session(&s, app.now()).await.ok()??.session;
    is_admin(app, &found).then_some((s, found))
}

fn admin_token() -> Option<String> {
    std::env::var("FEDGATE_ADMIN_TOKEN")
        .ok()
        .filter(|t| t.len() >= 16)
}

fn login_page(app: &App, error: Option<&str>, status: StatusCode) -> Response {
    let Some(csrf) = random_id() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "rng").into_response();
    };
    let mut resp = render(
        "login.html",
        context! {
            title => "sign in",
            csrf => csrf,
            error => error,
            sso => app.config.admin.tenant.clone(),
            token_login => admin_token().is_some(),
        },
    );
    *resp.status_mut() = status;
    if let Ok(v) = format!(
        "{CSRF_COOKIE}={csrf}; Path=/admin; HttpOnly; SameSite=Strict{}",
        secure_cookie(app)
    )
    .parse()
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /admin`.
pub async fn dashboard(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((session, signed_in)) = admin_session(&app, &headers).await else {
        return login_page(&app, None, StatusCode::OK);
    };
    let id = &signed_in.identity;
    let now = app.now();
    let tenants: Vec<minijinja::Value> = {
        let mut ids: Vec<&String> = app.tenants.keys().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|tid| app.tenants.get(tid).map(|rt| (tid, rt)))
            .map(|(tid, rt)| {
                let (metadata, certs) = match rt.idp.as_ref() {
                    None => ("none (OIDC only)".to_string(), vec![]),
                    Some(t) => {
                        let st = t.status();
                        let failed = if st.consecutive_failures > 0 { format!("; {} failed refreshes since", st.consecutive_failures) } else { String::new() };
                        let age = match (t.url(), st.last_success, t.confirmed_at()) {
                            (None, _, _) => "file".to_string(),
                            (Some(_), Some(ok), _) => format!("fetched {}{failed}", crate::inbound::saml::decode::relative(ok - now)),
                            (Some(_), None, Some(saved)) => format!("last-known-good copy, confirmed by the IdP {}; not fetched since the start{failed}", crate::inbound::saml::decode::relative(saved - now)),
                            (Some(_), None, None) => "never fetched".to_string(),
                        };
                        let certs = t
                            .current()
                            .map(|m| {
                                m.signing_certs
                                    .iter()
                                    .map(|c| {
                                        let d = c.days_left(now);
                                        context! { thumb => c.thumbprint_sha256[..16].to_string(), days => d, class => class(d) }
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        (age, certs)
                    }
                };
                let signin = match (rt.idp.is_some(), rt.login.is_some()) {
                    (true, true) => "SAML, OIDC",
                    (true, false) => "SAML",
                    (false, true) => "OIDC",
                    (false, false) => "tokens only",
                };
                context! { id => tid, entra_tenant_id => rt.config.entra_tenant_id, signin => signin, metadata => metadata, certs => certs }
            })
            .collect()
    };
    let consoles: Vec<minijinja::Value> = app
        .config
        .consoles
        .iter()
        .map(|c| {
            let rules = app
                .config
                .rules
                .iter()
                .filter(|r| r.console == c.id)
                .count();
            context! {
                id => c.id, name => c.display_name, kind => crate::consoles::profile(c.kind).label,
                delivery => if c.oidc.is_some() { "OpenID Connect (fedgate is the provider)" } else { "SAML POST" },
                rules => rules,
            }
        })
        .collect();
    let launch: Vec<minijinja::Value> =
        match signed_in.tenant.as_deref().and_then(|t| app.tenants.get(t)) {
            Some(rt) => app
                .config
                .consoles
                .iter()
                .filter(|c| crate::gateway::decide(&app, rt, id, c, now).allowed())
                .map(|c| context! { id => c.id, name => c.display_name })
                .collect(),
            None => vec![],
        };
    let mut expiries = app.expiries();
    expiries.sort_by_key(|e| e.not_after);
    let expiries: Vec<minijinja::Value> = expiries
        .iter()
        .take(15)
        .map(|e| {
            let d = (e.not_after - now).whole_days();
            context! { owner => format!("{} {}", e.owner_kind, e.owner), kind => e.kind, thumb => e.thumbprint.chars().take(16).collect::<String>(), days => d, class => class(d) }
        })
        .collect();
    let decisions = app.audit.recent();
    render(
        "dashboard.html",
        context! {
            title => "dashboard", admin => who(id), csrf => csrf_of(&session),
            config => app.config_version.as_deref().map(crate::config::history::short),
            tenants => tenants, consoles => consoles, launch => launch, expiries => expiries, decisions => decisions,
        },
    )
}

/// How the signed-in admin is named on the page.
fn who(id: &Identity) -> String {
    id.upn
        .clone()
        .or_else(|| id.email.clone())
        .or_else(|| id.display_name.clone())
        .unwrap_or_else(|| id.subject.clone())
}

fn class(days: i64) -> &'static str {
    match days {
        d if d < 0 => "err",
        d if d < 30 => "warn",
        _ => "ok",
    }
}

/// `POST /admin/login`: the local admin token.
pub async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let posted = form.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = cookie(&headers, CSRF_COOKIE).unwrap_or_default();
    if !same(posted, &expected) {
        return csrf_refused();
    }
    let now = app.now();
    let mut event = crate::audit::AuditEvent::new(now, "-", "admin", Some(peer.ip().to_string()));
    // Throttled before the token is compared: 5 tries a minute per client.
    if let Err(retry_after) = app.admin_throttle.attempt(peer.ip(), now) {
        event.outcome = "denied";
        event.code = "admin.throttled".into();
        event.reason =
            format!("too many local admin token tries from this client; retry in {retry_after} s");
        app.record_audit(&event);
        // The audit event is the record (itself written at most 10 a second).
        tracing::debug!(client = %peer.ip(), retry_after, "local admin token tries throttled");
        let mut resp = login_page(
            &app,
            Some(&format!(
                "Too many tries: wait {retry_after} seconds and try again (admin.throttled)."
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(v) = retry_after.to_string().parse() {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let given = form.get("token").map(String::as_str).unwrap_or_default();
    let ok = admin_token().is_some_and(|t| same(given, &t));
    if !ok {
        event.outcome = "denied";
        event.code = "admin.token_invalid".into();
        event.reason = "wrong or missing local admin token".into();
        app.record_audit(&event);
        return login_page(
            &app,
            Some("That is not the admin token (admin.token_invalid)."),
            StatusCode::FORBIDDEN,
        );
    }
    let local = Session::new(None, AdminRight::LocalToken, local_admin_identity(now));
    let session = match app.new_session(local, now + Duration::hours(8)).await {
        Ok(cookie) => cookie,
        Err(crate::gateway::session::NewSessionError::Rng) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "rng").into_response();
        }
        Err(crate::gateway::session::NewSessionError::Store(e)) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store.unavailable: {e}"),
            )
                .into_response();
        }
    };
    event.outcome = "allowed";
    event.code = "ok".into();
    event.reason = "admin signed in with the local token".into();
    event.subject = Some("local admin".into());
    app.record_audit(&event);
    let mut resp = secure((StatusCode::SEE_OTHER, [(header::LOCATION, "/admin")]).into_response());
    if let Ok(v) = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax{}",
        secure_cookie(&app)
    )
    .parse()
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn local_admin_identity(now: OffsetDateTime) -> Identity {
    Identity {
        subject: "local admin".into(),
        subject_format: None,
        issuer: "fedgate".into(),
        tenant_id: None,
        object_id: None,
        kind: crate::identity::PrincipalKind::User,
        source: crate::identity::Source::Jwt,
        upn: None,
        email: None,
        display_name: Some("local admin".into()),
        groups: vec![],
        groups_overage: false,
        groups_link: None,
        groups_source: Default::default(),
        roles: vec![],
        auth_methods: vec![],
        mfa: false,
        auth_time: Some(now),
        expires_at: now + Duration::hours(8),
        token_id: None,
        idp_session: None,
        app_id: None,
        verification: Default::default(),
        attributes: Default::default(),
    }
}

fn csrf_refused() -> Response {
    secure(
        (
            StatusCode::FORBIDDEN,
            Html("<!doctype html><title>Refused</title><p>Refused: <code>admin.csrf</code> — the form's anti-forgery token is missing or wrong. Reload the page and try again.</p>"),
        )
            .into_response(),
    )
}

/// `GET /admin/sso`: sign in at the admin tenant, come back to /admin.
pub async fn sso(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let Some(tenant) = app.config.admin.tenant.clone() else {
        return login_page(
            &app,
            Some("No [admin] tenant is configured for SSO."),
            StatusCode::NOT_FOUND,
        );
    };
    let client = Some(peer.ip().to_string());
    let outcome = match app.tenants.get(&tenant) {
        Some(rt) if rt.login.is_some() => {
            crate::gateway::oidc_login(&app, &tenant, "admin", None, client).await
        }
        _ => crate::gateway::saml_login(&app, &tenant, "admin", None, client).await,
    };
    match outcome {
        Outcome::Redirect { location, .. } => {
            secure((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
        }
        // The redirect to the tenant, with the login's browser binding.
        o @ Outcome::StartLogin { .. } => secure(super::render(&app, o)),
        Outcome::Refused(r) => login_page(
            &app,
            Some(&format!("{}: {}", r.code, r.message)),
            StatusCode::BAD_GATEWAY,
        ),
        _ => login_page(&app, Some("unexpected"), StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// `POST /admin/logout`.
pub async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some((session, _)) = admin_session(&app, &headers).await else {
        return secure((StatusCode::SEE_OTHER, [(header::LOCATION, "/admin")]).into_response());
    };
    if !same(
        form.get("csrf").map(String::as_str).unwrap_or_default(),
        &csrf_of(&session),
    ) {
        return csrf_refused();
    }
    if let Some((id, _)) = crate::store::split_cookie(&session) {
        let _ = app.store.delete_session(id).await;
    }
    let mut resp = secure((StatusCode::SEE_OTHER, [(header::LOCATION, "/admin")]).into_response());
    if let Ok(v) = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /admin/test` and `POST /admin/test`.
pub async fn test_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((session, signed_in)) = admin_session(&app, &headers).await else {
        return login_page(&app, None, StatusCode::UNAUTHORIZED);
    };
    test_render(
        &app,
        &session,
        &signed_in.identity,
        "saml",
        "",
        "",
        "",
        None,
    )
}

#[allow(clippy::too_many_arguments)]
fn test_render(
    app: &App,
    session: &str,
    id: &Identity,
    kind: &str,
    tenant: &str,
    console: &str,
    input: &str,
    result: Option<minijinja::Value>,
) -> Response {
    let mut tenants: Vec<&String> = app.tenants.keys().collect();
    tenants.sort();
    let consoles: Vec<&String> = app.config.consoles.iter().map(|c| &c.id).collect();
    render(
        "test.html",
        context! {
            title => "test", admin => who(id), csrf => csrf_of(session),
            kinds => ["saml", "token", "metadata"], kind => kind, tenant => tenant, console => console,
            tenants => tenants, consoles => consoles, input => input, result => result,
        },
    )
}

pub async fn test_submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some((session, signed_in)) = admin_session(&app, &headers).await else {
        return login_page(&app, None, StatusCode::UNAUTHORIZED);
    };
    let id = &signed_in.identity;
    if !same(
        form.get("csrf").map(String::as_str).unwrap_or_default(),
        &csrf_of(&session),
    ) {
        return csrf_refused();
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let (kind, tenant, console, input) = (get("kind"), get("tenant"), get("console"), get("input"));
    let result = evaluate(&app, kind, tenant, console, input.trim()).await;
    test_render(
        &app,
        &session,
        id,
        kind,
        tenant,
        console,
        input,
        Some(result),
    )
}

/// The verdict, the code and the explanation of one pasted thing.
async fn evaluate(
    app: &App,
    kind: &str,
    tenant: &str,
    console: &str,
    input: &str,
) -> minijinja::Value {
    let now = app.now();
    let fail = |code: &str, message: String, decoded: Option<String>| {
        context! { ok => false, verdict => "refused", code => code, message => message, decoded => decoded }
    };
    if kind == "metadata" {
        return match crate::trust::metadata::IdpMetadata::parse(input.as_bytes()) {
            Err(e) => fail(e.code(), e.to_string(), None),
            Ok(md) => {
                let mut text = format!("entity id: {}\n", md.entity_id);
                for c in &md.signing_certs {
                    text.push_str(&format!(
                        "signing certificate {} ({}, {} days left{})\n",
                        c.thumbprint_sha256,
                        c.subject,
                        c.days_left(now),
                        if c.is_expired(now) { ", EXPIRED" } else { "" }
                    ));
                }
                for e in &md.sso_endpoints {
                    text.push_str(&format!("SSO {} {}\n", e.binding, e.location));
                }
                context! { ok => true, verdict => "usable IdP metadata", decoded => text }
            }
        };
    }
    let Some(rt) = app.tenants.get(tenant) else {
        return fail(
            "tenant.unknown",
            format!(
                "no tenant {:?}",
                crate::util::clip(tenant, crate::audit::CLIP)
            ),
            None,
        );
    };
    let identity = match kind {
        "saml" => {
            let Some(idp) = rt.idp.as_ref().and_then(|t| t.current()) else {
                let decoded = crate::inbound::saml::decode::report(input.as_bytes(), now).ok();
                return fail(
                    "tenant.saml_not_configured",
                    "this tenant has no SAML metadata".into(),
                    decoded,
                );
            };
            // Decoding and verifying on the CPU pool, like a login.
            let (bytes, settings) = (input.as_bytes().to_vec(), rt.settings.clone());
            let done = app
                .cpu
                .admit(move || {
                    let decoded = crate::inbound::saml::decode::report(&bytes, now).ok();
                    (
                        crate::inbound::saml::verify(&bytes, &idp, &settings, now),
                        decoded,
                    )
                })
                .await;
            match done {
                Ok((Ok(id), decoded)) => (id, decoded),
                Ok((Err(e), decoded)) => return fail(e.code(), e.to_string(), decoded),
                Err(e) => return fail(e.code(), e.to_string(), None),
            }
        }
        "token" => {
            let (Some(trust), Some(policy)) = (rt.provider.as_ref(), rt.token_policy.as_ref())
            else {
                return fail(
                    "tenant.oidc_not_configured",
                    "this tenant accepts no access tokens ([tenants.oidc] audiences)".into(),
                    None,
                );
            };
            match crate::trust::oidc::verify_token(trust, input, policy, now, Some(&app.cpu)).await
            {
                Ok(id) => (id, None),
                Err(e) => return fail(e.code(), e.to_string(), None),
            }
        }
        other => {
            return fail(
                "admin.kind_unknown",
                format!("{other:?} is not saml, token or metadata"),
                None,
            )
        }
    };
    let (identity, decoded) = identity;
    let summary = format!(
        "subject {}\ntenant {:?} object {:?}\ngroups {:?}{}\nroles {:?}\nmfa {}",
        identity.subject,
        identity.tenant_id,
        identity.object_id,
        identity.groups,
        if identity.groups_overage {
            " (overage: resolved through Graph at login)"
        } else {
            ""
        },
        identity.roles,
        identity.mfa
    );
    let decoded = Some(match decoded {
        Some(d) => format!("{summary}\n\n{d}"),
        None => summary,
    });
    let Some(c) = app.console(console) else {
        return context! { ok => true, verdict => "verified", decoded => decoded };
    };
    let decision = crate::gateway::decide(app, rt, &identity, c, now);
    let rules: Vec<minijinja::Value> = decision
        .rules
        .iter()
        .map(|r| context! { rule => r.rule, matched => r.matched, reason => r.reason })
        .collect();
    let grants: Vec<minijinja::Value> = decision
        .grants
        .iter()
        .map(|g| context! { role => g.role, scope => g.scope })
        .collect();
    match &decision.denial {
        Some(d) if !decision.allowed() => context! {
            ok => false, verdict => "verified, but denied by policy", code => d.code, message => d.message,
            rules => rules, decoded => decoded,
        },
        _ => {
            context! { ok => true, verdict => "verified and allowed", code => "ok", message => format!("console {console}"), rules => rules, grants => grants, decoded => decoded }
        }
    }
}
