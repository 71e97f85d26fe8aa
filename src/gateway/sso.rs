//! SP-initiated login at fedgate's IdP: a console's AuthnRequest at
//! `{public_url}/idp/sso` (read and checked by [`crate::outbound::sso`]),
//! answered with a Response carrying its ID as `InResponseTo` and its
//! RelayState unchanged, posted to the console's registered reply URL.
//!
//! With a fedgate session from a tenant whose users reach this console
//! (the tenants its rules name), the answer is immediate. Otherwise the
//! request is kept (ten minutes, bound to the browser like every login
//! state) and the user signs in at the tenant first (one tenant: there;
//! several: a chooser), by OIDC when fedgate has an app registration there,
//! else by SP-initiated SAML, and comes back to `/idp/sso/resume`, as the
//! OpenID provider does.
//!
//! What the console asks for is honoured:
//! - `ForceAuthn`: the tenant is asked for a fresh sign-in, and the
//!   session that comes back must be from after the request;
//! - `RequestedAuthnContext`: met from the tenant's MFA verdict
//!   ([`crate::outbound::sso::AuthnContextRequest::answer`]); one that
//!   needs MFA the session lacks starts a sign-in that asks the tenant for
//!   it (step-up), once; one fedgate can never meet is answered with the
//!   SAML status `NoAuthnContext`;
//! - `IsPassive`: without a usable session, the SAML status `NoPassive`
//!   (no sign-in page is shown).
//!
//! A signed request's ID is used once (a replay is refused); unsigned
//! requests cost no state until a sign-in is needed, and then count against
//! the same budgets as every login start (`server.login_starts_per_minute`
//! per address, `server.login_states_per_tenant` per console).

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::deliver::deliver;
use super::login_state::{self, LoginStart};
use super::{refuse, rng_failed, store_down, App, Outcome, Refusal};
use crate::audit::AuditEvent;
use crate::config::{Config, Console};
use crate::identity::ErrorCode;
use crate::outbound::saml_post::{self, InResponse};
use crate::outbound::sso::{self, ConsoleRequest, ContextAnswer, RequestingConsole};
use crate::util::{random_id, urlencode};

/// Where pending console requests wait for the user's sign-in.
const PENDING_NS: &str = "idp-sso";
/// Signed request IDs already answered.
const REPLAY_NS: &str = "idp-request";
/// The clock skew allowed on a console's IssueInstant.
const SKEW: Duration = Duration::minutes(3);

/// A console's request as it arrived (owned: it is read on the CPU pool).
#[derive(Debug, Clone)]
pub enum SsoRequest {
    /// HTTP-Redirect: the raw query string.
    Redirect { query: String },
    /// HTTP-POST: the form's fields.
    Post {
        saml_request: String,
        relay_state: Option<String>,
    },
}

/// A request kept while the user signs in at the tenant.
#[derive(Serialize, Deserialize)]
struct PendingSso {
    request: ConsoleRequest,
    /// Unix seconds: when the sign-in was started.
    started: i64,
    /// The sign-in was forced fresh (ForceAuthn, or a step-up).
    forced: bool,
    /// The tenant was asked for MFA (a step-up).
    mfa: bool,
    /// The sign-in is a step-up (for the console's context or a rule):
    /// the answer gets no second one.
    #[serde(default)]
    step_up: bool,
    /// SHA-256 of the browser binding.
    binding: String,
}

/// The consoles that may send AuthnRequests (those with an Identifier and
/// a reply URL), with their certificates loaded.
pub fn requesting_consoles(config: &Config) -> Result<Vec<RequestingConsole>, String> {
    config
        .consoles
        .iter()
        .filter(|c| !c.identifier.is_empty() && !c.reply_url.is_empty())
        .map(|c| {
            let certs = match &c.certificate_file {
                None => Vec::new(),
                Some(p) => {
                    let pem = std::fs::read_to_string(p)
                        .map_err(|e| format!("console {:?}: {}: {e}", c.id, p.display()))?;
                    crate::trust::certs::TrustedCert::from_pem_bundle(&pem).map_err(|e| {
                        format!("console {:?}: certificate_file {}: {e}", c.id, p.display())
                    })?
                }
            };
            if c.certificate_file.is_some() && certs.is_empty() {
                return Err(format!(
                    "console {:?}: certificate_file holds no certificate",
                    c.id
                ));
            }
            Ok(RequestingConsole {
                id: c.id.clone(),
                identifier: c.identifier.clone(),
                reply_url: c.reply_url.clone(),
                certs,
                require_signed: c.authn_requests_signed,
            })
        })
        .collect()
}

/// The console a `sso:{console}:{key}` login target names.
pub(super) fn target_console(target: &str) -> Option<&str> {
    target.strip_prefix("sso:")?.split_once(':').map(|(c, _)| c)
}

/// Where a login for a `sso:` target resumes.
pub(super) fn resume_location(app: &App, target: &str) -> Option<String> {
    let (_, key) = target.strip_prefix("sso:")?.split_once(':')?;
    Some(format!(
        "{}{}/resume?k={}",
        app.config.server.public_url,
        sso::SSO_PATH,
        urlencode(key)
    ))
}

/// The tenants whose users may reach a console: those its rules name, in
/// the configuration's order.
fn realms(app: &App, console: &str) -> Vec<String> {
    app.config
        .tenants
        .iter()
        .filter(|t| {
            app.config
                .rules
                .iter()
                .any(|r| r.console == console && r.tenant == t.id)
        })
        .map(|t| t.id.clone())
        .collect()
}

fn sso_url(app: &App) -> String {
    format!("{}{}", app.config.server.public_url, sso::SSO_PATH)
}

/// `GET|POST /idp/sso`: a console's AuthnRequest.
pub async fn idp_sso(
    app: &App,
    request: SsoRequest,
    session: Option<&str>,
    binding: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Outcome {
    let now = app.now();
    let mut event = AuditEvent::new(now, "-", "idp-sso", client.map(|c| c.to_string()));
    // Reading includes a signature check: on the CPU pool, admitted.
    let consoles = app.sso_consoles.clone();
    let url = sso_url(app);
    let read = app
        .cpu
        .admit(move || {
            let incoming = match &request {
                SsoRequest::Redirect { query } => sso::Incoming::Redirect { query },
                SsoRequest::Post {
                    saml_request,
                    relay_state,
                } => sso::Incoming::Post {
                    saml_request: Some(saml_request),
                    saml_response: None,
                    relay_state: relay_state.as_deref(),
                },
            };
            sso::read(incoming, &consoles, &url, now, SKEW)
        })
        .await;
    let req = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return refuse(app, event, Refusal::new(400, e.code(), e.to_string())),
        Err(e) => return refuse(app, event, Refusal::from_pool(e)),
    };
    event.console = Some(req.console.clone());
    if req.signed {
        let key = format!("{}:{}", req.console, req.id);
        let until = now + sso::MAX_REQUEST_AGE + SKEW + SKEW;
        match app.store.claim_once(REPLAY_NS, &key, until, now).await {
            Ok(true) => {}
            Ok(false) => {
                let r = Refusal::new(
                    400,
                    "idp.request_replayed",
                    format!(
                        "console {:?}'s AuthnRequest {} was already answered: start again at the console",
                        req.console,
                        crate::util::clip(&req.id, 64)
                    ),
                );
                return refuse(app, event, r);
            }
            Err(e) => return refuse(app, event, store_down(app, "claim_once", e)),
        }
    }
    let ctx = Context {
        session,
        binding,
        client,
    };
    answer(app, req, &ctx, None, event, now).await
}

/// What the browser brought along.
struct Context<'a> {
    session: Option<&'a str>,
    binding: Option<&'a str>,
    client: Option<std::net::IpAddr>,
}

/// How a resumed request's sign-in was started.
struct Resumed {
    started: OffsetDateTime,
    forced: bool,
    mfa: bool,
    step_up: bool,
}

/// What a sign-in at the tenant asks for.
struct Ask {
    /// A fresh sign-in (ForceAuthn, or a policy's maximum age).
    force: bool,
    /// MFA (the console's context, or a rule).
    mfa: bool,
    /// It is a step-up: the answer gets no second one.
    step_up: bool,
}

/// Answer a checked request: at once from the session, or after a sign-in.
async fn answer(
    app: &App,
    req: ConsoleRequest,
    ctx: &Context<'_>,
    resumed: Option<Resumed>,
    mut event: AuditEvent,
    now: OffsetDateTime,
) -> Outcome {
    let Some(console) = app.console(&req.console) else {
        let r = Refusal::new(
            404,
            "console.unknown",
            "the console is no longer configured",
        );
        return refuse(app, event, r);
    };
    let allowed_realms = realms(app, &console.id);
    let stored = match ctx.session {
        Some(s) => match app.open_session(s, now).await {
            Ok(found) => found,
            Err(e) => return refuse(app, event, store_down(app, "get_session", e)),
        },
        None => None,
    };
    let held = stored
        .as_ref()
        .map(|o| (o.id.clone(), o.session.identity.expires_at));
    // The session's tenant is fedgate's typed fact, never an attribute.
    let signed_in = stored
        .and_then(|o| o.session.tenant.map(|t| (t, o.session.identity)))
        .filter(|(t, _)| allowed_realms.contains(t));
    let context = req.authn_context.clone();
    if context
        .as_ref()
        .is_some_and(|c| c.answer(true) == ContextAnswer::Impossible)
    {
        return status_answer(app, console, &req, "NoAuthnContext", event, now).await;
    }
    let Some((tenant, identity)) = signed_in else {
        if resumed.is_some() {
            let r = Refusal::new(
                400,
                "idp.session_missing",
                "signed in, but the browser did not send fedgate's session cookie back (are cookies blocked?)",
            );
            return refuse(app, event, r);
        }
        if req.is_passive {
            return status_answer(app, console, &req, "NoPassive", event, now).await;
        }
        let needs_mfa = context
            .as_ref()
            .is_some_and(|c| c.answer(false) == ContextAnswer::NeedsMfa);
        let ask = Ask {
            force: needs_mfa,
            mfa: needs_mfa,
            step_up: needs_mfa,
        };
        return sign_in_first(app, req, ctx, ask, event, now).await;
    };
    let Some(rt) = app.tenants.get(&tenant) else {
        let r = Refusal::new(404, "tenant.unknown", "the session's tenant is gone");
        return refuse(app, event, r);
    };
    event.tenant = tenant.clone();
    event = event.with_identity(&identity);
    let met = context.as_ref().map(|c| c.answer(identity.mfa));
    match &resumed {
        Some(r) => {
            // Back from the sign-in this request started: it must be the
            // fresh one when one was asked for, and have done MFA when that
            // was the point.
            let before = identity
                .auth_time
                .is_none_or(|t| t < r.started - rt.settings.skew);
            if r.forced && before {
                let r = Refusal::new(
                    403,
                    "idp.login_not_fresh",
                    "the console asked for a fresh sign-in (ForceAuthn), and the tenant reused an earlier one (or sent no authentication time)",
                );
                return refuse(app, event, r);
            }
            if r.mfa && !identity.mfa {
                return refuse(app, event, mfa_not_performed(&console.display_name));
            }
        }
        None => {
            let needs_mfa = met == Some(ContextAnswer::NeedsMfa);
            if req.force_authn || needs_mfa {
                if req.is_passive {
                    return status_answer(app, console, &req, "NoPassive", event, now).await;
                }
                let ask = Ask {
                    force: true,
                    mfa: needs_mfa,
                    step_up: needs_mfa,
                };
                return sign_in_first(app, req, ctx, ask, event, now).await;
            }
        }
    }
    let authn_class = match met {
        Some(ContextAnswer::Met(class)) => Some(class),
        Some(_) => return refuse(app, event, mfa_not_performed(&console.display_name)),
        None => None,
    };
    let reply = InResponse {
        id: req.id.clone(),
        relay_state: req.relay_state.clone(),
        authn_class,
    };
    // A policy that would grant access only with MFA (or a fresher
    // sign-in): sign in again once, asking for it, and decide again then.
    let step_up_done = resumed.as_ref().is_some_and(|r| r.step_up);
    if !step_up_done {
        let decision = super::deliver::decide(app, rt, &identity, console, now);
        let need = decision
            .denial
            .as_ref()
            .filter(|_| !decision.allowed())
            .and_then(|d| super::deliver::curable(d.code));
        if let Some(need) = need {
            if req.is_passive {
                return status_answer(app, console, &req, "NoPassive", event, now).await;
            }
            let ask = Ask {
                force: true,
                mfa: need == super::deliver::Need::Mfa,
                step_up: true,
            };
            return sign_in_first(app, req, ctx, ask, event, now).await;
        }
    }
    deliver(
        app,
        rt,
        &identity,
        &console.id,
        Some(&reply),
        held.as_ref().map(|(id, e)| (id.as_str(), *e)),
        false,
        event,
        now,
    )
    .await
}

fn mfa_not_performed(console: &str) -> Refusal {
    let mut r = Refusal::new(
        403,
        "idp.mfa_not_performed",
        "the console asks for a multi-factor sign-in, and the tenant signed the user in without one",
    );
    r.console = Some(console.to_string());
    r
}

/// No usable session (or not fresh, or without the MFA the console asks
/// for): keep the request, sign in at the tenant, come back.
async fn sign_in_first(
    app: &App,
    req: ConsoleRequest,
    ctx: &Context<'_>,
    ask: Ask,
    event: AuditEvent,
    now: OffsetDateTime,
) -> Outcome {
    let mfa = ask.mfa;
    let scope = format!("console:{}", req.console);
    if let Some(ip) = ctx.client {
        if let Err(r) = super::login_start_allowed(app, ip, Some(&scope)) {
            return Outcome::Refused(r);
        }
    }
    let realms = realms(app, &req.console);
    if realms.is_empty() {
        let r = Refusal::new(
            403,
            "idp.no_tenant",
            format!(
                "no rule names console {:?}: no tenant's users sign in to it",
                req.console
            ),
        );
        return refuse(app, event, r);
    }
    let (Some(key), Some(binding)) = (random_id(), login_state::binding_or_new(ctx.binding)) else {
        return refuse(app, event, rng_failed());
    };
    let forced = req.force_authn || ask.force || mfa;
    let console = req.console.clone();
    let login_hint = req.login_hint.clone();
    let pending = PendingSso {
        request: req,
        started: now.unix_timestamp(),
        forced,
        mfa,
        step_up: ask.step_up,
        binding: login_state::binding_digest(&binding),
    };
    let bytes = match serde_json::to_vec(&pending) {
        Ok(b) => b,
        Err(e) => {
            let r = Refusal::new(500, "internal.encode_failed", e.to_string());
            return refuse(app, event, r);
        }
    };
    let expires = now + login_state::PENDING_WINDOW;
    if let Err(e) = app.store.put_state(PENDING_NS, &key, &bytes, expires).await {
        return refuse(app, event, store_down(app, "put_state", e));
    }
    let start = Start {
        console: &console,
        key: &key,
        binding: &binding,
        forced,
        mfa,
        login_hint: login_hint.as_deref(),
    };
    match realms.as_slice() {
        [only] => start_at(app, only, &start, ctx.client).await,
        _ => {
            let links = realms
                .iter()
                .map(|t| {
                    (
                        format!(
                            "{}/realm?k={}&tenant={}",
                            sso::SSO_PATH,
                            urlencode(&key),
                            urlencode(t)
                        ),
                        t.clone(),
                    )
                })
                .collect();
            Outcome::ChooseTenant {
                links,
                binding: Some(binding),
            }
        }
    }
}

/// A sign-in to start at a tenant for a kept request.
struct Start<'a> {
    console: &'a str,
    key: &'a str,
    binding: &'a str,
    forced: bool,
    mfa: bool,
    login_hint: Option<&'a str>,
}

async fn start_at(
    app: &App,
    tenant: &str,
    s: &Start<'_>,
    client: Option<std::net::IpAddr>,
) -> Outcome {
    let target = format!("sso:{}:{}", s.console, s.key);
    let start = LoginStart {
        login_hint: s.login_hint,
        binding: Some(s.binding),
        force_authn: s.forced,
        require_mfa: s.mfa,
    };
    let client = client.map(|c| c.to_string());
    match app.tenants.get(tenant) {
        Some(rt) if rt.login.is_some() => {
            super::oidc_login_with(app, tenant, &target, &start, client).await
        }
        _ => super::saml_login_with(app, tenant, &target, &start, client).await,
    }
}

/// Read a kept request, if this browser started it.
async fn pending(
    app: &App,
    key: &str,
    binding: Option<&str>,
    now: OffsetDateTime,
) -> Result<PendingSso, Refusal> {
    let expired = || {
        Refusal::new(
            400,
            "idp.request_expired",
            "the console's sign-in request is unknown, used, or older than 10 minutes: start again at the console",
        )
    };
    let saved = match app.store.peek_state(PENDING_NS, key, now).await {
        Ok(Some(b)) => b,
        Ok(None) => return Err(expired()),
        Err(e) => return Err(store_down(app, "peek_state", e)),
    };
    let p: PendingSso = serde_json::from_slice(&saved).map_err(|_| expired())?;
    if !login_state::binding_matches(&p.binding, binding) {
        return Err(Refusal::new(
            400,
            "idp.request_unbound",
            "this console sign-in was started in another browser (or its cookie is gone): start again at the console",
        ));
    }
    Ok(p)
}

/// `GET /idp/sso/realm?k=…&tenant=…`: the user chose the tenant to sign in at.
pub async fn realm(
    app: &App,
    key: &str,
    tenant: &str,
    binding: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Outcome {
    let now = app.now();
    let event = AuditEvent::new(now, "-", "idp-sso", client.map(|c| c.to_string()));
    let p = match pending(app, key, binding, now).await {
        Ok(p) => p,
        Err(r) => return refuse(app, event, r),
    };
    if !realms(app, &p.request.console).iter().any(|t| t == tenant) {
        let r = Refusal::new(
            403,
            "idp.tenant_not_allowed",
            format!(
                "users of tenant {:?} do not sign in to this console",
                crate::util::clip(tenant, crate::audit::CLIP)
            ),
        );
        return refuse(app, event, r);
    }
    let Some(binding) = binding else {
        return refuse(app, event, rng_failed());
    };
    let start = Start {
        console: &p.request.console,
        key,
        binding,
        forced: p.forced,
        mfa: p.mfa,
        login_hint: p.request.login_hint.as_deref(),
    };
    start_at(app, tenant, &start, client).await
}

/// `GET /idp/sso/resume?k=…`: back from the tenant's sign-in.
pub async fn resume(
    app: &App,
    key: &str,
    session: Option<&str>,
    binding: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Outcome {
    let now = app.now();
    let mut event = AuditEvent::new(now, "-", "idp-sso", client.map(|c| c.to_string()));
    let p = match pending(app, key, binding, now).await {
        Ok(p) => p,
        Err(r) => return refuse(app, event, r),
    };
    event.console = Some(p.request.console.clone());
    // Checked as this browser's: now used up, once.
    match app.store.take_state(PENDING_NS, key, now).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            let r = Refusal::new(
                400,
                "idp.request_expired",
                "the console's sign-in request was already answered: start again at the console",
            );
            return refuse(app, event, r);
        }
        Err(e) => return refuse(app, event, store_down(app, "take_state", e)),
    }
    let resumed = Resumed {
        started: OffsetDateTime::from_unix_timestamp(p.started).unwrap_or(now),
        forced: p.forced,
        mfa: p.mfa,
        step_up: p.step_up,
    };
    let ctx = Context {
        session,
        binding,
        client,
    };
    answer(app, p.request, &ctx, Some(resumed), event, now).await
}

/// Answer the console with a SAML status (no assertion), signed, posted to
/// its registered reply URL.
async fn status_answer(
    app: &App,
    console: &Console,
    req: &ConsoleRequest,
    status: &'static str,
    mut event: AuditEvent,
    now: OffsetDateTime,
) -> Outcome {
    let (code, message) = match status {
        "NoPassive" => (
            "idp.no_passive",
            "the console asked for a sign-in without user interaction (IsPassive), and there is no usable fedgate session",
        ),
        _ => (
            "idp.no_authn_context",
            "the console asked for an authentication context fedgate cannot meet (it knows password-class and multi-factor sign-ins)",
        ),
    };
    let Some(seed) = random_id() else {
        return refuse(app, event, rng_failed());
    };
    let unsigned = saml_post::status_response(
        &app.idp_entity_id,
        &console.reply_url,
        console.signature_algorithm.map(|a| a.sig_alg()),
        &req.id,
        status,
        message,
        now,
        &seed,
    );
    let keys = app.keys();
    let xml = match app
        .cpu
        .continue_with(move || unsigned.sign(&keys.current.saml))
        .await
    {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            let r = Refusal::new(e.status(), e.code(), e.to_string());
            return refuse(app, event, r);
        }
        Err(e) => return refuse(app, event, Refusal::from_pool(e)),
    };
    event.outcome = "denied";
    event.code = code.into();
    event.reason = format!("{message}: answered with the SAML status {status}");
    app.record_audit(&event);
    let tenant = event.tenant.clone();
    app.metrics.login(&tenant, &console.id, "denied", code);
    Outcome::Deliver {
        console: console.id.clone(),
        html: saml_post::post_form(
            &console.reply_url,
            &xml,
            req.relay_state.as_deref(),
            &console.display_name,
        ),
        session: None,
    }
}
