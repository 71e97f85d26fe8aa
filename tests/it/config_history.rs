//! Versioned access rules (issue 18, part 4), driven as an admin would:
//! `fedgate serve`, the file edited, `kill -HUP`, `fedgate config
//! history|diff|restore`, the audit trail read back.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::TempDir;

const TID: &str = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";

fn config_text(port: u16, roles: &str, extra: &str) -> String {
    let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
[signing]\nkey_file = \"{data}/fedgate_rsa_key.pem\"\ncert_file = \"{data}/fedgate_rsa_cert.pem\"\n\
[audit]\nfile = \"audit.jsonl\"\n\
[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{TID}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"md.xml\"\n\
[[consoles]]\nid = \"backup\"\nkind = \"autotask\"\ndisplay_name = \"Backup\"\nidentifier = \"https://backup.example/sp\"\nreply_url = \"https://backup.example/acs\"\n\
[[rules]]\nid = \"operators\"\ntenant = \"contoso\"\nconsole = \"backup\"\ngroups = [\"5b8f2a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b\"]\nroles = [{roles}]\n{extra}"
    )
}

fn fedgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(args)
        .output()
        .expect("fedgate runs")
}

fn history(cfg: &Path) -> Vec<Value> {
    let out = fedgate(&[
        "config",
        "history",
        "--json",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events(dir: &TempDir) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A decision to audit: a SAMLResponse that is not one (denied).
fn decide(port: u16) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"POST /saml/contoso/acs HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16\r\n\r\nSAMLResponse=AAA")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.contains(" 400 "), "{answer}");
}

/// `/metrics`, the lines about the configuration.
fn config_metrics(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.contains(" 200 "), "{answer}");
    answer
        .lines()
        .filter(|l| l.starts_with("fedgate_config_"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `/metrics` once it has every one of `lines` (the counter of a reload
/// moves just after its audit event is written).
fn metrics_with(port: u16, lines: &[String]) -> String {
    let mut m = String::new();
    for _ in 0..50 {
        m = config_metrics(port);
        if lines.iter().all(|l| m.lines().any(|x| x == l)) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {lines:?} in {m}");
}

fn hup(child: &std::process::Child) {
    let ok = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Wait until the audit file has `n` events with `code` (`login`: the
/// SAML decisions).
fn wait_for(dir: &TempDir, code: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let found: Vec<Value> = events(dir)
            .into_iter()
            .filter(|e| e["code"] == code || (code == "login" && e["via"] == "saml"))
            .collect();
        if found.len() >= n {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {n} {code} events in {:?}", events(dir));
}

fn short(v: &str) -> String {
    v[..12].to_string()
}

#[test]
fn reload_applies_valid_configs_keeps_the_old_on_a_broken_one_and_restores() {
    let dir = TempDir::new("config-history");
    let cert = fedgate::trust::certs::TrustedCert::from_pem_bundle(
        &std::fs::read_to_string(super::data("fedgate_rsa_cert.pem")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("md.xml"),
        fedgate::mock::entra::federation_metadata(TID, &[&cert[0]]),
    )
    .unwrap();
    let port = super::free_port();
    let cfg = dir.join("fedgate.toml");
    let v1_text = config_text(port, "\"Tech\"", "");
    std::fs::write(&cfg, &v1_text).unwrap();
    let v1 = fedgate::config::history::version_of(&v1_text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("fedgate serve exited with {status}: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Started: one version in the history, audited, and the decisions name it.
    let h = history(&cfg);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["version"], v1);
    assert_eq!(h[0]["source"], "start");
    assert!(h[0]["modified"].is_string() && h[0]["owner_uid"].is_number());
    decide(port);
    let applied = wait_for(&dir, "config.applied", 1);
    assert_eq!(applied[0]["change"]["version"], v1);
    assert_eq!(applied[0]["change"]["previous"], Value::Null);
    let denied = wait_for(&dir, "login", 1);
    assert_eq!(denied[0]["config"], short(&v1), "{denied:?}");
    assert_eq!(
        config_metrics(port),
        format!(
            "fedgate_config_info{{version=\"{}\"}} 1\nfedgate_config_last_reload_successful 1",
            short(&v1)
        )
    );

    // An edited rule, then SIGHUP: the new version is in force.
    let v2_text = config_text(port, "\"Administrator\"", "");
    std::fs::write(&cfg, &v2_text).unwrap();
    let v2 = fedgate::config::history::version_of(&v2_text);
    hup(&child);
    let applied = wait_for(&dir, "config.applied", 2);
    let change = &applied[1]["change"];
    assert_eq!(change["version"], v2);
    assert_eq!(change["previous"], v1);
    assert_eq!(change["source"], "reload");
    assert_eq!(
        (change["added"].as_u64(), change["removed"].as_u64()),
        (Some(1), Some(1))
    );
    let diff = change["diff"].as_str().unwrap();
    assert!(
        diff.contains("-roles = [\"Tech\"]\n+roles = [\"Administrator\"]\n"),
        "{diff}"
    );
    decide(port);
    let denied = wait_for(&dir, "login", 2);
    assert_eq!(denied[1]["config"], short(&v2));
    metrics_with(
        port,
        &[
            format!("fedgate_config_info{{version=\"{}\"}} 1", short(&v2)),
            "fedgate_config_reloads_total{result=\"applied\",code=\"ok\"} 1".into(),
        ],
    );

    // A file that does not validate: refused, logged with why, audited; the
    // version in force keeps serving.
    std::fs::write(
        &cfg,
        config_text(port, "\"Administrator\"", "nonsense = 1\n"),
    )
    .unwrap();
    hup(&child);
    let refused = wait_for(&dir, "config.reload_refused", 1);
    assert_eq!(refused[0]["outcome"], "refused");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("config.invalid: "),
        "{refused:?}"
    );
    decide(port);
    let denied = wait_for(&dir, "login", 3);
    assert_eq!(
        denied[2]["config"],
        short(&v2),
        "the old version keeps serving"
    );
    // …and the metrics say so, for an alert.
    metrics_with(
        port,
        &[
            "fedgate_config_last_reload_successful 0".into(),
            "fedgate_config_reloads_total{result=\"refused\",code=\"config.invalid\"} 1".into(),
            format!("fedgate_config_info{{version=\"{}\"}} 1", short(&v2)),
        ],
    );

    // A file that changes what only a restart applies: refused too.
    std::fs::write(
        &cfg,
        v2_text.replace(
            "[audit]\nfile = \"audit.jsonl\"",
            "[audit]\nfile = \"other.jsonl\"",
        ),
    )
    .unwrap();
    hup(&child);
    let refused = wait_for(&dir, "config.reload_refused", 2);
    assert!(
        refused[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("config.restart_required: "),
        "{refused:?}"
    );
    assert_eq!(
        history(&cfg).len(),
        2,
        "refused versions are not in the history"
    );

    // diff, restore, reload: the first version is back in force.
    let c = cfg.to_str().unwrap();
    let out = fedgate(&["config", "diff", &v1[..8], &v2[..8], "--config", c]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.starts_with(&format!("--- {}\n+++ {}\n@@ ", short(&v1), short(&v2))),
        "{text}"
    );
    assert!(
        text.contains("\n-roles = [\"Tech\"]\n+roles = [\"Administrator\"]\n"),
        "{text}"
    );
    let out = fedgate(&["config", "restore", &v1[..10], "--config", c]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), v1_text);
    hup(&child);
    wait_for(&dir, "config.applied", 3);
    metrics_with(
        port,
        &[
            format!("fedgate_config_info{{version=\"{}\"}} 1", short(&v1)),
            "fedgate_config_last_reload_successful 1".into(),
            "fedgate_config_reloads_total{result=\"applied\",code=\"ok\"} 2".into(),
            "fedgate_config_reloads_total{result=\"refused\",code=\"config.restart_required\"} 1"
                .into(),
        ],
    );
    let h = history(&cfg);
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(
        (&h[2]["version"], &h[2]["previous"]),
        (&Value::from(v1.clone()), &Value::from(v2.clone()))
    );
    // An unknown or too short version is refused with its code.
    let out = fedgate(&["config", "restore", "abc", "--config", c]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("config.version_invalid"),
        "{out:?}"
    );
    let out = fedgate(&["config", "diff", "ffffffffff", "file", "--config", c]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("config.version_unknown"),
        "{out:?}"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("configuration reload refused") && stderr.contains("config.invalid"),
        "{stderr}"
    );
    // The trail with its configuration events verifies as a whole.
    let out = fedgate(&[
        "audit",
        "verify",
        dir.join("audit.jsonl").to_str().unwrap(),
        "--cert",
        super::data("fedgate_rsa_cert.pem").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
}
