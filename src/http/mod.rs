//! The axum router and thin handlers: parse the request, call one function
//! of `gateway`, render the answer. Error pages carry the stable code, what
//! it means and what the admin should check.

pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::gateway::{self, App, Outcome};

/// The HTTP-POST binding's form.
#[derive(Debug, Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    pub saml_response: String,
    #[serde(rename = "RelayState")]
    pub relay_state: Option<String>,
}

const SESSION_COOKIE: &str = "fedgate_session";

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/saml/{tenant}/acs", post(acs))
        .route("/saml/{tenant}/metadata", get(sp_metadata))
        .route("/idp/metadata", get(idp_metadata))
        .route("/launch/{console}", get(launch))
        .route("/oauth2/token", post(token))
        .route("/oauth2/jwks", get(jwks))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serve HTTPS (rustls on aws-lc-rs) until `shutdown` resolves.
pub async fn serve_tls(
    app: Arc<App>,
    listener: std::net::TcpListener,
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Two crypto providers are compiled in (aws-lc-rs and, through
    // dependencies, possibly ring): choose aws-lc-rs explicitly, once.
    crate::trust::install_crypto_provider();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert_file, key_file).await?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(router(app).into_make_service_with_connect_info::<SocketAddr>())
        .await
}

async fn acs(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<AcsForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        // Not a SAML HTTP-POST binding form: say so with a code, as for any refusal.
        return render(Outcome::Refused(gateway::Refusal {
            status: 400,
            code: "saml.form_invalid",
            message: "expected an HTML form post (application/x-www-form-urlencoded) with a SAMLResponse field".into(),
            console: None,
        }));
    };
    let outcome = gateway::saml_acs(
        &app,
        &tenant,
        &form.saml_response,
        form.relay_state.as_deref(),
        Some(peer.ip().to_string()),
    )
    .await;
    render(outcome)
}

async fn launch(
    State(app): State<Arc<App>>,
    Path(console): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let session = cookie(&headers, SESSION_COOKIE);
    render(
        gateway::launch(
            &app,
            session.as_deref(),
            &console,
            Some(peer.ip().to_string()),
        )
        .await,
    )
}

fn render(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Deliver { html, .. } => no_store(Html(html).into_response()),
        Outcome::Launcher { session, consoles } => {
            let mut resp = Html(pages::launcher(&consoles)).into_response();
            let cookie =
                format!("{SESSION_COOKIE}={session}; Path=/launch; HttpOnly; Secure; SameSite=Lax");
            if let Ok(v) = cookie.parse() {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            no_store(resp)
        }
        Outcome::Refused(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
            (status, Html(pages::error(&r))).into_response()
        }
    }
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
    form: Result<
        Form<crate::outbound::token::ExchangeForm>,
        axum::extract::rejection::FormRejection,
    >,
) -> Response {
    let Ok(Form(form)) = form else {
        let e = crate::outbound::token::ExchangeError::new(
            400,
            "invalid_request",
            "token.request_invalid",
            "expected a form post (application/x-www-form-urlencoded) with grant_type",
        );
        return (StatusCode::BAD_REQUEST, axum::Json(e)).into_response();
    };
    let mut resp = match gateway::token_exchange(&app, &form, Some(peer.ip().to_string())).await {
        Ok(issued) => axum::Json(issued).into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, axum::Json(e)).into_response()
        }
    };
    // RFC 6749 §5.1: token responses are never cached.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
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
    match app.store.ready().await {
        Ok(()) => {
            app.metrics.store_ready(true);
            "ready\n".into_response()
        }
        Err(e) => {
            app.metrics.store_ready(false);
            app.metrics.store_error("ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
