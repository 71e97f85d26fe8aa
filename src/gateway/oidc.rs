//! The inbound OIDC path: start an Entra login, and finish it at the
//! callback (verify, replay cache, then the common end of a login).

use super::deliver::{complete_login, resolve_overage};
use super::login_state::{self, LoginStart};
use super::{refuse, rng_failed, store_down, App, Outcome, Refusal, TenantRuntime};
use crate::audit::AuditEvent;
use crate::identity::ErrorCode;

/// A tenant that signs in by OIDC: its runtime, fedgate's app registration
/// there, and its provider trust.
fn oidc_tenant<'a>(
    app: &'a App,
    tenant: &str,
) -> Result<
    (
        &'a TenantRuntime,
        &'a crate::inbound::oidc::OidcClient,
        &'a crate::trust::oidc::ProviderTrust,
    ),
    Refusal,
> {
    let rt = app.tenants.get(tenant).ok_or_else(|| {
        Refusal::new(
            404,
            "tenant.unknown",
            format!(
                "no tenant {:?} is configured",
                crate::util::clip(tenant, crate::audit::CLIP)
            ),
        )
    })?;
    match (rt.login.as_ref(), rt.provider.as_ref()) {
        (Some(rp), Some(trust)) => Ok((rt, rp, trust)),
        _ => Err(Refusal::new(
            404,
            "tenant.oidc_not_configured",
            format!(
                "tenant {tenant:?} has no [tenants.oidc] client_id: it does not sign in by OIDC"
            ),
        )),
    }
}

/// `GET /oidc/{tenant}/login?console=…`: start an Entra OIDC login.
pub async fn oidc_login(
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
    oidc_login_with(app, tenant, target, &start, client).await
}

/// [`oidc_login`] with the browser's binding cookie and `prompt=login`.
pub async fn oidc_login_with(
    app: &App,
    tenant: &str,
    target: &str,
    start: &LoginStart<'_>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let event = AuditEvent::new(now, tenant, "oidc", client);
    let (_, rp, trust) = match oidc_tenant(app, tenant) {
        Ok(found) => found,
        Err(r) => return refuse(app, event, r),
    };
    let Some(binding) = login_state::binding_or_new(start.binding) else {
        return refuse(app, event, rng_failed());
    };
    let digest = login_state::binding_digest(&binding);
    let how = crate::inbound::oidc::Start {
        login_hint: start.login_hint,
        force_authn: start.force_authn || start.require_mfa,
        auth_context: rp.mfa_auth_context.as_deref().filter(|_| start.require_mfa),
        binding_digest: &digest,
    };
    match crate::inbound::oidc::start(rp, trust, app.store.as_ref(), tenant, target, &how, now)
        .await
    {
        Ok(location) => Outcome::StartLogin { location, binding },
        Err(e) => {
            if matches!(e, crate::inbound::oidc::OidcError::Store(_)) {
                app.metrics.store_error("oidc_state");
            }
            let r = Refusal::new(e.status(), e.code(), e.to_string());
            refuse(app, event, r)
        }
    }
}

/// `GET /oidc/{tenant}/callback`: finish an Entra OIDC login.
pub async fn oidc_callback(
    app: &App,
    tenant: &str,
    cb: &crate::inbound::oidc::Callback,
    binding: Option<&str>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let mut event = AuditEvent::new(now, tenant, "oidc", client);
    let (rt, rp, trust) = match oidc_tenant(app, tenant) {
        Ok(found) => found,
        Err(r) => return refuse(app, event, r),
    };
    let started = std::time::Instant::now();
    let bound = |recorded: &str| login_state::binding_matches(recorded, binding);
    let finished = crate::inbound::oidc::finish(
        rp,
        trust,
        app.store.as_ref(),
        tenant,
        cb,
        &bound,
        now,
        Some(&app.cpu),
    )
    .await;
    app.metrics
        .verification_seconds(started.elapsed().as_secs_f64());
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            if matches!(e, crate::inbound::oidc::OidcError::Store(_)) {
                app.metrics.store_error("oidc_state");
            }
            let mut r = Refusal::new(e.status(), e.code(), e.to_string());
            if r.code == "server.busy" {
                r.retry_after = Some(crate::cpu::RETRY_AFTER_SECS);
            }
            return refuse(app, event, r);
        }
    };
    let mut identity = finished.identity;
    // The tenant's MFA authentication context, satisfied (`acrs`).
    if let Some(ctx) = rp.mfa_auth_context.as_deref() {
        if identity
            .auth_methods
            .iter()
            .any(|m| m.strip_prefix("acrs:") == Some(ctx))
        {
            identity.mfa = true;
        }
    }
    let identity = match resolve_overage(rt, identity).await {
        Ok(id) => id,
        Err((id, e)) => {
            let event = event.with_identity(&id);
            return refuse(app, event, Refusal::new(502, e.code(), e.to_string()));
        }
    };
    event = event.with_identity(&identity);
    // One use per ID token, across instances (the state is one-use too).
    if let Some(jti) = identity.token_id.as_deref() {
        let until = identity.expires_at + rt.settings.skew;
        match app
            .store
            .claim_once(
                "oidc-id-token",
                &format!("{}|{jti}", identity.issuer),
                until,
                now,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                let r = Refusal::new(
                    403,
                    "oidc.id_token_replayed",
                    "this ID token was already used",
                );
                return refuse(app, event, r);
            }
            Err(e) => return refuse(app, event, store_down(app, "claim_once", e)),
        }
    }
    complete_login(app, rt, identity, &finished.target, binding, event, now).await
}
