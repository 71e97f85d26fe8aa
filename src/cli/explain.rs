//! `fedgate explain`: what a user would be granted on a console, and why.

use serde_json::json;
use time::Duration;

use super::{
    load_idp, parse_now, print_json, read_file, read_input, runtime, ExplainArgs, Failure,
};
use crate::inbound::saml;

pub(super) fn explain(args: &ExplainArgs) -> Result<(), Failure> {
    use crate::identity::{Identity, PrincipalKind, Source, Verification};
    let now = parse_now(args.now.as_deref())?;
    let config = super::load_config(&args.config).map_err(Failure::start)?;
    let tenant = config
        .tenants
        .iter()
        .find(|t| t.id == args.tenant)
        .ok_or_else(|| {
            Failure::usage(format!("no tenant {:?} in the configuration", args.tenant))
        })?;
    let console = config
        .consoles
        .iter()
        .find(|c| c.id == args.console)
        .ok_or_else(|| {
            Failure::usage(format!(
                "no console {:?} in the configuration",
                args.console
            ))
        })?;
    let identity = match (&args.saml_response, &args.token) {
        (None, Some(token_arg)) => {
            let token = String::from_utf8(read_input(token_arg)?)
                .map_err(|_| Failure::usage("the token is not text".into()))?;
            let oidc = tenant
                .oidc
                .as_ref()
                .filter(|o| !o.audiences.is_empty())
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "tenant {:?} has no [tenants.oidc] audiences: its tokens are not accepted",
                        tenant.id
                    ))
                })?;
            let issuer = tenant.token_issuer().unwrap_or_default();
            let pinned = match &oidc.jwks_file {
                Some(f) => Some(
                    crate::trust::jwks::Jwks::from_json(&read_file(f)?)
                        .map_err(|e| Failure::setup("jwks_file", e))?,
                ),
                None => None,
            };
            let trust = crate::trust::oidc::ProviderTrust::new(
                issuer.clone(),
                oidc.discovery_url.clone(),
                pinned,
            )
            .map_err(|e| Failure::setup("oidc", e))?;
            let mut policy =
                crate::inbound::bearer::BearerPolicy::new(issuer, oidc.audiences.clone());
            policy.skew = Duration::seconds(i64::from(tenant.clock_skew_secs));
            runtime()?
                .block_on(crate::trust::oidc::verify_token(
                    &trust,
                    token.trim(),
                    &policy,
                    now,
                    None,
                ))
                .map_err(Failure::rejected)?
        }
        (Some(file), _) => {
            let md = tenant.metadata_file.as_deref().ok_or_else(|| {
                Failure::usage(format!(
                    "tenant {:?} has no metadata_file: it does not sign in by SAML",
                    tenant.id
                ))
            })?;
            let idp = load_idp(md, None).map_err(|message| Failure::Usage {
                code: Some("metadata.invalid"),
                message,
            })?;
            let public = &config.server.public_url;
            let mut settings =
                saml::SamlSettings::new(tenant.sp_entity_id(public), tenant.acs_url(public));
            settings.skew = Duration::seconds(i64::from(tenant.clock_skew_secs));
            settings.profile.allow_sha1 = tenant.allow_sha1;
            saml::verify(&read_file(file)?, &idp, &settings, now).map_err(Failure::rejected)?
        }
        (None, None) => Identity {
            subject: "(as described on the command line)".into(),
            subject_format: None,
            issuer: format!("https://sts.windows.net/{}/", tenant.entra_tenant_id),
            tenant_id: Some(tenant.entra_tenant_id.clone()),
            object_id: None,
            kind: PrincipalKind::User,
            source: Source::Saml,
            upn: None,
            email: None,
            display_name: None,
            groups: args.groups.clone(),
            groups_overage: false,
            groups_link: None,
            groups_source: Default::default(),
            roles: args.roles.clone(),
            auth_methods: vec![],
            mfa: args.mfa,
            auth_time: Some(now),
            expires_at: now + Duration::hours(1),
            app_id: None,
            token_id: None,
            idp_session: None,
            verification: Verification::default(),
            attributes: Default::default(),
        },
    };
    let cref = crate::policy::ConsoleRef {
        id: &console.id,
        kind: console.kind,
        extra_roles: &console.extra_roles,
    };
    let decision = crate::policy::decide(&identity, &tenant.id, &cref, &config.rules, now);
    if args.json {
        print_json(&json!({"identity": identity, "decision": decision}))?;
    } else {
        println!(
            "identity: subject {}, groups {:?}, roles {:?}, mfa {}{}",
            identity.subject,
            identity.groups,
            identity.roles,
            identity.mfa,
            if identity.groups_overage {
                " (groups overage: not resolved)"
            } else {
                ""
            }
        );
        print!("{}", crate::policy::explain(&decision));
    }
    if decision.allowed() {
        Ok(())
    } else {
        Err(Failure::Quiet)
    }
}
