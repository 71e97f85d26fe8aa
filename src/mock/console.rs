//! A mock Autotask-style console: a real SAML service provider. It fetches
//! fedgate's IdP metadata over HTTP, verifies every posted assertion with it
//! (signature, audience, recipient, time), and answers with who is signed in
//! and with which roles. Like the real console, it does not create users:
//! an unknown e-mail address is refused.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::identity::ErrorCode;
use crate::inbound::saml::{self, SamlSettings};

pub struct MockConsole {
    /// fedgate's IdP metadata: fetched from fedgate's `/idp/metadata` and
    /// refreshed like any IdP's (so it follows fedgate's key rollover), or fixed.
    pub idp: std::sync::Arc<crate::trust::refresh::IdpTrust>,
    pub settings: SamlSettings,
    /// Users that exist in the console (e-mail addresses).
    pub users: Vec<String>,
    pub role_attribute: String,
    pub scope_attribute: String,
}

#[derive(serde::Deserialize)]
struct SsoForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
}

/// The SP's routes: `POST /singlesignon/saml/SSO` (the Autotask-style Reply
/// URL path), and `GET /healthz` for container healthchecks.
pub fn router(console: Arc<MockConsole>) -> Router {
    Router::new()
        .route("/singlesignon/saml/SSO", post(sso))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(console)
}

async fn sso(State(c): State<Arc<MockConsole>>, Form(form): Form<SsoForm>) -> Response {
    let now = time::OffsetDateTime::now_utc();
    let Some(idp) = c.idp.current() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ok": false, "error": "idp_metadata_unavailable"})),
        )
            .into_response();
    };
    match saml::verify(form.saml_response.as_bytes(), &idp, &c.settings, now) {
        Err(e) => (
            StatusCode::FORBIDDEN,
            Json(json!({"ok": false, "error": e.code(), "message": e.to_string()})),
        )
            .into_response(),
        Ok(id) if !c.users.iter().any(|u| u.eq_ignore_ascii_case(&id.subject)) => (
            StatusCode::FORBIDDEN,
            Json(json!({"ok": false, "error": "user_not_provisioned",
                "message": format!("{} does not exist in this console; an administrator must create the user first (no provisioning)", id.subject)})),
        )
            .into_response(),
        Ok(id) => {
            let get = |k: &str| id.attributes.get(k).cloned().unwrap_or_default();
            Json(json!({"ok": true, "user": id.subject, "roles": get(&c.role_attribute), "scope": get(&c.scope_attribute), "signed_by": id.verification.key}))
                .into_response()
        }
    }
}
