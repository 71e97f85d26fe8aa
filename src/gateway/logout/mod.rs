//! Single logout through fedgate, whoever starts it:
//!
//! - **the tenant** (Entra's LogoutRequest at `/saml/{tenant}/slo`): the
//!   user's fedgate sessions end, the consoles they reached are told, and
//!   the tenant gets its LogoutResponse;
//! - **a console** (its LogoutRequest at fedgate's IdP `/idp/slo`): the
//!   session ends, the other consoles are told, then the tenant (its SLO
//!   endpoint, or Entra's OIDC `end_session_endpoint`), and the console
//!   gets its LogoutResponse when the tenant has answered;
//! - **the user** (`/logout`) or an OIDC console (`/oauth2/logout`): the
//!   same, ending at fedgate's signed-out page (or the console's registered
//!   `post_logout_redirect_uri`).
//!
//! Consoles are told from the server (back-channel), side by side, each
//! within `server.logout_timeout_ms`: a SAML console by a signed
//! LogoutRequest to its `logout_url` (its LogoutResponse, in the redirect
//! or the form it answers with, is checked), an OIDC console by a signed
//! logout token to its `backchannel_logout_uri`. A front-channel chain
//! (the browser sent from console to console) stops at the first console
//! that does not answer; this way one that does not answer delays none of
//! the others, and the signed-out page names every console that could not
//! be told. Every logout is an audit event.

mod tell;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

pub use self::tell::Told;
use self::tell::{console_parties, encode, end_and_tell, endpoint, Outgoing};
use super::session::Opened;
use super::{refuse, store_down, App, Outcome, Refusal, TenantRuntime};
use crate::audit::AuditEvent;
use crate::binding::{self, Incoming, Kind};
use crate::config::{Console, LogoutBinding};
use crate::identity::{ErrorCode, Source};
use crate::slo::{self, Party, Received};
use crate::util::{random_id, urlencode};

/// fedgate's IdP SingleLogoutService, for the consoles.
pub const IDP_SLO_PATH: &str = "/idp/slo";
/// A logout waiting for the tenant's answer, by the id of fedgate's
/// LogoutRequest (SAML) or the `state` (OIDC).
const PENDING_NS: &str = "slo.pending";
const PENDING_TTL: Duration = Duration::minutes(10);
/// The clock skew allowed on logout messages.
const SKEW: Duration = Duration::minutes(3);

/// Where a logout ends once the tenant has answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Finish {
    /// fedgate's signed-out page.
    Page,
    /// An OIDC console's registered `post_logout_redirect_uri`.
    Redirect(String),
    /// A LogoutResponse to the console whose LogoutRequest started it.
    Console {
        console: String,
        request_id: String,
        relay_state: Option<String>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    tenant: String,
    told: Vec<Told>,
    finish: Finish,
}

/// The tenant as the party that signs its logout messages.
fn tenant_party(
    rt: &TenantRuntime,
) -> Option<(Party, std::sync::Arc<crate::trust::metadata::IdpMetadata>)> {
    let md = rt.idp.as_ref()?.current()?;
    let party = Party {
        id: rt.config.id.clone(),
        entity_id: md.entity_id.clone(),
        certs: md.signing_certs.clone(),
    };
    Some((party, md))
}

/// One audit event for a logout.
fn audit(
    app: &App,
    tenant: &str,
    opened: Option<&Opened>,
    by: &str,
    told: &[Told],
    client: Option<String>,
) {
    let now = app.now();
    let mut event = AuditEvent::new(now, tenant, "logout", client);
    if let Some(o) = opened {
        event = event.with_identity(&o.session.identity);
    }
    event.outcome = "allowed";
    event.code = "logout".into();
    let list: Vec<String> = told
        .iter()
        .map(|t| {
            if t.detail.is_empty() {
                format!("{} ({})", t.console, t.result)
            } else {
                format!("{} ({}: {})", t.console, t.result, t.detail)
            }
        })
        .collect();
    event.reason = if list.is_empty() {
        format!("signed out of fedgate {by}; no console to tell")
    } else {
        format!("signed out of fedgate {by}; consoles: {}", list.join(", "))
    };
    app.record_audit(&event);
    app.metrics.login(tenant, "-", "logout", "logout");
}

/// `GET|POST /saml/{tenant}/slo`: the tenant's LogoutRequest, or its
/// LogoutResponse to one fedgate sent.
pub async fn tenant_slo(
    app: &App,
    tenant: &str,
    incoming: Incoming<'_>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let event = AuditEvent::new(now, "-", "slo", client.clone());
    let Some(rt) = app.tenants.get(tenant) else {
        return refuse(
            app,
            event,
            Refusal::new(404, "tenant.unknown", "no such tenant"),
        );
    };
    let Some((party, md)) = tenant_party(rt) else {
        let r = Refusal::new(
            503,
            "slo.tenant_untrusted",
            "the tenant's metadata is not loaded: its logout message cannot be checked",
        );
        return refuse(app, event, r);
    };
    let url = endpoint(app, &format!("/saml/{}/slo", rt.config.id));
    let received = match read_admitted(app, incoming, vec![party], url).await {
        Ok(r) => r,
        Err(r) => return refuse(app, event, r),
    };
    match received {
        Received::Response(r) => {
            finish_pending(app, &r.in_response_to, Some(&rt.config.id), now).await
        }
        Received::Request(req) => {
            // Every session of the NameID at this tenant, whatever
            // SessionIndex the request names: sessions do not keep the
            // tenant's (a superset of what was asked, never fewer).
            let sessions = match app.sessions_of(&rt.config.id, &req.name_id, now).await {
                Ok(s) => s,
                Err(e) => return refuse(app, event, store_down(app, "logout", e)),
            };
            let told = match end_and_tell(app, &sessions, None, now).await {
                Ok(t) => t,
                Err(r) => return refuse(app, event, r),
            };
            let by = format!(
                "by the tenant's LogoutRequest ({} session{})",
                sessions.len(),
                if sessions.len() == 1 { "" } else { "s" }
            );
            audit(app, &rt.config.id, sessions.first(), &by, &told, client);
            // The browser's cookie is cleared only if a session ended.
            let ended = !sessions.is_empty();
            let Some((binding, location)) = slo::pick_endpoint(&md.slo_endpoints) else {
                return Outcome::SignedOut {
                    clear: ended,
                    location: None,
                    told,
                    html: None,
                };
            };
            let partial = told.iter().any(|t| !t.reached());
            let Some(id) = random_id() else {
                return refuse(app, event, super::rng_failed());
            };
            let id = format!("_fgl{id}");
            let xml = slo::logout_response(
                &id,
                &rt.settings.sp_entity_id,
                location,
                &req.id,
                slo::STATUS_SUCCESS,
                partial.then_some(slo::STATUS_PARTIAL),
                now,
            );
            let post = binding == binding::BINDING_POST;
            match encode(
                app,
                location,
                Kind::Response,
                xml,
                id,
                req.relay_state,
                post,
            )
            .await
            {
                Ok(out) if ended => signed_out(out, told),
                Ok(out) => keep_cookie(signed_out(out, told)),
                Err(r) => refuse(app, event, r),
            }
        }
    }
}

fn signed_out(out: Outgoing, told: Vec<Told>) -> Outcome {
    match out {
        Outgoing::Redirect(location) => Outcome::SignedOut {
            clear: true,
            location: Some(location),
            told,
            html: None,
        },
        Outgoing::Post(_, html) => Outcome::SignedOut {
            clear: true,
            location: None,
            told,
            html: Some(html),
        },
    }
}

async fn read_admitted(
    app: &App,
    incoming: Incoming<'_>,
    parties: Vec<Party>,
    url: String,
) -> Result<Received, Refusal> {
    // Owned copies: the read (with its signature check) runs on the CPU pool.
    let owned = OwnedIncoming::from(incoming);
    let now = app.now();
    let read = app
        .cpu
        .admit(move || slo::read(owned.as_incoming(), &parties, &url, now, SKEW))
        .await;
    match read {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(Refusal::new(400, e.code(), e.to_string())),
        Err(e) => Err(Refusal::from_pool(e)),
    }
}

/// An [`Incoming`] that owns its text.
enum OwnedIncoming {
    Redirect(String),
    Post(Option<String>, Option<String>, Option<String>),
}

impl OwnedIncoming {
    fn from(i: Incoming) -> Self {
        match i {
            Incoming::Redirect { query } => OwnedIncoming::Redirect(query.to_string()),
            Incoming::Post {
                saml_request,
                saml_response,
                relay_state,
            } => OwnedIncoming::Post(
                saml_request.map(str::to_string),
                saml_response.map(str::to_string),
                relay_state.map(str::to_string),
            ),
        }
    }

    fn as_incoming(&self) -> Incoming<'_> {
        match self {
            OwnedIncoming::Redirect(q) => Incoming::Redirect { query: q },
            OwnedIncoming::Post(a, b, c) => Incoming::Post {
                saml_request: a.as_deref(),
                saml_response: b.as_deref(),
                relay_state: c.as_deref(),
            },
        }
    }
}

/// `GET|POST /idp/slo`: a console's LogoutRequest.
pub async fn idp_slo(
    app: &App,
    incoming: Incoming<'_>,
    cookie: Option<&str>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let event = AuditEvent::new(now, "-", "slo", client.clone());
    let received = match read_admitted(
        app,
        incoming,
        console_parties(app),
        endpoint(app, IDP_SLO_PATH),
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return refuse(app, event, r),
    };
    let req = match received {
        Received::Request(r) => r,
        Received::Response(_) => {
            let r = Refusal::new(
                400,
                "slo.response_unexpected",
                "fedgate tells consoles of a logout from the server and reads their answer there: a LogoutResponse sent through the browser answers nothing fedgate is waiting for",
            );
            return refuse(app, event, r);
        }
    };
    let Some(console) = app.console(&req.from) else {
        return refuse(
            app,
            event,
            Refusal::new(404, "console.unknown", "no such console"),
        );
    };
    // The session: the one the SessionIndex names (fedgate's session id),
    // else the browser's own; either way only if the NameID is the one
    // fedgate sent this console for it.
    let mut candidates = Vec::new();
    for index in &req.session_indexes {
        match app.session_by_id(index, now).await {
            Ok(Some(o)) => candidates.push(o),
            Ok(None) => {}
            Err(e) => return refuse(app, event, store_down(app, "logout", e)),
        }
    }
    if req.session_indexes.is_empty() {
        if let Some(c) = cookie {
            match app.open_session(c, now).await {
                Ok(Some(o)) => candidates.push(o),
                Ok(None) => {}
                Err(e) => return refuse(app, event, store_down(app, "logout", e)),
            }
        }
    }
    let sessions: Vec<Opened> = candidates
        .into_iter()
        .filter(|o| nameid_for(app, console, o).as_deref() == Some(req.name_id.as_str()))
        .collect();
    let told = match end_and_tell(app, &sessions, Some(&console.id), now).await {
        Ok(t) => t,
        Err(r) => return refuse(app, event, r),
    };
    let tenant = sessions
        .first()
        .and_then(|o| o.session.tenant.clone())
        .unwrap_or_else(|| "-".into());
    let by = format!("by console {:?}'s LogoutRequest", console.id);
    audit(app, &tenant, sessions.first(), &by, &told, client);
    let finish = Finish::Console {
        console: console.id.clone(),
        request_id: req.id.clone(),
        relay_state: req.relay_state.clone(),
    };
    match sessions.first() {
        Some(o) => upstream(app, o, finish, told, now).await,
        // Nothing ended: the browser's own session (if any) stays, cookie too.
        None => keep_cookie(finish_with(app, finish, told, now).await),
    }
}

/// The same outcome, without clearing the browser's session cookie.
fn keep_cookie(mut outcome: Outcome) -> Outcome {
    if let Outcome::SignedOut { clear, .. } = &mut outcome {
        *clear = false;
    }
    outcome
}

/// The NameID fedgate sends `console` for this session.
fn nameid_for(app: &App, console: &Console, o: &Opened) -> Option<String> {
    let tenant = o.session.tenant.as_deref()?;
    let rt = app.tenants.get(tenant)?;
    let source = console
        .nameid
        .unwrap_or(crate::consoles::profile(console.kind).default_nameid);
    crate::outbound::saml_post::nameid(&o.session.identity, source, tenant, &rt.config.domains)
        .ok()
        .map(|(n, _)| n)
}

/// `/logout` and `/oauth2/logout`: end the browser's session everywhere;
/// `except` is the OIDC console that asked (it has signed out already).
pub(crate) async fn user_logout(
    app: &App,
    opened: Option<Opened>,
    except: Option<&str>,
    location: Option<String>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let finish = match location {
        Some(l) => Finish::Redirect(l),
        None => Finish::Page,
    };
    let Some(opened) = opened else {
        return finish_with(app, finish, Vec::new(), now).await;
    };
    let told = match end_and_tell(app, std::slice::from_ref(&opened), except, now).await {
        Ok(t) => t,
        Err(r) => return Outcome::Refused(r),
    };
    let tenant = opened.session.tenant.clone().unwrap_or_else(|| "-".into());
    let by = match except {
        Some(c) => format!("by console {c:?} (RP-initiated logout)"),
        None => "by the user (/logout)".to_string(),
    };
    audit(app, &tenant, Some(&opened), &by, &told, client);
    upstream(app, &opened, finish, told, now).await
}

/// Sign the user out at the tenant too (after the consoles), then finish.
async fn upstream(
    app: &App,
    opened: &Opened,
    finish: Finish,
    told: Vec<Told>,
    now: OffsetDateTime,
) -> Outcome {
    let Some(rt) = opened
        .session
        .tenant
        .as_deref()
        .and_then(|t| app.tenants.get(t))
    else {
        return finish_with(app, finish, told, now).await;
    };
    let identity = &opened.session.identity;
    let Some(id) = random_id() else {
        return Outcome::Refused(super::rng_failed());
    };
    if identity.source == Source::Saml {
        let md = rt.idp.as_ref().and_then(|t| t.current());
        let Some((binding, location)) = md
            .as_ref()
            .and_then(|m| slo::pick_endpoint(&m.slo_endpoints))
        else {
            return finish_with(app, finish, told, now).await;
        };
        let id = format!("_fgl{id}");
        let xml = slo::logout_request(
            &slo::OutRequest {
                id: &id,
                issuer: &rt.settings.sp_entity_id,
                destination: location,
                name_id: &identity.subject,
                name_id_format: identity.subject_format.as_deref().map(slo::expand_format),
                session_index: identity.idp_session.as_deref(),
            },
            now,
        );
        let pending = match keep(app, &id, rt, told, finish, now).await {
            Ok(p) => p,
            Err(r) => return Outcome::Refused(r),
        };
        let post = binding == binding::BINDING_POST;
        return match encode(app, location, Kind::Request, xml, id, None, post).await {
            Ok(out) => signed_out(out, pending.told),
            Err(r) => Outcome::Refused(r),
        };
    }
    // Signed in by OpenID Connect: Entra's end_session_endpoint, back to
    // /oidc/{tenant}/signed-out with the state.
    let end_session = match &rt.provider {
        Some(p) => p.discovery().await.ok().and_then(|d| {
            d.raw
                .get("end_session_endpoint")
                .and_then(|e| e.as_str())
                .map(str::to_string)
        }),
        None => None,
    };
    let (Some(end_session), Some(login)) = (end_session, rt.login.as_ref()) else {
        return finish_with(app, finish, told, now).await;
    };
    let pending = match keep(app, &id, rt, told, finish, now).await {
        Ok(p) => p,
        Err(r) => return Outcome::Refused(r),
    };
    let back = endpoint(app, &format!("/oidc/{}/signed-out", rt.config.id));
    let sep = if end_session.contains('?') { '&' } else { '?' };
    let mut location = format!(
        "{end_session}{sep}post_logout_redirect_uri={}&state={}&client_id={}",
        urlencode(&back),
        urlencode(&id),
        urlencode(&login.client_id)
    );
    if let Some(hint) = identity.upn.as_deref().or(identity.email.as_deref()) {
        location.push_str(&format!("&logout_hint={}", urlencode(hint)));
    }
    Outcome::SignedOut {
        clear: true,
        location: Some(location),
        told: pending.told,
        html: None,
    }
}

/// Keep a logout waiting for `rt`'s answer under `id`.
async fn keep(
    app: &App,
    id: &str,
    rt: &TenantRuntime,
    told: Vec<Told>,
    finish: Finish,
    now: OffsetDateTime,
) -> Result<Pending, Refusal> {
    let pending = Pending {
        tenant: rt.config.id.clone(),
        told,
        finish,
    };
    let bytes = serde_json::to_vec(&pending)
        .map_err(|e| Refusal::new(500, "internal.encode_failed", e.to_string()))?;
    app.store
        .put_state(PENDING_NS, id, &bytes, now + PENDING_TTL)
        .await
        .map_err(|e| store_down(app, "logout", e))?;
    Ok(pending)
}

/// The tenant answered the logout fedgate sent it (`key`: the request id
/// or the OIDC state): finish it.
pub async fn finish_pending(
    app: &App,
    key: &str,
    tenant: Option<&str>,
    now: OffsetDateTime,
) -> Outcome {
    let pending = match app.store.take_state(PENDING_NS, key, now).await {
        Ok(p) => p.and_then(|b| serde_json::from_slice::<Pending>(&b).ok()),
        Err(e) => return Outcome::Refused(store_down(app, "logout", e)),
    };
    match pending {
        Some(p) if tenant.is_none_or(|t| t == p.tenant) => {
            finish_with(app, p.finish, p.told, now).await
        }
        // Nothing (left) to finish: the session ended already.
        _ => Outcome::SignedOut {
            clear: true,
            location: None,
            told: Vec::new(),
            html: None,
        },
    }
}

async fn finish_with(app: &App, finish: Finish, told: Vec<Told>, now: OffsetDateTime) -> Outcome {
    match finish {
        Finish::Page => Outcome::SignedOut {
            clear: true,
            location: None,
            told,
            html: None,
        },
        Finish::Redirect(l) => Outcome::SignedOut {
            clear: true,
            location: Some(l),
            told,
            html: None,
        },
        Finish::Console {
            console,
            request_id,
            relay_state,
        } => {
            let Some(c) = app.console(&console) else {
                return Outcome::SignedOut {
                    clear: true,
                    location: None,
                    told,
                    html: None,
                };
            };
            let Some(url) = c.logout_url.as_deref() else {
                // Nowhere to answer: fedgate's own page.
                return Outcome::SignedOut {
                    clear: true,
                    location: None,
                    told,
                    html: None,
                };
            };
            let Some(id) = random_id() else {
                return Outcome::Refused(super::rng_failed());
            };
            let partial = told.iter().any(|t| !t.reached());
            let xml = slo::logout_response(
                &format!("_fgl{id}"),
                &app.idp_entity_id,
                url,
                &request_id,
                slo::STATUS_SUCCESS,
                partial.then_some(slo::STATUS_PARTIAL),
                now,
            );
            let post = c.logout_binding == LogoutBinding::Post;
            match encode(
                app,
                url,
                Kind::Response,
                xml,
                format!("_fgl{id}"),
                relay_state,
                post,
            )
            .await
            {
                Ok(out) => signed_out(out, told),
                Err(r) => Outcome::Refused(r),
            }
        }
    }
}
