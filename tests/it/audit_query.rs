//! `fedgate audit query` (issue 18, part 3) on a fixture whose answers are
//! counted by hand: five decisions and a checkpoint.

use std::process::Command;

use fedgate::audit::{AuditEvent, AuditLog};
use fedgate::identity::Grant;

fn at(t: &str) -> time::OffsetDateTime {
    fedgate::timefmt::parse(&format!("2026-12-01T{t}:00Z")).unwrap()
}

/// | # | time  | who   | console | outcome | code                    |
/// | 1 | 10:00 | alice | vault   | allowed | ok                      |
/// | 2 | 10:05 | bob   | vault   | denied  | policy.no_rule_matched  |
/// | 3 | 11:00 | alice | cloud   | allowed | ok                      |
/// | 4 | 12:00 | carol | cloud   | denied  | policy.mfa_required     |
/// | 5 | 13:00 | alice | -       | allowed | logout                  |
pub fn fixture(dir: &super::TempDir) -> std::path::PathBuf {
    let path = dir.join("audit.jsonl");
    let log = AuditLog::new(Some(&path)).unwrap();
    let ev = |t: &str,
              who: &str,
              console: Option<&str>,
              outcome: &'static str,
              code: &str,
              reason: &str| {
        let mut e = AuditEvent::new(at(t), "contoso", "saml", Some("192.0.2.7".into()));
        e.subject = Some(format!("{who}@contoso.example"));
        e.upn = Some(format!("{who}@contoso.example"));
        e.console = console.map(str::to_string);
        e.outcome = outcome;
        e.code = code.into();
        e.reason = reason.into();
        if outcome == "allowed" && code == "ok" {
            e.roles_granted = vec![Grant {
                role: "Backup Operator".into(),
                scope: "contoso".into(),
            }];
        }
        e
    };
    log.record(&ev(
        "10:00",
        "alice",
        Some("vault"),
        "allowed",
        "ok",
        "granted by eng",
    ));
    log.record(&ev(
        "10:05",
        "bob",
        Some("vault"),
        "denied",
        "policy.no_rule_matched",
        "no rule grants a role, \"sorry\"",
    ));
    log.record(&ev(
        "11:00",
        "alice",
        Some("cloud"),
        "allowed",
        "ok",
        "granted by eng",
    ));
    log.record(&ev(
        "12:00",
        "carol",
        Some("cloud"),
        "denied",
        "policy.mfa_required",
        "the rule needs MFA",
    ));
    log.record(&ev(
        "13:00",
        "alice",
        None,
        "allowed",
        "logout",
        "signed out",
    ));
    let key = fedgate::trust::signing::SigningKey::from_pem(
        &std::fs::read_to_string(super::data("fedgate_rsa_key.pem")).unwrap(),
        &std::fs::read_to_string(super::data("fedgate_rsa_cert.pem")).unwrap(),
    )
    .unwrap();
    assert!(log.checkpoint(&key, at("13:01"), false));
    path
}

fn query(file: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(["audit", "query"])
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn count(file: &std::path::Path, args: &[&str]) -> usize {
    query(file, args).lines().count()
}

#[test]
fn answers_match_the_hand_counted_fixture() {
    let dir = super::TempDir::new("audit-query");
    let f = fixture(&dir);
    assert_eq!(count(&f, &[]), 5, "every event, no checkpoint");
    assert_eq!(count(&f, &["--console", "vault"]), 2);
    assert_eq!(
        count(&f, &["--console", "vault", "--outcome", "allowed"]),
        1
    );
    assert_eq!(count(&f, &["--outcome", "denied"]), 2);
    assert_eq!(
        count(&f, &["--user", "ALICE@contoso.example"]),
        3,
        "a UPN in any case"
    );
    assert_eq!(count(&f, &["--code", "policy.mfa_required"]), 1);
    assert_eq!(count(&f, &["--tenant", "fabrikam"]), 0);
    // Who reached the cloud console between 10:30 and 12:30: events 3 and 4,
    // of which one allowed.
    let window = [
        "--since",
        "2026-12-01T10:30:00Z",
        "--until",
        "2026-12-01T12:30:00Z",
    ];
    assert_eq!(count(&f, &window), 2);
    let mut reached = window.to_vec();
    reached.extend(["--console", "cloud", "--outcome", "allowed"]);
    assert!(query(&f, &reached).contains("alice@contoso.example"));
    assert_eq!(count(&f, &reached), 1);
    // The boundary: --since is inclusive, --until exclusive.
    assert_eq!(count(&f, &["--since", "2026-12-01T13:00:00Z"]), 1);
    assert_eq!(count(&f, &["--until", "2026-12-01T10:00:00Z"]), 0);

    // CSV, every denial with its reason (quoted as CSV wants).
    let csv = query(&f, &["--outcome", "denied", "--csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "time,outcome,code,tenant,console,user,roles,reason"
    );
    assert_eq!(
        lines[1],
        "2026-12-01T10:05:00Z,denied,policy.no_rule_matched,contoso,vault,bob@contoso.example,,\"no rule grants a role, \"\"sorry\"\"\""
    );
    assert_eq!(lines.len(), 3);
    let allowed = query(&f, &["--console", "vault", "--outcome", "allowed", "--csv"]);
    assert!(
        allowed.contains(",Backup Operator@contoso,granted by eng"),
        "{allowed}"
    );
    // JSON lines: the events as written, chain fields included.
    let json = query(&f, &["--user", "carol@contoso.example", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["code"], "policy.mfa_required");
    assert_eq!(v["seq"], 4);
}
