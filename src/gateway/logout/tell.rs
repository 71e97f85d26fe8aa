//! Telling the consoles: each session's consoles, from the server, side by
//! side, each within `server.logout_timeout_ms` (SAML LogoutRequests to a
//! console's `logout_url`, OIDC back-channel logout tokens to its
//! `backchannel_logout_uri`), and how fedgate's own logout messages are
//! signed for the binding that carries them.

use std::future::Future;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{IDP_SLO_PATH, SKEW};
use crate::binding::{self, Incoming, Kind};
use crate::config::{Console, LogoutBinding};
use crate::gateway::session::{Opened, Reach};
use crate::gateway::{store_down, App, Refusal};
use crate::identity::ErrorCode;
use crate::slo::{self, Party, Received};
use crate::util::random_id;

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

fn http() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| crate::trust::oidc::http_client().ok())
        .as_ref()
}

pub(super) fn endpoint(app: &App, path: &str) -> String {
    format!("{}{path}", app.config.server.public_url)
}

/// The consoles as parties that sign logout messages.
pub(super) fn console_parties(app: &App) -> Vec<Party> {
    app.sso_consoles.iter().map(party_of).collect()
}

fn party_of(c: &crate::outbound::sso::RequestingConsole) -> Party {
    Party {
        id: c.id.clone(),
        entity_id: c.identifier.clone(),
        certs: c.certs.clone(),
    }
}

fn console_party(app: &App, id: &str) -> Vec<Party> {
    app.sso_consoles
        .iter()
        .filter(|c| c.id == id)
        .map(party_of)
        .collect()
}

/// The SAML message to send, as the binding carries it.
pub(super) enum Outgoing {
    Redirect(String),
    /// Action URL and the auto-posting form.
    Post(String, String),
}

/// Sign `xml` for `binding` (in the query, or enveloped) on the CPU pool.
pub(super) async fn encode(
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
                            "finish signing out",
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
pub(super) async fn end_and_tell(
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
