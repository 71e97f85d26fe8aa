//! The audit file's hash chain and signed checkpoints (issue 18, part 1):
//! an intact file verifies; a flipped byte, a removed line, swapped lines,
//! a truncated tail and a forged checkpoint are each reported as such;
//! checkpoints made before a key rollover still verify with the old
//! certificate; `fedgate audit verify` exits 1 on any of them.

use std::process::Command;

use fedgate::audit::chain::{self, Report};
use fedgate::audit::{AuditEvent, AuditLog};
use fedgate::trust::certs::TrustedCert;
use fedgate::trust::signing::SigningKey;
use time::OffsetDateTime;

fn key(name: &str) -> (SigningKey, TrustedCert, std::path::PathBuf) {
    let read = |f: &str| std::fs::read_to_string(super::data(f)).unwrap();
    let cert_file = super::data(&format!("fedgate_{name}_cert.pem"));
    let k = SigningKey::from_pem(
        &read(&format!("fedgate_{name}_key.pem")),
        &read(&format!("fedgate_{name}_cert.pem")),
    )
    .unwrap();
    let c = TrustedCert::from_pem_bundle(&read(&format!("fedgate_{name}_cert.pem")))
        .unwrap()
        .remove(0);
    (k, c, cert_file)
}

fn event(i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(OffsetDateTime::now_utc(), "contoso", "saml", None);
    e.outcome = "allowed";
    e.code = "ok".into();
    e.reason = format!("login {i}");
    e
}

/// An audit file: 3 events, a checkpoint by the RSA key, 3 events, a
/// checkpoint by the EC key (a rollover), 2 events after it.
fn written(dir: &super::TempDir) -> std::path::PathBuf {
    let path = dir.join("audit.jsonl");
    let (rsa, _, _) = key("rsa");
    let (ec, _, _) = key("ec");
    let log = AuditLog::new(Some(&path)).unwrap();
    let now = OffsetDateTime::now_utc();
    for i in 0..3 {
        log.record(&event(i));
    }
    assert!(log.checkpoint(&rsa, now, false));
    assert!(
        !log.checkpoint(&rsa, now, false),
        "nothing new: no checkpoint"
    );
    drop(log);
    // A restart goes on from the file's last line.
    let log = AuditLog::new(Some(&path)).unwrap();
    for i in 3..6 {
        log.record(&event(i));
    }
    assert!(log.checkpoint(&ec, now, false));
    for i in 6..8 {
        log.record(&event(i));
    }
    path
}

fn check(text: &str, certs: &[TrustedCert]) -> Report {
    chain::verify(&[("audit.jsonl".into(), text.to_string())], certs)
}

fn both() -> Vec<TrustedCert> {
    vec![key("rsa").1, key("ec").1]
}

fn only(r: &Report) -> (&'static str, usize) {
    assert_eq!(r.problems.len(), 1, "{r:?}");
    (r.problems[0].kind, r.problems[0].line)
}

#[test]
fn an_intact_file_verifies_and_its_tail_is_unanchored() {
    let dir = super::TempDir::new("audit-chain");
    let text = std::fs::read_to_string(written(&dir)).unwrap();
    let r = check(&text, &both());
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.lines, r.events, r.checkpoints), (10, 8, 2));
    assert_eq!(r.anchored_through, Some(8));
    assert_eq!(r.unanchored, 2, "the two events after the last checkpoint");
    // Each line names the one before it.
    let lines: Vec<&str> = text.lines().collect();
    let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(second["seq"], 2);
    assert_eq!(second["prev"], chain::line_hash(lines[0]));
}

#[test]
fn each_kind_of_tampering_is_reported_as_such() {
    let dir = super::TempDir::new("audit-chain");
    let text = std::fs::read_to_string(written(&dir)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();

    // A flipped byte inside line 2 (still JSON): line 3 says line 2 changed.
    let flipped = text.replacen("login 1", "login 9", 1);
    assert_eq!(only(&check(&flipped, &both())), ("altered", 2));
    // A byte that breaks the JSON.
    let broken = text.replacen("\"outcome\"", "\"outc\u{1}me", 1);
    assert_eq!(only(&check(&broken, &both())).0, "altered");
    // A removed line.
    let mut removed = lines.clone();
    removed.remove(2);
    assert_eq!(only(&check(&join(&removed), &both())), ("gap", 3));
    // Two lines swapped.
    let mut swapped = lines.clone();
    swapped.swap(5, 6);
    assert_eq!(only(&check(&join(&swapped), &both())), ("reordered", 6));
    // A truncated tail: the last line cut.
    let cut = &text[..text.len() - 10];
    assert_eq!(only(&check(cut, &both())), ("truncated", 10));
    // Whole lines cut after the first checkpoint: fine, but only what the
    // remaining checkpoint signed is anchored.
    let r = check(&join(&lines[..6]), &both());
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.anchored_through, r.unanchored), (Some(4), 2));
    // A forged checkpoint: its signature changed, or the line re-signed by
    // a key that is not fedgate's.
    let forged = text.replacen("\"signature\":\"", "\"signature\":\"AAAA", 1);
    assert_eq!(only(&check(&forged, &both())), ("forged", 4));
    let r = check(&text, &[key("rsa").1]);
    assert_eq!(only(&r), ("key_unknown", 8));
    assert_eq!(
        r.anchored_through,
        Some(4),
        "the older checkpoint still holds"
    );
}

#[test]
fn fedgate_audit_verify_exits_1_on_tampering_and_0_on_an_intact_file() {
    let dir = super::TempDir::new("audit-chain-cli");
    let path = written(&dir);
    let run = |file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_fedgate"))
            .args(["audit", "verify"])
            .arg(file)
            .arg("--cert")
            .arg(key("rsa").2)
            .arg("--cert")
            .arg(key("ec").2)
            .output()
            .unwrap()
    };
    let ok = run(&path);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("unanchored: 2 event(s)"), "{stdout}");
    assert!(stdout.contains("ok: the chain holds"), "{stdout}");
    // fedgate's published keys instead: its IdP metadata (both keys here).
    let md = dir.join("idp-metadata.xml");
    std::fs::write(
        &md,
        fedgate::outbound::saml_post::idp_metadata(
            "https://fedgate.example.com/idp/metadata",
            "https://fedgate.example.com/idp/sso",
            "https://fedgate.example.com/idp/slo",
            &[&key("rsa").1, &key("ec").1],
        ),
    )
    .unwrap();
    let by_metadata = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(["audit", "verify"])
        .arg(&path)
        .arg("--metadata")
        .arg(&md)
        .output()
        .unwrap();
    assert_eq!(
        by_metadata.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&by_metadata.stdout)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, text.replacen("login 4", "login 0", 1)).unwrap();
    let out = run(&bad);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("bad.jsonl:6: altered"), "{stdout}");
}

/// No audit, no access: with `audit.required`, a failing audit file makes
/// `/readyz` answer 503 (and the failure is counted); without it, fedgate
/// stays ready and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_audit_file_makes_fedgate_not_ready_when_audit_is_required() {
    for required in [true, false] {
        let overrides = [
            ("FEDGATE_AUDIT__FILE".to_string(), "/dev/full".to_string()),
            ("FEDGATE_AUDIT__REQUIRED".to_string(), required.to_string()),
        ];
        let env = fedgate::demo::Environment::start_with_overrides("", &overrides)
            .await
            .unwrap();
        let readyz = || async {
            reqwest::get(format!("{}/readyz", env.fedgate_url))
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        // The configuration applied at start is the first event: it could
        // not be written.
        assert_eq!(readyz().await, if required { 503 } else { 200 });
        // A decision to audit: bob is refused.
        let (status, _) = env.login(&fedgate::demo::bob(), None).await.unwrap();
        assert_eq!(status, 403);
        assert_eq!(readyz().await, if required { 503 } else { 200 });
        let metrics = super::metrics_text(&env).await;
        assert!(
            metrics.contains("fedgate_audit_write_failures_total 2\n")
                && metrics.contains("fedgate_audit_failing 1\n"),
            "{metrics}"
        );
        env.stop().await;
    }
}

/// Rotation by size or day closes the file with a checkpoint and goes on
/// in a new one: both files together verify as one chain.
#[test]
fn a_rotated_file_and_its_successor_verify_as_one_chain() {
    let dir = super::TempDir::new("audit-rotate");
    let path = dir.join("audit.jsonl");
    let (rsa, cert, _) = key("rsa");
    let log = AuditLog::new(Some(&path)).unwrap();
    let now = OffsetDateTime::now_utc();
    for i in 0..3 {
        log.record(&event(i));
    }
    assert!(log.rotate_if_due(&rsa, now, 0, false).is_none(), "not due");
    assert!(
        log.rotate_if_due(&rsa, now, 0, true).is_none(),
        "the same day"
    );
    let rotated = log
        .rotate_if_due(&rsa, now, 1, false)
        .expect("over the size: rotated");
    for i in 3..5 {
        log.record(&event(i));
    }
    let next_day = now + time::Duration::days(1);
    let second = log
        .rotate_if_due(&rsa, next_day, 0, true)
        .expect("a new UTC day: rotated");
    log.record(&event(5));
    assert!(log.checkpoint(&rsa, next_day, false));
    let read = |p: &std::path::Path| (p.display().to_string(), std::fs::read_to_string(p).unwrap());
    let files = [read(&rotated), read(&second), read(&path)];
    let r = chain::verify(&files, std::slice::from_ref(&cert));
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.events, r.checkpoints, r.unanchored), (6, 3, 0));
    // Out of order, the files do not chain.
    let r = chain::verify(&[files[1].clone(), files[0].clone()], &[cert]);
    assert_eq!(r.problems[0].kind, "reordered", "{r:?}");
}

/// `audit.fsync` is read as documented (`event`, `second` by default,
/// `checkpoint`; anything else refused). Its cost is measured by the
/// `audit/*` benches, not here.
#[test]
fn the_fsync_setting_is_read() {
    let dir = super::TempDir::new("audit-fsync");
    let base = |extra: &str| {
        let text = format!(
            "[server]\npublic_url = \"https://fedgate.example.com\"\n[signing]\nkey_file = \"k.pem\"\ncert_file = \"c.pem\"\n[audit]\nfile = \"a.jsonl\"\n{extra}\n"
        );
        fedgate::config::Config::from_str(&text, "t.toml", &[], dir.path())
            .map(|c| c.audit.fsync)
            .map_err(|e| e.to_string())
    };
    assert_eq!(base(""), Ok(fedgate::config::AuditSync::Second));
    assert_eq!(
        base("fsync = \"event\""),
        Ok(fedgate::config::AuditSync::Event)
    );
    assert!(base("fsync = \"never\"").is_err());
}
