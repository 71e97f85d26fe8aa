//! A mock Commvault-style console that starts its own logins: a real SAML
//! service provider that sends fedgate's IdP a signed AuthnRequest
//! (HTTP-Redirect binding, RSA-SHA256 over the query, as Commvault signs
//! them), verifies the Response posted back with fedgate's IdP metadata,
//! and accepts it only as the answer to a request it sent and has not seen
//! answered (InResponseTo), once. It keeps a session per SessionIndex, and
//! ends it when fedgate's signed LogoutRequest arrives at
//! `/webconsole/logout` (answering with its own signed LogoutResponse).
//! For the demo and the tests.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;

use crate::identity::ErrorCode;
use crate::inbound::saml::{self, SamlSettings};
use crate::trust::signing::SigningKey;
use crate::util::urlencode;

pub struct MockSpConsole {
    /// fedgate's IdP metadata, fetched over HTTP.
    pub idp: Arc<crate::trust::refresh::IdpTrust>,
    /// Its entity id and ACS URL (both `{base}/webconsole`, as Commvault's).
    pub settings: SamlSettings,
    /// fedgate's `SingleSignOnService`.
    pub sso_url: String,
    /// The key it signs its AuthnRequests with (fedgate has its certificate).
    pub key: SigningKey,
    pub role_attribute: String,
    /// Requests sent and not yet answered.
    pub outstanding: Mutex<HashSet<String>>,
    /// Live sessions: SessionIndex → user.
    pub sessions: Mutex<std::collections::HashMap<String, String>>,
    /// The users whose sessions fedgate's LogoutRequests ended, in order.
    pub logouts: Mutex<Vec<String>>,
    /// The last LogoutRequest fedgate POSTed (HTTP-POST binding), as sent.
    pub last_posted: Mutex<Option<String>>,
}

impl MockSpConsole {
    /// Its SingleLogoutService (fedgate's `logout_url` for it).
    pub fn logout_url(&self) -> String {
        format!("{}/logout", self.settings.sp_entity_id)
    }
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    login_hint: Option<String>,
}

#[derive(serde::Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// `GET /webconsole/login` (start a login at fedgate) and `POST /webconsole`
/// (the ACS).
pub fn router(console: Arc<MockSpConsole>) -> Router {
    Router::new()
        .route("/webconsole/login", get(login))
        .route("/webconsole", axum::routing::post(acs))
        .route("/webconsole/logout", get(logout).post(logout_post))
        .route("/webconsole/logouts", get(logouts))
        .with_state(console)
}

fn fail(status: StatusCode, error: &str, message: String) -> Response {
    (
        status,
        Json(json!({"ok": false, "error": error, "message": message})),
    )
        .into_response()
}

async fn login(State(c): State<Arc<MockSpConsole>>, Query(q): Query<LoginQuery>) -> Response {
    let Some(id) = crate::util::random_id().map(|r| format!("_cv{r}")) else {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, "rng", String::new());
    };
    let subject = q
        .login_hint
        .as_deref()
        .map(|h| {
            format!(
                "<saml:Subject><saml:NameID>{}</saml:NameID></saml:Subject>",
                crate::xml::escape(h)
            )
        })
        .unwrap_or_default();
    let xml = format!(
        "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{now}\" Destination=\"{dest}\" AssertionConsumerServiceURL=\"{acs}\" \
ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"><saml:Issuer>{issuer}</saml:Issuer>{subject}</samlp:AuthnRequest>",
        now = crate::timefmt::format(time::OffsetDateTime::now_utc()),
        dest = crate::xml::escape(&c.sso_url),
        acs = crate::xml::escape(&c.settings.acs_url),
        issuer = crate::xml::escape(&c.settings.sp_entity_id),
    );
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    if deflate.write_all(xml.as_bytes()).is_err() {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, "deflate", String::new());
    }
    let Ok(raw) = deflate.finish() else {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, "deflate", String::new());
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut query = format!(
        "SAMLRequest={}&RelayState={}&SigAlg={}",
        urlencode(&b64.encode(raw)),
        urlencode("/webconsole/applications"),
        urlencode(crate::xml::dsig::ALG_RSA_SHA256)
    );
    let Ok(sig) = c.key.sign(query.as_bytes()) else {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, "sign", String::new());
    };
    query.push_str(&format!("&Signature={}", urlencode(&b64.encode(sig))));
    if let Ok(mut o) = c.outstanding.lock() {
        o.insert(id);
    }
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = format!("{}?{query}", c.sso_url).parse() {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

async fn acs(State(c): State<Arc<MockSpConsole>>, Form(form): Form<AcsForm>) -> Response {
    let now = time::OffsetDateTime::now_utc();
    let Some(idp) = c.idp.current() else {
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "idp_metadata_unavailable",
            String::new(),
        );
    };
    let id = match saml::verify(form.saml_response.as_bytes(), &idp, &c.settings, now) {
        Ok(id) => id,
        Err(e) => return fail(StatusCode::FORBIDDEN, e.code(), e.to_string()),
    };
    // Only the answer to a request this console sent, once.
    let answered = id.verification.in_response_to.clone();
    let known = answered
        .as_ref()
        .is_some_and(|r| c.outstanding.lock().is_ok_and(|mut o| o.remove(r)));
    if !known {
        return fail(
            StatusCode::FORBIDDEN,
            "unsolicited",
            format!(
                "InResponseTo {answered:?} is not a request this console sent (or it was answered)"
            ),
        );
    }
    if let (Some(index), Ok(mut s)) = (id.idp_session.clone(), c.sessions.lock()) {
        s.insert(index, id.subject.clone());
    }
    let roles = id
        .attributes
        .get(&c.role_attribute)
        .cloned()
        .unwrap_or_default();
    Json(
        json!({"ok": true, "user": id.subject, "roles": roles, "in_response_to": answered,
        "relay_state": form.relay_state}),
    )
    .into_response()
}

#[derive(serde::Deserialize)]
struct LogoutForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// `GET /webconsole/logout`: fedgate's LogoutRequest (HTTP-Redirect,
/// signed): the sessions it names end, and a signed LogoutResponse goes
/// back to fedgate's SingleLogoutService (a redirect).
async fn logout(
    State(c): State<Arc<MockSpConsole>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    end_sessions(&c, crate::binding::Incoming::Redirect { query: &query })
}

/// `POST /webconsole/logout`: the same by HTTP-POST (the request signed
/// inside), answered with an auto-posting form carrying the LogoutResponse
/// (signed inside).
async fn logout_post(
    State(c): State<Arc<MockSpConsole>>,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let (Ok(mut l), Ok(xml)) = (
        c.last_posted.lock(),
        crate::xml::base64_decode(&form.saml_request)
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
    ) {
        *l = Some(xml);
    }
    end_sessions(
        &c,
        crate::binding::Incoming::Post {
            saml_request: Some(&form.saml_request),
            saml_response: None,
            relay_state: form.relay_state.as_deref(),
        },
    )
}

fn end_sessions(c: &MockSpConsole, incoming: crate::binding::Incoming) -> Response {
    let now = time::OffsetDateTime::now_utc();
    let Some(idp) = c.idp.current() else {
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "idp_metadata_unavailable",
            String::new(),
        );
    };
    let party = crate::slo::Party {
        id: "fedgate".into(),
        entity_id: idp.entity_id.clone(),
        certs: idp.signing_certs.clone(),
    };
    let post = matches!(incoming, crate::binding::Incoming::Post { .. });
    let received = crate::slo::read(
        incoming,
        &[party],
        &c.logout_url(),
        now,
        time::Duration::minutes(3),
    );
    let req = match received {
        Ok(crate::slo::Received::Request(r)) => r,
        Ok(crate::slo::Received::Response(_)) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "unexpected",
                "a LogoutResponse".into(),
            )
        }
        Err(e) => return fail(StatusCode::FORBIDDEN, e.code(), e.to_string()),
    };
    let ended: Vec<String> = match c.sessions.lock() {
        Ok(mut s) => req
            .session_indexes
            .iter()
            .filter_map(|i| s.remove(i))
            .filter(|user| *user == req.name_id)
            .collect(),
        Err(_) => Vec::new(),
    };
    let status = if ended.is_empty() {
        crate::slo::STATUS_RESPONDER
    } else {
        crate::slo::STATUS_SUCCESS
    };
    if let Ok(mut l) = c.logouts.lock() {
        l.extend(ended);
    }
    let slo_url = c.sso_url.replace("/idp/sso", "/idp/slo");
    let id = format!("_cv{}", crate::util::random_id().unwrap_or_default());
    let xml = crate::slo::logout_response(
        &id,
        &c.settings.sp_entity_id,
        &slo_url,
        &req.id,
        status,
        None,
        now,
    );
    if post {
        return match crate::xml::dsig::sign_enveloped(&xml, &id, &c.key) {
            Ok(signed) => axum::response::Html(crate::binding::post_form(
                &slo_url,
                crate::binding::Kind::Response,
                &signed,
                req.relay_state.as_deref(),
                "Signed out",
                "fedgate",
            ))
            .into_response(),
            Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, "sign", e.to_string()),
        };
    }
    match crate::binding::redirect_url(
        &slo_url,
        crate::binding::Kind::Response,
        &xml,
        req.relay_state.as_deref(),
        Some(&c.key),
    ) {
        Ok(url) => (StatusCode::FOUND, [(axum::http::header::LOCATION, url)]).into_response(),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, "encode", e.to_string()),
    }
}

/// `GET /webconsole/logouts`: whose sessions fedgate ended, and how many are live.
async fn logouts(State(c): State<Arc<MockSpConsole>>) -> Response {
    let ended = c.logouts.lock().map(|l| l.clone()).unwrap_or_default();
    let live = c.sessions.lock().map(|s| s.len()).unwrap_or(0);
    let posted = c.last_posted.lock().ok().and_then(|p| p.clone());
    Json(json!({"logouts": ended, "live": live, "last_posted": posted})).into_response()
}
