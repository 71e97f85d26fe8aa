//! Issue 15, part 2: login CPU work runs on a bounded pool, off the I/O
//! threads. With every worker busy and the admission queue full, a new
//! login is answered at once with 503 `server.busy` and `Retry-After`
//! (nothing consumed: the same response is accepted once there is room),
//! while `/healthz`, `/readyz` and `/metrics` keep answering.

use std::time::Duration;

use fedgate::demo::{self, Environment, COMMVAULT_AUDIENCE, COMMVAULT_ID, CONSOLE_ID};

use super::{hold_cpu_worker, metrics_text, no_redirects};

fn code_in(body: &str) -> &str {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
}

/// The pool held: its one worker blocked until `release` is sent, and its
/// one admission slot taken by a waiting job.
struct Held {
    release: std::sync::mpsc::Sender<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn hold_the_pool(env: &Environment) -> Held {
    let worker = hold_cpu_worker(env).await;
    let app = env.app.clone();
    let queued = tokio::spawn(async move {
        let _ = app.cpu.admit(|| ()).await;
    });
    while env.app.cpu.waiting() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Held {
        release: worker.release,
        tasks: vec![worker.task, queued],
    }
}

async fn start() -> Environment {
    let overrides = [
        ("FEDGATE_SERVER__CPU_THREADS".to_string(), "1".to_string()),
        ("FEDGATE_SERVER__CPU_QUEUE".to_string(), "1".to_string()),
    ];
    Environment::start_with_overrides("", &overrides)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_answers_503_at_once_and_health_never_waits() {
    let env = start().await;
    assert_eq!(env.app.cpu.threads(), 1);
    let response = env.entra_response(&demo::alice(), None).unwrap();
    let held = hold_the_pool(&env).await;

    // A real, valid login: refused at once, with when to come back.
    let resp = reqwest::Client::new()
        .post(format!("{}/saml/contoso/acs", env.fedgate_url))
        .form(&[
            ("SAMLResponse", response.as_str()),
            ("RelayState", CONSOLE_ID),
        ])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let body = resp.text().await.unwrap();
    assert_eq!(code_in(&body), "server.busy", "{body}");

    // Health, readiness and metrics answer while every worker is busy.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", env.fedgate_url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} while the pool is full");
    }
    let metrics = metrics_text(&env).await;
    assert!(metrics.contains("fedgate_cpu_busy_total 1\n"), "{metrics}");
    assert!(
        metrics.contains("code=\"server.busy\"} 1"),
        "the refusal is counted as a login decision: {metrics}"
    );
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"code\":\"server.busy\""), "audited");

    // Room again: the same response is accepted (the refusal used up nothing).
    held.release.send(()).unwrap();
    for t in held.tasks {
        t.await.unwrap();
    }
    let (status, html) = env
        .post_to_fedgate(&response, Some(CONSOLE_ID))
        .await
        .unwrap();
    assert_eq!(status, 200, "{html}");
    let (cs, body) = env.follow_form(&html).await.unwrap();
    assert_eq!(cs, 200, "{body}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_exchange_on_a_full_pool_is_temporarily_unavailable() {
    let env = start().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = env
        .entra_oidc
        .user_token(&demo::alice(), COMMVAULT_AUDIENCE, None, now)
        .unwrap();
    let held = hold_the_pool(&env).await;
    let http = reqwest::Client::new();
    let exchange = || {
        http.post(format!("{}/oauth2/token", env.fedgate_url))
            .form(&[
                ("grant_type", fedgate::outbound::token::GRANT_TOKEN_EXCHANGE),
                ("subject_token", token.as_str()),
                (
                    "subject_token_type",
                    fedgate::outbound::token::TYPE_ACCESS_TOKEN,
                ),
                ("audience", COMMVAULT_ID),
            ])
            .timeout(Duration::from_secs(10))
            .send()
    };
    let resp = exchange().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("server.busy:"),
        "{body}"
    );
    held.release.send(()).unwrap();
    for t in held.tasks {
        t.await.unwrap();
    }
    // With room, the same token is exchanged (or refused for its own
    // reasons, never for capacity).
    let resp = exchange().await.unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_ne!(status, 503, "{body}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_starts_are_rate_limited_per_client() {
    let overrides = [(
        "FEDGATE_SERVER__LOGIN_STARTS_PER_MINUTE".to_string(),
        "3".to_string(),
    )];
    let env = Environment::start_with_overrides("", &overrides)
        .await
        .unwrap();
    let http = no_redirects();
    let start = format!(
        "{}/saml/contoso/login?console={CONSOLE_ID}",
        env.fedgate_url
    );
    for _ in 0..3 {
        let r = http.get(&start).send().await.unwrap();
        assert_eq!(r.status(), 303, "a login start within the limit");
    }
    for url in [
        start.clone(),
        format!("{}/oidc/contoso/login", env.fedgate_url),
        format!(
            "{}/oauth2/authorize?client_id=x&response_type=code",
            env.fedgate_url
        ),
    ] {
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 429, "{url}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(code_in(&r.text().await.unwrap()), "login.rate_limited");
    }
    // Other work is not throttled: a posted login still goes through.
    let (status, html) = env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(status, 200, "{html}");
    env.stop().await;
}

/// Issue 15, part 4: login state is capped per tenant whatever the client
/// address (`server.login_states_per_tenant`): past it, every login start
/// for that tenant gets 503 `login.tenant_busy` with `Retry-After`, the
/// OpenID provider's clients have budgets of their own, and posted logins
/// (which store no login state) go on.
#[tokio::test]
async fn login_state_is_capped_per_tenant() {
    let overrides = [
        (
            "FEDGATE_SERVER__LOGIN_STATES_PER_TENANT".to_string(),
            "3".to_string(),
        ),
        (
            "FEDGATE_SERVER__LOGIN_STARTS_PER_MINUTE".to_string(),
            "1000".to_string(),
        ),
    ];
    let env = Environment::start_with_overrides("", &overrides)
        .await
        .unwrap();
    let http = no_redirects();
    let saml = format!(
        "{}/saml/contoso/login?console={CONSOLE_ID}",
        env.fedgate_url
    );
    let oidc = format!("{}/oidc/contoso/login", env.fedgate_url);
    for url in [&saml, &oidc, &saml] {
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 303, "a login start within the tenant's budget");
    }
    for url in [&saml, &oidc] {
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 503, "{url}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=600).contains(&retry), "{retry}");
        let body = r.text().await.unwrap();
        assert_eq!(code_in(&body), "login.tenant_busy");
        assert!(body.contains("server.login_states_per_tenant"), "{body}");
    }
    // The OpenID provider's client has a budget of its own: its requests
    // are not refused for the tenant's (an unknown client_id is refused by
    // the provider, not counted).
    let authorize = format!(
        "{}/oauth2/authorize?client_id={}&response_type=code&redirect_uri=x",
        env.fedgate_url,
        demo::ACRONIS_ID
    );
    let r = http.get(&authorize).send().await.unwrap();
    assert_ne!(r.status(), 503, "{:?}", r.text().await);
    // The refusals are counted under the tenant's own label.
    let metrics = metrics_text(&env).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("tenant=\"contoso\"") && l.contains("login.tenant_busy")),
        "{metrics}"
    );
    // Posted logins store no login state and go on.
    let (status, html) = env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(status, 200, "{html}");
    env.stop().await;
}

/// `/readyz` probes the store at most once a second, however many ask:
/// 50 concurrent probes make one store write, and one more a second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_readyz_probes_the_store_once_a_second() {
    let env = Environment::start().await.unwrap();
    let url = format!("{}/readyz", env.fedgate_url);
    let before = env.app.metrics.store_probes();
    let client = reqwest::Client::new();
    let answers = get_at_once(50, &url).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    let probes = env.app.metrics.store_probes() - before;
    assert!((1..=2).contains(&probes), "{probes} probes for 50 requests");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(
        env.app.metrics.store_probes() - before,
        probes + 1,
        "a second later the store is probed again"
    );
    let metrics = metrics_text(&env).await;
    assert!(
        metrics.contains("fedgate_store_readiness_probes_total"),
        "{metrics}"
    );
    env.stop().await;
}

/// GET `url` `n` times at once; the statuses.
async fn get_at_once(n: usize, url: &str) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let url = url.to_string();
        set.spawn(async move { reqwest::get(url).await.map_or(0, |r| r.status().as_u16()) });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(s) = set.join_next().await {
        out.push(s.unwrap_or(0));
    }
    out
}
