//! Who is a fedgate admin: the `[admin]` rule, and nothing else. A user of
//! the named tenant (the fedgate tenant whose trust verified the login) with
//! one of the rule's groups or app roles. Never an attribute the IdP sent,
//! never another tenant (group ids are no secret: any tenant can send one),
//! never a service account; with `[admin]` unset, nobody signs in as admin
//! by SSO.

use crate::config::Admin;
use crate::identity::{Identity, PrincipalKind};

/// Whether `identity`, verified by fedgate's tenant `tenant`, is an admin by
/// the `[admin]` rule.
pub fn by_rule(rule: &Admin, tenant: &str, identity: &Identity) -> bool {
    let Some(admin_tenant) = rule.tenant.as_deref() else {
        return false;
    };
    admin_tenant == tenant
        && identity.kind == PrincipalKind::User
        && !identity.groups_overage
        && (identity.groups.iter().any(|g| rule.groups.contains(g))
            || identity.roles.iter().any(|r| rule.app_roles.contains(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: &[&str]) -> Identity {
        let now = time::OffsetDateTime::now_utc();
        let mut id: Identity = serde_json::from_value(serde_json::json!({
            "subject": "root@contoso.example", "issuer": "https://sts.windows.net/t/",
            "tenant_id": "t", "object_id": "o", "kind": "user", "source": "saml",
            "upn": null, "email": null, "display_name": null, "groups": [],
            "groups_overage": false, "roles": [], "auth_methods": [], "mfa": true,
            "auth_time": null, "expires_at": "2030-01-01T00:00:00Z", "token_id": null,
            "verification": {"signed": [], "algorithm": "", "key": ""},
        }))
        .unwrap();
        id.expires_at = now + time::Duration::hours(1);
        id.groups = groups.iter().map(|g| g.to_string()).collect();
        id
    }

    fn rule() -> Admin {
        Admin {
            tenant: Some("contoso".into()),
            groups: vec!["admins".into()],
            app_roles: vec!["Fedgate.Admin".into()],
        }
    }

    #[test]
    fn only_the_rule_makes_an_admin() {
        assert!(by_rule(&rule(), "contoso", &user(&["admins"])));
        let mut by_role = user(&[]);
        by_role.roles = vec!["Fedgate.Admin".into()];
        assert!(by_rule(&rule(), "contoso", &by_role));
        // Another tenant sending the same group id: no.
        assert!(!by_rule(&rule(), "fabrikam", &user(&["admins"])));
        // Not in the group: no, whatever attributes say.
        let mut marked = user(&["others"]);
        for name in ["fedgate:admin", "fedgate:tenant", "fedgate:groups_source"] {
            marked
                .attributes
                .insert(name.into(), vec!["contoso".into()]);
        }
        assert!(!by_rule(&rule(), "contoso", &marked));
        // [admin] unset: nobody.
        assert!(!by_rule(&Admin::default(), "contoso", &user(&["admins"])));
        // A service account with the role: no.
        let mut app = by_role.clone();
        app.kind = PrincipalKind::ServiceAccount;
        assert!(!by_rule(&rule(), "contoso", &app));
    }
}
