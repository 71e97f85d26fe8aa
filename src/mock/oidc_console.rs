//! Two mock consoles that are real peers of fedgate's OAuth side:
//!
//! - an **Acronis-style console**, an OpenID Connect relying party of
//!   fedgate built on the `openidconnect` crate (discovery, code flow with
//!   PKCE and nonce, client secret, and that crate's own ID-token verifier:
//!   signature against fedgate's JWKS, issuer, audience, expiry, nonce). It
//!   answers with who signed in and the role assignments (role + customer
//!   tenant/unit) it read from the ID token. It keeps a session per `sid`
//!   of the ID token, and ends it on fedgate's back-channel logout token
//!   (OpenID Connect Back-Channel Logout 1.0, verified with `jsonwebtoken`
//!   against fedgate's JWKS: `typ`, issuer, audience, the event, no nonce);
//! - a **Commvault-style REST API** that accepts only fedgate's console JWTs
//!   (verified with `jsonwebtoken` against fedgate's JWKS: issuer, audience,
//!   expiry) and lists the backup jobs of the companies in the token's
//!   `Company` scope.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use serde_json::json;

/// The Acronis-style console (an OIDC relying party of fedgate).
pub struct MockOidcConsole {
    /// Its own base URL; the redirect URI is `{base}/callback`.
    pub base: String,
    /// fedgate's issuer (its public URL).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pending: Mutex<HashMap<String, (String, String)>>,
    /// Live sessions: the ID token's `sid` → user.
    sessions: Mutex<HashMap<String, String>>,
    /// The users whose sessions fedgate's logout tokens ended, in order.
    logouts: Mutex<Vec<String>>,
}

impl MockOidcConsole {
    pub fn new(base: String, issuer: String, client_id: String, client_secret: String) -> Self {
        MockOidcConsole {
            base,
            issuer,
            client_id,
            client_secret,
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            logouts: Mutex::new(Vec::new()),
        }
    }

    /// Its back-channel logout URI (fedgate's `backchannel_logout_uri`).
    pub fn backchannel_logout_uri(&self) -> String {
        format!("{}/backchannel-logout", self.base)
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.base)
    }
}

pub fn oidc_router(c: Arc<MockOidcConsole>) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route(
            "/backchannel-logout",
            axum::routing::post(backchannel_logout),
        )
        .route("/logouts", get(logouts))
        .with_state(c)
}

fn fail(status: StatusCode, error: &str, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(json!({"ok": false, "error": error, "message": message.to_string()})),
    )
        .into_response()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The console's client of fedgate, from fedgate's discovery document.
#[allow(clippy::result_large_err)] // a mock: the Response is the error page
async fn client(c: &MockOidcConsole) -> Result<Client, Response> {
    let meta = discover(c)
        .await
        .map_err(|e| fail(StatusCode::BAD_GATEWAY, "discovery_failed", e))?;
    let redirect = RedirectUrl::new(c.redirect_uri())
        .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, "config", "redirect URI"))?;
    Ok(CoreClient::from_provider_metadata(
        meta,
        ClientId::new(c.client_id.clone()),
        Some(ClientSecret::new(c.client_secret.clone())),
    )
    .set_redirect_uri(redirect))
}

async fn discover(c: &MockOidcConsole) -> Result<CoreProviderMetadata, String> {
    let issuer = IssuerUrl::new(c.issuer.clone()).map_err(|e| e.to_string())?;
    CoreProviderMetadata::discover_async(issuer, &http())
        .await
        .map_err(|e| format!("discovery: {e}"))
}

#[derive(Deserialize)]
struct LoginQuery {
    tenant: Option<String>,
    login_hint: Option<String>,
    /// Passed on to fedgate's authorization endpoint.
    prompt: Option<String>,
    max_age: Option<String>,
}

async fn login(State(c): State<Arc<MockOidcConsole>>, Query(q): Query<LoginQuery>) -> Response {
    let client = match client(&c).await {
        Ok(client) => client,
        Err(resp) => return resp,
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    if let Some(t) = q.tenant {
        req = req.add_extra_param("tenant", t);
    }
    if let Some(h) = q.login_hint {
        req = req.add_extra_param("login_hint", h);
    }
    if let Some(p) = q.prompt {
        req = req.add_extra_param("prompt", p);
    }
    if let Some(m) = q.max_age {
        req = req.add_extra_param("max_age", m);
    }
    let (url, state, nonce) = req.url();
    if let Ok(mut p) = c.pending.lock() {
        p.insert(
            state.secret().clone(),
            (verifier.secret().clone(), nonce.secret().clone()),
        );
    }
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(c): State<Arc<MockOidcConsole>>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some((verifier, nonce)) = q
        .state
        .as_ref()
        .and_then(|s| c.pending.lock().ok()?.remove(s))
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "state_unknown",
            "no login pending with this state",
        );
    };
    if let Some(e) = q.error {
        return fail(
            StatusCode::FORBIDDEN,
            &e,
            q.error_description.unwrap_or_default(),
        );
    }
    let client = match client(&c).await {
        Ok(client) => client,
        Err(resp) => return resp,
    };
    let req = match client.exchange_code(AuthorizationCode::new(q.code.unwrap_or_default())) {
        Ok(r) => r,
        Err(e) => return fail(StatusCode::BAD_GATEWAY, "no_token_endpoint", e),
    };
    let resp = match req
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return fail(
                StatusCode::BAD_GATEWAY,
                "token_request_failed",
                format!("{e:?}"),
            )
        }
    };
    let Some(id_token) = resp.id_token() else {
        return fail(
            StatusCode::BAD_GATEWAY,
            "no_id_token",
            "the token response has no ID token",
        );
    };
    let verifier = client.id_token_verifier().set_allowed_algs(vec![
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    ]);
    let claims = match id_token.claims(&verifier, &Nonce::new(nonce)) {
        Ok(c) => c,
        Err(e) => return fail(StatusCode::FORBIDDEN, "id_token_invalid", e),
    };
    // Verified by openidconnect: the payload's other claims can be read.
    let raw = id_token.to_string();
    let extra: serde_json::Value = raw
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let user = claims.email().map(|e| e.as_str().to_string());
    if let (Some(sid), Ok(mut s)) = (extra["sid"].as_str(), c.sessions.lock()) {
        s.insert(sid.to_string(), user.clone().unwrap_or_default());
    }
    Json(json!({
        "ok": true,
        "user": claims.email().map(|e| e.as_str().to_string()),
        "sub": claims.subject().as_str(),
        "roles": extra["roles"],
        "role_assignments": extra["role_assignments"],
        "auth_time": extra["auth_time"],
        "sid": extra["sid"],
        "alg": id_token.signing_alg().ok().map(|a| format!("{a:?}")),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

/// `POST /backchannel-logout`: fedgate's logout token ends the session its
/// `sid` names. 200 when it did, 400 for a token this console refuses
/// (Back-Channel Logout §2.8).
async fn backchannel_logout(
    State(c): State<Arc<MockOidcConsole>>,
    axum::extract::Form(form): axum::extract::Form<LogoutForm>,
) -> Response {
    let refuse = |m: String| fail(StatusCode::BAD_REQUEST, "invalid_request", m);
    let meta = match discover(&c).await {
        Ok(m) => m,
        Err(e) => return fail(StatusCode::BAD_GATEWAY, "discovery_failed", e),
    };
    let jwks: jsonwebtoken::jwk::JwkSet = match async {
        http()
            .get(meta.jwks_uri().url().as_str())
            .send()
            .await?
            .json()
            .await
    }
    .await
    {
        Ok(j) => j,
        Err(e) => return fail(StatusCode::BAD_GATEWAY, "jwks_failed", e),
    };
    let token = form.logout_token.as_str();
    let header = match jsonwebtoken::decode_header(token) {
        Ok(h) => h,
        Err(e) => return refuse(e.to_string()),
    };
    if header.typ.as_deref() != Some("logout+jwt") {
        return refuse(format!("typ {:?} is not logout+jwt", header.typ));
    }
    let Some(key) = header
        .kid
        .as_deref()
        .and_then(|k| jwks.find(k))
        .and_then(|j| jsonwebtoken::DecodingKey::from_jwk(j).ok())
    else {
        return refuse("unknown kid".into());
    };
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&c.issuer]);
    v.set_audience(&[&c.client_id]);
    v.set_required_spec_claims(&["iss", "aud", "exp", "iat"]);
    let claims = match jsonwebtoken::decode::<serde_json::Value>(token, &key, &v) {
        Ok(d) => d.claims,
        Err(e) => return refuse(e.to_string()),
    };
    if claims["events"]
        .get("http://schemas.openid.net/event/backchannel-logout")
        .is_none()
        || claims.get("nonce").is_some()
        || claims["jti"].as_str().is_none()
    {
        return refuse("not a logout token (event, jti, no nonce)".into());
    }
    let Some(sid) = claims["sid"].as_str() else {
        return refuse("no sid".into());
    };
    let ended = c.sessions.lock().ok().and_then(|mut s| s.remove(sid));
    if let (Some(user), Ok(mut l)) = (ended, c.logouts.lock()) {
        l.push(user);
    }
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

/// `GET /logouts`: whose sessions fedgate ended, and how many are live.
async fn logouts(State(c): State<Arc<MockOidcConsole>>) -> Response {
    let ended = c.logouts.lock().map(|l| l.clone()).unwrap_or_default();
    let live = c.sessions.lock().map(|s| s.len()).unwrap_or(0);
    Json(json!({"logouts": ended, "live": live})).into_response()
}

/// The Commvault-style REST API.
pub struct MockApiConsole {
    /// fedgate's issuer and the console's identifier (the token audience).
    pub issuer: String,
    pub audience: String,
    /// fedgate's JWKS, as fetched.
    pub jwks: jsonwebtoken::jwk::JwkSet,
    /// (job id, company, client) rows.
    pub jobs: Vec<(u32, String, String)>,
}

pub fn api_router(c: Arc<MockApiConsole>) -> Router {
    Router::new()
        .route("/commandcenter/api/v2/jobs", get(jobs))
        .with_state(c)
}

async fn jobs(State(c): State<Arc<MockApiConsole>>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return fail(
            StatusCode::UNAUTHORIZED,
            "token_missing",
            "Authorization: Bearer required",
        );
    };
    let header = match jsonwebtoken::decode_header(token) {
        Ok(h) => h,
        Err(e) => return fail(StatusCode::UNAUTHORIZED, "token_invalid", e),
    };
    let Some(jwk) = header.kid.as_deref().and_then(|k| c.jwks.find(k)) else {
        return fail(
            StatusCode::UNAUTHORIZED,
            "token_invalid",
            "unknown kid: not a fedgate token",
        );
    };
    let key = match jsonwebtoken::DecodingKey::from_jwk(jwk) {
        Ok(k) => k,
        Err(e) => return fail(StatusCode::UNAUTHORIZED, "token_invalid", e),
    };
    if !matches!(
        header.alg,
        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::RS256
    ) {
        return fail(
            StatusCode::UNAUTHORIZED,
            "token_invalid",
            "only ES256 and RS256",
        );
    }
    // One algorithm, the key's: jsonwebtoken refuses a mixed list.
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&c.issuer]);
    v.set_audience(&[&c.audience]);
    let data = match jsonwebtoken::decode::<serde_json::Value>(token, &key, &v) {
        Ok(d) => d,
        Err(e) => return fail(StatusCode::UNAUTHORIZED, "token_invalid", e),
    };
    let companies: Vec<String> = data.claims["Company"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<serde_json::Value> = c
        .jobs
        .iter()
        .filter(|(_, company, _)| companies.contains(company))
        .map(|(id, company, client)| json!({"jobId": id, "company": company, "client": client, "status": "Completed"}))
        .collect();
    Json(json!({
        "principal": data.claims["principal"],
        "userGroups": data.claims["UserGroups"],
        "jobs": rows,
    }))
    .into_response()
}
