//! Policy: `(Identity, console, rules, now) -> Decision`, pure — no I/O, no
//! clock reads — so it can be tested exhaustively and explained.
//!
//! Deny by default. Only the rules for this tenant and console count. A
//! rule says whom it grants — users (the default), service accounts
//! (app-only tokens), or both — and matches a login of that kind when any of
//! its lists hits (group object ids, group names, app roles, service-account
//! app ids) and its conditions hold (MFA, authentication age). An app-only
//! token carries application permissions in `roles`, which a tenant admin
//! grants to any service principal: they never satisfy a users-only rule. Matching rules union their grants. Every rule's
//! outcome is recorded with a reason an admin can read: it feeds the audit
//! event and `explain`.

pub mod admin;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::consoles::{self, ConsoleKind};
use crate::identity::{Decision, Denial, Grant, Identity, PrincipalKind, RuleOutcome};

/// One rule of the configuration (`[[rules]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    /// fedgate's tenant id.
    pub tenant: String,
    /// The console id.
    pub console: String,
    /// Group object ids (preferred: they survive renames).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Group display names: only when the tenant's group claim emits names.
    #[serde(default)]
    pub group_names: Vec<String>,
    /// App roles assigned in the Enterprise application.
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Service accounts (app-only tokens) by application id.
    #[serde(default)]
    pub app_ids: Vec<String>,
    /// The console roles granted.
    pub roles: Vec<String>,
    /// Which customer/unit of the console the roles apply to.
    #[serde(default)]
    pub scope: String,
    /// Whom the rule grants: `users` (the default), `service_accounts`
    /// (app-only tokens), or `both`.
    #[serde(default)]
    pub principals: Principals,
    /// Deny unless the login used MFA. Users only: a rule that can match
    /// service accounts (which have no MFA) cannot require it.
    #[serde(default)]
    pub require_mfa: bool,
    #[serde(default)]
    pub max_auth_age_secs: Option<u64>,
    /// Caps the lifetime of console tokens this rule grants (service
    /// accounts whose tokens never expire are a risk).
    #[serde(default)]
    pub max_token_lifetime_secs: Option<u64>,
}

/// Whom a rule grants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Principals {
    /// Signed-in people (SAML, OIDC, user access tokens).
    #[default]
    Users,
    /// Applications signing in as themselves (app-only tokens).
    ServiceAccounts,
    Both,
}

impl Principals {
    pub fn admits(self, kind: PrincipalKind) -> bool {
        matches!(
            (self, kind),
            (Principals::Both, _)
                | (Principals::Users, PrincipalKind::User)
                | (Principals::ServiceAccounts, PrincipalKind::ServiceAccount)
        )
    }
    pub fn label(self) -> &'static str {
        match self {
            Principals::Users => "users only",
            Principals::ServiceAccounts => "service accounts only",
            Principals::Both => "users and service accounts",
        }
    }
}

/// The console as policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleRef<'a> {
    pub id: &'a str,
    pub kind: ConsoleKind,
    pub extra_roles: &'a [String],
}

/// A rule the configuration cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub rule: String,
    pub code: &'static str,
    pub message: String,
}

enum Why {
    Matched(String),
    NoMatch(String),
    Mfa,
    TooOld(String),
    Overage,
}

/// What of `rule` these claims match, if anything: a group (by id, or by
/// name when the tenant emits names), an app role, or (service accounts)
/// the application id. Only membership: MFA and authentication age are the
/// login's, checked by [`decide`]. Access reviews ask this of the groups a
/// user had at their last sign-in.
pub fn membership(
    rule: &Rule,
    kind: PrincipalKind,
    groups: &[String],
    roles: &[String],
    app_id: Option<&str>,
) -> Option<String> {
    if !rule.principals.admits(kind) {
        return None;
    }
    let service = kind == PrincipalKind::ServiceAccount;
    let mut hit = None;
    if let Some(g) = rule.groups.iter().find(|g| groups.contains(g)) {
        hit = Some(format!("member of group {g}"));
    }
    if hit.is_none() {
        if let Some(n) = rule
            .group_names
            .iter()
            .find(|n| groups.iter().any(|g| g.eq_ignore_ascii_case(n)))
        {
            hit = Some(format!("member of group named {n:?}"));
        }
    }
    if hit.is_none() {
        if let Some(r) = rule.app_roles.iter().find(|r| roles.contains(r)) {
            hit = Some(format!("has app role {r}"));
        }
    }
    if hit.is_none() && service {
        if let Some(a) = rule.app_ids.iter().find(|a| app_id == Some(a.as_str())) {
            hit = Some(format!("service account {a}"));
        }
    }
    hit
}

fn evaluate(identity: &Identity, rule: &Rule, now: OffsetDateTime) -> Why {
    let service = identity.kind == PrincipalKind::ServiceAccount;
    if !rule.principals.admits(identity.kind) {
        return Why::NoMatch(format!(
            "this rule grants {}; the login is {}",
            rule.principals.label(),
            if service {
                "a service account (an app-only token)"
            } else {
                "a user"
            }
        ));
    }
    let hit = membership(
        rule,
        identity.kind,
        &identity.groups,
        &identity.roles,
        identity.app_id.as_deref(),
    );
    let Some(hit) = hit else {
        let uses_groups = !rule.groups.is_empty() || !rule.group_names.is_empty();
        if identity.groups_overage && uses_groups {
            return Why::Overage;
        }
        let mut needs = Vec::new();
        if !rule.groups.is_empty() {
            needs.push(format!("one of groups {:?}", rule.groups));
        }
        if !rule.group_names.is_empty() {
            needs.push(format!("one of group names {:?}", rule.group_names));
        }
        if !rule.app_roles.is_empty() {
            needs.push(format!("one of app roles {:?}", rule.app_roles));
        }
        if !rule.app_ids.is_empty() {
            needs.push(format!("a service account among {:?}", rule.app_ids));
        }
        return Why::NoMatch(format!(
            "needs {}; the user has groups {:?} and roles {:?}",
            needs.join(" or "),
            identity.groups,
            identity.roles
        ));
    };
    // Never skipped: a service account has no MFA, so a rule that requires
    // it never grants one (the configuration refuses such a rule anyway).
    if rule.require_mfa && !identity.mfa {
        return Why::Mfa;
    }
    if let Some(max) = rule.max_auth_age_secs {
        match identity.auth_time {
            Some(t) if now - t <= Duration::seconds(max as i64) => {}
            Some(t) => {
                return Why::TooOld(format!(
                    "authenticated {} s ago; this rule allows {max} s",
                    (now - t).whole_seconds()
                ))
            }
            None => return Why::TooOld("the login carries no authentication time".into()),
        }
    }
    Why::Matched(hit)
}

/// Decide what `identity` gets on `console`.
pub fn decide(
    identity: &Identity,
    tenant: &str,
    console: &ConsoleRef,
    rules: &[Rule],
    now: OffsetDateTime,
) -> Decision {
    let mut grants = BTreeSet::new();
    let mut outcomes = Vec::new();
    let (mut mfa, mut old, mut overage) = (false, None, false);
    for rule in rules
        .iter()
        .filter(|r| r.tenant == tenant && r.console == console.id)
    {
        let (matched, reason) = match evaluate(identity, rule, now) {
            Why::Matched(why) => {
                for role in &rule.roles {
                    grants.insert(Grant {
                        role: role.clone(),
                        scope: rule.scope.clone(),
                    });
                }
                (
                    true,
                    format!("matched ({}): {why}", rule.principals.label()),
                )
            }
            Why::NoMatch(why) => (false, format!("no match: {why}")),
            Why::Mfa => {
                mfa = true;
                (
                    false,
                    "no match: requires MFA; this login did not use MFA".to_string(),
                )
            }
            Why::TooOld(why) => {
                old.get_or_insert_with(|| why.clone());
                (false, format!("no match: {why}"))
            }
            Why::Overage => {
                overage = true;
                (
                    false,
                    "no match: Entra sent a groups overage link instead of the groups, and they are not resolved".to_string(),
                )
            }
        };
        outcomes.push(RuleOutcome {
            rule: rule.id.clone(),
            matched,
            reason,
        });
    }
    let denial = if !grants.is_empty() {
        None
    } else if outcomes.is_empty() {
        Some(Denial {
            code: "policy.no_rules",
            message: format!(
                "no rule grants anything on console {} for tenant {tenant}",
                console.id
            ),
        })
    } else if mfa {
        Some(Denial {
            code: "policy.mfa_required",
            message: "a rule would grant access, but it requires MFA and this login did not use it"
                .into(),
        })
    } else if let Some(why) = old {
        Some(Denial {
            code: "policy.auth_too_old",
            message: format!("a rule would grant access, but {why}"),
        })
    } else if overage {
        Some(Denial {
            code: "policy.groups_overage_unresolved",
            message: "the user's groups were not sent (overage) and could not be resolved".into(),
        })
    } else {
        Some(Denial {
            code: "policy.no_rule_matched",
            message: format!(
                "none of the {} rules for this console matches the user's groups or roles",
                outcomes.len()
            ),
        })
    };
    Decision {
        console: console.id.to_string(),
        grants: grants.into_iter().collect(),
        rules: outcomes,
        denial,
    }
}

/// Problems that make rules unusable: unknown console or tenant, a role the
/// console does not have, a rule that matches nobody or grants nothing, a
/// missing scope on a console whose roles are scoped.
pub fn validate(rules: &[Rule], consoles: &[ConsoleRef], tenants: &[&str]) -> Vec<RuleProblem> {
    let mut out = Vec::new();
    let mut problem = |rule: &Rule, code, message: String| {
        out.push(RuleProblem {
            rule: rule.id.clone(),
            code,
            message,
        })
    };
    let mut ids = BTreeSet::new();
    for rule in rules {
        if !ids.insert(rule.id.as_str()) {
            problem(
                rule,
                "policy.duplicate_rule",
                format!("the rule id {:?} is used twice", rule.id),
            );
        }
        if !tenants.contains(&rule.tenant.as_str()) {
            problem(
                rule,
                "policy.unknown_tenant",
                format!("no tenant {:?} is configured", rule.tenant),
            );
        }
        let Some(console) = consoles.iter().find(|c| c.id == rule.console) else {
            problem(
                rule,
                "policy.unknown_console",
                format!("no console {:?} is configured", rule.console),
            );
            continue;
        };
        if rule.groups.is_empty()
            && rule.group_names.is_empty()
            && rule.app_roles.is_empty()
            && rule.app_ids.is_empty()
        {
            problem(
                rule,
                "policy.empty_match",
                "the rule names no group, group name, app role or app id: it would match nobody (rules never match everyone)".into(),
            );
        }
        if rule.roles.is_empty() {
            problem(rule, "policy.no_roles", "the rule grants no role".into());
        }
        if rule.require_mfa && rule.principals != Principals::Users {
            problem(
                rule,
                "policy.mfa_for_service_accounts",
                format!(
                    "require_mfa = true on a rule that grants {}: an app-only token has no MFA, so the rule would read as MFA-protected while a client secret alone satisfies it; split it into a users rule with require_mfa and a service_accounts rule without",
                    rule.principals.label()
                ),
            );
        }
        if !rule.app_ids.is_empty() && rule.principals == Principals::Users {
            problem(
                rule,
                "policy.app_ids_need_service_accounts",
                "app_ids name service accounts, but the rule grants users only: set principals = \"service_accounts\"".into(),
            );
        }
        for role in &rule.roles {
            if !consoles::check_role(console.kind, console.extra_roles, role) {
                problem(
                    rule,
                    "policy.unknown_role",
                    format!(
                        "console {:?} ({}) has no role {role:?}; known roles: {:?}, and from its extra_roles: {:?} (add it to the console's extra_roles if the console has it)",
                        console.id,
                        consoles::profile(console.kind).label,
                        consoles::profile(console.kind).roles,
                        console.extra_roles
                    ),
                );
            }
        }
        if consoles::profile(console.kind).scoped_roles && rule.scope.trim().is_empty() {
            problem(
                rule,
                "policy.scope_missing",
                format!(
                    "roles on console {:?} are scoped: set the rule's scope (customer or unit)",
                    console.id
                ),
            );
        }
    }
    out
}

/// A readable explanation of a decision (for `explain` and the admin page).
pub fn explain(decision: &Decision) -> String {
    let mut s = format!("console {}:\n", decision.console);
    for r in &decision.rules {
        s.push_str(&format!("  rule {}: {}\n", r.rule, r.reason));
    }
    match &decision.denial {
        Some(d) => s.push_str(&format!("denied: {} ({})\n", d.code, d.message)),
        None => {
            let grants: Vec<String> = decision
                .grants
                .iter()
                .map(|g| {
                    if g.scope.is_empty() {
                        g.role.clone()
                    } else {
                        format!("{} @ {}", g.role, g.scope)
                    }
                })
                .collect();
            s.push_str(&format!("granted: {}\n", grants.join(", ")));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Source, Verification};

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn user(groups: &[&str], mfa: bool) -> Identity {
        Identity {
            subject: "a@x".into(),
            subject_format: None,
            issuer: "https://sts.windows.net/t/".into(),
            tenant_id: Some("t".into()),
            object_id: Some("o".into()),
            kind: PrincipalKind::User,
            source: Source::Saml,
            upn: None,
            email: None,
            display_name: None,
            groups: groups.iter().map(|s| s.to_string()).collect(),
            groups_overage: false,
            groups_link: None,
            groups_source: Default::default(),
            roles: vec![],
            auth_methods: vec![],
            mfa,
            auth_time: Some(now() - Duration::minutes(10)),
            expires_at: now() + Duration::hours(1),
            app_id: None,
            token_id: None,
            idp_session: None,
            verification: Verification::default(),
            attributes: Default::default(),
        }
    }

    fn rule(id: &str, groups: &[&str], roles: &[&str]) -> Rule {
        Rule {
            id: id.into(),
            tenant: "contoso".into(),
            console: "c1".into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            group_names: vec![],
            app_roles: vec![],
            app_ids: vec![],
            roles: roles.iter().map(|s| s.to_string()).collect(),
            scope: "contoso".into(),
            principals: Principals::Users,
            require_mfa: false,
            max_auth_age_secs: None,
            max_token_lifetime_secs: None,
        }
    }

    const C1: ConsoleRef = ConsoleRef {
        id: "c1",
        kind: ConsoleKind::Autotask,
        extra_roles: &[],
    };

    fn codes(d: &Decision) -> Option<&'static str> {
        d.denial.as_ref().map(|d| d.code)
    }

    #[test]
    fn deny_by_default_and_union_of_matching_rules() {
        let rules = vec![
            rule("r1", &["g1"], &["Tech"]),
            rule("r2", &["g2"], &["Administrator", "Tech"]),
        ];
        let d = decide(&user(&["g9"], true), "contoso", &C1, &rules, now());
        assert_eq!(codes(&d), Some("policy.no_rule_matched"));
        assert!(!d.allowed());
        assert!(d
            .rules
            .iter()
            .all(|r| r.reason.starts_with("no match: needs one of groups")));
        let d = decide(&user(&["g1", "g2"], true), "contoso", &C1, &rules, now());
        let roles: Vec<_> = d.grants.iter().map(|g| g.role.as_str()).collect();
        assert_eq!(roles, ["Administrator", "Tech"]);
        assert!(d.allowed());
        assert!(explain(&d).contains("granted: Administrator @ contoso, Tech @ contoso"));
    }

    #[test]
    fn rules_of_other_tenants_and_consoles_do_not_count() {
        let mut other = rule("r1", &["g1"], &["Tech"]);
        other.tenant = "fabrikam".into();
        let mut other_console = rule("r2", &["g1"], &["Tech"]);
        other_console.console = "c2".into();
        let d = decide(
            &user(&["g1"], true),
            "contoso",
            &C1,
            &[other, other_console],
            now(),
        );
        assert_eq!(codes(&d), Some("policy.no_rules"));
        assert!(d.rules.is_empty());
    }

    #[test]
    fn mfa_and_authentication_age() {
        let mut r = rule("r1", &["g1"], &["Tech"]);
        r.require_mfa = true;
        let d = decide(
            &user(&["g1"], false),
            "contoso",
            &C1,
            std::slice::from_ref(&r),
            now(),
        );
        assert_eq!(codes(&d), Some("policy.mfa_required"));
        assert!(decide(
            &user(&["g1"], true),
            "contoso",
            &C1,
            std::slice::from_ref(&r),
            now()
        )
        .allowed());
        r.require_mfa = false;
        r.max_auth_age_secs = Some(300);
        let d = decide(
            &user(&["g1"], true),
            "contoso",
            &C1,
            std::slice::from_ref(&r),
            now(),
        );
        assert_eq!(codes(&d), Some("policy.auth_too_old"));
        r.max_auth_age_secs = Some(3600);
        assert!(decide(&user(&["g1"], true), "contoso", &C1, &[r], now()).allowed());
    }

    #[test]
    fn overage_is_never_read_as_no_groups() {
        let mut u = user(&[], true);
        u.groups_overage = true;
        let d = decide(&u, "contoso", &C1, &[rule("r1", &["g1"], &["Tech"])], now());
        assert_eq!(codes(&d), Some("policy.groups_overage_unresolved"));
    }

    #[test]
    fn names_app_roles_and_service_accounts() {
        let mut r = rule("r1", &[], &["Tech"]);
        r.group_names = vec!["Backup Admins".into()];
        assert!(decide(
            &user(&["backup admins"], true),
            "contoso",
            &C1,
            std::slice::from_ref(&r),
            now()
        )
        .allowed());
        let mut r = rule("r2", &[], &["Tech"]);
        r.app_roles = vec!["Backup.Operator".into()];
        let mut u = user(&[], true);
        u.roles = vec!["Backup.Operator".into()];
        assert!(decide(&u, "contoso", &C1, std::slice::from_ref(&r), now()).allowed());
        let mut r = rule("r3", &[], &["Tech"]);
        r.app_ids = vec!["app-1".into()];
        r.principals = Principals::ServiceAccounts;
        let mut svc = user(&[], false);
        svc.kind = PrincipalKind::ServiceAccount;
        svc.app_id = Some("app-1".into());
        assert!(decide(&svc, "contoso", &C1, std::slice::from_ref(&r), now()).allowed());
        // A user carrying that app id is not a service account.
        let mut u = user(&[], true);
        u.app_id = Some("app-1".into());
        assert!(!decide(&u, "contoso", &C1, &[r], now()).allowed());
    }

    /// The attack: a rule reading as MFA-protected (`app_roles` + `require_mfa`)
    /// and a service principal's app-only token carrying that role as an
    /// application permission (a client secret, no user, no MFA).
    #[test]
    fn app_only_tokens_never_pass_users_rules_nor_mfa() {
        let mut r = rule("admins", &[], &["Tech"]);
        r.app_roles = vec!["Backup.Admin".into()];
        r.require_mfa = true;
        let mut svc = user(&[], false);
        svc.kind = PrincipalKind::ServiceAccount;
        svc.app_id = Some("app-1".into());
        svc.roles = vec!["Backup.Admin".into()];
        let d = decide(&svc, "contoso", &C1, std::slice::from_ref(&r), now());
        assert_eq!(codes(&d), Some("policy.no_rule_matched"));
        assert!(
            d.rules[0].reason.contains("grants users only"),
            "{}",
            d.rules[0].reason
        );
        // The same role on a user with MFA: granted; without MFA: refused.
        let mut u = user(&[], true);
        u.roles = vec!["Backup.Admin".into()];
        let d = decide(&u, "contoso", &C1, std::slice::from_ref(&r), now());
        assert!(d.allowed() && d.rules[0].reason.starts_with("matched (users only)"));
        u.mfa = false;
        assert_eq!(
            codes(&decide(&u, "contoso", &C1, std::slice::from_ref(&r), now())),
            Some("policy.mfa_required")
        );
        // A rule for both kinds with require_mfa: refused by validation, and
        // if evaluated anyway, never satisfied by an app-only token.
        r.principals = Principals::Both;
        let problems = validate(std::slice::from_ref(&r), &[C1], &["contoso"]);
        assert_eq!(
            problems.iter().map(|p| p.code).collect::<Vec<_>>(),
            vec!["policy.mfa_for_service_accounts"]
        );
        assert_eq!(
            codes(&decide(
                &svc,
                "contoso",
                &C1,
                std::slice::from_ref(&r),
                now()
            )),
            Some("policy.mfa_required")
        );
        // app_ids on a users-only rule would never match: a configuration error.
        let mut a = rule("automation", &[], &["Tech"]);
        a.app_ids = vec!["app-1".into()];
        let problems = validate(&[a], &[C1], &["contoso"]);
        assert_eq!(
            problems.iter().map(|p| p.code).collect::<Vec<_>>(),
            vec!["policy.app_ids_need_service_accounts"]
        );
    }

    #[test]
    fn validation_names_every_problem() {
        let consoles = [
            C1,
            ConsoleRef {
                id: "acr",
                kind: ConsoleKind::Acronis,
                extra_roles: &[],
            },
        ];
        let mut rules = vec![rule("ok", &["g"], &["Tech"])];
        let mut r = rule("bad-console", &["g"], &["Tech"]);
        r.console = "nope".into();
        rules.push(r);
        let mut r = rule("bad-tenant", &["g"], &["Tech"]);
        r.tenant = "nope".into();
        rules.push(r);
        rules.push(rule("bad-role", &["g"], &["Backup Operator"]));
        rules.push(rule("empty", &[], &["Tech"]));
        rules.push(rule("no-roles", &["g"], &[]));
        let mut r = rule("no-scope", &["g"], &["company_admin"]);
        r.console = "acr".into();
        r.scope = String::new();
        rules.push(r);
        let problems = validate(&rules, &consoles, &["contoso"]);
        let got: Vec<(&str, &str)> = problems.iter().map(|p| (p.rule.as_str(), p.code)).collect();
        assert_eq!(
            got,
            [
                ("bad-console", "policy.unknown_console"),
                ("bad-tenant", "policy.unknown_tenant"),
                ("bad-role", "policy.unknown_role"),
                ("empty", "policy.empty_match"),
                ("no-roles", "policy.no_roles"),
                ("no-scope", "policy.scope_missing"),
            ]
        );
    }
}
