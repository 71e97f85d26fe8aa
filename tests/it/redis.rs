//! Several fedgate instances sharing one real Redis: each test starts its
//! own `redis-server` on a free loopback port (killed when the test ends)
//! and two fedgate instances behind one public URL, as behind a load
//! balancer.
//!
//! Without `redis-server` these tests say so loudly and pass, except under
//! CI (`CI` set), where a missing `redis-server` fails them:
//! `scripts/install-test-deps` installs it.

use std::time::{Duration, Instant};

use fedgate::demo::{self, Environment, LocalRedis, CONSOLE_ID};
use fedgate::store::redis::{RedisSettings, RedisStore};
use fedgate::store::Store;
use time::OffsetDateTime;

/// What both instances answer to (Entra's Identifier and Reply URL name it).
const PUBLIC_URL: &str = "https://fedgate.example.test";

fn code_in(body: &str) -> &str {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
}

/// Whether the tests can run here; panics under CI without redis-server.
fn redis_available() -> bool {
    if LocalRedis::installed() {
        return true;
    }
    let ci = std::env::var("CI").unwrap_or_default();
    if !ci.is_empty() && ci != "0" && ci != "false" {
        panic!("CI={ci}: redis-server is required (scripts/install-test-deps installs it)");
    }
    // Straight to stderr, past the test harness's capture: seen in every run.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: redis-server is not installed; the multi-instance Redis tests did NOT run. \
         Run scripts/install-test-deps (apt-get install redis-server). ***\n"
    );
    false
}

/// Settings for a store at `url`: no password, no private CA.
fn settings(url: String, timeout_ms: u64) -> RedisSettings {
    RedisSettings {
        url,
        password: None,
        timeout: Duration::from_millis(timeout_ms),
        ca_pem: None,
    }
}

fn store_toml(url: &str) -> String {
    format!("\n[store]\nkind = \"redis\"\nurl = \"{url}\"\n")
}

/// Two instances, A and B, sharing the Redis at `url`.
async fn pair(url: &str, extra: &str) -> (Environment, Environment) {
    let toml = format!("{extra}{}", store_toml(url));
    let a = Environment::start_instance(&toml, Some(PUBLIC_URL))
        .await
        .unwrap();
    let b = Environment::start_instance(&toml, Some(PUBLIC_URL))
        .await
        .unwrap();
    (a, b)
}

async fn status(url: String) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

/// Poll `/readyz` until 200, for at most `limit`.
async fn wait_ready(env: &Environment, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if status(format!("{}/readyz", env.fedgate_url)).await == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Every key and value in the Redis at `url`.
async fn dump(url: &str) -> Vec<(String, Vec<u8>)> {
    let client = ::redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for k in keys {
        let kind: String = ::redis::cmd("TYPE")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        // Sets of session ids (single logout) are sorted sets: their members.
        let v: Vec<u8> = if kind == "zset" {
            let members: Vec<Vec<u8>> = ::redis::cmd("ZRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
                .unwrap();
            members.join(&b' ')
        } else {
            ::redis::cmd("GET")
                .arg(&k)
                .query_async(&mut c)
                .await
                .unwrap()
        };
        out.push((k, v));
    }
    out
}

/// The ID of the Assertion in a base64 SAMLResponse.
fn assertion_id(b64: &str) -> String {
    use base64::Engine;
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    let at = xml
        .find("<Assertion")
        .or_else(|| xml.find(":Assertion "))
        .unwrap();
    let rest = &xml[at..];
    let id = rest.find(" ID=\"").unwrap() + 5;
    rest[id..id + rest[id..].find('"').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_accepted_by_one_instance_is_refused_by_the_other() {
    if !redis_available() {
        return;
    }
    let redis = LocalRedis::spawn(false).unwrap();
    let (a, b) = pair(&redis.url(), "").await;
    let response = a.entra_response(&demo::alice(), None).unwrap();
    let (s, html) = a
        .post_to_fedgate(&response, Some(CONSOLE_ID))
        .await
        .unwrap();
    assert_eq!(s, 200, "{html}");
    assert_eq!(a.follow_form(&html).await.unwrap().0, 200);
    // The same response on B: refused, as a replay.
    let (s, body) = b
        .post_to_fedgate(&response, Some(CONSOLE_ID))
        .await
        .unwrap();
    assert_eq!((s, code_in(&body)), (403, "saml.replayed"));
    // B is not merely broken: a fresh login is served.
    let (s, html) = b.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(s, 200, "{html}");
    // And the other way round.
    let fresh = b.entra_response(&demo::alice(), None).unwrap();
    assert_eq!(
        b.post_to_fedgate(&fresh, Some(CONSOLE_ID)).await.unwrap().0,
        200
    );
    let (s, body) = a.post_to_fedgate(&fresh, Some(CONSOLE_ID)).await.unwrap();
    assert_eq!((s, code_in(&body)), (403, "saml.replayed"));
    // Redis holds hashed, versioned keys only: no assertion id in clear.
    let id = assertion_id(&response);
    let stored = dump(&redis.url()).await;
    let claims: Vec<_> = stored
        .iter()
        .filter(|(k, _)| k.starts_with("fedgate:v1:saml-assertion:"))
        .collect();
    assert!(claims.len() >= 2, "{stored:?}");
    for (k, v) in &stored {
        assert!(!k.contains(&id), "{k}");
        if k.starts_with("fedgate:v1:saml-assertion:") {
            assert_eq!(v, b"1");
        } else {
            // Every login also keeps a session (sealed, never the identity
            // in clear), and for single logout lists its id, and the
            // console it reached, under the user.
            assert!(
                ["session:", "slo.subject:"]
                    .iter()
                    .any(|p| k.starts_with(&format!("fedgate:v1:{p}"))),
                "{k}"
            );
            assert!(
                !String::from_utf8_lossy(v).contains("alice@contoso.example"),
                "{k}"
            );
        }
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launcher_session_made_on_one_instance_is_honoured_on_the_other() {
    if !redis_available() {
        return;
    }
    let redis = LocalRedis::spawn(false).unwrap();
    let two_consoles = r#"
[[consoles]]
id = "generic-reports"
kind = "generic"
display_name = "Backup reports"
identifier = "https://reports.example.test/saml"
reply_url = "https://reports.example.test/saml/acs"

[[rules]]
id = "engineering-reports"
tenant = "contoso"
console = "generic-reports"
groups = ["5b8f2a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b"]
roles = ["viewer"]
"#;
    let (a, b) = pair(&redis.url(), two_consoles).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/saml/contoso/acs", a.fedgate_url))
        .form(&[(
            "SAMLResponse",
            a.entra_response(&demo::alice(), None).unwrap(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session = cookie.strip_prefix("fedgate_session=").unwrap().to_string();
    // On B, with A's cookie: the console is launched with the mapped role.
    let launch = |env: &Environment| {
        reqwest::Client::new()
            .get(format!("{}/launch/{CONSOLE_ID}", env.fedgate_url))
            .header("cookie", &cookie)
            .send()
    };
    let r = launch(&b).await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, body) = b.follow_form(&r.text().await.unwrap()).await.unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["roles"], serde_json::json!(["Backup Operator"]));
    // Neither the session id nor who it is appear in Redis.
    let stored = dump(&redis.url()).await;
    assert!(stored
        .iter()
        .any(|(k, _)| k.starts_with("fedgate:v1:session:")));
    for (k, v) in &stored {
        let v = String::from_utf8_lossy(v);
        assert!(!k.contains(&session) && !v.contains(&session), "{k}");
        assert!(!v.contains("alice") && !v.contains("Backup"), "{k}: {v}");
    }
    // Signed out on A (the store's delete): B no longer honours it.
    let (id, _) = fedgate::store::split_cookie(&session).unwrap();
    a.app.store.delete_session(id).await.unwrap();
    assert_eq!(launch(&b).await.unwrap().status(), 401);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_state_put_on_one_instance_is_taken_once_on_the_other() {
    if !redis_available() {
        return;
    }
    let redis = LocalRedis::spawn(false).unwrap();
    let (a, b) = pair(&redis.url(), "").await;
    let now = OffsetDateTime::now_utc();
    let until = now + time::Duration::minutes(10);
    a.app
        .store
        .put_state("oidc", "state-1", b"verifier-1", until)
        .await
        .unwrap();
    // A peek, on either instance, leaves it in place (a response is
    // checked against the state before it is consumed).
    for i in [&a, &b, &a] {
        assert_eq!(
            i.app
                .store
                .peek_state("oidc", "state-1", now)
                .await
                .unwrap(),
            Some(b"verifier-1".to_vec())
        );
    }
    assert_eq!(
        b.app
            .store
            .take_state("oidc", "state-1", now)
            .await
            .unwrap(),
        Some(b"verifier-1".to_vec())
    );
    assert_eq!(
        a.app
            .store
            .take_state("oidc", "state-1", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        a.app
            .store
            .peek_state("oidc", "state-1", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        b.app
            .store
            .take_state("oidc", "state-1", now)
            .await
            .unwrap(),
        None
    );
    // Sixteen takers racing on both instances: exactly one gets it.
    a.app
        .store
        .put_state("oidc", "state-2", b"verifier-2", until)
        .await
        .unwrap();
    let mut takers = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 {
            a.app.clone()
        } else {
            b.app.clone()
        };
        takers.push(tokio::spawn(async move {
            app.store.take_state("oidc", "state-2", now).await.unwrap()
        }));
    }
    let mut got = Vec::new();
    for t in takers {
        got.extend(t.await.unwrap());
    }
    assert_eq!(got, vec![b"verifier-2".to_vec()]);
    // Expiry: Redis forgets the state after its TTL.
    a.app
        .store
        .put_state(
            "oidc",
            "state-3",
            b"v3",
            now + time::Duration::milliseconds(300),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        b.app
            .store
            .take_state("oidc", "state-3", now)
            .await
            .unwrap(),
        None
    );
    a.stop().await;
    b.stop().await;
}

/// Redis dies: logins fail closed (503 `store.unavailable`, quickly), both
/// instances turn not-ready and count it. Redis returns (the same data, as
/// with append-only persistence in production): both resume by themselves,
/// and a response accepted before the outage is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_and_service_resumes_without_a_replay_window() {
    if !redis_available() {
        return;
    }
    let mut redis = LocalRedis::spawn(true).unwrap();
    let (a, b) = pair(&redis.url(), "").await;
    let before = a.entra_response(&demo::alice(), None).unwrap();
    assert_eq!(
        a.post_to_fedgate(&before, Some(CONSOLE_ID))
            .await
            .unwrap()
            .0,
        200
    );

    redis.kill();
    for env in [&a, &b] {
        let started = Instant::now();
        let (s, body) = env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
        assert_eq!((s, code_in(&body)), (503, "store.unavailable"), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "bounded: {:?}",
            started.elapsed()
        );
        assert_eq!(status(format!("{}/readyz", env.fedgate_url)).await, 503);
        assert_eq!(status(format!("{}/healthz", env.fedgate_url)).await, 200);
    }
    // Never open: the replay is refused during the outage too (503, not 200).
    let (s, _) = b.post_to_fedgate(&before, Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(s, 503);
    let metrics = reqwest::get(format!("{}/metrics", a.fedgate_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("fedgate_store_errors_total{op=\"claim_once\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("fedgate_store_ready 0"), "{metrics}");
    assert!(
        metrics.contains("code=\"store.unavailable\"} 1"),
        "{metrics}"
    );

    redis.start().unwrap();
    for env in [&a, &b] {
        assert!(
            wait_ready(env, Duration::from_secs(15)).await,
            "did not resume"
        );
    }
    let (s, html) = b.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(s, 200, "{html}");
    assert_eq!(
        a.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap().0,
        200
    );
    for env in [&a, &b] {
        let (s, body) = env
            .post_to_fedgate(&before, Some(CONSOLE_ID))
            .await
            .unwrap();
        assert_eq!((s, code_in(&body)), (403, "saml.replayed"));
    }
    a.stop().await;
    b.stop().await;
}

/// Redis down when fedgate starts: fedgate starts anyway, not-ready and
/// failing closed, and serves as soon as Redis answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedgate_starts_while_redis_is_down_and_serves_when_it_comes() {
    if !redis_available() {
        return;
    }
    let mut redis = LocalRedis::reserve(false).unwrap();
    let env = Environment::start_instance(&store_toml(&redis.url()), Some(PUBLIC_URL))
        .await
        .unwrap();
    assert_eq!(status(format!("{}/readyz", env.fedgate_url)).await, 503);
    let (s, body) = env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
    assert_eq!((s, code_in(&body)), (503, "store.unavailable"));
    redis.start().unwrap();
    assert!(
        wait_ready(&env, Duration::from_secs(15)).await,
        "did not connect"
    );
    assert_eq!(
        env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap().0,
        200
    );
    env.stop().await;
}

/// A Redis that accepts connections and never answers: every operation
/// gives up after the timeout, as `store.unavailable`. (No redis-server
/// needed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redis_times_out_instead_of_hanging_logins() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((s, _)) = accepted { held.push(s) }
                }
                _ = &mut stop_rx => break,
            }
        }
    });
    let store = RedisStore::new(&settings(format!("redis://127.0.0.1:{port}"), 100)).unwrap();
    let now = OffsetDateTime::now_utc();
    for _ in 0..3 {
        let started = Instant::now();
        let e = store
            .claim_once(
                "saml-assertion",
                "id-1",
                now + time::Duration::minutes(5),
                now,
            )
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(e.to_string().contains("unavailable"), "{e}");
        let started = Instant::now();
        assert!(store.ready().await.is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let _ = stop_tx.send(());
    silent.await.unwrap();
}

/// The store against Redis directly: claims expire with their TTL, sessions
/// round-trip, and a password from the settings is used (and required).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_claims_expire_and_a_password_is_used() {
    if !redis_available() {
        return;
    }
    let redis = LocalRedis::spawn(false).unwrap();
    let admin = ::redis::Client::open(redis.url()).unwrap();
    let mut c = admin.get_multiplexed_async_connection().await.unwrap();
    let settings = |password: Option<&str>| RedisSettings {
        password: password.map(str::to_string),
        ..settings(redis.url(), 500)
    };
    let store = RedisStore::new(&settings(None)).unwrap();
    let now = OffsetDateTime::now_utc();
    let soon = now + time::Duration::milliseconds(300);
    assert!(store
        .claim_once("saml-assertion", "x", soon, now)
        .await
        .unwrap());
    assert!(!store
        .claim_once("saml-assertion", "x", soon, now)
        .await
        .unwrap());
    assert!(store.claim_once("jwt", "x", soon, now).await.unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let now = OffsetDateTime::now_utc();
    assert!(store
        .claim_once("saml-assertion", "x", now + time::Duration::minutes(1), now)
        .await
        .unwrap());
    // Now require a password.
    let _: () = ::redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret-pw")
        .query_async(&mut c)
        .await
        .unwrap();
    let without = RedisStore::new(&settings(None)).unwrap();
    let e = without.ready().await.unwrap_err().to_string();
    assert!(!e.contains("s3cret-pw"), "{e}");
    let wrong = RedisStore::new(&settings(Some("wrong-pw"))).unwrap();
    let e = wrong.ready().await.unwrap_err().to_string();
    assert!(!e.contains("wrong-pw"), "{e}");
    let with = RedisStore::new(&settings(Some("s3cret-pw"))).unwrap();
    with.ready().await.unwrap();
    let id = demo::alice();
    let identity = fedgate::identity::Identity {
        subject: id.upn.clone(),
        subject_format: None,
        issuer: "https://sts.windows.net/t/".into(),
        tenant_id: Some("t".into()),
        object_id: Some(id.object_id.clone()),
        kind: fedgate::identity::PrincipalKind::User,
        source: fedgate::identity::Source::Saml,
        upn: Some(id.upn.clone()),
        email: None,
        display_name: Some(id.display_name.clone()),
        groups: id.groups.clone(),
        groups_overage: false,
        groups_link: None,
        groups_source: Default::default(),
        roles: vec![],
        auth_methods: vec![],
        mfa: true,
        auth_time: Some(now),
        expires_at: now + time::Duration::hours(1),
        app_id: None,
        token_id: Some("_abc".into()),
        idp_session: None,
        verification: Default::default(),
        attributes: Default::default(),
    };
    // The session's typed facts (tenant, admin right) come back as stored.
    let session = fedgate::store::Session::new(
        Some("contoso"),
        fedgate::store::AdminRight::Rule,
        identity.clone(),
    );
    with.put_session("sess-1", &session, now + time::Duration::minutes(5))
        .await
        .unwrap();
    let back = with.get_session("sess-1", now).await.unwrap().unwrap();
    assert_eq!(back.tenant.as_deref(), Some("contoso"));
    assert_eq!(back.admin, fedgate::store::AdminRight::Rule);
    assert_eq!(back.identity.user_key(), identity.user_key());
    assert_eq!(back.identity.groups, identity.groups);
    assert!(with.get_session("sess-2", now).await.unwrap().is_none());
    // A session read after its own expiry (by fedgate's clock) is no session.
    let later = now + time::Duration::minutes(6);
    assert!(with.get_session("sess-1", later).await.unwrap().is_none());
    // The sets single logout finds a user's sessions by: each member until
    // its own expiry, the latest MAX_MEMBERS kept.
    let (near, far) = (
        now + time::Duration::minutes(1),
        now + time::Duration::minutes(9),
    );
    with.add_member("slo.subject", "t\0alice", "s1", near)
        .await
        .unwrap();
    with.add_member("slo.subject", "t\0alice", "s2", far)
        .await
        .unwrap();
    let mut m = with.members("slo.subject", "t\0alice", now).await.unwrap();
    m.sort();
    assert_eq!(m, ["s1", "s2"]);
    let after_near = now + time::Duration::minutes(2);
    assert_eq!(
        with.members("slo.subject", "t\0alice", after_near)
            .await
            .unwrap(),
        ["s2"]
    );
    for i in 0..fedgate::store::MAX_MEMBERS + 3 {
        let until = far + time::Duration::seconds(i as i64);
        with.add_member("slo.subject", "t\0many", &format!("m{i}"), until)
            .await
            .unwrap();
    }
    let m = with.members("slo.subject", "t\0many", now).await.unwrap();
    assert_eq!(m.len(), fedgate::store::MAX_MEMBERS);
    assert!(!m.contains(&"m0".to_string()));
}

/// An OIDC login started on A (state, PKCE verifier and nonce kept in Redis)
/// finishes on B, which trusts the same tenant; the callback then cannot be
/// used again on either instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_login_started_on_one_instance_completes_on_the_other() {
    if !redis_available() {
        return;
    }
    let redis = LocalRedis::spawn(false).unwrap();
    let toml = store_toml(&redis.url());
    let a = Environment::start_instance(&toml, Some(PUBLIC_URL))
        .await
        .unwrap();
    let b = Environment::start_sharing(&toml, Some(PUBLIC_URL), Some(&a.entra_url))
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_string();
    // A starts the login and sends the browser to the tenant…
    let r = http
        .get(format!(
            "{}/oidc/contoso/login?console={CONSOLE_ID}",
            a.fedgate_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The browser keeps the login's binding cookie (one host: the public URL).
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("fedgate_login="), "{cookie}");
    let r = http.get(location(&r)).send().await.unwrap();
    // …which sends it back to the public URL; the load balancer picks B.
    let callback = location(&r);
    assert!(
        callback.starts_with(&format!("{PUBLIC_URL}/oidc/contoso/callback?")),
        "{callback}"
    );
    let on_b = callback.replace(PUBLIC_URL, &b.fedgate_url);
    let r = http
        .get(&on_b)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let (status, console) = b.follow_form(&html).await.unwrap();
    assert_eq!(status, 200, "{console}");
    assert_eq!(console["user"], "alice@contoso.example");
    // The same callback again, on either instance: the state is gone.
    for env in [&a, &b] {
        let again = callback.replace(PUBLIC_URL, &env.fedgate_url);
        let r = http
            .get(&again)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(code_in(&r.text().await.unwrap()), "oidc.state_unknown");
    }
    a.stop().await;
    b.stop().await;
}

/// `rediss://` to a Redis whose certificate comes from a private CA: with
/// `store.ca_file` the store works; with the system's roots the same server
/// is refused (not ready, never a plain-text fallback); a CA with a plain
/// `redis://` URL is a configuration error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_trusts_the_configured_ca_and_nothing_else() {
    if !redis_available() {
        return;
    }
    fedgate::trust::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!(
        "fedgate-redis-tls-{}-{}",
        std::process::id(),
        fedgate::util::random_id().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // A private CA, and a server certificate for 127.0.0.1 it signs.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fedgate test Redis CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let file = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let (cert, key, ca) = (
        file("server.pem", &server_cert.pem()),
        file("server.key", &server_key.serialize_pem()),
        file("ca.pem", &ca_cert.pem()),
    );
    let port = super::free_port().to_string();
    let dir_s = dir.display().to_string();
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port,
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir_s,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let settings = |url: String, ca_pem: Option<Vec<u8>>| RedisSettings {
        ca_pem,
        ..settings(url, 500)
    };
    let url = format!("rediss://127.0.0.1:{port}");
    let trusted =
        RedisStore::new(&settings(url.clone(), Some(ca_cert.pem().into_bytes()))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while trusted.ready().await.is_err() {
        assert!(Instant::now() < deadline, "the TLS Redis did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::minutes(5);
    assert!(trusted
        .claim_once("saml", "_tls1", later, now)
        .await
        .unwrap());
    assert!(!trusted
        .claim_once("saml", "_tls1", later, now)
        .await
        .unwrap());

    // The same server with the system's roots: refused, and the claim too.
    let system = RedisStore::new(&settings(url.clone(), None)).unwrap();
    let err = system.ready().await.unwrap_err();
    assert_eq!(
        fedgate::identity::ErrorCode::code(&err),
        "store.unavailable"
    );
    assert!(system
        .claim_once("saml", "_tls2", later, now)
        .await
        .is_err());

    // A CA for a plain-text URL is a mistake said at start.
    let plain = RedisStore::new(&settings(
        format!("redis://127.0.0.1:{port}"),
        Some(ca_cert.pem().into_bytes()),
    ));
    assert!(plain.err().unwrap().to_string().contains("rediss://"));

    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Redis at `maxmemory` with `noeviction` answers PING but refuses
/// writes: the readiness probe (a real write) says so, and a login-state
/// write is `store.full`, not a generic outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_is_not_ready_and_writes_are_store_full() {
    use fedgate::identity::ErrorCode;
    if !redis_available() {
        return;
    }
    let redis = LocalRedis::spawn(false).unwrap();
    let admin = ::redis::Client::open(redis.url()).unwrap();
    let mut c = admin.get_multiplexed_async_connection().await.unwrap();
    let store = RedisStore::new(&settings(redis.url(), 500)).unwrap();
    assert!(store.ready().await.is_ok());
    for (k, v) in [("maxmemory", "1mb"), ("maxmemory-policy", "noeviction")] {
        let _: () = ::redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    // Fill it past maxmemory (the admin connection's writes fail once full).
    let big = vec![b'x'; 64 * 1024];
    for i in 0..64 {
        let r: Result<(), _> = ::redis::cmd("SET")
            .arg(format!("filler-{i}"))
            .arg(&big)
            .query_async(&mut c)
            .await;
        if r.is_err() {
            break;
        }
    }
    let e = store.ready().await.unwrap_err();
    assert_eq!(e.code(), "store.full", "{e}");
    let now = OffsetDateTime::now_utc();
    let e = store
        .put_state("oidc", "st", b"v", now + time::Duration::minutes(10))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "store.full", "{e}");
}
