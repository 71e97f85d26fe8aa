//! Connection hygiene (`src/http/server.rs`): real TCP on loopback against
//! a real fedgate with 1-second bounds set through `[server]` overrides.

use std::time::Duration;

use fedgate::demo::Environment;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(extra: &[(&str, &str)]) -> Environment {
    let mut o: Vec<(String, String)> = vec![
        ("FEDGATE_SERVER__HEADER_TIMEOUT_SECS".into(), "1".into()),
        ("FEDGATE_SERVER__BODY_TIMEOUT_SECS".into(), "1".into()),
    ];
    o.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Environment::start_with_overrides("", &o).await.unwrap()
}

fn addr(env: &Environment) -> String {
    env.fedgate_url.trim_start_matches("http://").to_string()
}

/// Read until the server closes; what it sent. Panics if it stays open 15 s
/// (15 times the configured bound).
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_header_is_cut_off_and_healthz_keeps_answering() {
    let env = start(&[]).await;
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: fedgate\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for b in head {
        // One byte every 200 ms: the full head would take ~14 s.
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            if matches!(r, Ok(0) | Err(_)) {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "a head trickled past header_timeout_secs was served"
    );
    let ok = reqwest::get(format!("{}/healthz", env.fedgate_url))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let m = env.app.metrics.render();
    // At least this one (an idle keep-alive connection of the test's own
    // clients may have timed out too).
    assert!(
        m.contains("fedgate_connection_timeouts_total{kind=\"header\"} "),
        "{m}"
    );
    assert!(
        !m.contains("fedgate_connection_timeouts_total{kind=\"header\"} 0"),
        "{m}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let env = start(&[]).await;
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: fedgate\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, then nothing more is sent: the server must close.
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.ends_with("ok\n"), "{got}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_past_64_kib_is_431_and_one_of_32_kib_is_served() {
    let env = start(&[]).await;
    let head = |cookie_bytes: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: fedgate\r\nCookie: c={}\r\nConnection: close\r\n\r\n",
            "x".repeat(cookie_bytes)
        )
    };
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    s.write_all(head(32 * 1024).as_bytes()).await.unwrap();
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // Past the cap: refused before the head is complete, and closed.
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    let _ = s
        .write_all(head(fedgate::http::server::MAX_HEAD_BYTES + 1024).as_bytes())
        .await;
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");
    let metrics = super::metrics_text(&env).await;
    assert!(
        metrics.contains("fedgate_requests_head_too_large_total 1\n"),
        "{metrics}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_an_oversize_one_413() {
    let env = start(&[]).await;
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    s.write_all(b"POST /saml/contoso/acs HTTP/1.1\r\nHost: fedgate\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nSAMLResponse=")
        .await
        .unwrap();
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("http.body_timeout"), "{got}");
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth2/token", env.fedgate_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 3 * 1024 * 1024])
        .send()
        .await;
    // fedgate may answer before reading the body, and close.
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 413);
        let body = resp.text().await.unwrap();
        assert!(body.contains("http.body_too_large"), "{body}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_connections_one_more_is_closed_at_once_and_a_later_one_served() {
    let env = start(&[("FEDGATE_SERVER__MAX_CONNECTIONS", "2")]).await;
    // Two connections held open, and no other: the Environment's own
    // clients (the mock console fetching fedgate's IdP metadata) keep a
    // keep-alive connection for a while, so wait until fedgate counts none,
    // open two, and start again if another slipped in meanwhile. (Each held
    // connection is closed by the 1 s header timeout, so no waiting after.)
    let counted = || env.app.metrics.connections.open();
    let mut pair = None;
    for _ in 0..20 {
        for _ in 0..100 {
            if counted() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let refused = env.app.metrics.connections.refused_total();
        let a = TcpStream::connect(addr(&env)).await.unwrap();
        let b = TcpStream::connect(addr(&env)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if counted() == 2 && env.app.metrics.connections.refused_total() == refused {
            pair = Some((a, b));
            break;
        }
    }
    let (a, b) = pair.expect("two connections of this test, and only they, held");
    let mut c = TcpStream::connect(addr(&env)).await.unwrap();
    let _ = c
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: fedgate\r\n\r\n")
        .await;
    let got = read_to_close(&mut c).await;
    assert!(!got.contains("200"), "served past max_connections: {got}");
    assert!(env.app.metrics.connections.refused_total() >= 1);
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = reqwest::get(format!("{}/healthz", env.fedgate_url))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    env.stop().await;
}

/// A TCP connection to fedgate from `local` (another loopback address is
/// another client).
async fn connect_from(local: &str, env: &Environment) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(addr(env).parse().unwrap()).await.unwrap()
}

/// POST `body` to `url` as a form.
async fn post_form(url: &str, body: String) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
}

/// GET /healthz on `s`: whether it answered 200.
async fn healthz_on(s: &mut TcpStream) -> bool {
    let _ = s
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: fedgate\r\nConnection: close\r\n\r\n")
        .await;
    read_to_close(s).await.starts_with("HTTP/1.1 200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holds_at_most_its_share_of_connections_and_others_are_served() {
    let env = start(&[("FEDGATE_SERVER__MAX_CONNECTIONS_PER_CLIENT", "2")]).await;
    // 127.0.0.2 opens its two and holds them idle.
    let a = connect_from("127.0.0.2", &env).await;
    let b = connect_from("127.0.0.2", &env).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Its third is closed at once, unanswered.
    let mut c = connect_from("127.0.0.2", &env).await;
    assert!(
        !healthz_on(&mut c).await,
        "served past the per-client bound"
    );
    assert!(env.app.metrics.connections.refused_per_client_total() >= 1);
    assert_eq!(env.app.metrics.connections.refused_total(), 0);
    // Another client is served meanwhile.
    let mut other = connect_from("127.0.0.3", &env).await;
    assert!(healthz_on(&mut other).await);
    // A slot given back is usable again.
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from("127.0.0.2", &env).await;
    assert!(healthz_on(&mut again).await);
    let metrics = super::metrics_text(&env).await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("fedgate_connections_refused_per_client_total ")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
    drop(b);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_never_says_hello_is_closed_at_the_handshake_timeout() {
    let env = start(&[("FEDGATE_SERVER__TLS_HANDSHAKE_TIMEOUT_SECS", "1")]).await;
    let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let tls = fedgate::trust::tls::load(
        std::path::Path::new(&format!("{data}/tls_cert.pem")),
        std::path::Path::new(&format!("{data}/tls_key.pem")),
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tls_addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = env.app.clone();
    let server = tokio::spawn(async move {
        fedgate::http::serve_tls(app, listener, &tls, async {
            let _ = rx.await;
        })
        .await
    });
    let started = std::time::Instant::now();
    let mut silent = TcpStream::connect(tls_addr).await.unwrap();
    let got = read_to_close(&mut silent).await;
    assert!(
        got.is_empty(),
        "nothing is sent before a ClientHello: {got:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed before the timeout: {took:?}"
    );
    assert!(
        env.app
            .metrics
            .connections
            .timeouts_total(fedgate::metrics::ConnectionTimeout::TlsHandshake)
            >= 1
    );
    // The plain listener answered all along.
    let ok = reqwest::get(format!("{}/healthz", env.fedgate_url))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    env.stop().await;
}

/// Shutdown (SIGTERM, here the Environment's stop): fedgate stops accepting
/// at once, and a login already in flight (waiting for the CPU pool) is
/// finished and answered, not cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_connections_and_finishes_the_login_in_flight() {
    let env = start(&[
        ("FEDGATE_SERVER__CPU_THREADS", "1"),
        ("FEDGATE_SERVER__SHUTDOWN_GRACE_SECS", "10"),
    ])
    .await;
    let response = env.entra_response(&fedgate::demo::alice(), None).unwrap();
    // The pool's one worker held until `release`.
    let held = super::hold_cpu_worker(&env).await;
    // A valid login, admitted and waiting for the worker.
    let acs = format!("{}/saml/contoso/acs", env.fedgate_url);
    let login = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(acs)
            .form(&[
                ("SAMLResponse", response.as_str()),
                ("RelayState", fedgate::demo::CONSOLE_ID),
            ])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    while env.app.cpu.waiting() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let address = addr(&env);
    let stopping = tokio::spawn(env.stop());
    // New connections are refused once the listener is closed.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(&address).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting after shutdown began");
    assert!(!login.is_finished(), "the login in flight was cut off");
    // The worker comes free: the login in flight is finished and answered.
    held.release.send(()).unwrap();
    let (status, html) = tokio::time::timeout(Duration::from_secs(10), login)
        .await
        .expect("the login in flight was answered within the grace")
        .unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("document.forms[0].submit()"), "{html}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown finished once the last request was answered")
        .unwrap();
    held.task.await.unwrap();
}

/// Request bodies are read whole before a handler runs, so the bytes held
/// at once over all connections are bounded (`max_body_bytes_in_flight`):
/// a body that would go over gets 503 `server.busy` with `Retry-After`,
/// and the budget comes back when the held body is done (here: its 408).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_held_at_once_are_bounded() {
    let env = start(&[("FEDGATE_SERVER__MAX_BODY_BYTES_IN_FLIGHT", "102400")]).await;
    // A slow client: 90 KB of a 200 KB body, then nothing.
    let mut slow = TcpStream::connect(addr(&env)).await.unwrap();
    slow.write_all(
        b"POST /saml/contoso/acs HTTP/1.1\r\nHost: fedgate\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200000\r\n\r\n",
    )
    .await
    .unwrap();
    slow.write_all(&vec![b'a'; 90_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another client's 30 KB does not fit beside it.
    let acs = format!("{}/saml/contoso/acs", env.fedgate_url);
    let post = || post_form(&acs, format!("SAMLResponse={}", "b".repeat(30_000)));
    let r = post().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body = r.text().await.unwrap();
    assert!(body.contains("server.busy"), "{body}");
    assert!(body.contains("server.max_body_bytes_in_flight"), "{body}");
    assert_eq!(env.app.metrics.connections.refused_body_budget_total(), 1);
    // The slow body times out (408) and gives its bytes back.
    let got = read_to_close(&mut slow).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    let r = post().await.unwrap();
    assert_ne!(r.status(), 503, "the budget came back");
    env.stop().await;
}

/// A SAML endpoint takes at most 512 KiB (ten times any real response),
/// declared or chunked; other endpoints keep the 2 MiB bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saml_body_over_512_kib_is_413_declared_or_chunked() {
    let env = start(&[]).await;
    let acs = format!("{}/saml/contoso/acs", env.fedgate_url);
    let form = |n: usize| format!("SAMLResponse={}", "a".repeat(n));
    let r = post_form(&acs, form(600_000)).await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
        assert!(r.text().await.unwrap().contains("524288 bytes"));
    }
    // Chunked, with no Content-Length: counted as it arrives.
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    s.write_all(
        b"POST /saml/contoso/acs HTTP/1.1\r\nHost: fedgate\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    for _ in 0..10 {
        let chunk = format!("{:x}\r\n{}\r\n", 100_000, "a".repeat(100_000));
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break; // fedgate answered and closed
        }
    }
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    // Just under the bound, the body is read and the SAML layer answers.
    let r = post_form(&acs, form(500_000)).await.unwrap();
    assert_ne!(r.status(), 413);
    // Elsewhere the 2 MiB bound holds.
    let r = post_form(
        &format!("{}/oauth2/token", env.fedgate_url),
        form(1_000_000),
    )
    .await
    .unwrap();
    assert_ne!(r.status(), 413);
    env.stop().await;
}
