//! The scripted logins of `fedgate demo` (one memory-store fedgate, or two
//! instances sharing Redis): each a row of expected and actual outcome.

use time::OffsetDateTime;

use super::browser::Browser;
use super::local_redis::LocalRedis;
use super::{
    alice, bob, dave, err, Environment, ACRONIS_ID, AUTOMATION_CLIENT_ID, AUTOMATION_CLIENT_SECRET,
    COMMCELL_ID, COMMVAULT_ID, CONSOLE_ID, ENTRA_KEY, FEDGATE_API, TENANT_ID,
};
use crate::trust::signing::JwtSigner;

/// The OIDC half of the demo: an OpenID Connect login to the Acronis-style
/// console, the user in 250 groups, the service account on the
/// Commvault-style API, and a user token for the wrong audience.
async fn oidc_rows(
    env: &Environment,
    graph: &crate::mock::graph::MockGraph,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    // 5. Carol signs in to the Acronis-style console through fedgate (OIDC both ways).
    let page = Browser::new()
        .get(&format!(
            "{}/login?login_hint=carol@contoso.example",
            env.acronis_url
        ))
        .await?;
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap_or_default();
    let got = match (page.status, v["role_assignments"].as_array()) {
        (200, Some(a)) => format!(
            "console: {} signed in; {}",
            v["user"].as_str().unwrap_or("?"),
            a.iter()
                .map(|r| format!(
                    "{} on {}",
                    r["role"].as_str().unwrap_or("?"),
                    r["tenant"].as_str().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (status, _) => format!("console {status}: {}", page.body),
    };
    rows.push(Row {
        scenario: "OIDC login → Acronis-style console (via Entra OIDC)",
        expected: "console: carol@contoso.example signed in; unit_admin on contoso/engineering"
            .into(),
        got,
    });

    // 6. Dave is in 250 groups: Entra sends the overage link; fedgate asks Graph.
    let (status, body) = env.login(&dave(), Some(CONSOLE_ID)).await?;
    let got = if status == 200 {
        let (cs, cj) = env.follow_form(&body).await?;
        format!(
            "console {cs}: {} as {} (Graph: {} pages)",
            cj["user"].as_str().unwrap_or("?"),
            cj["roles"],
            graph.requests.load(std::sync::atomic::Ordering::SeqCst)
        )
    } else {
        format!("fedgate {status} {}", code_in(&body))
    };
    rows.push(Row {
        scenario: "user in 250 groups (overage, resolved by Graph)",
        expected: "console 200: dave@contoso.example as [\"Backup Operator\"] (Graph: 3 pages)"
            .into(),
        got,
    });

    // 7. A service account: app-only token from Entra, exchanged at fedgate,
    //    used on the Commvault-style API (jobs filtered by the granted scope).
    let http = reqwest::Client::new();
    let entra_token: serde_json::Value = http
        .post(format!("{}/{TENANT_ID}/oauth2/v2.0/token", env.entra_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", AUTOMATION_CLIENT_ID),
            ("client_secret", AUTOMATION_CLIENT_SECRET),
            ("scope", &format!("{FEDGATE_API}/.default")),
        ])
        .send()
        .await
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    let exchange = |subject: String| {
        http.post(format!("{}/oauth2/token", env.fedgate_url))
            .form(&[
                (
                    "grant_type",
                    crate::outbound::token::GRANT_TOKEN_EXCHANGE.to_string(),
                ),
                ("subject_token", subject),
                (
                    "subject_token_type",
                    crate::outbound::token::TYPE_ACCESS_TOKEN.to_string(),
                ),
                ("audience", COMMVAULT_ID.to_string()),
            ])
            .send()
    };
    let issued: serde_json::Value = exchange(
        entra_token["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
    .await
    .map_err(err)?
    .json()
    .await
    .map_err(err)?;
    let got = match issued["access_token"].as_str() {
        Some(t) => {
            let jobs: serde_json::Value = http
                .get(format!("{}/commandcenter/api/v2/jobs", env.api_url))
                .bearer_auth(t)
                .send()
                .await
                .map_err(err)?
                .json()
                .await
                .map_err(err)?;
            let Some(list) = jobs["jobs"].as_array().cloned() else {
                return Err(format!("the API refused fedgate's token: {jobs}"));
            };
            format!(
                "API: {} jobs, all of {:?}; token {} s",
                list.len(),
                list.iter()
                    .filter_map(|j| j["company"].as_str())
                    .collect::<std::collections::BTreeSet<_>>(),
                issued["expires_in"]
            )
        }
        None => format!("fedgate: {}", issued["error_description"]),
    };
    rows.push(Row {
        scenario: "service account → token exchange → Commvault API",
        expected: "API: 2 jobs, all of {\"contoso\"}; token 300 s".into(),
        got,
    });

    // 8. A user's token minted for another API (Microsoft Graph) is refused.
    let graph_token = crate::mock::entra_oidc::MockEntraOidc::new(
        env.entra_url.clone(),
        TENANT_ID.into(),
        JwtSigner::from_pem(ENTRA_KEY).map_err(err)?,
        vec![],
        vec![],
    )
    .user_token(
        &alice(),
        "00000003-0000-0000-c000-000000000000",
        None,
        OffsetDateTime::now_utc().unix_timestamp(),
    )?;
    let refused: serde_json::Value = exchange(graph_token)
        .await
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    let code = refused["error_description"]
        .as_str()
        .and_then(|d| d.split(':').next())
        .unwrap_or("?");
    rows.push(Row {
        scenario: "user token for another audience → exchange",
        expected: "fedgate invalid_grant jwt.audience_mismatch".into(),
        got: format!(
            "fedgate {} {code}",
            refused["error"].as_str().unwrap_or("?")
        ),
    });
    sp_initiated_rows(env, rows).await
}

/// The Commvault-style console that starts its own logins: a signed
/// AuthnRequest to fedgate's IdP; erin's rule asks for MFA, which her
/// sign-in lacks, so fedgate signs her in again asking for it (a step-up);
/// her next console login is answered at once from the session.
async fn sp_initiated_rows(env: &Environment, rows: &mut Vec<Row>) -> Result<(), String> {
    let browser = Browser::new();
    let login = format!(
        "{}/webconsole/login?login_hint=erin@contoso.example",
        env.api_url
    );
    let signed_in = |v: &serde_json::Value| {
        format!(
            "console: {} signed in as {}",
            v["user"].as_str().unwrap_or("?"),
            v["roles"]
        )
    };
    // 9. SP-initiated, then a step-up.
    let page = browser.get(&login).await?;
    let got = match step_up_link(&page.body) {
        None => format!("fedgate {} {}", page.status, code_in(&page.body)),
        Some(href) => {
            let answer = browser.get(&href).await?;
            let console = browser.submit(&answer).await?;
            let v: serde_json::Value = serde_json::from_str(&console.body).unwrap_or_default();
            match v["ok"].as_bool() {
                Some(true) => format!("{} after a step-up (MFA)", signed_in(&v)),
                _ => format!("console {}: {}", console.status, console.body),
            }
        }
    };
    rows.push(Row {
        scenario: "console starts the login (SAML) → MFA step-up",
        expected:
            "console: erin@contoso.example signed in as [\"BackupOperator\"] after a step-up (MFA)"
                .into(),
        got,
    });
    // 10. The console's next login: fedgate answers its request at once.
    let page = browser.get(&login).await?;
    let hops = page.hops.len();
    let console = browser.submit(&page).await?;
    let v: serde_json::Value = serde_json::from_str(&console.body).unwrap_or_default();
    rows.push(Row {
        scenario: "the console's next login (session, no Entra hop)",
        expected: "console: erin@contoso.example signed in as [\"BackupOperator\"] in 2 hops"
            .into(),
        got: format!("{} in {hops} hops", signed_in(&v)),
    });
    // 11. Erin opens the Acronis-style console too (OIDC), then signs out
    // at fedgate: both consoles are told, then the tenant.
    let acronis = browser
        .get(&format!(
            "{}/login?login_hint=erin@contoso.example",
            env.acronis_url
        ))
        .await?;
    let page = browser.get(&format!("{}/logout", env.fedgate_url)).await?;
    // Each mock console says whose sessions fedgate's logout ended.
    let ended = |url: String| async move {
        let v: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
        let erin = serde_json::json!("erin@contoso.example");
        Some(v["logouts"].as_array()?.contains(&erin))
    };
    let ended = (
        ended(format!("{}/webconsole/logouts", env.api_url)).await,
        ended(format!("{}/logouts", env.acronis_url)).await,
    );
    let at_entra = page.hops.iter().any(|h| h.contains("/oauth2/v2.0/logout"));
    rows.push(Row {
        scenario: "sign-out → a SAML and an OIDC console, then Entra",
        expected: format!(
            "told {ACRONIS_ID} (oidc): confirmed, {COMMCELL_ID} (saml): confirmed; erin's console sessions ended: true, true; Entra signed out"
        ),
        got: format!(
            "told {}; erin's console sessions ended: {}, {}; {}",
            told_in(&page.body),
            ended.1.unwrap_or(false),
            ended.0.unwrap_or(false),
            if at_entra && acronis.status == 200 {
                "Entra signed out"
            } else {
                "Entra not reached"
            }
        ),
    });
    Ok(())
}

/// The consoles fedgate's signed-out page lists: `id (via): result`.
fn told_in(body: &str) -> String {
    let mut out = Vec::new();
    for item in body.split("<li data-console=\"").skip(1) {
        let console = item.split('"').next().unwrap_or_default();
        let attr = |name: &str| {
            item.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
        };
        out.push(format!(
            "{console} ({}): {}",
            attr("data-via"),
            attr("data-result")
        ));
    }
    if out.is_empty() {
        "no console".into()
    } else {
        out.join(", ")
    }
}

/// The link of fedgate's step-up page, if `body` is one.
fn step_up_link(body: &str) -> Option<String> {
    let href = body.split("id=\"continue\" href=\"").nth(1)?;
    Some(href.split('"').next()?.replace("&amp;", "&"))
}

struct Row {
    scenario: &'static str,
    expected: String,
    got: String,
}

fn code_in(body: &str) -> String {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
        .to_string()
}

/// Print the table; `true` when every outcome is the expected one.
fn print_rows(rows: &[Row]) -> bool {
    let mut all_ok = true;
    println!("{:<52} {:<6} outcome", "scenario", "ok");
    for r in rows {
        let ok = r.got == r.expected;
        all_ok &= ok;
        println!(
            "{:<52} {:<6} {}",
            r.scenario,
            if ok { "yes" } else { "NO" },
            r.got
        );
        if !ok {
            println!("{:<52} {:<6} expected: {}", "", "", r.expected);
        }
    }
    println!();
    all_ok
}

/// Post `response` to `env`'s fedgate and follow the form to its console:
/// what happened, in one line.
async fn login_line(env: &Environment, response: &str) -> Result<String, String> {
    let (status, body) = env.post_to_fedgate(response, Some(CONSOLE_ID)).await?;
    if status != 200 {
        return Ok(format!("fedgate {status} {}", code_in(&body)));
    }
    let (cs, cj) = env.follow_form(&body).await?;
    Ok(if cs == 200 {
        format!(
            "console: {} signed in as {}",
            cj["user"].as_str().unwrap_or("?"),
            cj["roles"]
        )
    } else {
        format!("console refused ({cs}): {cj}")
    })
}

/// `fedgate demo --store redis[=URL]`: two fedgate instances (A and B, as
/// behind a load balancer: one public URL) sharing one Redis — `url`, or a
/// local `redis-server` started on a free loopback port. A login on A; the
/// same SAMLResponse replayed to B must be refused by B. `Ok(true)` when
/// every outcome is the expected one.
pub async fn run_redis(url: Option<String>) -> Result<bool, String> {
    let mut local = None;
    let url = match url {
        Some(u) => u,
        None => {
            if !LocalRedis::installed() {
                return Err("--store redis without a URL starts a local redis-server, and none is installed: \
                     install it (Debian: apt-get install redis-server) or name one: --store redis=redis://HOST:6379"
                    .into());
            }
            let r = LocalRedis::spawn(false)?;
            let u = r.url();
            println!(
                "redis              {u} (a local redis-server of the demo's own, no persistence)"
            );
            local = Some(r);
            u
        }
    };
    let store = format!("\n[store]\nkind = \"redis\"\nurl = \"{url}\"\n");
    let a = Environment::start_instance(&store, None).await?;
    let b = match Environment::start_instance(&store, Some(&a.fedgate_url)).await {
        Ok(b) => b,
        Err(e) => {
            a.stop().await;
            return Err(e);
        }
    };
    if local.is_none() {
        println!(
            "redis              {}",
            crate::store::redis::redact_url(&url)
        );
    }
    println!(
        "fedgate A          {} (public URL {})",
        a.fedgate_url, a.fedgate_url
    );
    println!(
        "fedgate B          {} (same public URL, same Redis)",
        b.fedgate_url
    );
    println!("mock Entra tenant  {}", a.entra_url);
    println!();
    let result = redis_rows(&a, &b).await;
    a.stop().await;
    b.stop().await;
    drop(local);
    Ok(print_rows(&result?))
}

async fn redis_rows(a: &Environment, b: &Environment) -> Result<Vec<Row>, String> {
    let signed_in = "console: alice@contoso.example signed in as [\"Backup Operator\"]";
    let mut rows = Vec::new();
    let response = a.entra_response(&alice(), None)?;
    rows.push(Row {
        scenario: "engineer's login posted to instance A",
        expected: signed_in.into(),
        got: login_line(a, &response).await?,
    });
    rows.push(Row {
        scenario: "the same response replayed to instance B",
        expected: "fedgate 403 saml.replayed".into(),
        got: login_line(b, &response).await?,
    });
    rows.push(Row {
        scenario: "and to instance A",
        expected: "fedgate 403 saml.replayed".into(),
        got: login_line(a, &response).await?,
    });
    rows.push(Row {
        scenario: "a fresh login posted to instance B",
        expected: signed_in.into(),
        got: login_line(b, &b.entra_response(&alice(), None)?).await?,
    });
    Ok(rows)
}

/// Run the scripted logins; `Ok(true)` when every outcome is the expected one.
pub async fn run(keep: bool) -> Result<bool, String> {
    // Microsoft Graph for the user in 250 groups (100 per page).
    let mut memberships = std::collections::HashMap::new();
    memberships.insert(dave().object_id, dave().groups);
    let (graph_url, graph, graph_stop) =
        crate::mock::graph::serve_loopback(memberships, 100, false)
            .await
            .map_err(err)?;
    let graph_secret = std::env::temp_dir().join(format!(
        "fedgate-demo-graph-{}-{}",
        std::process::id(),
        crate::util::random_id().unwrap_or_default()
    ));
    let graph_toml = crate::mock::graph::tenant_toml(&graph_url, &graph_secret).map_err(err)?;
    let env = Environment::start_with(&graph_toml).await?;
    let _ = std::fs::remove_file(&graph_secret);
    println!(
        "mock Entra tenant  {} (issuer https://sts.windows.net/{TENANT_ID}/)",
        env.entra_url
    );
    println!("fedgate            {}", env.fedgate_url);
    println!(
        "mock console       {} (Autotask-style SAML SP)",
        env.console_url
    );
    println!(
        "mock console       {} (Acronis-style, OpenID Connect client of fedgate)",
        env.acronis_url
    );
    println!(
        "mock API           {} (Commvault-style: accepts fedgate's console tokens; its SAML SP starts logins at /webconsole/login)",
        env.api_url
    );
    println!("mock Graph         {graph_url}");
    println!();
    let mut rows = Vec::new();

    // 1. An engineer reaches the console as a backup operator.
    let alice_response = env.entra_response(&alice(), None)?;
    let (status, body) = env
        .post_to_fedgate(&alice_response, Some(CONSOLE_ID))
        .await?;
    let got = if status == 200 {
        let (cs, cj) = env.follow_form(&body).await?;
        if cs == 200 {
            format!(
                "console: {} signed in as {}",
                cj["user"].as_str().unwrap_or("?"),
                cj["roles"]
            )
        } else {
            format!("console refused ({cs}): {cj}")
        }
    } else {
        format!("fedgate {status} {}", code_in(&body))
    };
    rows.push(Row {
        scenario: "engineer (Backup Engineering group) → console",
        expected: "console: alice@contoso.example signed in as [\"Backup Operator\"]".into(),
        got,
    });

    // 2. A user in no mapped group is denied, with the reason.
    let (status, body) = env
        .post_to_fedgate(&env.entra_response(&bob(), None)?, Some(CONSOLE_ID))
        .await?;
    rows.push(Row {
        scenario: "user in no mapped group",
        expected: "fedgate 403 policy.no_rule_matched".into(),
        got: format!("fedgate {status} {}", code_in(&body)),
    });

    // 3. The same response posted twice is refused the second time.
    let (status, body) = env
        .post_to_fedgate(&alice_response, Some(CONSOLE_ID))
        .await?;
    rows.push(Row {
        scenario: "the engineer's response posted again (replay)",
        expected: "fedgate 403 saml.replayed".into(),
        got: format!("fedgate {status} {}", code_in(&body)),
    });

    // 4. A response for another application is refused with its code.
    let wrong = env.entra_response(&alice(), Some("https://other-app.example/saml/metadata"))?;
    let (status, body) = env.post_to_fedgate(&wrong, Some(CONSOLE_ID)).await?;
    rows.push(Row {
        scenario: "response for another application (audience)",
        expected: "fedgate 403 saml.audience_mismatch".into(),
        got: format!("fedgate {status} {}", code_in(&body)),
    });

    oidc_rows(&env, &graph, &mut rows).await?;
    let _ = graph_stop.send(());

    let mut all_ok = print_rows(&rows);
    // The audit file, anchored by a signed checkpoint, then verified as an
    // auditor would (`fedgate audit verify`).
    env.app.checkpoint_audit(true);
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap_or_default();
    let certs: Vec<_> = env
        .app
        .keys()
        .published()
        .iter()
        .map(|k| k.cert().clone())
        .collect();
    let report = crate::audit::chain::verify(&[("audit.jsonl".into(), audit.clone())], &certs);
    println!(
        "audit: {} decisions recorded as hash-chained JSON lines, {} signed checkpoint(s); verified: {}",
        report.events,
        report.checkpoints,
        if report.ok() && report.unanchored == 0 {
            "the chain holds, every line anchored".to_string()
        } else {
            format!("NO ({:?})", report.problems)
        }
    );
    all_ok &= report.ok() && report.unanchored == 0;
    // The first decision (the line before it is the configuration applied,
    // with its whole text as the diff).
    let first = audit
        .lines()
        .find(|l| !l.contains("\"via\":\"config\""))
        .unwrap_or("(none)");
    println!("  the first decision: {first}");
    all_ok &= print_access_review(&env);
    if keep {
        println!("\n--keep: everything stays up. Click through in a browser:");
        println!("  {}/{TENANT_ID}/saml2/idp-initiated?user=alice&console={CONSOLE_ID}   (an engineer: reaches the console)", env.entra_url);
        println!("  {}/{TENANT_ID}/saml2/idp-initiated?user=bob&console={CONSOLE_ID}     (no mapped group: refused, with the reason)", env.entra_url);
        println!("  {}/{TENANT_ID}/federationmetadata/2007-06/federationmetadata.xml   (the mock tenant's metadata)", env.entra_url);
        println!(
            "  {}/saml/contoso/metadata   (fedgate's SP metadata, to upload into Entra)",
            env.fedgate_url
        );
        println!(
            "  {}/idp/metadata            (fedgate's IdP metadata, for the console)",
            env.fedgate_url
        );
        println!(
            "  {}/login?login_hint=carol@contoso.example   (OIDC: the Acronis-style console signs in through fedgate and Entra)",
            env.acronis_url
        );
        println!(
            "  {}/oidc/contoso/login?console={CONSOLE_ID}   (an Entra OIDC login delivered to the SAML console)",
            env.fedgate_url
        );
        println!(
            "  {}/.well-known/openid-configuration   (fedgate as OpenID provider)",
            env.fedgate_url
        );
        println!("  {}/metrics", env.fedgate_url);
        println!("Press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
    }
    env.stop().await;
    Ok(all_ok)
}

/// The access review an auditor would ask for: who could reach the demo's
/// SAML console now, from the configuration history and the audit file the
/// demo just wrote (`fedgate access review --console … --at …`). True when
/// it shows alice (an engineer who signed in) and not bob (no mapped group).
fn print_access_review(env: &super::Environment) -> bool {
    let state = env
        .app
        .config
        .server
        .state_dir
        .clone()
        .unwrap_or_else(|| env.dir.join("state"));
    let hist = crate::config::history::History::new(&state);
    let now = OffsetDateTime::now_utc();
    let files = crate::audit::query::chain_files(&env.dir.join("audit.jsonl")).unwrap_or_default();
    match crate::review::review(&hist, &files, Some(CONSOLE_ID), now, now) {
        Ok(r) => {
            println!(
                "\naccess review of console {CONSOLE_ID} at {} (fedgate access review --console {CONSOLE_ID} --at …): configuration {}",
                crate::timefmt::format(now),
                crate::config::history::short(&r.version.version)
            );
            for rule in &r.rules {
                let who: Vec<String> = r
                    .access
                    .iter()
                    .filter(|a| a.rule == rule.id)
                    .map(|a| format!("{} ({})", a.upn.as_deref().unwrap_or(&a.subject), a.matched))
                    .collect();
                println!(
                    "  rule {}: {} -> [{}]: {}",
                    rule.id,
                    crate::review::grants_via(rule),
                    rule.roles.join(", "),
                    if who.is_empty() {
                        "nobody seen".to_string()
                    } else {
                        who.join(", ")
                    }
                );
            }
            let has = |u: &str| {
                r.access
                    .iter()
                    .any(|a| a.upn.as_deref().is_some_and(|x| x.starts_with(u)))
            };
            has("alice@") && !has("bob@")
        }
        Err(e) => {
            println!("access review: {e}");
            false
        }
    }
}
