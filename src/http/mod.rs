//! The axum router and thin handlers: parse the request, call one function
//! of `gateway`, render the answer. Error pages carry the stable code, what
//! it means and what the admin should check.

pub mod admin;
mod first_head;
pub mod pages;
pub mod server;
pub mod slo;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::gateway::{self, App, Live, Outcome};

const SESSION_COOKIE: &str = "fedgate_session";
use crate::gateway::login_state::BINDING_COOKIE;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/saml/{tenant}/acs", post(acs))
        .route("/saml/{tenant}/metadata", get(sp_metadata))
        .route("/idp/metadata", get(idp_metadata))
        .route("/launch/{console}", get(launch))
        .route("/idp/sso", get(idp_sso_redirect).post(idp_sso_post))
        .route("/idp/sso/realm", get(idp_sso_realm))
        .route("/idp/slo", get(slo::idp_redirect).post(slo::idp_post))
        .route(
            "/saml/{tenant}/slo",
            get(slo::tenant_redirect).post(slo::tenant_post),
        )
        .route("/oidc/{tenant}/signed-out", get(slo::oidc_signed_out))
        .route("/idp/sso/resume", get(idp_sso_resume))
        .route("/oidc/{tenant}/login", get(oidc_login))
        .route("/saml/{tenant}/login", get(saml_login))
        .route("/oidc/{tenant}/callback", get(oidc_callback))
        .route("/oauth2/token", post(token))
        .route("/oauth2/authorize", get(authorize))
        .route("/oauth2/authorize/resume", get(authorize_resume))
        .route("/oauth2/userinfo", get(userinfo).post(userinfo))
        .route("/oauth2/logout", get(end_session))
        .route("/logout", get(logout))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/oauth2/jwks", get(jwks))
        .route("/admin", get(admin::dashboard))
        .route("/admin/login", post(admin::login))
        .route("/admin/logout", post(admin::logout))
        .route("/admin/sso", get(admin::sso))
        .route(
            "/admin/test",
            get(admin::test_page).post(admin::test_submit),
        )
        .route("/admin/evidence", get(admin::evidence))
        .route("/admin/evidence.csv", get(admin::evidence_csv))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            client_address,
        ))
        .with_state(app)
}

/// Every handler's `ConnectInfo` is the client as fedgate trusts it: the TCP
/// peer, or — only when the peer is one of `server.trusted_proxies` — the
/// address that proxy put in `X-Forwarded-For` (see [`crate::net::client_ip`]).
/// The audit `client` field and the admin token throttle read it.
async fn client_address(
    State(app): State<Arc<App>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let trusted = app.config.server.trusted_proxies();
    if !trusted.is_empty() {
        if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
        {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect::<Vec<_>>();
            let ip =
                crate::net::client_ip(peer.ip(), forwarded.iter().map(String::as_str), &trusted);
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
        }
    }
    next.run(req).await
}

/// Serve plain HTTP until `shutdown` resolves, then drain (see [`server`]
/// for the timeouts and the connection cap, all from `[server]`).
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run(Arc::new(Live::fixed(app)), listener, None, shutdown).await
}

/// Serve the App `live` holds (swapped by configuration reloads), over TLS
/// when `tls` is given, until `shutdown` resolves, then drain.
pub async fn serve_live(
    live: Arc<Live>,
    listener: std::net::TcpListener,
    tls: Option<&crate::trust::tls::TlsCredentials>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    server::run(live, listener, tls.map(|t| t.config.clone()), shutdown).await
}

/// Serve HTTPS (rustls on aws-lc-rs) until `shutdown` resolves, then drain.
pub async fn serve_tls(
    app: Arc<App>,
    listener: std::net::TcpListener,
    tls: &crate::trust::tls::TlsCredentials,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    server::run(
        Arc::new(Live::fixed(app)),
        listener,
        Some(tls.config.clone()),
        shutdown,
    )
    .await
}

async fn acs(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let form = crate::binding::PostForm::read(content_type, &body, "SAMLResponse");
    // The decoded form is all that is needed from here on.
    drop(body);
    let Some(form) = form else {
        // Not a SAML HTTP-POST binding form: say so with a code, as for any refusal.
        return render(&app, Outcome::Refused(gateway::Refusal::new(
            400,
            "saml.form_invalid",
            "expected an HTML form post (application/x-www-form-urlencoded) with a SAMLResponse field",
        )));
    };
    let outcome = gateway::saml_acs(
        &app,
        &tenant,
        form.message,
        form.relay_state.as_deref(),
        cookie(&headers, BINDING_COOKIE).as_deref(),
        Some(peer.ip().to_string()),
    )
    .await;
    render(&app, outcome)
}

#[derive(Debug, Deserialize)]
struct OidcLoginQuery {
    console: Option<String>,
    login_hint: Option<String>,
}

async fn oidc_login(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<OidcLoginQuery>,
) -> Response {
    sp_login(&app, &tenant, q, peer, &headers, false).await
}

async fn saml_login(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<OidcLoginQuery>,
) -> Response {
    sp_login(&app, &tenant, q, peer, &headers, true).await
}

/// Start a login at the tenant (`/oidc/…/login` or `/saml/…/login`).
async fn sp_login(
    app: &App,
    tenant: &str,
    q: OidcLoginQuery,
    peer: SocketAddr,
    headers: &HeaderMap,
    saml: bool,
) -> Response {
    if let Err(r) = gateway::login_start_allowed(app, peer.ip(), Some(tenant)) {
        return render(app, Outcome::Refused(r));
    }
    let target = q
        .console
        .map(|c| format!("console:{c}"))
        .unwrap_or_default();
    let binding = cookie(headers, BINDING_COOKIE);
    let start = gateway::LoginStart {
        login_hint: q.login_hint.as_deref(),
        binding: binding.as_deref(),
        ..gateway::LoginStart::default()
    };
    let client = Some(peer.ip().to_string());
    let outcome = if saml {
        gateway::saml_login_with(app, tenant, &target, &start, client).await
    } else {
        gateway::oidc_login_with(app, tenant, &target, &start, client).await
    };
    render(app, outcome)
}

async fn oidc_callback(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(cb): Query<crate::inbound::oidc::Callback>,
) -> Response {
    let binding = cookie(&headers, BINDING_COOKIE);
    render(
        &app,
        gateway::oidc_callback(
            &app,
            &tenant,
            &cb,
            binding.as_deref(),
            Some(peer.ip().to_string()),
        )
        .await,
    )
}

async fn launch(
    State(app): State<Arc<App>>,
    Path(console): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let session = cookie(&headers, SESSION_COOKIE);
    render(
        &app,
        gateway::launch(
            &app,
            session.as_deref(),
            &console,
            Some(peer.ip().to_string()),
        )
        .await,
    )
}

pub(crate) fn render(app: &App, outcome: Outcome) -> Response {
    let secure = app.config.server.public_url.starts_with("https://");
    match outcome {
        Outcome::Deliver { html, session, .. } => {
            no_store(with_session(Html(html).into_response(), session, secure))
        }
        Outcome::Redirect { location, session } => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = location.parse() {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            no_store(with_session(resp, session, secure))
        }
        Outcome::StartLogin { location, binding } => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = location.parse() {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            no_store(with_binding(resp, &binding, secure))
        }
        Outcome::SignedOut {
            location,
            told,
            html,
            clear,
        } => {
            let mut resp = match (location, html) {
                (Some(l), _) => {
                    let mut r = StatusCode::SEE_OTHER.into_response();
                    if let Ok(v) = l.parse() {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    r
                }
                (None, Some(form)) => Html(form).into_response(),
                (None, None) => Html(pages::signed_out(&told)).into_response(),
            };
            let secure = if secure { "; Secure" } else { "" };
            let cookie =
                format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}");
            if let Some(v) = clear.then(|| cookie.parse().ok()).flatten() {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            no_store(resp)
        }
        Outcome::StepUp {
            location,
            binding,
            message,
        } => {
            let resp = Html(pages::step_up(&message, &location)).into_response();
            no_store(with_binding(resp, &binding, secure))
        }
        Outcome::Launcher { session, consoles } => {
            let resp = Html(pages::launcher(&consoles)).into_response();
            no_store(with_session(resp, Some(session), secure))
        }
        Outcome::ChooseTenant { links, binding } => {
            let resp = Html(pages::tenant_chooser(&links)).into_response();
            match binding {
                Some(b) => no_store(with_binding(resp, &b, secure)),
                None => no_store(resp),
            }
        }
        Outcome::Refused(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
            let mut resp = (status, Html(pages::error(&r))).into_response();
            if let Some(secs) = r.retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            }
            resp
        }
    }
}

/// Set fedgate's session cookie (HttpOnly, SameSite=Lax: it must come along
/// on the top-level navigations of a login; Secure whenever fedgate is
/// served over HTTPS, i.e. everywhere but loopback, where plain HTTP is
/// allowed and HTTP clients would not send a Secure cookie back).
fn with_session(mut resp: Response, session: Option<String>, secure: bool) -> Response {
    if let Some(session) = session {
        let secure = if secure { "; Secure" } else { "" };
        let cookie = format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax{secure}");
        if let Ok(v) = cookie.parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Set the login's browser binding (`gateway::login_state`): HttpOnly,
/// ten minutes, and `SameSite=None; Secure` over HTTPS, since Entra's SAML
/// answer is a cross-site POST on which `Lax` cookies are not sent; over
/// plain HTTP (loopback) `Lax`, as browsers refuse `SameSite=None` without
/// `Secure` (and a loopback IdP is the same site).
fn with_binding(mut resp: Response, binding: &str, secure: bool) -> Response {
    let same_site = if secure {
        "SameSite=None; Secure"
    } else {
        "SameSite=Lax"
    };
    let cookie = format!(
        "{BINDING_COOKIE}={binding}; Path=/; Max-Age={}; HttpOnly; {same_site}",
        gateway::login_state::BINDING_MAX_AGE_SECONDS
    );
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

async fn token(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        let e = crate::outbound::token::ExchangeError::new(
            400,
            "invalid_request",
            "token.request_invalid",
            "expected a form post (application/x-www-form-urlencoded) with grant_type",
        );
        return no_store((StatusCode::BAD_REQUEST, axum::Json(e)).into_response());
    };
    let client = Some(peer.ip().to_string());
    let resp = if form.get("grant_type").map(String::as_str) == Some("authorization_code") {
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::gateway::oidc_provider::basic_credentials);
        match crate::gateway::oidc_provider::token(&app, &form, basic, client).await {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => token_error(e.status, &e.error_description.clone(), e),
        }
    } else {
        let get = |k: &str| form.get(k).cloned();
        let exchange = crate::outbound::token::ExchangeForm {
            grant_type: get("grant_type").unwrap_or_default(),
            subject_token: get("subject_token").unwrap_or_default(),
            subject_token_type: get("subject_token_type").unwrap_or_default(),
            audience: get("audience"),
        };
        match gateway::token_exchange(&app, &exchange, client).await {
            Ok(issued) => axum::Json(issued).into_response(),
            Err(e) => token_error(e.status, &e.error_description.clone(), e),
        }
    };
    // RFC 6749 §5.1: token responses are never cached.
    no_store(resp)
}

/// A token endpoint error as JSON; a 503 (`server.busy`: the CPU pool is
/// full) says when to come back.
fn token_error(status: u16, description: &str, body: impl serde::Serialize) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (status, axum::Json(body)).into_response();
    if description.starts_with("server.busy:") {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(crate::cpu::RETRY_AFTER_SECS),
        );
    }
    resp
}

async fn authorize(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<crate::gateway::oidc_provider::AuthorizeRequest>,
) -> Response {
    let scope = crate::gateway::oidc_provider::budget_scope(&app, q.client_id.as_deref());
    if let Err(r) = gateway::login_start_allowed(&app, peer.ip(), scope.as_deref()) {
        return render(&app, Outcome::Refused(r));
    }
    let session = cookie(&headers, SESSION_COOKIE);
    render(
        &app,
        crate::gateway::oidc_provider::authorize(
            &app,
            q,
            session.as_deref(),
            cookie(&headers, BINDING_COOKIE).as_deref(),
            Some(peer.ip().to_string()),
        )
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct ResumeQuery {
    k: String,
}

async fn authorize_resume(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let session = cookie(&headers, SESSION_COOKIE);
    render(
        &app,
        crate::gateway::oidc_provider::resume(
            &app,
            &q.k,
            session.as_deref(),
            cookie(&headers, BINDING_COOKIE).as_deref(),
            Some(peer.ip().to_string()),
        )
        .await,
    )
}

/// The HTTP-POST binding's form at fedgate's IdP.
#[derive(Debug, Deserialize)]
struct SsoForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// `GET /idp/sso?SAMLRequest=…`: a console's AuthnRequest, HTTP-Redirect
/// binding (the raw query: its encoding is what a signature covers).
async fn idp_sso_redirect(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let request = gateway::SsoRequest::Redirect {
        query: query.unwrap_or_default(),
    };
    idp_sso(&app, request, peer, &headers).await
}

/// `POST /idp/sso`: a console's AuthnRequest, HTTP-POST binding.
async fn idp_sso_post(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<SsoForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return render(&app, Outcome::Refused(gateway::Refusal::new(
            400,
            "idp.request_invalid",
            "expected an HTML form post (application/x-www-form-urlencoded) with a SAMLRequest field",
        )));
    };
    let request = gateway::SsoRequest::Post {
        saml_request: form.saml_request,
        relay_state: form.relay_state,
    };
    idp_sso(&app, request, peer, &headers).await
}

async fn idp_sso(
    app: &App,
    request: gateway::SsoRequest,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Response {
    let session = cookie(headers, SESSION_COOKIE);
    let binding = cookie(headers, BINDING_COOKIE);
    render(
        app,
        gateway::idp_sso(
            app,
            request,
            session.as_deref(),
            binding.as_deref(),
            Some(peer.ip()),
        )
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct RealmQuery {
    k: String,
    tenant: String,
}

async fn idp_sso_realm(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<RealmQuery>,
) -> Response {
    let binding = cookie(&headers, BINDING_COOKIE);
    render(
        &app,
        gateway::sso_realm(&app, &q.k, &q.tenant, binding.as_deref(), Some(peer.ip())).await,
    )
}

async fn idp_sso_resume(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let session = cookie(&headers, SESSION_COOKIE);
    let binding = cookie(&headers, BINDING_COOKIE);
    render(
        &app,
        gateway::sso_resume(
            &app,
            &q.k,
            session.as_deref(),
            binding.as_deref(),
            Some(peer.ip()),
        )
        .await,
    )
}

/// `GET /oauth2/logout`: a console's RP-initiated logout.
async fn end_session(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<crate::gateway::oidc_provider::LogoutRequest>,
) -> Response {
    let session = cookie(&headers, SESSION_COOKIE);
    let outcome = crate::gateway::oidc_provider::end_session(
        &app,
        q,
        session.as_deref(),
        Some(peer.ip().to_string()),
    )
    .await;
    render(&app, outcome)
}

/// `GET /logout`: the user signs out of fedgate (a logout with no console).
async fn logout(
    state: State<Arc<App>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    end_session(state, peer, headers, Query(Default::default())).await
}

async fn userinfo(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match crate::gateway::oidc_provider::userinfo(&app, bearer).await {
        Ok(v) => no_store(axum::Json(v).into_response()),
        Err(e) if e.status == 401 => {
            let mut resp = (StatusCode::UNAUTHORIZED, axum::Json(&e)).into_response();
            if let Ok(v) = format!("Bearer error=\"{}\"", e.error).parse() {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            resp
        }
        Err(e) => token_error(e.status, &e.error_description.clone(), e),
    }
}

async fn openid_configuration(State(app): State<Arc<App>>) -> Response {
    let mut algs = Vec::new();
    if app.token_es256.is_some() {
        algs.push("ES256");
    }
    if app.has_rs256() {
        algs.push("RS256");
    }
    axum::Json(crate::gateway::oidc_provider::discovery(
        &app.config.server.public_url,
        &algs,
    ))
    .into_response()
}

async fn jwks(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.jwks()).into_response()
}

async fn sp_metadata(State(app): State<Arc<App>>, Path(tenant): Path<String>) -> Response {
    match app.sp_metadata(&tenant) {
        Some(xml) => (
            [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
            xml,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such tenant\n").into_response(),
    }
}

async fn idp_metadata(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        app.idp_metadata(),
    )
        .into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.readiness().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render()
            + &app.trust_metrics()
            + &app.cpu.render_metrics()
            + &app.store.render_metrics()
            + &app.audit.render_metrics(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_binding_cookie_survives_entras_cross_site_post_over_https() {
        let set = |secure| {
            with_binding(StatusCode::SEE_OTHER.into_response(), "b1", secure)
                .headers()
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let https = set(true);
        assert!(https.starts_with("fedgate_login=b1; Path=/; Max-Age=600; HttpOnly"));
        assert!(https.contains("SameSite=None; Secure"), "{https}");
        let http = set(false);
        assert!(
            http.contains("SameSite=Lax") && !http.contains("Secure"),
            "{http}"
        );
    }
}
