//! The inbound SAML path: an Entra response at the ACS (verify, replay
//! cache, then the common end of a login), and SP-initiated login.

use time::Duration;

use super::deliver::{complete_login, resolve_overage};
use super::{refuse, rng_failed, status_for, store_down, App, Outcome, Refusal};
use crate::audit::AuditEvent;
use crate::identity::ErrorCode;
use crate::inbound::saml;
use crate::util::random_id;

/// `POST /saml/{tenant}/acs`: an Entra SAML response arrives.
pub async fn saml_acs(
    app: &App,
    tenant: &str,
    saml_response: &str,
    relay_state: Option<&str>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let mut event = AuditEvent::new(now, tenant, "saml", client);
    let Some(rt) = app.tenants.get(tenant) else {
        let r = Refusal::new(
            404,
            "tenant.unknown",
            format!("no tenant {tenant:?} is configured"),
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
    // SP-initiated: the RelayState names the AuthnRequest fedgate sent; it is
    // taken once, and the Response must answer exactly it (InResponseTo).
    let mut settings = std::borrow::Cow::Borrowed(&rt.settings);
    let mut requested_target = None;
    if let Some(id) = relay_state
        .map(str::trim)
        .and_then(|r| r.strip_prefix("req:"))
    {
        match app
            .store
            .take_state(saml::authn_request::REQUEST_NS, id, now)
            .await
        {
            Ok(Some(target)) => {
                settings.to_mut().expected_in_response_to = Some(id.to_string());
                requested_target = Some(String::from_utf8_lossy(&target).into_owned());
            }
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
    let verified = saml::verify(saml_response.as_bytes(), &idp, &settings, now);
    app.metrics
        .verification_seconds(started.elapsed().as_secs_f64());
    let identity = match verified {
        Ok(id) => id,
        Err(e) => {
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

    // One-time use: the assertion id, until the assertion could no longer be
    // accepted anyway (its latest NotOnOrAfter plus the skew).
    let replay_key = format!(
        "{}|{}",
        identity.issuer,
        identity.token_id.as_deref().unwrap_or_default()
    );
    let until = identity.expires_at + rt.settings.skew + Duration::minutes(5);
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

    let target = match relay_state.map(str::trim).filter(|s| !s.is_empty()) {
        _ if requested_target.is_some() => requested_target.unwrap_or_default(),
        Some(t) if t.contains(':') => t.to_string(),
        Some(console) => format!("console:{console}"),
        None => String::new(),
    };
    complete_login(app, rt, identity, &target, event, now).await
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
    use crate::inbound::saml::authn_request as ar;
    let now = app.now();
    let event = AuditEvent::new(now, tenant, "saml", client);
    let Some(rt) = app.tenants.get(tenant) else {
        let r = Refusal::new(
            404,
            "tenant.unknown",
            format!("no tenant {tenant:?} is configured"),
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
    let Some(id) = random_id().map(|r| format!("_fg{r}")) else {
        return refuse(app, event, rng_failed());
    };
    if let Err(e) = app
        .store
        .put_state(
            ar::REQUEST_NS,
            &id,
            target.as_bytes(),
            now + ar::REQUEST_TTL,
        )
        .await
    {
        return refuse(app, event, store_down(app, "put_state", e));
    }
    let xml = ar::authn_request(
        &id,
        &rt.settings.sp_entity_id,
        &rt.settings.acs_url,
        &sso.location,
        now,
    );
    match ar::redirect_url(&sso.location, &xml, &format!("req:{id}"), login_hint) {
        Ok(location) => Outcome::Redirect {
            location,
            session: None,
        },
        Err(e) => refuse(
            app,
            event,
            Refusal::new(500, "internal.encode_failed", e.to_string()),
        ),
    }
}
