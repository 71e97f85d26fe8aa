//! The end of every login, whichever protocol it came in by: a fedgate
//! session, groups overage resolved, policy decided, and the grant delivered
//! to a console (or the launcher, or a refusal).

use time::{Duration, OffsetDateTime};

use super::session::{NewSessionError, Reach};
use super::{refuse, rng_failed, store_down, App, Outcome, Refusal, TenantRuntime};
use crate::audit::AuditEvent;
use crate::config::Console;
use crate::consoles;
use crate::identity::{ErrorCode, GroupsSource, Identity};
use crate::outbound::saml_post;
use crate::policy::{self, ConsoleRef};
use crate::store::{AdminRight, Session};
use crate::util::{random_id, urlencode};

/// Where a verified interactive login ends: `console:{id}` (deliver to that
/// console), `authorize:{key}` (resume an OpenID provider request),
/// `sso:{console}:{key}` (resume a console's SAML AuthnRequest), `admin`
/// (the admin page), or empty (the one console the user may reach, or the
/// launcher).
///
/// A fedgate session (8 hours at most, never past the upstream token or
/// assertion), which the launcher and the OpenID provider use, is created
/// only for someone a rule grants something on some console of their
/// tenant, or who is an admin by the `[admin]` rule (and for `admin`, only
/// for an admin). Anyone else gets the denial page and no cookie, whatever
/// the RelayState. The session keeps fedgate's facts (tenant, admin) in
/// typed fields, and a compact copy of the Identity (`session_identity`).
/// `binding` is the browser's login-binding cookie: a step-up keeps it, so
/// login state bound to it (a console's kept AuthnRequest) stays answerable.
pub(super) async fn complete_login(
    app: &App,
    rt: &TenantRuntime,
    identity: Identity,
    target: &str,
    binding: Option<&str>,
    mut event: AuditEvent,
    now: OffsetDateTime,
) -> Outcome {
    let tenant = rt.config.id.as_str();
    // A login that is itself a step-up (below) gets no second one.
    let (target, may_step_up) = match target.strip_prefix("stepup:") {
        Some(t) => (t, false),
        None => (target, true),
    };
    let admin = crate::policy::admin::by_rule(&app.config.admin, tenant, &identity);
    let allowed: Vec<(String, String)> = app
        .config
        .consoles
        .iter()
        .filter(|c| decide(app, rt, &identity, c, now).allowed())
        .map(|c| (c.id.clone(), c.display_name.clone()))
        .collect();
    if target == "admin" && !admin {
        let r = Refusal::new(
            403,
            "admin.not_admin",
            format!(
                "signed in, but not a fedgate admin: the [admin] rule names the tenant, groups and app roles that are (this login came from tenant {tenant:?})"
            ),
        );
        return refuse(app, event, r);
    }
    if allowed.is_empty() && !admin {
        if let Some(console) = target.strip_prefix("console:") {
            // The console's own denial (its policy code), without a
            // session; a step-up when a new sign-in would cure it.
            return deliver(
                app,
                rt,
                &identity,
                console,
                None,
                None,
                may_step_up,
                event,
                now,
            )
            .await;
        }
        // Where the login goes on (a console's AuthnRequest or OpenID
        // request, the launcher) after a step-up, if one would cure it: for
        // the console asked for, else the first one a new sign-in opens.
        let asked = super::sso::target_console(target);
        let curable_at = app
            .config
            .consoles
            .iter()
            .filter(|c| asked.is_none_or(|a| a == c.id))
            .find_map(|c| {
                let d = decide(app, rt, &identity, c, now).denial?;
                curable(d.code).map(|need| (c, need, d))
            });
        if let Some((console, need, denial)) = curable_at.filter(|_| may_step_up) {
            let again = format!("stepup:{target}");
            let how = StepUp {
                target: &again,
                need,
                binding,
            };
            return step_up(app, rt, &identity, console, &how, &denial, event).await;
        }
        if let Some(console) = asked {
            return deliver(app, rt, &identity, console, None, None, false, event, now).await;
        }
        return refuse(app, event, no_console());
    }
    let expires = identity.expires_at.min(now + Duration::hours(8));
    let right = if admin {
        AdminRight::Rule
    } else {
        AdminRight::No
    };
    let stored = Session::new(
        Some(tenant),
        right,
        session_identity(&identity, &app.config),
    );
    let session = match app.new_session(stored, expires).await {
        Ok(cookie) => cookie,
        Err(NewSessionError::Rng) => return refuse(app, event, rng_failed()),
        Err(NewSessionError::Store(e)) => {
            return refuse(app, event, store_down(app, "put_session", e))
        }
    };
    let held = crate::store::split_cookie(&session).map(|(id, _)| (id.to_string(), expires));
    let held = held.as_ref().map(|(id, e)| (id.as_str(), *e));
    if target == "admin" {
        event.outcome = "allowed";
        event.code = "ok".into();
        event.reason = "signed in to the admin page by the [admin] rule".into();
        app.record_audit(&event);
        return Outcome::Redirect {
            location: format!("{}/admin", app.config.server.public_url),
            session: Some(session),
        };
    }
    if let Some(location) = super::sso::resume_location(app, target) {
        event.outcome = "allowed";
        event.code = "ok".into();
        event.reason = "signed in; resuming the console's SAML AuthnRequest".into();
        app.record_audit(&event);
        app.metrics.login(tenant, "-", "signed_in", "ok");
        return Outcome::Redirect {
            location,
            session: Some(session),
        };
    }
    if let Some(key) = target.strip_prefix("authorize:") {
        event.outcome = "allowed";
        event.code = "ok".into();
        event.reason = "signed in; resuming the console's OpenID Connect request".into();
        app.record_audit(&event);
        app.metrics.login(tenant, "-", "signed_in", "ok");
        return Outcome::Redirect {
            location: format!(
                "{}/oauth2/authorize/resume?k={}",
                app.config.server.public_url,
                urlencode(key)
            ),
            session: Some(session),
        };
    }
    let with_session = |o: Outcome| match o {
        Outcome::Deliver { console, html, .. } => Outcome::Deliver {
            console,
            html,
            session: Some(session.clone()),
        },
        Outcome::Redirect { location, .. } => Outcome::Redirect {
            location,
            session: Some(session.clone()),
        },
        other => other,
    };
    if let Some(console) = target.strip_prefix("console:") {
        return with_session(
            deliver(
                app,
                rt,
                &identity,
                console,
                None,
                held,
                may_step_up,
                event,
                now,
            )
            .await,
        );
    }
    match allowed.as_slice() {
        [] => {
            // An admin no console rule grants anything: no console to go to
            // (the session opens /admin).
            refuse(app, event, no_console())
        }
        [(only, _)] => {
            let only = only.clone();
            with_session(
                deliver(
                    app,
                    rt,
                    &identity,
                    &only,
                    None,
                    held,
                    may_step_up,
                    event,
                    now,
                )
                .await,
            )
        }
        _ => {
            event.outcome = "allowed";
            event.code = "ok".into();
            event.reason = format!("{} consoles available: launcher shown", allowed.len());
            app.record_audit(&event);
            app.metrics.login(tenant, "-", "launcher", "ok");
            Outcome::Launcher {
                session,
                consoles: allowed,
            }
        }
    }
}

/// What a session keeps of a verified Identity: what later requests
/// (launches, the OpenID provider, the admin page) decide and deliver from.
/// Groups only when some rule or the `[admin]` rule names them (by id, or by
/// name case-insensitively): a user in 200 groups of which two matter keeps
/// two. What no later request reads is dropped: the IdP's raw attribute
/// map, the overage link, the authentication method
/// URIs (the `mfa` verdict stays) and how the login's signature was
/// verified (the login's audit event has it). Everything else (subject,
/// issuer, NameID format (by a short name), UPN, mail, name, app roles, MFA, authentication
/// time, expiry, assertion id) is kept as it was verified. A
/// configuration reload that names a new group takes effect at the next
/// sign-in, as sessions end within 8 hours.
pub(super) fn session_identity(identity: &Identity, config: &crate::config::Config) -> Identity {
    let named = |g: &String| {
        config.admin.groups.contains(g)
            || config.rules.iter().any(|r| {
                r.groups.contains(g) || r.group_names.iter().any(|n| n.eq_ignore_ascii_case(g))
            })
    };
    let mut kept = identity.clone();
    kept.groups.retain(named);
    kept.attributes.clear();
    kept.groups_link = None;
    kept.auth_methods.clear();
    kept.verification = Default::default();
    // Single logout ends every session of the NameID at the tenant, with
    // or without its SessionIndex (a superset, never fewer): not kept.
    kept.idp_session = None;
    // The NameID Format, for a LogoutRequest to the tenant: short.
    kept.subject_format = kept
        .subject_format
        .as_deref()
        .map(crate::slo::compact_format);
    kept
}

/// What a new sign-in would cure a denial with: MFA
/// (`policy.mfa_required`), or only a fresh sign-in (`policy.auth_too_old`).
pub fn curable(code: &str) -> Option<Need> {
    match code {
        "policy.mfa_required" => Some(Need::Mfa),
        "policy.auth_too_old" => Some(Need::Fresh),
        _ => None,
    }
}

/// What the step-up page tells the user.
pub fn step_up_message(need: Need, console: &str) -> String {
    match need {
        Need::Mfa => format!(
            "{console} requires a multi-factor sign-in: signing you in again at your organisation, with MFA."
        ),
        Need::Fresh => format!(
            "{console} requires a recent sign-in: signing you in again at your organisation."
        ),
    }
}

/// A step-up to start: where the login goes on (`stepup:…`), what it asks
/// for, and the browser's binding cookie to keep.
pub(super) struct StepUp<'a> {
    pub target: &'a str,
    pub need: Need,
    pub binding: Option<&'a str>,
}

/// What a step-up asks the tenant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Mfa,
    Fresh,
}

/// Step-up instead of a dead end: the only rules that would grant access
/// need MFA (or a fresher sign-in) this login lacks, so sign the user in at
/// the tenant again, asking for it (`ForceAuthn`, and for MFA Entra's
/// `multipleauthn` context by SAML, `prompt=login` by OIDC), once: the
/// login that comes back (`target` is `stepup:…`) is decided again, and a
/// denial then stands. The user sees a page saying so, which goes on by
/// itself. The decision is audited as `step_up` with the policy's code.
pub(super) async fn step_up(
    app: &App,
    rt: &TenantRuntime,
    identity: &Identity,
    console: &Console,
    how: &StepUp<'_>,
    denial: &crate::identity::Denial,
    mut event: AuditEvent,
) -> Outcome {
    let (target, need) = (how.target, how.need);
    let tenant = rt.config.id.as_str();
    let start = super::LoginStart {
        login_hint: identity.upn.as_deref().or(identity.email.as_deref()),
        binding: how.binding,
        force_authn: true,
        require_mfa: need == Need::Mfa,
    };
    let client = event.client.clone();
    let started = if rt.login.is_some() {
        super::oidc_login_with(app, tenant, target, &start, client).await
    } else {
        super::saml_login_with(app, tenant, target, &start, client).await
    };
    let Outcome::StartLogin { location, binding } = started else {
        return started;
    };
    let message = step_up_message(need, &console.display_name);
    event.outcome = "step_up";
    event.code = denial.code.to_string();
    event.reason = format!(
        "{}; signing in again at the tenant (step-up)",
        denial.message
    );
    app.record_audit(&event);
    app.metrics
        .login(tenant, &console.id, "step_up", denial.code);
    Outcome::StepUp {
        location,
        binding,
        message,
    }
}

fn no_console() -> Refusal {
    Refusal::new(
        403,
        "policy.no_console",
        "no console grants this user a role (see the rules for this tenant)",
    )
}

/// `GET /launch/{console}` from the launcher, with the session cookie.
pub async fn launch(
    app: &App,
    session: Option<&str>,
    console: &str,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let stored = match session {
        None => None,
        Some(s) => match app.open_session(s, now).await {
            Ok(found) => found,
            Err(e) => {
                let event = AuditEvent::new(now, "-", "session", client);
                return refuse(app, event, store_down(app, "get_session", e));
            }
        },
    };
    let Some(super::session::Opened {
        id,
        session:
            Session {
                tenant: Some(tenant),
                identity,
                ..
            },
    }) = stored
    else {
        let event = AuditEvent::new(now, "-", "session", client);
        let r = Refusal::new(
            401,
            "session.missing",
            "no fedgate session: sign in again from Entra (My Apps)",
        );
        return refuse(app, event, r);
    };
    let event = AuditEvent::new(now, &tenant, "session", client).with_identity(&identity);
    let Some(rt) = app.tenants.get(&tenant) else {
        return refuse(
            app,
            event,
            Refusal::new(404, "tenant.unknown", "the session's tenant is gone"),
        );
    };
    // Console records live as long as the identity (the session never longer).
    let held = Some((id.as_str(), identity.expires_at));
    deliver(app, rt, &identity, console, None, held, true, event, now).await
}

/// Groups overage: Entra sent a link instead of the groups. With Graph
/// configured for the tenant, fetch the user's transitive groups; without
/// it, leave the overage flagged (policy then denies with
/// `policy.groups_overage_unresolved`). Never "no groups".
pub(super) async fn resolve_overage(
    rt: &TenantRuntime,
    mut identity: Identity,
) -> Result<Identity, (Identity, crate::trust::graph::GraphError)> {
    if !identity.groups_overage {
        return Ok(identity);
    }
    let (Some(graph), Some(oid)) = (&rt.graph, identity.object_id.clone()) else {
        return Ok(identity);
    };
    match graph.transitive_groups(&oid).await {
        Ok(groups) => {
            tracing::info!(target: "audit", tenant = %rt.config.id, groups = groups.len(), "groups overage resolved through Microsoft Graph");
            identity.groups = groups;
            identity.groups_overage = false;
            identity.groups_source = GroupsSource::Graph;
            Ok(identity)
        }
        Err(e) => Err((identity, e)),
    }
}

pub(crate) fn decide(
    app: &App,
    rt: &TenantRuntime,
    identity: &Identity,
    console: &Console,
    now: OffsetDateTime,
) -> crate::identity::Decision {
    let cref = ConsoleRef {
        id: &console.id,
        kind: console.kind,
        extra_roles: &console.extra_roles,
    };
    policy::decide(identity, &rt.config.id, &cref, &app.config.rules, now)
}

/// Deliver to a console: unsolicited (IdP-initiated), or as the answer to
/// the console's AuthnRequest (`answer`). With `may_step_up`, a denial a new
/// sign-in can cure ([`curable`]: the rule needs MFA, or a fresher sign-in)
/// starts one at the tenant instead ([`step_up`]); without it (the login is
/// itself a step-up), the denial stands.
#[allow(clippy::too_many_arguments)]
pub(super) async fn deliver(
    app: &App,
    rt: &TenantRuntime,
    identity: &Identity,
    console_id: &str,
    answer: Option<&saml_post::InResponse>,
    session: Option<(&str, OffsetDateTime)>,
    may_step_up: bool,
    mut event: AuditEvent,
    now: OffsetDateTime,
) -> Outcome {
    event.console = Some(crate::util::clip(console_id, crate::audit::CLIP));
    let Some(console) = app.console(console_id) else {
        let r = Refusal::new(
            404,
            "console.unknown",
            format!(
                "RelayState names console {:?}, which is not configured",
                crate::util::clip(console_id, crate::audit::CLIP)
            ),
        );
        return refuse(app, event, r);
    };
    let decision = decide(app, rt, identity, console, now);
    event.rules_matched = decision.matched_rules();
    if let Some(denial) = decision
        .denial
        .as_ref()
        .filter(|_| !decision.allowed())
        .cloned()
    {
        if let Some(need) = curable(denial.code).filter(|_| may_step_up) {
            let target = format!("stepup:console:{console_id}");
            let how = StepUp {
                target: &target,
                need,
                binding: None,
            };
            return step_up(app, rt, identity, console, &how, &denial, event).await;
        }
        let mut r = Refusal::new(403, denial.code, denial.message);
        r.console = Some(console.display_name.clone());
        return refuse(app, event, r);
    }
    if !decision.allowed() {
        let r = Refusal::new(403, "policy.no_rule_matched", "no rule grants a role");
        return refuse(app, event, r);
    }
    if console.reply_url.is_empty() {
        // An OIDC-only console: the user starts its login there, and its
        // OpenID Connect request finds the fedgate session.
        let Some(location) = console
            .oidc
            .as_ref()
            .and_then(|o| o.initiate_login_uri.clone())
        else {
            let r = Refusal::new(
                404,
                "console.no_login_url",
                format!("console {console_id:?} signs in by OIDC and has no initiate_login_uri: open the console itself"),
            );
            return refuse(app, event, r);
        };
        event.outcome = "allowed";
        event.code = "ok".into();
        event.roles_granted = decision.grants.clone();
        event.reason = "sent to the console's login (OpenID Connect)".into();
        app.record_audit(&event);
        app.metrics
            .login(&rt.config.id, console_id, "allowed", "ok");
        return Outcome::Redirect {
            location,
            session: None,
        };
    }
    let lifetime = Duration::seconds(app.config.server.assertion_lifetime_secs as i64);
    let mut delivery = saml_post::delivery(console, &app.idp_entity_id, lifetime, &rt.config);
    delivery.in_response = answer;
    delivery.encrypt_for = app.console_encryption.get(console_id);
    delivery.session_index = session.map(|(id, _)| id);
    let Some(seed) = random_id() else {
        return refuse(app, event, rng_failed());
    };
    let signed =
        match saml_post::unsigned_response(identity, &decision.grants, &delivery, now, &seed) {
            // Signing on the CPU pool, ahead of new work and never refused:
            // this login has been verified and its assertion id used up.
            Ok(unsigned) => {
                let keys = app.keys();
                app.cpu
                    .continue_with(move || unsigned.sign(&keys.current.saml))
                    .await
            }
            Err(e) => Ok(Err(e)),
        };
    let xml = match signed {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            let r = Refusal::new(e.status(), e.code(), e.to_string());
            return refuse(app, event, r);
        }
        Err(e) => return refuse(app, event, Refusal::from_pool(e)),
    };
    let relay_state = answer.and_then(|a| a.relay_state.as_deref());
    let mut html =
        saml_post::post_form(&console.reply_url, &xml, relay_state, &console.display_name);
    if consoles::profile(console.kind).users_must_exist {
        html = html.replace(
            "</form>",
            "</form><p>This console does not create users: if it answers that the user is unknown, \
             an administrator must first create the user (with the same e-mail address) in the console.</p>",
        );
    }
    event.outcome = "allowed";
    event.code = "ok".into();
    event.roles_granted = decision.grants.clone();
    event.reason = match answer {
        Some(a) => format!(
            "granted by {}; answering the console's AuthnRequest {}",
            event.rules_matched.join(", "),
            crate::util::clip(&a.id, 64)
        ),
        None => format!("granted by {}", event.rules_matched.join(", ")),
    };
    app.record_audit(&event);
    app.metrics
        .login(&rt.config.id, console_id, "allowed", "ok");
    if let Some((id, until)) = session {
        let user = (rt.config.id.as_str(), identity.subject.as_str());
        app.record_reach(user, id, until, console_id, Reach::Saml)
            .await;
    }
    Outcome::Deliver {
        console: console_id.to_string(),
        html,
        session: None,
    }
}
