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

use std::future::Future;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::session::{Opened, Reach};
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

/// What became of telling one console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    pub console: String,
    pub name: String,
    /// `saml` or `oidc`.
    pub via: String,
    /// `confirmed` (it answered that it signed the user out), `sent` (it
    /// took the message without a LogoutResponse), `failed`, or
    /// `not_supported` (no logout URL configured for what it speaks).
    pub result: String,
    pub detail: String,
}

impl Told {
    pub fn reached(&self) -> bool {
        self.result == "confirmed" || self.result == "sent"
    }
}

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

fn http() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| crate::trust::oidc::http_client().ok())
        .as_ref()
}

fn endpoint(app: &App, path: &str) -> String {
    format!("{}{path}", app.config.server.public_url)
}

/// The consoles as parties that sign logout messages.
fn console_parties(app: &App) -> Vec<Party> {
    app.sso_consoles
        .iter()
        .map(|c| Party {
            id: c.id.clone(),
            entity_id: c.identifier.clone(),
            certs: c.certs.clone(),
        })
        .collect()
}

fn console_party(app: &App, id: &str) -> Vec<Party> {
    console_parties(app)
        .into_iter()
        .filter(|p| p.id == id)
        .collect()
}

/// The tenant as the party that signs its logout messages.
fn tenant_party(rt: &TenantRuntime) -> Option<(Party, crate::trust::metadata::IdpMetadata)> {
    let md = rt.idp.as_ref()?.current()?;
    Some((
        Party {
            id: rt.config.id.clone(),
            entity_id: md.entity_id.clone(),
            certs: md.signing_certs.clone(),
        },
        (*md).clone(),
    ))
}

/// The SAML message to send, as the binding carries it.
enum Outgoing {
    Redirect(String),
    /// Action URL and the auto-posting form.
    Post(String, String),
}

/// Sign `xml` for `binding` (in the query, or enveloped) on the CPU pool.
async fn encode(
    app: &App,
    location: &str,
    kind: Kind,
    xml: String,
    id: String,
    relay_state: Option<String>,
    post: bool,
) -> Result<Outgoing, Refusal> {
    let keys = app.keys();
    let location = location.to_string();
    let signed = app
        .cpu
        .continue_with(move || {
            if post {
                crate::xml::dsig::sign_enveloped(&xml, &id, &keys.current.saml)
                    .map(|x| {
                        let form = binding::post_form(
                            &location,
                            kind,
                            &x,
                            relay_state.as_deref(),
                            "Signing out",
                        );
                        Outgoing::Post(location.clone(), form)
                    })
                    .map_err(|e| e.to_string())
            } else {
                binding::redirect_url(
                    &location,
                    kind,
                    &xml,
                    relay_state.as_deref(),
                    Some(&keys.current.saml),
                )
                .map(Outgoing::Redirect)
                .map_err(|e| e.to_string())
            }
        })
        .await;
    match signed {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(Refusal::new(500, "outbound.sign_failed", e)),
        Err(e) => Err(Refusal::from_pool(e)),
    }
}

/// End `sessions` and tell every console they reached (but `except`, the
/// console that asked), side by side, each within the timeout.
async fn end_and_tell(
    app: &App,
    sessions: &[Opened],
    except: Option<&str>,
    now: OffsetDateTime,
) -> Result<Vec<Told>, Refusal> {
    let mut jobs = Vec::new();
    for opened in sessions {
        let reached = app
            .reached(opened, now)
            .await
            .map_err(|e| store_down(app, "logout", e))?;
        app.store
            .delete_session(&opened.id)
            .await
            .map_err(|e| store_down(app, "delete_session", e))?;
        for (console, how) in reached {
            if Some(console.as_str()) == except {
                continue;
            }
            if let Some(c) = app.console(&console) {
                jobs.push(tell(app, c, how, opened, now));
            }
        }
    }
    let timeout = std::time::Duration::from_millis(app.config.server.logout_timeout_ms.max(1));
    let results = futures_util::future::join_all(jobs.into_iter().map(|(told, job)| async move {
        match tokio::time::timeout(timeout, job).await {
            Ok(Ok(Done::Confirmed)) => Told {
                result: "confirmed".into(),
                ..told
            },
            Ok(Ok(Done::Sent)) => Told {
                result: "sent".into(),
                detail: "it took the LogoutRequest and sent no LogoutResponse back".into(),
                ..told
            },
            Ok(Ok(Done::NotSupported(detail))) => Told {
                result: "not_supported".into(),
                detail,
                ..told
            },
            Ok(Err(detail)) => Told {
                result: "failed".into(),
                detail,
                ..told
            },
            Err(_) => Told {
                result: "failed".into(),
                detail: format!("no answer within {} ms", timeout.as_millis()),
                ..told
            },
        }
    }))
    .await;
    Ok(results)
}

/// How telling one console went, when it did not fail.
enum Done {
    Confirmed,
    Sent,
    NotSupported(String),
}

type Job<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Done, String>> + Send + 'a>>;

/// What telling `console` takes: the entry to report, and the work (its
/// result, or why it failed).
fn tell<'a>(
    app: &'a App,
    console: &'a Console,
    how: Reach,
    opened: &'a Opened,
    now: OffsetDateTime,
) -> (Told, Job<'a>) {
    let told = Told {
        console: console.id.clone(),
        name: console.display_name.clone(),
        via: match how {
            Reach::Saml => "saml".into(),
            Reach::Oidc => "oidc".into(),
        },
        result: "not_supported".into(),
        detail: String::new(),
    };
    let job: Job<'a> = match how {
        Reach::Saml => Box::pin(tell_saml(app, console, opened, now)),
        Reach::Oidc => Box::pin(tell_oidc(app, console, opened, now)),
    };
    (told, job)
}

async fn tell_saml(
    app: &App,
    console: &Console,
    opened: &Opened,
    now: OffsetDateTime,
) -> Result<Done, String> {
    let Some(url) = console.logout_url.as_deref() else {
        return Ok(Done::NotSupported(
            "no logout_url configured: the console keeps its session".into(),
        ));
    };
    let tenant = opened.session.tenant.as_deref().unwrap_or_default();
    let domains = app
        .tenants
        .get(tenant)
        .map(|t| t.config.domains.clone())
        .unwrap_or_default();
    let source = console
        .nameid
        .unwrap_or(crate::consoles::profile(console.kind).default_nameid);
    let (name_id, format) =
        crate::outbound::saml_post::nameid(&opened.session.identity, source, tenant, &domains)
            .map_err(|e| e.to_string())?;
    let format = console.nameid_format.map(|f| f.uri()).unwrap_or(format);
    let id = format!("_fgl{}", random_id().ok_or("the system RNG failed")?);
    let xml = slo::logout_request(
        &slo::OutRequest {
            id: &id,
            issuer: &app.idp_entity_id,
            destination: url,
            name_id: &name_id,
            name_id_format: Some(format),
            session_index: Some(&opened.id),
        },
        now,
    );
    let post = console.logout_binding == LogoutBinding::Post;
    let out = encode(app, url, Kind::Request, xml, id.clone(), None, post)
        .await
        .map_err(|r| r.message)?;
    let client = http().ok_or("no HTTP client")?;
    let resp = match out {
        Outgoing::Redirect(u) => client.get(u).send().await,
        Outgoing::Post(action, form) => {
            let value = form_value(&form, "SAMLRequest").ok_or("no form value")?;
            client
                .post(action)
                .form(&[("SAMLRequest", value)])
                .send()
                .await
        }
    }
    .map_err(|e| format!("{url}: {}", crate::util::clip(&e.to_string(), 200)))?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let body = if status.is_success() {
        // A form answer is small; a page is read only this far.
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&bytes[..bytes.len().min(256 * 1024)]).into_owned()
    } else {
        String::new()
    };
    // The LogoutResponse: in a redirect's query, or in an auto-posting form.
    let incoming = match (&location, form_value(&body, "SAMLResponse")) {
        (Some(l), _) if l.contains("SAMLResponse=") => l
            .split_once('?')
            .map(|(_, q)| Incoming::Redirect { query: q }),
        (_, Some(v)) => {
            let answer = read_logout_response(app, &console.id, &v, now)?;
            return checked(answer, &id);
        }
        _ => None,
    };
    if let Some(incoming) = incoming {
        let parties = console_party(app, &console.id);
        let answer = slo::read(incoming, &parties, &endpoint(app, IDP_SLO_PATH), now, SKEW)
            .map_err(|e| format!("its LogoutResponse is refused: {} ({})", e, e.code()))?;
        return match answer {
            Received::Response(r) => checked(r, &id),
            Received::Request(_) => Err("it answered with a LogoutRequest".into()),
        };
    }
    if status.is_success() || status.is_redirection() {
        Ok(Done::Sent)
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

fn read_logout_response(
    app: &App,
    console: &str,
    value: &str,
    now: OffsetDateTime,
) -> Result<slo::LogoutResponse, String> {
    let parties = console_party(app, console);
    let incoming = Incoming::Post {
        saml_request: None,
        saml_response: Some(value),
        relay_state: None,
    };
    match slo::read(incoming, &parties, &endpoint(app, IDP_SLO_PATH), now, SKEW) {
        Ok(Received::Response(r)) => Ok(r),
        Ok(Received::Request(_)) => Err("it answered with a LogoutRequest".into()),
        Err(e) => Err(format!("its LogoutResponse is refused: {e} ({})", e.code())),
    }
}

fn checked(r: slo::LogoutResponse, id: &str) -> Result<Done, String> {
    if r.in_response_to != id {
        return Err("its LogoutResponse answers another request (InResponseTo)".into());
    }
    if r.success() {
        Ok(Done::Confirmed)
    } else {
        Err(format!(
            "it answered {} {}",
            r.status.rsplit(':').next().unwrap_or_default(),
            r.sub_status
                .as_deref()
                .and_then(|s| s.rsplit(':').next())
                .unwrap_or_default()
        ))
    }
}

/// The `value` of the hidden input `name` in an auto-posting form.
fn form_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.split_once("value=\"")?.1;
    let v = &v[..v.find('"')?];
    Some(
        v.replace("&#43;", "+")
            .replace("&#x2B;", "+")
            .replace("&amp;", "&"),
    )
}

async fn tell_oidc(
    app: &App,
    console: &Console,
    opened: &Opened,
    now: OffsetDateTime,
) -> Result<Done, String> {
    let Some(reg) = console.oidc.as_ref() else {
        return Err("not an OIDC console any more".into());
    };
    let Some(uri) = reg.backchannel_logout_uri.as_deref() else {
        return Ok(Done::NotSupported(
            "no backchannel_logout_uri registered: the console keeps its session".into(),
        ));
    };
    let jti = random_id().ok_or("the system RNG failed")?;
    // OpenID Connect Back-Channel Logout 1.0 §2.4: no nonce, the event, sid.
    let claims = serde_json::json!({
        "iss": app.config.server.public_url,
        "aud": reg.client_id,
        "iat": now.unix_timestamp(),
        "exp": (now + Duration::minutes(2)).unix_timestamp(),
        "jti": jti,
        "sid": opened.id,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    let token = app
        .sign_typed_jwt(&console.token_alg, "logout+jwt", claims)
        .await
        .map_err(|e| format!("the logout token could not be signed: {e:?}"))?;
    let client = http().ok_or("no HTTP client")?;
    let resp = client
        .post(uri)
        .form(&[("logout_token", token)])
        .send()
        .await
        .map_err(|e| format!("{uri}: {}", crate::util::clip(&e.to_string(), 200)))?;
    if resp.status().is_success() {
        Ok(Done::Confirmed)
    } else {
        Err(format!("HTTP {}", resp.status().as_u16()))
    }
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
    app.audit.record(&event);
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
        let md = tenant_party(rt).map(|(_, md)| md);
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
        let pending = Pending {
            tenant: rt.config.id.clone(),
            told,
            finish,
        };
        if let Err(r) = keep(app, &id, &pending, now).await {
            return Outcome::Refused(r);
        }
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
    let pending = Pending {
        tenant: rt.config.id.clone(),
        told,
        finish,
    };
    if let Err(r) = keep(app, &id, &pending, now).await {
        return Outcome::Refused(r);
    }
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

async fn keep(app: &App, id: &str, pending: &Pending, now: OffsetDateTime) -> Result<(), Refusal> {
    let bytes = serde_json::to_vec(pending)
        .map_err(|e| Refusal::new(500, "internal.encode_failed", e.to_string()))?;
    app.store
        .put_state(PENDING_NS, id, &bytes, now + PENDING_TTL)
        .await
        .map_err(|e| store_down(app, "logout", e))
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
