//! fedgate as OpenID provider for consoles that speak OpenID Connect
//! (Acronis-style): discovery, the authorization endpoint (code flow, PKCE
//! S256 required), the token endpoint's `authorization_code` grant, userinfo.
//!
//! - Clients are the consoles with an `[consoles.oidc]` registration: a
//!   client id, a secret (file or environment variable, read at each use so
//!   a rotated secret needs no restart), redirect URIs compared exactly, and
//!   the tenants whose users may sign in there.
//! - `/oauth2/authorize` with no fedgate session (or one from a tenant this
//!   console does not serve) saves the request, signs the user in at the
//!   tenant's Entra (OIDC), and resumes. With a session it runs policy for
//!   the console: a denial goes back to the console as `access_denied` with
//!   fedgate's code in `error_description`; a grant gets a one-time code
//!   (60 s, bound to the client, the redirect URI and the PKCE challenge).
//! - The ID token carries the console's granted roles and scopes under the
//!   console profile's claim names, plus `role_assignments` (each role with
//!   its scope: the Acronis-style profile scopes roles to a customer tenant
//!   or unit). Signed ES256 or RS256 per console (`token_alg`), with the keys
//!   published at `/oauth2/jwks`.
//! - Errors before the redirect URI is known to be the client's are shown
//!   to the user, never redirected (RFC 6749 §4.1.2.1).
//!
//! It is a flow of the gateway (it runs policy, keeps its codes and saved
//! requests in the store, signs users in at the tenant), so it lives in
//! `gateway/` beside the SAML and token flows; what it hands the console
//! (the claims of its tokens) comes from `outbound`.

use std::collections::HashMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::audit::AuditEvent;
use crate::config::{Console, ConsoleOidc};
use crate::gateway::{App, Outcome, Refusal};
use crate::identity::{Grant, Identity};
use crate::util::{random_id, urlencode};

/// How long an authorization code lives.
pub const CODE_TTL: Duration = Duration::seconds(60);
const CODE_NS: &str = "oauth-code";
const PENDING_NS: &str = "oauth-authorize";

/// The OpenID provider's discovery document.
pub fn discovery(public_url: &str, algs: &[&str]) -> serde_json::Value {
    json!({
        "issuer": public_url,
        "authorization_endpoint": format!("{public_url}/oauth2/authorize"),
        "token_endpoint": format!("{public_url}/oauth2/token"),
        "userinfo_endpoint": format!("{public_url}/oauth2/userinfo"),
        "end_session_endpoint": format!("{public_url}/oauth2/logout"),
        "jwks_uri": format!("{public_url}/oauth2/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", crate::outbound::token::GRANT_TOKEN_EXCHANGE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email", "email_verified", "preferred_username", "tid", "oid", "roles", "role_assignments"],
    })
}

/// An authorization request (the query of `/oauth2/authorize`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// fedgate's home-realm hint: which tenant to sign in at.
    pub tenant: Option<String>,
    pub login_hint: Option<String>,
    /// OIDC Core §3.1.2.1: `login` (a fresh sign-in at the tenant, even
    /// with a session), `none` (no user interaction: `login_required` when
    /// there is no usable session). Other values are ignored.
    pub prompt: Option<String>,
    /// Seconds: a session whose sign-in is older (or of unknown age) is
    /// not used; the user signs in again at the tenant.
    pub max_age: Option<String>,
}

/// A console's request kept while the user signs in at the tenant, with
/// when that sign-in was started (for `prompt=login` and `max_age`).
#[derive(Serialize, Deserialize)]
struct PendingAuthorize {
    request: AuthorizeRequest,
    /// Unix seconds.
    started: i64,
    /// The sign-in was forced fresh at the tenant (ForceAuthn / prompt=login).
    forced: bool,
    /// The sign-in is a step-up for a rule (MFA, or a fresher sign-in):
    /// the answer gets no second one.
    #[serde(default)]
    step_up: bool,
}

/// How a resumed request's sign-in was started.
#[derive(Clone, Copy)]
struct Resumed {
    started: OffsetDateTime,
    forced: bool,
    step_up: bool,
}

/// What a sign-in at the tenant asks for.
#[derive(Clone, Copy, Default)]
struct Ask {
    force: bool,
    mfa: bool,
    step_up: bool,
}

/// What an authorization code stands for.
#[derive(Serialize, Deserialize)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scope: String,
    tenant: String,
    identity: Identity,
    grants: Vec<Grant>,
    /// The fedgate session's id (the ID token's `sid`, for back-channel logout).
    #[serde(default)]
    sid: Option<String>,
}

fn page(status: u16, code: &'static str, message: impl Into<String>) -> Outcome {
    Outcome::Refused(Refusal::new(status, code, message))
}

/// 404 `tenant.unknown`, the client's id clipped.
fn unknown_tenant(tenant: &str) -> Outcome {
    page(
        404,
        "tenant.unknown",
        format!(
            "no tenant {:?}",
            crate::util::clip(tenant, crate::audit::CLIP)
        ),
    )
}

/// The login-state budget an authorization request counts against
/// (`gateway::login_start_allowed`): its registered client's, or none for
/// an unknown `client_id` (refused by [`authorize`] anyway).
pub fn budget_scope(app: &App, client_id: Option<&str>) -> Option<String> {
    let (console, _) = client_of(app, client_id?)?;
    Some(format!("console:{}", console.id))
}

fn client_of<'a>(app: &'a App, client_id: &str) -> Option<(&'a Console, &'a ConsoleOidc)> {
    app.config.consoles.iter().find_map(|c| {
        c.oidc
            .as_ref()
            .filter(|o| o.client_id == client_id)
            .map(|o| (c, o))
    })
}

/// Back to the client with an error (RFC 6749 §4.1.2.1).
fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Outcome {
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut location = format!(
        "{redirect_uri}{sep}error={}&error_description={}",
        urlencode(error),
        urlencode(description)
    );
    if let Some(s) = state {
        location.push_str(&format!("&state={}", urlencode(s)));
    }
    Outcome::Redirect {
        location,
        session: None,
    }
}

/// `GET /oauth2/authorize`. `binding` is the browser's login-binding
/// cookie, reused when the user must sign in at the tenant.
pub async fn authorize(
    app: &App,
    req: AuthorizeRequest,
    session: Option<&str>,
    binding: Option<&str>,
    client_ip: Option<String>,
) -> Outcome {
    authorize_inner(app, req, session, binding, client_ip, None).await
}

/// What `prompt` and `max_age` ask for.
struct Freshness {
    none: bool,
    login: bool,
    max_age: Option<i64>,
}

fn freshness(req: &AuthorizeRequest) -> Result<Freshness, &'static str> {
    let prompts: Vec<&str> = req
        .prompt
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    let none = prompts.contains(&"none");
    if none && prompts.len() > 1 {
        return Err("oauth.prompt_invalid: prompt=none cannot be combined with other values");
    }
    let max_age = match req.max_age.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or("oauth.max_age_invalid: max_age must be a number of seconds")?,
        ),
    };
    Ok(Freshness {
        none,
        login: prompts.contains(&"login"),
        max_age,
    })
}

/// The authorization endpoint; `resumed` is set when the session comes
/// from the sign-in this request started (when it started, and whether it
/// was forced fresh).
async fn authorize_inner(
    app: &App,
    req: AuthorizeRequest,
    session: Option<&str>,
    binding: Option<&str>,
    client_ip: Option<String>,
    resumed: Option<Resumed>,
) -> Outcome {
    let now = app.now();
    let Some((console, reg)) = req.client_id.as_deref().and_then(|c| client_of(app, c)) else {
        return page(
            400,
            "oauth.client_unknown",
            "no console is registered with this client_id",
        );
    };
    let Some(redirect_uri) = req
        .redirect_uri
        .clone()
        .filter(|r| reg.redirect_uris.iter().any(|x| x == r))
    else {
        return page(
            400,
            "oauth.redirect_uri_mismatch",
            format!(
                "redirect_uri is not one registered for console {:?} (compared exactly: scheme, host, port, path, trailing slash)",
                console.id
            ),
        );
    };
    let state = req.state.as_deref();
    if req.response_type.as_deref() != Some("code") {
        return error_redirect(
            &redirect_uri,
            state,
            "unsupported_response_type",
            "oauth.response_type: only response_type=code is supported",
        );
    }
    if !req
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .any(|s| s == "openid")
    {
        return error_redirect(
            &redirect_uri,
            state,
            "invalid_scope",
            "oauth.scope: the scope must include openid",
        );
    }
    let Some(challenge) = req
        .code_challenge
        .clone()
        .filter(|_| req.code_challenge_method.as_deref() == Some("S256"))
    else {
        return error_redirect(
            &redirect_uri,
            state,
            "invalid_request",
            "oauth.pkce_required: code_challenge with code_challenge_method=S256 is required",
        );
    };

    // The signed-in user, if their session is from a tenant this console serves.
    let stored = match session {
        Some(s) => match app.open_session(s, now).await {
            Ok(found) => found,
            Err(e) => return Outcome::Refused(crate::gateway::store_down(app, "oauth", e)),
        },
        None => None,
    };
    let held = stored
        .as_ref()
        .map(|o| (o.id.clone(), o.session.identity.expires_at));
    // The session's tenant is fedgate's typed fact, never an attribute.
    let signed_in = stored.and_then(|o| o.session.tenant.map(|t| (t, o.session.identity)));
    let signed_in = signed_in.filter(|(t, _)| {
        reg.tenants.contains(t) && req.tenant.as_ref().is_none_or(|want| want == t)
    });
    let fresh = match freshness(&req) {
        Ok(f) => f,
        Err(e) => return error_redirect(&redirect_uri, state, "invalid_request", e),
    };
    // A sign-in at the tenant is forced fresh for prompt=login and max_age:
    // the tenant's own session may be older than the console allows.
    let force = fresh.login || fresh.max_age.is_some();
    let login_required = |why: &str| error_redirect(&redirect_uri, state, "login_required", why);
    let Some((tenant, identity)) = signed_in else {
        if fresh.none {
            return login_required(
                "oauth.login_required: prompt=none, and there is no fedgate session for this console",
            );
        }
        let ask = Ask {
            force,
            ..Ask::default()
        };
        return sign_in_first(app, &req, reg, binding, ask, now).await;
    };
    let Some(rt) = app.tenants.get(&tenant) else {
        return unknown_tenant(&tenant);
    };
    // How old the session's sign-in is: the tenant's auth_time/AuthnInstant,
    // never a time fedgate makes up.
    let age = identity.auth_time.map(|t| (now - t).whole_seconds());
    match resumed {
        // Back from the sign-in this request started: it is the fresh one,
        // unless the tenant says it authenticated before it was asked to.
        Some(Resumed {
            started, forced, ..
        }) => {
            let before = identity
                .auth_time
                .is_some_and(|t| t < started - rt.settings.skew);
            if (fresh.login || fresh.max_age.is_some()) && (!forced || before) {
                return login_required(
                    "oauth.login_not_fresh: the tenant did not sign the user in afresh (it reused an earlier sign-in)",
                );
            }
            if fresh.max_age.is_some() && identity.auth_time.is_none() {
                return login_required(
                    "oauth.auth_time_unknown: max_age needs the time of the sign-in, and the tenant did not send one (Entra OIDC: add the auth_time optional claim to fedgate's app registration)",
                );
            }
        }
        None => {
            let too_old = fresh.max_age.is_some_and(|m| age.is_none_or(|a| a > m));
            if fresh.login || too_old {
                if fresh.none {
                    return login_required(
                        "oauth.login_required: prompt=none, and the session's sign-in is older than max_age (or of unknown age)",
                    );
                }
                let ask = Ask {
                    force: true,
                    ..Ask::default()
                };
                return sign_in_first(app, &req, reg, binding, ask, now).await;
            }
        }
    }

    let mut event =
        AuditEvent::new(now, &tenant, "oidc-provider", client_ip).with_identity(&identity);
    event.console = Some(console.id.clone());
    let decision = crate::gateway::decide(app, rt, &identity, console, now);
    event.rules_matched = decision.matched_rules();
    // Step-up instead of a dead end: once, for a rule that needs MFA or a
    // fresher sign-in (see gateway::deliver's step_up).
    let need = decision
        .denial
        .as_ref()
        .filter(|_| !decision.allowed())
        .and_then(|d| crate::gateway::curable(d.code));
    if let Some(need) = need.filter(|_| !resumed.is_some_and(|r| r.step_up)) {
        let ask = Ask {
            force: true,
            mfa: need == crate::gateway::Need::Mfa,
            step_up: true,
        };
        let (code, message) = decision.denial_reason();
        return match sign_in_first(app, &req, reg, binding, ask, now).await {
            Outcome::StartLogin { location, binding } => {
                event.outcome = "step_up";
                event.code = code.to_string();
                event.reason = format!("{message}; signing in again at the tenant (step-up)");
                app.record_audit(&event);
                app.metrics.login(&tenant, &console.id, "step_up", code);
                Outcome::StepUp {
                    location,
                    binding,
                    message: crate::gateway::step_up_message(need, &console.display_name),
                }
            }
            other => other,
        };
    }
    if !decision.allowed() {
        let (code, message) = decision.denial_reason();
        event.outcome = "denied";
        event.code = code.to_string();
        event.reason = message.clone();
        app.record_audit(&event);
        app.metrics.login(&tenant, &console.id, "denied", code);
        return error_redirect(
            &redirect_uri,
            state,
            "access_denied",
            &format!("{code}: {message}"),
        );
    }
    // The ID token names the user by e-mail (`email`, `preferred_username`):
    // only in a domain the user's tenant owns, else no code at all.
    if let Err(e) = crate::domains::console_address(&identity, &tenant, &rt.config.domains) {
        use crate::identity::ErrorCode;
        event.outcome = "denied";
        event.code = e.code().to_string();
        event.reason = e.to_string();
        app.record_audit(&event);
        app.metrics.login(&tenant, &console.id, "denied", e.code());
        return error_redirect(
            &redirect_uri,
            state,
            "access_denied",
            &format!("{}: {e}", e.code()),
        );
    }
    let Some(code) = random_id() else {
        return page(
            500,
            "internal.rng_failed",
            "the system random number generator failed",
        );
    };
    let grant_subject = identity.subject.clone();
    let grant = CodeGrant {
        client_id: reg.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        code_challenge: challenge,
        nonce: req.nonce.clone(),
        scope: req.scope.clone().unwrap_or_default(),
        tenant: tenant.clone(),
        identity,
        grants: decision.grants.clone(),
        sid: held.as_ref().map(|(id, _)| id.clone()),
    };
    let bytes = match serde_json::to_vec(&grant) {
        Ok(b) => b,
        Err(e) => return page(500, "internal.encode_failed", e.to_string()),
    };
    if let Err(e) = app
        .store
        .put_state(CODE_NS, &code, &bytes, now + CODE_TTL)
        .await
    {
        return Outcome::Refused(crate::gateway::store_down(app, "oauth", e));
    }
    event.outcome = "allowed";
    event.code = "ok".into();
    event.roles_granted = decision.grants;
    event.reason = format!(
        "authorization code issued; granted by {}",
        event.rules_matched.join(", ")
    );
    app.record_audit(&event);
    app.metrics.login(&tenant, &console.id, "allowed", "ok");
    if let Some((id, until)) = &held {
        let user = (tenant.as_str(), grant_subject.as_str());
        app.record_reach(user, id, *until, &console.id, crate::gateway::Reach::Oidc)
            .await;
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut location = format!("{redirect_uri}{sep}code={code}");
    if let Some(s) = state {
        location.push_str(&format!("&state={}", urlencode(s)));
    }
    Outcome::Redirect {
        location,
        session: None,
    }
}

/// No usable session: keep the request, sign in at the tenant, come back.
async fn sign_in_first(
    app: &App,
    req: &AuthorizeRequest,
    reg: &ConsoleOidc,
    binding: Option<&str>,
    ask: Ask,
    now: OffsetDateTime,
) -> Outcome {
    let force = ask.force;
    let tenant = match (&req.tenant, reg.tenants.as_slice()) {
        (Some(t), _) if reg.tenants.contains(t) => t.clone(),
        (Some(t), _) => {
            return page(
                403,
                "oauth.tenant_not_allowed",
                format!("users of tenant {t:?} do not sign in to this console"),
            );
        }
        (None, [only]) => only.clone(),
        (None, _) => {
            // Home-realm discovery: let the user pick, by links carrying tenant=.
            let links: Vec<(String, String)> = reg
                .tenants
                .iter()
                .map(|t| {
                    let mut q = req.clone();
                    q.tenant = Some(t.clone());
                    let query = serde_urlencoded(&q);
                    (format!("/oauth2/authorize?{query}"), t.clone())
                })
                .collect();
            return Outcome::ChooseTenant {
                links,
                binding: None,
            };
        }
    };
    let Some(rt) = app.tenants.get(&tenant) else {
        return unknown_tenant(&tenant);
    };
    let Some(key) = random_id() else {
        return page(
            500,
            "internal.rng_failed",
            "the system random number generator failed",
        );
    };
    let pending = PendingAuthorize {
        request: req.clone(),
        started: now.unix_timestamp(),
        forced: force,
        step_up: ask.step_up,
    };
    let bytes = match serde_json::to_vec(&pending) {
        Ok(b) => b,
        Err(e) => return page(500, "internal.encode_failed", e.to_string()),
    };
    if let Err(e) = app
        .store
        .put_state(
            PENDING_NS,
            &key,
            &bytes,
            now + crate::inbound::oidc::LOGIN_STATE_TTL,
        )
        .await
    {
        return Outcome::Refused(crate::gateway::store_down(app, "oauth", e));
    }
    // Sign in at the tenant by OIDC when fedgate has an app registration
    // there, else by SP-initiated SAML.
    let target = format!("authorize:{key}");
    let start = crate::gateway::LoginStart {
        login_hint: req.login_hint.as_deref(),
        binding,
        force_authn: force,
        require_mfa: ask.mfa,
    };
    if rt.login.is_some() {
        crate::gateway::oidc_login_with(app, &tenant, &target, &start, None).await
    } else {
        crate::gateway::saml_login_with(app, &tenant, &target, &start, None).await
    }
}

fn serde_urlencoded(q: &AuthorizeRequest) -> String {
    let v = serde_json::to_value(q).unwrap_or_default();
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| format!("{k}={}", urlencode(s))))
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default()
}

/// `GET /oauth2/authorize/resume?k=…`: back from the tenant's sign-in.
pub async fn resume(
    app: &App,
    key: &str,
    session: Option<&str>,
    binding: Option<&str>,
    client_ip: Option<String>,
) -> Outcome {
    let now = app.now();
    let saved = match app.store.take_state(PENDING_NS, key, now).await {
        Ok(Some(b)) => b,
        Ok(None) => return page(400, "oauth.request_expired", "the console's sign-in request is unknown, used, or older than 10 minutes: start again at the console"),
        Err(e) => return Outcome::Refused(crate::gateway::store_down(app, "oauth", e)),
    };
    let Ok(pending) = serde_json::from_slice::<PendingAuthorize>(&saved) else {
        return page(
            400,
            "oauth.request_expired",
            "the saved request is unreadable",
        );
    };
    if session.is_none() {
        return page(400, "oauth.session_missing", "signed in, but the browser did not send fedgate's session cookie back (are cookies blocked?)");
    }
    let started = OffsetDateTime::from_unix_timestamp(pending.started).unwrap_or(now);
    authorize_inner(
        app,
        pending.request,
        session,
        binding,
        client_ip,
        Some(Resumed {
            started,
            forced: pending.forced,
            step_up: pending.step_up,
        }),
    )
    .await
}

mod logout;
mod token_endpoint;
pub use logout::{end_session, LogoutRequest};
pub use token_endpoint::{basic_credentials, token, userinfo, TokenError};
