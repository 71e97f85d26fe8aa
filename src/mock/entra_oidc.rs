//! A mock Entra ID tenant's OpenID Connect side, speaking the real v2.0
//! protocol shapes on loopback: discovery
//! (`/{tid}/v2.0/.well-known/openid-configuration`), JWKS
//! (`/{tid}/discovery/v2.0/keys`), the authorization endpoint (a scripted
//! user signs in at once; `login_hint` picks which), and the token endpoint
//! for authorization codes (PKCE S256 checked, client secret or certificate
//! client assertion checked) and client credentials (app-only tokens with
//! `roles`, as for a service account). Tokens are RS256, signed with the
//! tenant key, and carry Entra's v2 claims (`tid`, `oid`, `uti`, `groups` or
//! the overage `_claim_names`/`_claim_sources`, `roles`).
//!
//! For the demo, drills and tests only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::mock::entra::MockUser;
use crate::trust::signing::JwtSigner;

/// An app registration in the mock tenant.
#[derive(Debug, Clone, Default)]
pub struct MockClient {
    pub client_id: String,
    pub secret: Option<String>,
    /// The RSA public key (PKCS#1 DER) of the certificate credential, if any.
    pub cert_public_key: Option<Vec<u8>>,
    pub redirect_uris: Vec<String>,
    /// App roles granted to this app (client-credentials tokens), and its
    /// service principal's object id.
    pub app_roles: Vec<String>,
    pub service_principal_id: String,
}

pub struct MockEntraOidc {
    /// `http://127.0.0.1:port`.
    pub base: String,
    pub tenant_id: String,
    pub signer: JwtSigner,
    pub clients: Vec<MockClient>,
    pub users: Vec<MockUser>,
    codes: Mutex<HashMap<String, Grant>>,
    seen_assertions: Mutex<Vec<String>>,
    /// The tenant's own sign-in sessions: UPN → when the user last
    /// authenticated (unix seconds). `prompt=login` authenticates afresh.
    sessions: Mutex<HashMap<String, i64>>,
    /// The `prompt` of every authorization request ("" when none).
    pub prompts: Mutex<Vec<String>>,
    /// Whether ID tokens carry `auth_time` (an optional claim in Entra).
    pub auth_time_claim: std::sync::atomic::AtomicBool,
    /// The `logout_hint`s (or `-`) of the sign-outs at its
    /// `end_session_endpoint`, in order.
    pub signed_out: Mutex<Vec<String>>,
}

/// The authentication contexts the mock tenant has a Conditional Access
/// policy (MFA) for.
pub const MFA_AUTH_CONTEXTS: &[&str] = &["c1"];

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: MockUser,
    auth_time: i64,
    /// Authentication contexts the request asked for (`claims` → `acrs`),
    /// which this mock satisfies by a second factor.
    acrs: Vec<String>,
}

impl MockEntraOidc {
    pub fn new(
        base: String,
        tenant_id: String,
        signer: JwtSigner,
        clients: Vec<MockClient>,
        users: Vec<MockUser>,
    ) -> Self {
        MockEntraOidc {
            base,
            tenant_id,
            signer,
            clients,
            users,
            codes: Mutex::new(HashMap::new()),
            seen_assertions: Mutex::new(Vec::new()),
            sessions: Mutex::new(HashMap::new()),
            prompts: Mutex::new(Vec::new()),
            auth_time_claim: std::sync::atomic::AtomicBool::new(true),
            signed_out: Mutex::new(Vec::new()),
        }
    }

    /// The v2.0 issuer: `{base}/{tid}/v2.0`.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base, self.tenant_id)
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base, self.tenant_id)
    }

    fn client(&self, id: &str) -> Option<&MockClient> {
        self.clients.iter().find(|c| c.client_id == id)
    }

    /// A v2.0 token for `user`, as Entra would issue it to `aud`.
    pub fn user_token(
        &self,
        user: &MockUser,
        aud: &str,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<String, String> {
        self.user_token_at(user, aud, nonce, now, None, &[])
    }

    /// The same, with `auth_time` (when the user authenticated).
    pub fn user_token_at(
        &self,
        user: &MockUser,
        aud: &str,
        nonce: Option<&str>,
        now: i64,
        auth_time: Option<i64>,
        acrs: &[String],
    ) -> Result<String, String> {
        let mut c = json!({
            "iss": self.issuer(),
            "aud": aud,
            "tid": self.tenant_id,
            "oid": user.object_id,
            "sub": format!("sub-{}", user.object_id),
            "iat": now, "nbf": now, "exp": now + 3600,
            "ver": "2.0",
            "uti": crate::util::random_id().ok_or("rng")?,
            "name": user.display_name,
            "preferred_username": user.upn,
            "email": user.upn,
            "roles": user.roles,
        });
        let m = c.as_object_mut().ok_or("claims")?;
        if let Some(n) = nonce {
            m.insert("nonce".into(), json!(n));
        }
        if let Some(t) = auth_time {
            m.insert("auth_time".into(), json!(t));
        }
        if !acrs.is_empty() {
            m.insert("acrs".into(), json!(acrs));
        }
        if user.mfa {
            m.insert("amr".into(), json!(["pwd", "mfa"]));
        } else {
            m.insert("amr".into(), json!(["pwd"]));
        }
        if user.groups_overage {
            // Entra's overage shape: no groups, a pointer to Graph instead.
            m.insert("_claim_names".into(), json!({"groups": "src1"}));
            m.insert(
                "_claim_sources".into(),
                json!({"src1": {"endpoint": format!("https://graph.microsoft.com/v1.0/users/{}/getMemberObjects", user.object_id)}}),
            );
        } else {
            m.insert("groups".into(), json!(user.groups));
        }
        self.signer.sign_jwt(&c).map_err(|e| e.to_string())
    }

    /// An app-only (client credentials) access token for `client`.
    pub fn app_token(&self, client: &MockClient, aud: &str, now: i64) -> Result<String, String> {
        let c = json!({
            "iss": self.issuer(),
            "aud": aud,
            "tid": self.tenant_id,
            "oid": client.service_principal_id,
            "sub": client.service_principal_id,
            "azp": client.client_id,
            "azpacr": if client.cert_public_key.is_some() { "2" } else { "1" },
            "idtyp": "app",
            "roles": client.app_roles,
            "iat": now, "nbf": now, "exp": now + 3600,
            "ver": "2.0",
            "uti": crate::util::random_id().ok_or("rng")?,
        });
        self.signer.sign_jwt(&c).map_err(|e| e.to_string())
    }
}

pub fn router(m: Arc<MockEntraOidc>) -> Router {
    Router::new()
        .route(
            "/{tid}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{tid}/discovery/v2.0/keys", get(keys))
        .route("/{tid}/oauth2/v2.0/authorize", get(authorize))
        .route("/{tid}/oauth2/v2.0/token", post(token))
        .route("/{tid}/oauth2/v2.0/logout", get(end_session))
        .with_state(m)
}

fn not_this_tenant(m: &MockEntraOidc, tid: &str) -> Option<Response> {
    (tid != m.tenant_id).then(|| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_tenant", "error_description": format!("AADSTS90002: Tenant '{tid}' not found.")})),
        )
            .into_response()
    })
}

async fn discovery(State(m): State<Arc<MockEntraOidc>>, Path(tid): Path<String>) -> Response {
    if let Some(r) = not_this_tenant(&m, &tid) {
        return r;
    }
    let b = format!("{}/{}", m.base, m.tenant_id);
    Json(json!({
        "issuer": m.issuer(),
        "authorization_endpoint": format!("{b}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{b}/oauth2/v2.0/token"),
        "jwks_uri": format!("{b}/discovery/v2.0/keys"),
        "end_session_endpoint": format!("{b}/oauth2/v2.0/logout"),
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "preferred_username", "oid", "tid", "ver", "email"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "tenant_region_scope": "EU",
    }))
    .into_response()
}

async fn keys(State(m): State<Arc<MockEntraOidc>>, Path(tid): Path<String>) -> Response {
    if let Some(r) = not_this_tenant(&m, &tid) {
        return r;
    }
    let mut jwk = m.signer.jwk();
    if let Some(o) = jwk.as_object_mut() {
        o.insert("issuer".into(), json!(m.issuer()));
    }
    Json(json!({ "keys": [jwk] })).into_response()
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    login_hint: Option<String>,
    prompt: Option<String>,
    /// OIDC Core §5.5 `claims`; Entra reads `id_token.acrs` from it.
    claims: Option<String>,
}

fn aad_error(status: StatusCode, error: &str, desc: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": desc})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct EndSessionQuery {
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    logout_hint: Option<String>,
}

/// Entra's `end_session_endpoint`: the tenant's own session ends; back to
/// `post_logout_redirect_uri` (with `state`) only when the app named by
/// `client_id` registered it as a redirect URI, as Entra requires.
async fn end_session(
    State(m): State<Arc<MockEntraOidc>>,
    Path(tid): Path<String>,
    Query(q): Query<EndSessionQuery>,
) -> Response {
    if let Some(r) = not_this_tenant(&m, &tid) {
        return r;
    }
    if let Ok(mut s) = m.sessions.lock() {
        match &q.logout_hint {
            Some(h) => {
                s.remove(h);
            }
            None => s.clear(),
        }
    }
    if let Ok(mut l) = m.signed_out.lock() {
        l.push(q.logout_hint.clone().unwrap_or_else(|| "-".into()));
    }
    let registered = q
        .client_id
        .as_deref()
        .and_then(|c| m.client(c))
        .zip(q.post_logout_redirect_uri.as_ref())
        .filter(|(c, uri)| c.redirect_uris.contains(uri))
        .map(|(_, uri)| uri.clone());
    match registered {
        Some(uri) => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            let to = match q.state {
                Some(s) => format!("{uri}{sep}state={}", crate::util::urlencode(&s)),
                None => uri,
            };
            redirect(to)
        }
        None => (StatusCode::OK, "You signed out of your account.\n").into_response(),
    }
}

fn redirect(to: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn authorize(
    State(m): State<Arc<MockEntraOidc>>,
    Path(tid): Path<String>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    if let Some(r) = not_this_tenant(&m, &tid) {
        return r;
    }
    let Some(client) = q.client_id.as_deref().and_then(|c| m.client(c)) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    };
    let Some(redirect_uri) = q.redirect_uri.filter(|r| client.redirect_uris.contains(r)) else {
        return aad_error(StatusCode::BAD_REQUEST, "invalid_request", "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.");
    };
    let enc = crate::util::urlencode;
    let state = q
        .state
        .as_deref()
        .map(|s| format!("&state={}", enc(s)))
        .unwrap_or_default();
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let fail = |error: &str, desc: &str| {
        redirect(format!(
            "{redirect_uri}{sep}error={}&error_description={}{state}",
            enc(error),
            enc(desc)
        ))
    };
    if q.response_type.as_deref() != Some("code") {
        return fail(
            "unsupported_response_type",
            "AADSTS700054: response_type 'code' is expected.",
        );
    }
    if !q
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .any(|s| s == "openid")
    {
        return fail(
            "invalid_scope",
            "AADSTS70011: the scope must contain openid.",
        );
    }
    let (Some(challenge), Some("S256")) = (q.code_challenge, q.code_challenge_method.as_deref())
    else {
        return fail(
            "invalid_request",
            "AADSTS501491: code_challenge with method S256 is required by this mock.",
        );
    };
    let user = match &q.login_hint {
        Some(h) => m.users.iter().find(|u| u.upn.eq_ignore_ascii_case(h)),
        None => m.users.first(),
    };
    // Entra's step-up: an essential authentication context makes the user
    // pass its Conditional Access policy (here: a second factor). One the
    // tenant has no policy for is ignored, as Entra ignores it.
    let acrs: Vec<String> = q
        .claims
        .as_deref()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|c| c["id_token"]["acrs"]["value"].as_str().map(str::to_string))
        .filter(|c| MFA_AUTH_CONTEXTS.contains(&c.as_str()))
        .into_iter()
        .collect();
    let Some(mut user) = user.cloned() else {
        return fail(
            "access_denied",
            "AADSTS50034: The user account does not exist in this directory.",
        );
    };
    let Some(code) = crate::util::random_id() else {
        return fail("server_error", "rng");
    };
    // The tenant's session: a fresh sign-in for prompt=login or none yet.
    let prompt = q.prompt.clone().unwrap_or_default();
    if let Ok(mut p) = m.prompts.lock() {
        p.push(prompt.clone());
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let auth_time = match m.sessions.lock() {
        Ok(mut s) => {
            let t = s.entry(user.upn.clone()).or_insert(now);
            if prompt.split(' ').any(|p| p == "login") {
                *t = now;
            }
            *t
        }
        Err(_) => now,
    };
    if let Ok(mut codes) = m.codes.lock() {
        codes.insert(
            code.clone(),
            Grant {
                client_id: client.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                challenge,
                nonce: q.nonce,
                user: {
                    user.mfa |= !acrs.is_empty();
                    user
                },
                auth_time,
                acrs,
            },
        );
    }
    redirect(format!("{redirect_uri}{sep}code={code}{state}"))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    scope: Option<String>,
}

/// Client authentication: the secret, or a client assertion signed with the
/// registered certificate's key (aud = the token endpoint, iss = sub = client).
#[allow(clippy::result_large_err)] // a mock: the Response is the error page
fn authenticate<'m>(
    m: &'m MockEntraOidc,
    f: &TokenForm,
    now: i64,
) -> Result<&'m MockClient, Response> {
    let bad = |desc: &str| aad_error(StatusCode::UNAUTHORIZED, "invalid_client", desc);
    let client = f
        .client_id
        .as_deref()
        .and_then(|c| m.client(c))
        .ok_or_else(|| bad("AADSTS700016: Application not found in the directory."))?;
    match (&f.client_secret, &f.client_assertion) {
        (Some(s), None) if client.secret.as_deref() == Some(s.as_str()) => Ok(client),
        (Some(_), None) => Err(bad("AADSTS7000215: Invalid client secret provided.")),
        (None, Some(a)) => {
            if f.client_assertion_type.as_deref() != Some(crate::trust::credential::ASSERTION_TYPE)
            {
                return Err(bad(
                    "AADSTS700027: client_assertion_type is not jwt-bearer.",
                ));
            }
            let Some(key) = &client.cert_public_key else {
                return Err(bad(
                    "AADSTS700027: no certificate credential is registered.",
                ));
            };
            verify_assertion(m, client, key, a, now).map_err(|d| bad(&d))?;
            Ok(client)
        }
        _ => Err(bad(
            "AADSTS7000218: The request body must contain client_assertion or client_secret.",
        )),
    }
}

fn verify_assertion(
    m: &MockEntraOidc,
    client: &MockClient,
    key: &[u8],
    assertion: &str,
    now: i64,
) -> Result<(), String> {
    let fail = |s: &str| {
        format!("AADSTS700027: Client assertion failed signature validation or claims: {s}")
    };
    let (input, sig) = assertion
        .rsplit_once('.')
        .ok_or_else(|| fail("not a JWT"))?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let sig = b64.decode(sig).map_err(|_| fail("signature encoding"))?;
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        key,
    )
    .verify(input.as_bytes(), &sig)
    .map_err(|_| fail("signature"))?;
    let (h, p) = input.split_once('.').ok_or_else(|| fail("not a JWT"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(h).map_err(|_| fail("header"))?)
            .map_err(|_| fail("header"))?;
    if header["alg"] != "RS256" || header.get("x5t").is_none() {
        return Err(fail("alg must be RS256 with an x5t header"));
    }
    let c: serde_json::Value = serde_json::from_slice(&b64.decode(p).map_err(|_| fail("payload"))?)
        .map_err(|_| fail("payload"))?;
    if c["aud"] != m.token_endpoint().as_str() {
        return Err(fail("aud is not the token endpoint"));
    }
    if c["iss"] != client.client_id.as_str() || c["sub"] != client.client_id.as_str() {
        return Err(fail("iss and sub must be the client id"));
    }
    if c["exp"].as_i64().unwrap_or(0) <= now || c["nbf"].as_i64().unwrap_or(i64::MAX) > now + 300 {
        return Err(fail("expired or not yet valid"));
    }
    let jti = c["jti"].as_str().ok_or_else(|| fail("no jti"))?.to_string();
    let mut seen = m.seen_assertions.lock().map_err(|_| fail("lock"))?;
    if seen.contains(&jti) {
        return Err(fail("jti replayed"));
    }
    seen.push(jti);
    Ok(())
}

async fn token(
    State(m): State<Arc<MockEntraOidc>>,
    Path(tid): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Some(r) = not_this_tenant(&m, &tid) {
        return r;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let client = match authenticate(&m, &f, now) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let grant_error = |desc: &str| aad_error(StatusCode::BAD_REQUEST, "invalid_grant", desc);
    match f.grant_type.as_str() {
        "authorization_code" => {
            let Some(grant) = f
                .code
                .as_deref()
                .and_then(|c| m.codes.lock().ok()?.remove(c))
            else {
                return grant_error("AADSTS70008: The provided authorization code is expired or was already redeemed.");
            };
            if grant.client_id != client.client_id
                || Some(&grant.redirect_uri) != f.redirect_uri.as_ref()
            {
                return grant_error(
                    "AADSTS50148: The code was issued to another client or redirect URI.",
                );
            }
            let verifier = f.code_verifier.unwrap_or_default();
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
            if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
                != grant.challenge
            {
                return grant_error("AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.");
            }
            let auth_time = m
                .auth_time_claim
                .load(std::sync::atomic::Ordering::SeqCst)
                .then_some(grant.auth_time);
            let id_token = match m.user_token_at(
                &grant.user,
                &client.client_id,
                grant.nonce.as_deref(),
                now,
                auth_time,
                &grant.acrs,
            ) {
                Ok(t) => t,
                Err(e) => return aad_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &e),
            };
            let access = match m.user_token(
                &grant.user,
                "00000003-0000-0000-c000-000000000000",
                None,
                now,
            ) {
                Ok(t) => t,
                Err(e) => return aad_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &e),
            };
            Json(json!({
                "token_type": "Bearer",
                "scope": "openid profile email",
                "expires_in": 3600,
                "ext_expires_in": 3600,
                "access_token": access,
                "id_token": id_token,
            }))
            .into_response()
        }
        "client_credentials" => {
            let scope = f.scope.unwrap_or_default();
            let Some(resource) = scope.strip_suffix("/.default") else {
                return aad_error(StatusCode::BAD_REQUEST, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.");
            };
            match m.app_token(client, resource, now) {
                Ok(t) => Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": t})).into_response(),
                Err(e) => aad_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &e),
            }
        }
        other => aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("AADSTS70003: The app requested an unsupported grant type '{other}'."),
        ),
    }
}

/// The RSA public key (PKCS#1 DER) of a PEM certificate: what the mock
/// tenant keeps of an uploaded certificate credential.
pub fn rsa_public_key_of_cert(cert_pem: &str) -> Result<Vec<u8>, String> {
    let certs =
        crate::trust::certs::TrustedCert::from_pem_bundle(cert_pem).map_err(|e| e.to_string())?;
    let cert = certs.first().ok_or("no certificate")?;
    let (_, x) = x509_parser::parse_x509_certificate(&cert.der).map_err(|e| e.to_string())?;
    Ok(x.public_key().subject_public_key.data.to_vec())
}
