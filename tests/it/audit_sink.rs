//! Shipping the audit stream off the box (issue 18, part 2), driven as a
//! user would: fedgate (the demo, real HTTP on loopback) with
//! `[[audit.sinks]]` pointing at real receivers on loopback:
//!
//! - rsyslog (imtcp, octet-counted framing) receives RFC 5424 messages
//!   whose fields it parses; their JSON is the audit file's lines, byte for
//!   byte, and written back to a file they verify as the chain;
//! - a TLS receiver of our own, behind a CA made here (`ca_file`), parses
//!   every frame strictly (octet count, PRI, version 1, RFC 3339 time);
//! - a webhook that answers 503 twice gets every line once, in order;
//! - a dead webhook: with `on_full = "drop"` the buffer stays bounded, the
//!   drops are counted and a notice names them once it is back; with
//!   `on_full = "refuse"` `/readyz` answers 503 while it is full.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedgate::audit::chain;
use fedgate::demo::Environment;
use fedgate::trust::certs::TrustedCert;

/// The audit file's lines.
fn file_lines(env: &Environment) -> Vec<String> {
    std::fs::read_to_string(env.dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `lines` written back to a file verify as a chain with fedgate's cert.
fn verifies(env: &Environment, lines: &[String]) -> chain::Report {
    let cert = TrustedCert::from_pem_bundle(
        &std::fs::read_to_string(env.dir.join("fedgate-cert.pem")).unwrap(),
    )
    .unwrap()
    .remove(0);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let copy = env.dir.join("siem-copy.jsonl");
    std::fs::write(&copy, &text).unwrap();
    chain::verify(
        &[(
            copy.display().to_string(),
            std::fs::read_to_string(&copy).unwrap(),
        )],
        &[cert],
    )
}

/// Some decisions (allowed and denied) and a checkpoint.
async fn decisions(env: &Environment, logins: usize) {
    for i in 0..logins {
        let user = if i % 2 == 0 {
            fedgate::demo::alice()
        } else {
            fedgate::demo::bob()
        };
        env.login(&user, None).await.unwrap();
    }
}

/// Poll `f` every 50 ms for up to `secs`.
async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

async fn readyz(env: &Environment) -> u16 {
    reqwest::get(format!("{}/readyz", env.fedgate_url))
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A metric's value for the sink `name`.
async fn metric(env: &Environment, family: &str, sink: &str, kind: &str) -> u64 {
    let text = super::metrics_text(env).await;
    let key = format!("{family}{{sink=\"{sink}\",kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .parse()
        .unwrap()
}

// ---- rsyslog ----

/// An rsyslogd of the test's own, unprivileged, on a free loopback port:
/// imtcp (octet-counted framing), each message's parsed RFC 5424 fields
/// written to a file, `|`-separated. Killed when dropped.
struct Rsyslog {
    child: std::process::Child,
    dir: super::TempDir,
    port: u16,
}

/// rsyslogd: on PATH, or where Debian puts it (/usr/sbin, not on a
/// user's PATH).
fn rsyslogd() -> std::process::Command {
    let sbin = std::path::Path::new("/usr/sbin/rsyslogd");
    std::process::Command::new(if sbin.exists() {
        sbin
    } else {
        std::path::Path::new("rsyslogd")
    })
}

impl Rsyslog {
    fn start() -> Rsyslog {
        assert!(
            rsyslogd().arg("-v").output().is_ok(),
            "rsyslogd is missing: run scripts/install-test-deps (Debian package rsyslog)"
        );
        let dir = super::TempDir::new("rsyslog");
        let d = dir.path().display();
        let conf = format!(
            r#"global(workDirectory="{d}" maxMessageSize="256k")
module(load="imtcp")
template(name="fields" type="string" string="%syslogfacility%|%syslogseverity%|%protocol-version%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
input(type="imtcp" port="0" address="127.0.0.1" listenPortFileName="{d}/port")
action(type="omfile" file="{d}/out.log" template="fields")
"#
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let child = rsyslogd()
            .arg("-n")
            .arg("-C")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut port = 0;
        for _ in 0..100 {
            if let Some(p) = std::fs::read_to_string(dir.join("port"))
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                port = p;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(port > 0, "rsyslogd did not start listening");
        Rsyslog { child, dir, port }
    }

    fn received(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("out.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_every_line_as_rfc_5424_and_the_copy_verifies_as_the_chain() {
    let rsyslog = Rsyslog::start();
    let env = Environment::start_with(&format!(
        "\n[[audit.sinks]]\nkind = \"syslog\"\nname = \"rsyslog\"\nurl = \"tcp://127.0.0.1:{}\"\n",
        rsyslog.port
    ))
    .await
    .unwrap();
    decisions(&env, 4).await;
    assert!(env.app.checkpoint_audit(true));
    decisions(&env, 1).await;
    let file = file_lines(&env);
    assert!(file.len() >= 6, "{file:?}");
    assert!(
        eventually(10, || rsyslog.received().len() >= file.len()).await,
        "rsyslog got {} of {} lines",
        rsyslog.received().len(),
        file.len()
    );
    let received = rsyslog.received();
    assert_eq!(received.len(), file.len());
    let mut bodies = Vec::new();
    for (got, line) in received.iter().zip(&file) {
        let f: Vec<&str> = got.splitn(10, '|').collect();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (severity, msgid) = if v.get("checkpoint").is_some() {
            ("6", "checkpoint")
        } else if v["outcome"] == "allowed" {
            ("6", "decision")
        } else {
            ("5", "decision")
        };
        assert_eq!(f[0], "10", "facility authpriv: {got}");
        assert_eq!(f[1], severity, "{got}");
        assert_eq!(f[2], "1", "RFC 5424 version: {got}");
        assert!(fedgate::timefmt::parse(f[3]).is_some(), "{got}");
        assert!(!f[4].is_empty() && f[4] != "-", "hostname: {got}");
        assert_eq!(f[5], "fedgate");
        assert_eq!(f[6], std::process::id().to_string());
        assert_eq!(f[7], msgid);
        assert_eq!(f[8], "-", "no structured data");
        assert_eq!(f[9], line, "the JSON is the file's line, byte for byte");
        bodies.push(f[9].to_string());
    }
    let r = verifies(&env, &bodies);
    assert!(r.ok(), "{r:?}");
    assert!(r.checkpoints >= 1 && r.unanchored >= 1, "{r:?}");
    assert_eq!(
        metric(&env, "fedgate_audit_sink_sent_total", "rsyslog", "syslog").await,
        file.len() as u64
    );
    assert_eq!(
        metric(&env, "fedgate_audit_sink_up", "rsyslog", "syslog").await,
        1
    );
    env.stop().await;
}

// ---- TLS, with a strict receiver of our own ----

/// One RFC 5424 message, parsed strictly: (PRI, TIMESTAMP, HOSTNAME,
/// APP-NAME, PROCID, MSGID, MSG); panics on anything else.
fn parse_5424(msg: &str) -> (u16, String, String, String, String, String, String) {
    let rest = msg.strip_prefix('<').expect("PRI starts with <");
    let (pri, rest) = rest.split_once('>').expect("PRI ends with >");
    assert!(
        (1..=3).contains(&pri.len()) && pri.bytes().all(|b| b.is_ascii_digit()),
        "PRI {pri:?}"
    );
    assert!(
        pri == "0" || !pri.starts_with('0'),
        "PRI without leading zeros"
    );
    let pri: u16 = pri.parse().unwrap();
    assert!(pri <= 191, "PRI {pri}");
    let rest = rest.strip_prefix("1 ").expect("VERSION 1 and a space");
    let mut parts = rest.splitn(6, ' ');
    let mut field = |max: usize, what: &str| {
        let f = parts.next().unwrap_or_else(|| panic!("no {what}"));
        assert!(
            !f.is_empty() && f.len() <= max && f.bytes().all(|b| (33..=126).contains(&b)),
            "{what} {f:?}"
        );
        f.to_string()
    };
    let ts = field(64, "TIMESTAMP");
    let host = field(255, "HOSTNAME");
    let app = field(48, "APP-NAME");
    let procid = field(128, "PROCID");
    let msgid = field(32, "MSGID");
    let t = time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("TIMESTAMP {ts:?}: {e}"));
    assert!(ts.ends_with('Z') && t.year() >= 2024, "{ts}");
    let rest = parts.next().expect("STRUCTURED-DATA and MSG");
    let body = rest
        .strip_prefix("- ")
        .expect("no structured data (-), then MSG");
    (pri, ts, host, app, procid, msgid, body.to_string())
}

/// A syslog receiver over TLS on loopback: every octet-counted frame's
/// message, parsed strictly.
async fn tls_receiver(
    acceptor: tokio_rustls::TlsAcceptor,
) -> (u16, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    let task = tokio::spawn(async move {
        // One connection is all fedgate makes while the receiver is up.
        let Ok(Ok((tcp, _))) =
            tokio::time::timeout(Duration::from_secs(60), listener.accept()).await
        else {
            return;
        };
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return;
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match tokio::time::timeout(Duration::from_secs(60), tls.read(&mut chunk)).await
            {
                Ok(Ok(n)) if n > 0 => n,
                _ => return,
            };
            buf.extend_from_slice(&chunk[..n]);
            // LEN SP MSG (RFC 6587 §3.4.1): LEN is NONZERO-DIGIT *DIGIT.
            while let Some(sp) = buf.iter().position(|b| *b == b' ') {
                let len = std::str::from_utf8(&buf[..sp]).unwrap();
                assert!(
                    !len.is_empty()
                        && !len.starts_with('0')
                        && len.bytes().all(|b| b.is_ascii_digit()),
                    "MSG-LEN {len:?}"
                );
                let len: usize = len.parse().unwrap();
                if buf.len() < sp + 1 + len {
                    break;
                }
                let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
                buf.drain(..sp + 1 + len);
                seen.lock().unwrap().push(msg);
            }
        }
    });
    (port, got, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls_trusts_the_ca_file_and_every_frame_parses_strictly() {
    fedgate::trust::install_crypto_provider();
    let dir = super::TempDir::new("audit-sink-tls");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fedgate test SIEM CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    let (port, got, task) = tls_receiver(tokio_rustls::TlsAcceptor::from(Arc::new(config))).await;
    let env = Environment::start_with(&format!(
        "\n[[audit.sinks]]\nkind = \"syslog\"\nurl = \"tls://127.0.0.1:{port}\"\nca_file = \"{}\"\nfacility = \"auth\"\n",
        dir.join("ca.pem").display()
    ))
    .await
    .unwrap();
    decisions(&env, 3).await;
    assert!(env.app.checkpoint_audit(true));
    let file = file_lines(&env);
    assert!(
        eventually(10, || got.lock().unwrap().len() >= file.len()).await,
        "got {:?}",
        got.lock().unwrap()
    );
    let msgs = got.lock().unwrap().clone();
    assert_eq!(msgs.len(), file.len());
    let mut bodies = Vec::new();
    for (m, line) in msgs.iter().zip(&file) {
        let (pri, _, _, app, procid, msgid, body) = parse_5424(m);
        assert_eq!(pri / 8, 4, "facility auth: {m}");
        assert!([5, 6].contains(&(pri % 8)), "{m}");
        assert_eq!(
            (app.as_str(), procid),
            ("fedgate", std::process::id().to_string())
        );
        assert!(["decision", "checkpoint"].contains(&msgid.as_str()));
        assert_eq!(&body, line);
        bodies.push(body);
    }
    let r = verifies(&env, &bodies);
    assert!(r.ok() && r.unanchored == 0 && r.checkpoints == 1, "{r:?}");
    env.stop().await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls_without_the_ca_is_not_trusted_and_sends_nothing() {
    fedgate::trust::install_crypto_provider();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let (port, got, task) = tls_receiver(tokio_rustls::TlsAcceptor::from(Arc::new(config))).await;
    let env = Environment::start_with(&format!(
        "\n[[audit.sinks]]\nkind = \"syslog\"\nname = \"siem\"\nurl = \"tls://127.0.0.1:{port}\"\nretry_max_ms = 200\n"
    ))
    .await
    .unwrap();
    decisions(&env, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(got.lock().unwrap().is_empty());
    assert_eq!(
        metric(&env, "fedgate_audit_sink_up", "siem", "syslog").await,
        0
    );
    assert!(metric(&env, "fedgate_audit_sink_retries_total", "siem", "syslog").await >= 1);
    assert!(metric(&env, "fedgate_audit_sink_queue_events", "siem", "syslog").await >= 1);
    env.stop().await;
    task.abort();
}

// ---- webhooks ----

/// A webhook receiver on loopback: answers 503 to the first `fail_first`
/// requests and while `down` is set, then 200, keeping each accepted
/// batch's lines (their JSON text, in order) and the Authorization header.
struct Hook {
    url: String,
    down: Arc<AtomicBool>,
    /// Answer 400 (a batch the receiver will never take).
    refuse: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    lines: Arc<Mutex<Vec<String>>>,
    auth: Arc<Mutex<Vec<Option<String>>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Hook {
    async fn start(fail_first: usize, down: bool) -> Hook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/audit", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(down));
        let refuse = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let auth = Arc::new(Mutex::new(Vec::new()));
        let (d, f, r, l, a) = (
            down.clone(),
            refuse.clone(),
            requests.clone(),
            lines.clone(),
            auth.clone(),
        );
        let handler = move |headers: axum::http::HeaderMap, body: String| {
            let (d, f, r, l, a) = (d.clone(), f.clone(), r.clone(), l.clone(), a.clone());
            async move {
                let n = r.fetch_add(1, Ordering::SeqCst);
                a.lock().unwrap().push(
                    headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                );
                assert_eq!(
                    headers.get("content-type").and_then(|v| v.to_str().ok()),
                    Some("application/json")
                );
                if n < fail_first || d.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                if f.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::BAD_REQUEST;
                }
                let batch: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
                let texts = elements(&body);
                assert_eq!(texts.len(), batch.len(), "{body}");
                l.lock().unwrap().extend(texts);
                axum::http::StatusCode::OK
            }
        };
        let app = axum::Router::new().route("/audit", axum::routing::post(handler));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Hook {
            url,
            down,
            refuse,
            requests,
            lines,
            auth,
            stop: Some(tx),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The elements of a JSON array of objects, as their text (a webhook body
/// is the lines as written, joined by commas).
fn elements(body: &str) -> Vec<String> {
    let inner = body
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .expect("a JSON array");
    let (mut out, mut depth, mut in_str, mut esc, mut start) = (Vec::new(), 0, false, false, 0);
    for (i, c) in inner.char_indices() {
        match c {
            _ if esc => esc = false,
            '\\' if in_str => esc = true,
            '"' => in_str = !in_str,
            '{' | '[' if !in_str => depth += 1,
            '}' | ']' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(inner[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.is_empty() {
        out.push(inner[start..].to_string());
    }
    out
}

fn hook_toml(hook: &Hook, extra: &str) -> String {
    format!(
        "\n[[audit.sinks]]\nkind = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\nbatch_ms = 50\nretry_max_ms = 200\n{extra}\n",
        hook.url
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_fails_twice_gets_every_line_once_and_in_order_with_its_token() {
    let hook = Hook::start(2, false).await;
    let dir = super::TempDir::new("audit-sink-hook");
    std::fs::write(dir.join("token"), "s3cret-token\n").unwrap();
    let env = Environment::start_with(&hook_toml(
        &hook,
        &format!("token_file = \"{}\"", dir.join("token").display()),
    ))
    .await
    .unwrap();
    decisions(&env, 4).await;
    assert!(env.app.checkpoint_audit(true));
    decisions(&env, 2).await;
    let file = file_lines(&env);
    assert!(
        eventually(10, || hook.lines().len() >= file.len()).await,
        "{} of {}",
        hook.lines().len(),
        file.len()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.lines(), file, "each line once, in order, as written");
    assert!(hook.requests.load(Ordering::SeqCst) >= 3);
    assert!(hook
        .auth
        .lock()
        .unwrap()
        .iter()
        .all(|a| a.as_deref() == Some("Bearer s3cret-token")));
    let r = verifies(&env, &hook.lines());
    assert!(r.ok(), "{r:?}");
    assert!(metric(&env, "fedgate_audit_sink_retries_total", "hook", "webhook").await >= 2);
    assert_eq!(
        metric(&env, "fedgate_audit_sink_sent_total", "hook", "webhook").await,
        file.len() as u64
    );
    assert_eq!(
        metric(&env, "fedgate_audit_sink_up", "hook", "webhook").await,
        1
    );
    // The token is never in the metrics or fedgate's answers.
    assert!(!super::metrics_text(&env).await.contains("s3cret"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_with_on_full_drop_stays_bounded_and_a_notice_names_the_gap() {
    let hook = Hook::start(0, true).await;
    let env = Environment::start_with(&hook_toml(&hook, "buffer_events = 3\non_full = \"drop\""))
        .await
        .unwrap();
    decisions(&env, 8).await;
    let written = file_lines(&env).len() as u64;
    assert!(written >= 8);
    let queued = metric(&env, "fedgate_audit_sink_queue_events", "hook", "webhook").await;
    let dropped = metric(&env, "fedgate_audit_sink_dropped_total", "hook", "webhook").await;
    assert_eq!(queued, 3, "bounded");
    assert_eq!(dropped, written - 3);
    assert_eq!(
        metric(&env, "fedgate_audit_sink_up", "hook", "webhook").await,
        0
    );
    assert_eq!(readyz(&env).await, 200, "drop: fedgate stays ready");
    // The receiver is back: the 3 buffered lines, then the notice.
    hook.down.store(false, Ordering::SeqCst);
    assert!(
        eventually(10, || hook.lines().len() >= 4).await,
        "{:?}",
        hook.lines()
    );
    decisions(&env, 1).await;
    let file = file_lines(&env);
    assert!(eventually(10, || hook.lines().len() >= 5).await);
    let got = hook.lines();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[..3], file[..3]);
    let notice: serde_json::Value = serde_json::from_str(&got[3]).unwrap();
    assert_eq!(notice["notice"], "audit.sink_dropped", "{notice}");
    assert_eq!(notice["sink"], "hook");
    assert_eq!(notice["dropped"].as_u64(), Some(dropped));
    assert_eq!(notice["first_seq"].as_u64(), Some(4));
    assert_eq!(notice["last_seq"].as_u64(), Some(written));
    assert_eq!(&got[4], file.last().unwrap());
    // The SIEM sees the gap in the chain too.
    let r = verifies(
        &env,
        &got.iter()
            .filter(|l| !l.contains("\"notice\""))
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(r.problems[0].kind, "gap", "{r:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_with_on_full_refuse_makes_fedgate_not_ready_until_the_sink_is_back() {
    let hook = Hook::start(0, true).await;
    let env = Environment::start_with(&hook_toml(&hook, "buffer_events = 3\non_full = \"refuse\""))
        .await
        .unwrap();
    decisions(&env, 1).await;
    assert_eq!(
        readyz(&env).await,
        200,
        "the configuration applied at start and one decision buffered: not full"
    );
    decisions(&env, 2).await;
    assert_eq!(readyz(&env).await, 503, "full: no audit, no access");
    let body = reqwest::get(format!("{}/readyz", env.fedgate_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("audit sink \"hook\""), "{body}");
    hook.down.store(false, Ordering::SeqCst);
    let mut ready = false;
    for _ in 0..100 {
        if readyz(&env).await == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "ready again once the sink takes lines");
    assert!(eventually(10, || hook.lines().len() >= 3).await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_webhook_refuses_with_a_4xx_is_dropped_not_retried_and_counted() {
    let hook = Hook::start(0, false).await;
    hook.refuse.store(true, Ordering::SeqCst);
    let env = Environment::start_with(&hook_toml(&hook, ""))
        .await
        .unwrap();
    decisions(&env, 2).await;
    let written = file_lines(&env).len() as u64;
    let sinks = env.app.audit.sinks();
    assert_eq!(sinks.flush(Duration::from_secs(5)).await, 0, "nothing left");
    assert_eq!(
        metric(&env, "fedgate_audit_sink_rejected_total", "hook", "webhook").await,
        written
    );
    assert_eq!(
        metric(&env, "fedgate_audit_sink_retries_total", "hook", "webhook").await,
        0,
        "a 400 is never retried"
    );
    let asked = hook.requests.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(hook.requests.load(Ordering::SeqCst), asked);
    // The next lines go on as usual.
    hook.refuse.store(false, Ordering::SeqCst);
    decisions(&env, 1).await;
    assert_eq!(sinks.flush(Duration::from_secs(5)).await, 0);
    assert_eq!(hook.lines(), file_lines(&env)[written as usize..]);
    env.stop().await;
}

/// Configuration mistakes are refused at start with the key and a stable
/// code.
#[test]
fn sink_configuration_mistakes_are_refused_with_their_code() {
    let dir = super::TempDir::new("audit-sink-config");
    let load = |sink: &str| {
        let text = format!(
            "[server]\npublic_url = \"https://fedgate.example.com\"\n[signing]\nkey_file = \"k.pem\"\ncert_file = \"c.pem\"\n[[audit.sinks]]\n{sink}\n"
        );
        fedgate::config::Config::from_str(&text, "t.toml", &[], dir.path())
            .map(|c| c.audit.sinks.len())
            .map_err(|e| e.to_string())
    };
    assert_eq!(load("kind = \"syslog\"\nurl = \"tls://siem:6514\""), Ok(1));
    for (sink, code) in [
        (
            "kind = \"syslog\"\nurl = \"udp://siem:514\"",
            "audit.sinks[0].url: audit.sink_url",
        ),
        (
            "kind = \"webhook\"\nurl = \"http://siem.example/in\"",
            "audit.sink_url",
        ),
        (
            "kind = \"syslog\"\nurl = \"tcp://siem:514\"\nfacility = \"mail\"",
            "audit.sink_facility",
        ),
        (
            "kind = \"syslog\"\nurl = \"tcp://siem:514\"\nca_file = \"ca.pem\"",
            "audit.sink_ca_file",
        ),
        (
            "kind = \"syslog\"\nurl = \"tls://siem:514\"\ntoken_file = \"t\"",
            "audit.sink_token_file",
        ),
        (
            "kind = \"webhook\"\nurl = \"https://siem/in\"\nbuffer_events = 0",
            "audit.sink_buffer",
        ),
        (
            "kind = \"webhook\"\nurl = \"https://siem/in\"\nname = \"a b\"",
            "audit.sink_name",
        ),
    ] {
        let e = load(sink).unwrap_err();
        assert!(e.contains(code), "{sink}: {e}");
    }
    assert!(load("kind = \"kafka\"\nurl = \"x\"").is_err());
    assert!(load("kind = \"webhook\"\nurl = \"https://x/\"\non_full = \"block\"").is_err());
}
