//! The inbound SAML path: an Entra response at the ACS (verify, replay
//! cache, then the common end of a login), and SP-initiated login.

use serde::{Deserialize, Serialize};

use super::deliver::{complete_login, resolve_overage};
use super::login_state::{self, LoginStart};
use super::{refuse, rng_failed, status_for, store_down, App, Outcome, Refusal};
use crate::audit::AuditEvent;
use crate::identity::ErrorCode;
use crate::inbound::saml;
use crate::util::random_id;

/// A pending SP-initiated AuthnRequest: where the login ends, the tenant it
/// was sent to, and the SHA-256 of the browser binding.
#[derive(Serialize, Deserialize)]
struct PendingRequest {
    target: String,
    tenant: String,
    binding: String,
}

/// `POST /saml/{tenant}/acs`: an Entra SAML response arrives.
pub async fn saml_acs(
    app: &App,
    tenant: &str,
    saml_response: String,
    relay_state: Option<&str>,
    binding: Option<&str>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let mut event = AuditEvent::new(now, tenant, "saml", client);
    let Some(rt) = app.tenants.get(tenant) else {
        let r = Refusal::new(
            404,
            "tenant.unknown",
            format!(
                "no tenant {:?} is configured",
                crate::util::clip(tenant, crate::audit::CLIP)
            ),
        );
        return refuse(app, event, r);
    };
    let started = std::time::Instant::now();
    let Some(idp_trust) = rt.idp.as_ref() else {
        let r = Refusal::new(
            404,
            "tenant.saml_not_configured",
            format!("tenant {tenant:?} has no SAML metadata: it signs in by OIDC"),
        );
        return refuse(app, event, r);
    };
    let Some(idp) = idp_trust.current() else {
        let r = Refusal::new(
            503,
            "metadata.unavailable",
            format!("tenant {tenant:?}'s metadata URL has not been fetched yet and no last-known-good copy exists"),
        );
        return refuse(app, event, r);
    };
    // SP-initiated: the RelayState names the AuthnRequest fedgate sent. It
    // is only looked at here: checked to be this tenant's and this
    // browser's, and the Response must answer exactly it (InResponseTo).
    // It is consumed below, once the Response verified: a forged or
    // unsigned post never uses up someone's pending login.
    let mut settings = std::borrow::Cow::Borrowed(&rt.settings);
    let mut pending = None;
    if let Some(id) = relay_state
        .map(str::trim)
        .and_then(|r| r.strip_prefix("req:"))
    {
        let found = match app
            .store
            .peek_state(saml::authn_request::REQUEST_NS, id, now)
            .await
        {
            Ok(found) => found.and_then(|b| serde_json::from_slice::<PendingRequest>(&b).ok()),
            Err(e) => return refuse(app, event, store_down(app, "peek_state", e)),
        };
        let Some(request) = found else {
            let r = Refusal::new(
                403,
                "saml.request_unknown",
                "this response answers a sign-in request fedgate does not know: expired (10 minutes), already answered, or never sent",
            );
            return refuse(app, event, r);
        };
        if request.tenant != tenant {
            let r = Refusal::new(
                403,
                "saml.request_other_tenant",
                format!(
                    "this response answers a sign-in request fedgate sent to another tenant ({:?}), not to {tenant:?}: it is accepted only at that tenant's ACS",
                    request.tenant
                ),
            );
            return refuse(app, event, r);
        }
        if !login_state::binding_matches(&request.binding, binding) {
            let r = Refusal::new(
                403,
                "saml.request_unbound",
                "this response answers a sign-in request started in another browser (or the browser did not send fedgate's login cookie back: are cookies blocked?): start the sign-in again here",
            );
            return refuse(app, event, r);
        }
        settings.to_mut().expected_in_response_to = Some(id.to_string());
        pending = Some((id.to_string(), request.target));
    }
    // On the CPU pool (admission control: refused at once when it is full).
    // The posted value moves to the pool (no copy: a body may be 512 KiB).
    let (input, settings) = (saml_response.into_bytes(), settings.into_owned());
    let verified = app
        .cpu
        .admit(move || saml::verify_with_window(input, &idp, &settings, now))
        .await;
    app.metrics
        .verification_seconds(started.elapsed().as_secs_f64());
    let (identity, acceptable_until) = match verified {
        Err(e) => return refuse(app, event, Refusal::from_pool(e)),
        Ok(Ok(v)) => (v.identity, v.acceptable_until),
        Ok(Err(e)) => {
            let r = Refusal::new(status_for(e.code()), e.code(), e.to_string());
            return refuse(app, event, r);
        }
    };
    let identity = match resolve_overage(rt, identity).await {
        Ok(id) => id,
        Err((id, e)) => {
            let event = event.with_identity(&id);
            return refuse(app, event, Refusal::new(502, e.code(), e.to_string()));
        }
    };
    event = event.with_identity(&identity);

    // One-time use: the assertion id, until no part of the assertion could
    // be accepted any more (the latest NotOnOrAfter of every confirmation
    // and of the Conditions, plus the skew and a margin; see
    // `saml::replay_until` for the floor and the cap).
    let replay_key = format!(
        "{}|{}",
        identity.issuer,
        identity.token_id.as_deref().unwrap_or_default()
    );
    let until = match saml::replay_until(acceptable_until, rt.settings.skew, now) {
        Ok(until) => until,
        Err(end) => {
            let r = Refusal::new(
                403,
                "saml.validity_too_long",
                format!(
                    "this assertion stays acceptable until {} (its latest NotOnOrAfter), longer than fedgate's replay cache remembers an assertion ({} hours): have the IdP issue shorter-lived assertions",
                    crate::timefmt::format(end),
                    saml::MAX_REPLAY_WINDOW.whole_hours()
                ),
            );
            return refuse(app, event, r);
        }
    };
    match app
        .store
        .claim_once("saml-assertion", &replay_key, until, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let r = Refusal::new(
                403,
                "saml.replayed",
                "this SAML assertion was already used; each login is accepted once",
            );
            return refuse(app, event, r);
        }
        Err(e) => return refuse(app, event, store_down(app, "claim_once", e)),
    }

    // The Response verified and answers the pending request: take it, once
    // (two verified copies racing: one wins, the other is refused).
    let mut requested_target = None;
    if let Some((id, target)) = pending {
        match app
            .store
            .take_state(saml::authn_request::REQUEST_NS, &id, now)
            .await
        {
            Ok(Some(_)) => requested_target = Some(target),
            Ok(None) => {
                let r = Refusal::new(
                    403,
                    "saml.request_unknown",
                    "this response answers a sign-in request fedgate does not know: expired (10 minutes), already answered, or never sent",
                );
                return refuse(app, event, r);
            }
            Err(e) => return refuse(app, event, store_down(app, "take_state", e)),
        }
    }

    let target = match relay_state.map(str::trim).filter(|s| !s.is_empty()) {
        _ if requested_target.is_some() => requested_target.unwrap_or_default(),
        Some(t) if t.contains(':') => t.to_string(),
        Some(console) => format!("console:{console}"),
        None => String::new(),
    };
    complete_login(app, rt, identity, &target, binding, event, now).await
}

/// `GET /saml/{tenant}/login?console=…`: start an SP-initiated SAML login
/// (an AuthnRequest to the tenant's SSO endpoint, HTTP-Redirect binding).
pub async fn saml_login(
    app: &App,
    tenant: &str,
    target: &str,
    login_hint: Option<&str>,
    client: Option<String>,
) -> Outcome {
    let start = LoginStart {
        login_hint,
        ..LoginStart::default()
    };
    saml_login_with(app, tenant, target, &start, client).await
}

/// [`saml_login`] with the browser's binding cookie and `ForceAuthn`.
pub async fn saml_login_with(
    app: &App,
    tenant: &str,
    target: &str,
    start: &LoginStart<'_>,
    client: Option<String>,
) -> Outcome {
    use crate::inbound::saml::authn_request as ar;
    let login_hint = start.login_hint;
    let now = app.now();
    let event = AuditEvent::new(now, tenant, "saml", client);
    let Some(rt) = app.tenants.get(tenant) else {
        let r = Refusal::new(
            404,
            "tenant.unknown",
            format!(
                "no tenant {:?} is configured",
                crate::util::clip(tenant, crate::audit::CLIP)
            ),
        );
        return refuse(app, event, r);
    };
    let Some(idp) = rt.idp.as_ref().and_then(|t| t.current()) else {
        let r = Refusal::new(
            404,
            "tenant.saml_not_configured",
            format!("tenant {tenant:?} has no SAML metadata (or it was never fetched)"),
        );
        return refuse(app, event, r);
    };
    let Some(sso) = idp
        .sso_endpoints
        .iter()
        .find(|e| e.binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect")
    else {
        let r = Refusal::new(
            502,
            "metadata.no_redirect_sso",
            "the tenant's metadata has no HTTP-Redirect SingleSignOnService: SP-initiated sign-in is not possible",
        );
        return refuse(app, event, r);
    };
    // The browser is sent there (and a step-up page links to it): only an
    // https URL (http on loopback), never a javascript: or data: one that a
    // hostile IdP's metadata could name.
    let web = sso.location.starts_with("https://")
        || (sso.location.starts_with("http://") && crate::consoles::is_loopback_url(&sso.location));
    if !web {
        let r = Refusal::new(
            502,
            "metadata.sso_url_invalid",
            format!(
                "the tenant's metadata names {:?} as its SingleSignOnService: only an https:// URL is followed",
                crate::util::clip(&sso.location, crate::audit::CLIP)
            ),
        );
        return refuse(app, event, r);
    }
    let Some(id) = random_id().map(|r| format!("_fg{r}")) else {
        return refuse(app, event, rng_failed());
    };
    let Some(binding) = login_state::binding_or_new(start.binding) else {
        return refuse(app, event, rng_failed());
    };
    let pending = PendingRequest {
        target: target.to_string(),
        tenant: tenant.to_string(),
        binding: login_state::binding_digest(&binding),
    };
    let bytes = match serde_json::to_vec(&pending) {
        Ok(b) => b,
        Err(e) => {
            let r = Refusal::new(500, "internal.encode_failed", e.to_string());
            return refuse(app, event, r);
        }
    };
    if let Err(e) = app
        .store
        .put_state(ar::REQUEST_NS, &id, &bytes, now + ar::REQUEST_TTL)
        .await
    {
        return refuse(app, event, store_down(app, "put_state", e));
    }
    let mfa_classes = if start.require_mfa {
        ar::mfa_classes(&rt.settings.claims)
    } else {
        Vec::new()
    };
    let xml = ar::authn_request(
        &id,
        &rt.settings.sp_entity_id,
        &rt.settings.acs_url,
        &sso.location,
        &ar::Ask {
            force_authn: start.force_authn || start.require_mfa,
            mfa_classes: &mfa_classes,
        },
        now,
    );
    match ar::redirect_url(&sso.location, &xml, &format!("req:{id}"), login_hint) {
        Ok(location) => Outcome::StartLogin { location, binding },
        Err(e) => refuse(
            app,
            event,
            Refusal::new(500, "internal.encode_failed", e.to_string()),
        ),
    }
}
