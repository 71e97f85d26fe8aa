//! The admin page over real HTTP: access (local token, SSO admin role),
//! CSRF, the dashboard, the test tab; and the same driven in headless
//! Chromium (scripts/admin_browser.py, Selenium), JavaScript off.

use fedgate::demo::{self, Browser, Environment, CONSOLE_ID, ENGINEERING_GROUP};

const TOKEN: &str = "admin-token-for-the-tests-0123456789";

fn admin_toml() -> String {
    format!("\n[admin]\ntenant = \"contoso\"\ngroups = [\"{ENGINEERING_GROUP}\"]\n")
}

fn csrf_in(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_needs_a_login_and_a_csrf_token_and_explains_a_response() {
    std::env::set_var("FEDGATE_ADMIN_TOKEN", TOKEN);
    let env = Environment::start_with(&admin_toml()).await.unwrap();
    let b = Browser::new();
    // Not signed in: the login page, with the security headers.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/admin", env.fedgate_url))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let login = b.get(&format!("{}/admin", env.fedgate_url)).await.unwrap();
    assert!(login.body.contains("name=\"token\""), "{}", login.body);
    let csrf = csrf_in(&login.body);
    // Without the CSRF token: refused.
    let p = b
        .post_form(
            &format!("{}/admin/login", env.fedgate_url),
            &[("token".into(), TOKEN.into())],
        )
        .await
        .unwrap();
    assert_eq!(p.status, 403);
    assert!(p.body.contains("admin.csrf"));
    // Wrong token: refused and audited.
    let login = b.get(&format!("{}/admin", env.fedgate_url)).await.unwrap();
    let p = b
        .post_form(
            &format!("{}/admin/login", env.fedgate_url),
            &[
                ("token".into(), "wrong".into()),
                ("csrf".into(), csrf_in(&login.body)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(p.status, 403);
    assert!(p.body.contains("admin.token_invalid"));
    let _ = csrf;
    // The right token: the dashboard.
    let login = b.get(&format!("{}/admin", env.fedgate_url)).await.unwrap();
    let dash = b
        .post_form(
            &format!("{}/admin/login", env.fedgate_url),
            &[
                ("token".into(), TOKEN.into()),
                ("csrf".into(), csrf_in(&login.body)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(dash.status, 200);
    for s in [
        "Tenants",
        "contoso",
        "Consoles",
        CONSOLE_ID,
        "Last decisions",
        "admin.token_invalid",
    ] {
        assert!(dash.body.contains(s), "dashboard lacks {s}");
    }
    // The configuration version in force, as the audit events name it.
    let version = env.app.config_version.clone().unwrap();
    assert!(
        dash.body.contains(&format!(
            "Configuration <code>{}</code> in force",
            &version[..12]
        )),
        "{}",
        dash.body
    );
    assert!(
        !dash.body.contains("PRIVATE KEY") && !dash.body.contains("demo-only"),
        "a secret is rendered"
    );
    // The test tab: a real response verified and explained.
    let csrf = csrf_in(&dash.body);
    let response = env.entra_response(&demo::alice(), None).unwrap();
    let result = b
        .post_form(
            &format!("{}/admin/test", env.fedgate_url),
            &[
                ("csrf".into(), csrf.clone()),
                ("kind".into(), "saml".into()),
                ("tenant".into(), "contoso".into()),
                ("console".into(), CONSOLE_ID.into()),
                ("input".into(), response),
            ],
        )
        .await
        .unwrap();
    assert!(
        result.body.contains("verified and allowed"),
        "{}",
        result.body
    );
    assert!(result.body.contains("engineering-backup-operators"));
    // A user in no mapped group: verified, denied, with the code.
    let result = b
        .post_form(
            &format!("{}/admin/test", env.fedgate_url),
            &[
                ("csrf".into(), csrf.clone()),
                ("kind".into(), "saml".into()),
                ("tenant".into(), "contoso".into()),
                ("console".into(), CONSOLE_ID.into()),
                (
                    "input".into(),
                    env.entra_response(&demo::bob(), None).unwrap(),
                ),
            ],
        )
        .await
        .unwrap();
    assert!(
        result.body.contains("policy.no_rule_matched"),
        "{}",
        result.body
    );
    // Metadata.
    let md = std::fs::read_to_string(env.dir.join("contoso-federationmetadata.xml")).unwrap();
    let result = b
        .post_form(
            &format!("{}/admin/test", env.fedgate_url),
            &[
                ("csrf".into(), csrf.clone()),
                ("kind".into(), "metadata".into()),
                ("tenant".into(), "contoso".into()),
                ("console".into(), CONSOLE_ID.into()),
                ("input".into(), md),
            ],
        )
        .await
        .unwrap();
    assert!(
        result.body.contains("usable IdP metadata"),
        "{}",
        result.body
    );
    // Sign out: the session no longer opens the page.
    let out = b
        .post_form(
            &format!("{}/admin/logout", env.fedgate_url),
            &[("csrf".into(), csrf)],
        )
        .await
        .unwrap();
    assert!(out.body.contains("name=\"token\""));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_admins_are_let_in_and_other_users_are_not() {
    let env = Environment::start_with(&admin_toml()).await.unwrap();
    // Alice is in the admin group: SSO (OIDC at the tenant) ends on the dashboard,
    // with her launcher.
    let b = Browser::new();
    let login = b.get(&format!("{}/admin", env.fedgate_url)).await.unwrap();
    assert!(login.body.contains("/admin/sso"));
    let page = b
        .get(&format!("{}/admin/sso", env.fedgate_url))
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{:?}", page.hops);
    assert!(page.body.contains("Dashboard"), "{}", page.body);
    assert!(page.body.contains(&format!("/launch/{CONSOLE_ID}")));
    // Bob signs in too, but is not an admin: the login page again.
    let bob = Browser::new();
    bob.get(&format!(
        "{}/oidc/contoso/login?login_hint=bob@contoso.example",
        env.fedgate_url
    ))
    .await
    .unwrap();
    let page = bob
        .get(&format!("{}/admin", env.fedgate_url))
        .await
        .unwrap();
    assert!(
        !page.body.contains("Dashboard") && page.body.contains("Sign in"),
        "{}",
        page.body
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_works_in_headless_chromium_without_javascript() {
    let have = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
        && super::python()
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium, chromium-driver and selenium (scripts/install-test-deps)"
        );
        eprintln!("SKIPPED: headless Chromium test (install chromium chromium-driver and selenium: scripts/install-test-deps)");
        return;
    }
    std::env::set_var("FEDGATE_ADMIN_TOKEN", TOKEN);
    let env = Environment::start_with(&admin_toml()).await.unwrap();
    let valid = env.dir.join("valid.b64");
    std::fs::write(&valid, env.entra_response(&demo::alice(), None).unwrap()).unwrap();
    // The same response with one character of the signed content changed.
    use base64::Engine;
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(env.entra_response(&demo::alice(), None).unwrap())
            .unwrap(),
    )
    .unwrap()
    .replace(
        "alice@contoso.example</NameID>",
        "mallory@contoso.example</NameID>",
    );
    let tampered = env.dir.join("tampered.b64");
    std::fs::write(
        &tampered,
        base64::engine::general_purpose::STANDARD.encode(xml),
    )
    .unwrap();
    let url = env.fedgate_url.clone();
    // Screenshots are kept as test artefacts.
    let shots = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/test-artefacts"
    ));
    std::fs::create_dir_all(&shots).unwrap();
    let shots_dir = shots.clone();
    let out = tokio::task::spawn_blocking(move || {
        super::python()
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/admin_browser.py"
            ))
            .args([
                &url,
                TOKEN,
                valid.to_str().unwrap(),
                tampered.to_str().unwrap(),
                shots.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // Signed in through the mock Entra tenant (an SSO admin), a hostile response refused.
    assert_eq!(v["sso_dashboard"], true, "{v}");
    assert!(v["sso_launcher"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["sso_tampered_code"], "saml.digest_mismatch", "{v}");
    for shot in ["admin-dashboard.png", "admin-hostile-response.png"] {
        let png = std::fs::read(shots_dir.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "{shot}");
    }
    assert_eq!(v["wrong_token_page"], true, "{v}");
    assert!(
        v["dashboard_title"].as_str().unwrap().contains("dashboard"),
        "{v}"
    );
    assert_eq!(v["dashboard_has_tenant"], true);
    assert_eq!(v["no_secret_rendered"], true);
    assert_eq!(v["valid_code"], "ok", "{v}");
    assert_eq!(v["tampered_code"], "saml.digest_mismatch", "{v}");
    assert_eq!(v["csrf_status"], 403);
    assert_eq!(v["csrf_code"], true);
    env.stop().await;
}
