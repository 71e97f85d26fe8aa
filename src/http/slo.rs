//! Thin handlers for single logout: `GET|POST /saml/{tenant}/slo` (the
//! tenant's LogoutRequest or LogoutResponse), `GET|POST /idp/slo` (a
//! console's LogoutRequest), `GET /oidc/{tenant}/signed-out` (back from
//! Entra's `end_session_endpoint`). The protocol is in `gateway::logout`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::{cookie, render, SESSION_COOKIE};
use crate::binding::Incoming;
use crate::gateway::{logout, App};

/// The HTTP-POST binding's form at a SingleLogoutService.
#[derive(Debug, Deserialize)]
pub struct SloForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

impl SloForm {
    fn incoming(&self) -> Incoming<'_> {
        Incoming::Post {
            saml_request: self.saml_request.as_deref(),
            saml_response: self.saml_response.as_deref(),
            relay_state: self.relay_state.as_deref(),
        }
    }
}

fn client(peer: SocketAddr) -> Option<String> {
    Some(peer.ip().to_string())
}

pub async fn tenant_redirect(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(tenant): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let incoming = Incoming::Redirect { query: &query };
    render(
        &app,
        logout::tenant_slo(&app, &tenant, incoming, client(peer)).await,
    )
}

pub async fn tenant_post(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(tenant): Path<String>,
    Form(form): Form<SloForm>,
) -> Response {
    render(
        &app,
        logout::tenant_slo(&app, &tenant, form.incoming(), client(peer)).await,
    )
}

pub async fn idp_redirect(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let session = cookie(&headers, SESSION_COOKIE);
    let incoming = Incoming::Redirect { query: &query };
    render(
        &app,
        logout::idp_slo(&app, incoming, session.as_deref(), client(peer)).await,
    )
}

pub async fn idp_post(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SloForm>,
) -> Response {
    let session = cookie(&headers, SESSION_COOKIE);
    render(
        &app,
        logout::idp_slo(&app, form.incoming(), session.as_deref(), client(peer)).await,
    )
}

#[derive(Debug, Deserialize)]
pub struct SignedOutQuery {
    state: Option<String>,
}

/// Back from Entra's `end_session_endpoint`.
pub async fn oidc_signed_out(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    Query(q): Query<SignedOutQuery>,
) -> Response {
    let now = app.now();
    let outcome = match q.state {
        Some(s) => logout::finish_pending(&app, &s, Some(&tenant), now).await,
        None => logout::finish_pending(&app, "", Some(&tenant), now).await,
    };
    render(&app, outcome)
}
