//! The CLI as scripts use it: exit codes, one JSON object on stdout.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::corpus_path as corpus;

const ENTRA_ISSUER: &str = "https://sts.windows.net/aaaabbbb-0000-cccc-1111-dddd2222eeee/";

fn fedgate(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Exit 0, or the refusal on stdout in the failure message.
#[track_caller]
fn assert_accepted(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn saml_verify_at(file: &str, now: &str, extra: &[&str]) -> Output {
    let cert = corpus("entra/generated/idp_signing_cert.pem");
    let file = corpus(&format!("entra/generated/{file}"));
    let mut args = vec![
        "saml",
        "verify",
        "--metadata",
        cert.to_str().unwrap(),
        "--idp-entity-id",
        ENTRA_ISSUER,
        "--sp-entity-id",
        "https://gateway.example.test/saml/metadata",
        "--acs-url",
        "https://gateway.example.test/saml/acs",
        "--now",
        now,
    ];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    fedgate(&args, None)
}

fn saml_verify(file: &str, extra: &[&str]) -> Output {
    saml_verify_at(file, "2025-01-15T12:00:00Z", extra)
}

#[test]
fn saml_verify_accepts_and_prints_the_identity() {
    let out = saml_verify("valid_signxml_rsa256.xml", &[]);
    assert_accepted(&out);
    let id = json(&out);
    assert_eq!(
        id["subject"],
        "Uz2Pqz1X7pxe4XLWxV9KJQ+n59d573SepSAkuYKSde8="
    );
    assert_eq!(id["issuer"], ENTRA_ISSUER);
    assert_eq!(id["tenant_id"], "aaaabbbb-0000-cccc-1111-dddd2222eeee");
    assert_eq!(id["object_id"], "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    assert_eq!(id["groups"].as_array().unwrap().len(), 2);
    assert!(id["roles"].is_array());
    assert_eq!(id["mfa"], false);
    assert_eq!(id["expires_at"], "2025-01-15T13:09:55Z");
    assert_eq!(
        id["verification"]["signed"],
        serde_json::json!(["assertion"])
    );
}

#[test]
fn saml_verify_rejects_with_code_and_exit_1() {
    let out = saml_verify("invalid_wrong_audience.xml", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = json(&out);
    assert_eq!(err["error"], "saml.audience_mismatch");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("gateway.example.test"));
    let out = saml_verify("invalid_sha1.xml", &[]);
    assert_eq!(json(&out)["error"], "saml.sha1_forbidden");
    let out = saml_verify("invalid_sha1.xml", &["--allow-sha1"]);
    assert_eq!(out.status.code(), Some(0));
    // The same response later than its window plus skew is expired.
    let out = saml_verify_at("valid_signxml_rsa256.xml", "2025-01-15T13:13:00Z", &[]);
    assert_eq!(json(&out)["error"], "saml.expired");
}

#[test]
fn saml_verify_reads_base64_from_stdin() {
    use base64::Engine;
    let xml = std::fs::read(corpus("entra/generated/valid_xmlsec_rsa256.xml")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    let cert = corpus("entra/generated/idp_signing_cert.pem");
    let out = fedgate(
        &[
            "saml",
            "verify",
            "--metadata",
            cert.to_str().unwrap(),
            "--idp-entity-id",
            ENTRA_ISSUER,
            "--sp-entity-id",
            "https://gateway.example.test/saml/metadata",
            "--acs-url",
            "https://gateway.example.test/saml/acs",
            "--now",
            "2025-01-15T12:00:00Z",
            "-",
        ],
        Some(b64.as_bytes()),
    );
    assert_accepted(&out);
}

/// The README's example, as written: one letter of the signed NameID changed
/// in the decoded response gives `saml.digest_mismatch`, exit 1.
#[test]
fn the_readme_tampering_example_gives_a_digest_mismatch() {
    let readme = std::fs::read_to_string(super::repo_path("", "README.md")).unwrap();
    assert!(
        readme.contains("sed 's/>lee.gu@/>lee.gv@/'"),
        "the README example changed: update this test"
    );
    let b64 = std::fs::read_to_string(super::fixture("saml/valid_main_20_groups.b64")).unwrap();
    let xml =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim()).unwrap();
    let xml = String::from_utf8(xml).unwrap();
    // What sed does without `g`: the first match of each line.
    let tampered: String = xml
        .split_inclusive('\n')
        .map(|line| line.replacen(">lee.gu@", ">lee.gv@", 1))
        .collect();
    assert_ne!(tampered, xml);
    let md = super::fixture("saml/idp_metadata.xml");
    let args = [
        "saml",
        "verify",
        "--metadata",
        md.to_str().unwrap(),
        "--sp-entity-id",
        "https://fedgate.example.test/saml/contoso/metadata",
        "--acs-url",
        "https://fedgate.example.test/saml/contoso/acs",
        "--now",
        "2026-03-02T10:00:00Z",
        "-",
    ];
    let out = fedgate(&args, Some(tampered.as_bytes()));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "saml.digest_mismatch");
    let out = fedgate(&args, Some(xml.as_bytes()));
    assert_accepted(&out);
}

/// `fedgate metadata show FILE | head`: the reader gone, fedgate stops
/// quietly (141, as for SIGPIPE), without a panic message.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let md = super::fixture("saml/idp_metadata.xml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(["metadata", "show", md.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before fedgate writes its first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    // Missing --acs-url.
    let out = fedgate(
        &[
            "saml",
            "verify",
            "--metadata",
            "x",
            "--sp-entity-id",
            "y",
            "z",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    // A bad --now.
    let out = saml_verify_at("valid_signxml_rsa256.xml", "yesterday", &[]);
    assert_eq!(out.status.code(), Some(2));
    // PEM trust without an issuer.
    let cert = corpus("entra/generated/idp_signing_cert.pem");
    let out = fedgate(
        &[
            "saml",
            "verify",
            "--metadata",
            cert.to_str().unwrap(),
            "--sp-entity-id",
            "a",
            "--acs-url",
            "b",
            "-",
        ],
        Some(b"<x/>"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["error"], "metadata.invalid");
}

#[test]
fn saml_decode_shows_signed_elements_certificate_and_times() {
    let file = corpus("entra/generated/valid_signxml_rsa256.xml");
    let out = fedgate(
        &[
            "saml",
            "decode",
            "--now",
            "2025-01-15T12:00:00Z",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nResponse\n"), "{text}");
    assert!(
        text.contains("signed: no"),
        "the Response is not signed: {text}"
    );
    assert!(
        text.contains("signed: yes — rsa-sha256 over exc-c14n, digest sha256"),
        "{text}"
    );
    assert!(
        text.contains("certificate in KeyInfo: CN=Test Entra Signing (synthetic)"),
        "{text}"
    );
    assert!(
        text.contains("NotOnOrAfter: 2025-01-15T13:09:55Z (in 1h 9m)"),
        "{text}"
    );
    assert!(
        text.contains("Subject NameID: Uz2Pqz1X7pxe4XLWxV9KJQ+n59d573SepSAkuYKSde8="),
        "{text}"
    );
    assert!(text.contains("--- XML ---"));
    // No verdict, even for a response that would be rejected.
    let file = corpus("entra/generated/invalid_attacker_signed.xml");
    let out = fedgate(
        &[
            "saml",
            "decode",
            "--now",
            "2025-01-15T12:00:00Z",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn metadata_show_lists_certificates_with_expiry() {
    let file = corpus("entra/identitymodel/AADCommonMetadata.xml");
    let out = fedgate(
        &[
            "metadata",
            "show",
            "--json",
            "--now",
            "2026-01-01T00:00:00Z",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let md = json(&out);
    assert_eq!(md["entity_id"], "https://sts.windows.net/{tenantid}/");
    let certs = md["signing_certs"].as_array().unwrap();
    assert_eq!(certs.len(), 3);
    assert!(certs
        .iter()
        .all(|c| c["expired"] == true && c["days_left"].as_i64().unwrap() < 0));
    assert!(certs
        .iter()
        .all(|c| c["thumbprint_sha256"].as_str().unwrap().len() == 64));
    let out = fedgate(
        &[
            "metadata",
            "show",
            "--now",
            "2026-01-01T00:00:00Z",
            file.to_str().unwrap(),
        ],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("EXPIRED"), "{text}");
    // A document with no signing certificate is an error, never "accept unsigned".
    let nocert = corpus("crewjam-saml/testdata/TestCanProduceMetadataNoCerts_metadata");
    let out = fedgate(&["metadata", "show", nocert.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let code = json(&out)["error"].as_str().unwrap().to_string();
    assert!(
        code == "metadata.no_signing_cert" || code == "metadata.no_idp",
        "{code}"
    );
}

#[test]
fn jwt_verify_accepts_and_rejects() {
    let tokens: Value =
        serde_json::from_slice(&std::fs::read(corpus("entra/generated/jwts.json")).unwrap())
            .unwrap();
    let jwks = corpus("entra/generated/jwks.json");
    let run = |name: &str, iss: &str, aud: &str| {
        let tok = tokens[name].as_str().unwrap().to_string();
        fedgate(
            &[
                "jwt",
                "verify",
                "--jwks",
                jwks.to_str().unwrap(),
                "--issuer",
                iss,
                "--audience",
                aud,
                "--now",
                "2025-01-15T12:00:00Z",
                "-",
            ],
            Some(tok.as_bytes()),
        )
    };
    let v2 = "https://login.microsoftonline.com/aaaabbbb-0000-cccc-1111-dddd2222eeee/v2.0";
    let out = run(
        "v2_access_token",
        v2,
        "api://11112222-bbbb-3333-cccc-4444dddd5555",
    );
    assert_accepted(&out);
    let id = json(&out);
    assert_eq!(id["tenant_id"], "aaaabbbb-0000-cccc-1111-dddd2222eeee");
    assert_eq!(id["object_id"], "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    let out = run("v2_access_token", v2, "api://someone-else");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "jwt.audience_mismatch");
}

#[test]
fn serve_refuses_a_bad_configuration_with_file_and_key() {
    let dir = super::TempDir::new("cli");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[server]\npublic_url = \"http://127.0.0.1:1\"\n[[tenants]]\nid = \"a\"\n",
    )
    .unwrap();
    let out = fedgate(&["serve", "--config", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    // A start-up error is text on stderr, for a person or the journal: never
    // JSON on stdout, never an escaped "\n".
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("fedgate: cannot start: "), "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("tenants[0]"),
        "{err}"
    );
    assert!(err.contains("(error code config.invalid)"), "{err}");
    assert!(!err.contains("\\n") && !err.contains('\u{1b}'), "{err}");
    // A TOML syntax error keeps its own lines (the caret under the mistake).
    std::fs::write(&file, "[server\npublic_url = 1\n").unwrap();
    let out = fedgate(&["serve", "--config", file.to_str().unwrap()], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.lines().count() > 2 && err.contains("config.unreadable"),
        "{err}"
    );
}

/// The configuration `serve_tls_config` writes: loopback, TLS with the given
/// key, the test signing key, one tenant, one console, one rule.
fn tls_config(dir: &super::TempDir, tls_key: &str, public_url: &str, audit: &str) -> String {
    let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let cert = fedgate::trust::certs::TrustedCert::from_pem_bundle(
        &std::fs::read_to_string(format!("{data}/fedgate_rsa_cert.pem")).unwrap(),
    )
    .unwrap();
    let tid = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";
    std::fs::write(
        dir.join("md.xml"),
        fedgate::mock::entra::federation_metadata(tid, &[&cert[0]]),
    )
    .unwrap();
    let port = super::free_port();
    let path = dir.join("fedgate.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public_url}\"\n\
tls_cert_file = \"{data}/tls_cert.pem\"\ntls_key_file = \"{data}/{tls_key}\"\n\
[signing]\nkey_file = \"{data}/fedgate_rsa_key.pem\"\ncert_file = \"{data}/fedgate_rsa_cert.pem\"\n\
[audit]\nfile = \"{audit}\"\n\
[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{tid}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"md.xml\"\n\
[[consoles]]\nid = \"c\"\nkind = \"generic\"\ndisplay_name = \"C\"\nidentifier = \"https://console.example.com/saml\"\nreply_url = \"https://console.example.com/saml/acs\"\nextra_roles = [\"Operator\"]\n\
[[rules]]\nid = \"r\"\ntenant = \"contoso\"\nconsole = \"c\"\ngroups = [\"g\"]\nroles = [\"Operator\"]\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn check_json(config: &str) -> (Option<i32>, Value) {
    let out = fedgate(&["check", "--offline", "--json", "--config", config], None);
    (out.status.code(), json(&out))
}

fn codes(report: &Value, severity: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// A TLS key that does not belong to the certificate: check says so, naming
/// both files, and serve refuses to start, before it says "listening".
#[test]
fn check_and_serve_refuse_a_tls_key_that_is_not_the_certificates() {
    let dir = super::TempDir::new("tls");
    let audit = dir.join("audit.jsonl");
    let good = tls_config(
        &dir,
        "tls_key.pem",
        "https://localhost:8443",
        audit.to_str().unwrap(),
    );
    let (code, report) = check_json(&good);
    assert_eq!(code, Some(0), "{report}");
    assert!(codes(&report, "error").is_empty(), "{report}");
    assert!(!audit.exists(), "check must not create the audit file");

    let bad = tls_config(
        &dir,
        "fedgate_rsa_key.pem",
        "https://localhost:8443",
        audit.to_str().unwrap(),
    );
    let (code, report) = check_json(&bad);
    assert_eq!(code, Some(1));
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "tls.key_mismatch")
        .unwrap_or_else(|| panic!("{report}"));
    let msg = finding["message"].as_str().unwrap();
    assert!(
        msg.contains("fedgate_rsa_key.pem") && msg.contains("tls_cert.pem"),
        "{msg}"
    );

    let out = fedgate(&["serve", "--config", &bad], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(error code tls.key_mismatch)") && err.contains("fedgate_rsa_key.pem"),
        "{err}"
    );
    assert!(!err.contains("listening"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colours when stderr is not a terminal: {err}"
    );
}

/// An http:// public URL: an error off loopback and with TLS configured
/// (Entra refuses http Reply URLs), "loopback, test only" on loopback.
#[test]
fn check_reports_an_http_public_url_off_loopback_or_behind_tls() {
    let dir = super::TempDir::new("url");
    let audit = dir.join("audit.jsonl");
    let audit = audit.to_str().unwrap();
    let with_tls = tls_config(&dir, "tls_key.pem", "http://fedgate.example.com", audit);
    let (code, report) = check_json(&with_tls);
    assert_eq!(
        (code, codes(&report, "error")),
        (Some(1), vec!["check.public_url_http".to_string()]),
        "{report}"
    );
    // Without TLS, on a public name: the same error, another reason.
    let text = std::fs::read_to_string(&with_tls).unwrap();
    let plain: String = text
        .lines()
        .filter(|l| !l.starts_with("tls_"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&with_tls, &plain).unwrap();
    let (code, report) = check_json(&with_tls);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.to_string().contains("not loopback"), "{report}");
    // On loopback: no error, and a word that it is for tests only.
    std::fs::write(
        &with_tls,
        plain.replace("http://fedgate.example.com", "http://127.0.0.1:8080"),
    )
    .unwrap();
    let (code, report) = check_json(&with_tls);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        codes(&report, "info"),
        vec!["check.public_url_loopback".to_string()],
        "{report}"
    );
    assert!(
        report.to_string().contains("loopback, test only"),
        "{report}"
    );
}

/// The audit file's directory must exist and take a file: check says so, and
/// serve's own error names the path.
#[test]
fn an_audit_file_in_a_missing_directory_is_named_by_check_and_serve() {
    let dir = super::TempDir::new("audit");
    let audit = dir.join("no-such-dir/audit.jsonl");
    let config = tls_config(
        &dir,
        "tls_key.pem",
        "https://localhost:8443",
        audit.to_str().unwrap(),
    );
    let (code, report) = check_json(&config);
    assert_eq!(
        (code, codes(&report, "error")),
        (Some(1), vec!["check.audit_unwritable".to_string()]),
        "{report}"
    );
    assert!(report.to_string().contains("no-such-dir"), "{report}");
    let out = fedgate(&["serve", "--config", &config], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-dir/audit.jsonl (audit.file)") && err.contains("start.audit_file"),
        "{err}"
    );
}

/// The example configuration, checked as shipped: every file it names is
/// listed as missing at once (not only the first), and nothing else fails.
#[test]
fn check_on_the_example_configuration_lists_every_file_to_supply() {
    let example = format!("{}/fedgate.example.toml", env!("CARGO_MANIFEST_DIR"));
    let (code, report) = check_json(&example);
    assert_eq!(code, Some(1));
    let errors = codes(&report, "error");
    let missing = errors.iter().filter(|c| *c == "check.file_missing").count();
    assert_eq!(missing, 8, "{report}");
    assert!(
        errors
            .iter()
            .all(|c| c == "check.file_missing" || c == "check.audit_unwritable"),
        "{report}"
    );
    assert_eq!(
        codes(&report, "info"),
        vec!["check.incomplete".to_string()],
        "{report}"
    );
}

/// What `fedgate mock init` writes checks clean: its loopback http console
/// URLs are "loopback, test only", not errors.
#[test]
fn check_on_the_mock_init_configuration_has_no_errors() {
    let dir = super::TempDir::new("mockinit");
    let out = fedgate(
        &[
            "mock",
            "init",
            "--dir",
            dir.path().to_str().unwrap(),
            "--public-url",
            "https://localhost:8443",
            "--console-url",
            "http://127.0.0.1:9100",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.join("fedgate.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args([
            "check",
            "--offline",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ])
        .env("FEDGATE_STORE_URL", "redis://127.0.0.1:1/0")
        .output()
        .unwrap();
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let info = codes(&report, "info");
    assert_eq!(info, vec!["lint.loopback_http".to_string(); 2], "{report}");
    assert!(
        report.to_string().contains("loopback, test only"),
        "{report}"
    );
}

#[test]
fn explain_shows_each_rule_and_the_outcome() {
    let cfg = format!("{}/fedgate.example.toml", env!("CARGO_MANIFEST_DIR"));
    let base = [
        "explain",
        "--config",
        cfg.as_str(),
        "--tenant",
        "contoso",
        "--console",
        "autotask-contoso",
        "--now",
        "2026-03-02T10:00:00Z",
    ];
    // In the group, with MFA: granted.
    let mut args = base.to_vec();
    args.extend(["--groups", "5b8f2a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b", "--mfa"]);
    let out = fedgate(&args, None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("rule contoso-backup-admins: matched (users only): member of group 5b8f2a1c"),
        "{text}"
    );
    assert!(text.contains("granted: Administrator @ contoso"), "{text}");
    // Same group without MFA: the rule requires it.
    let mut args = base.to_vec();
    args.extend(["--groups", "5b8f2a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b"]);
    let out = fedgate(&args, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("denied: policy.mfa_required"));
    // JSON for scripts.
    let mut args = base.to_vec();
    args.extend(["--groups", "other", "--json"]);
    let out = fedgate(&args, None);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["decision"]["denial"]["code"], "policy.no_rule_matched");
    assert_eq!(v["decision"]["rules"][0]["matched"], false);
}

/// The production entry point: `fedgate serve` with a configuration file and
/// an environment override, answering on loopback, stopping on SIGTERM.
#[test]
fn serve_runs_answers_and_stops_on_sigterm() {
    let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("fedgate-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = fedgate::trust::certs::TrustedCert::from_pem_bundle(
        &std::fs::read_to_string(format!("{data}/fedgate_rsa_cert.pem")).unwrap(),
    )
    .unwrap();
    let tid = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";
    std::fs::write(
        dir.join("md.xml"),
        fedgate::mock::entra::federation_metadata(tid, &[&cert[0]]),
    )
    .unwrap();
    let port = super::free_port();
    std::fs::write(
        dir.join("fedgate.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://127.0.0.1:{port}\"\n[signing]\nkey_file = \"{data}/fedgate_rsa_key.pem\"\ncert_file = \"{data}/fedgate_rsa_cert.pem\"\n\
[audit]\nfile = \"{audit}\"\n\
[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{tid}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"md.xml\"\n",
            audit = dir.join("audit.jsonl").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args([
            "serve",
            "--config",
            dir.join("fedgate.toml").to_str().unwrap(),
        ])
        // The environment overrides the file's listen address.
        .env("FEDGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Read;
            s.write_all(b"GET /saml/contoso/metadata HTTP/1.0\r\nHost: x\r\n\r\n")
                .unwrap();
            s.read_to_string(&mut body).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body}"
    );
    assert!(
        body.contains(&format!("http://127.0.0.1:{port}/saml/contoso/acs")),
        "{body}"
    );
    // A decision to audit: a SAMLResponse that is not one.
    {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"POST /saml/contoso/acs HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16\r\n\r\nSAMLResponse=AAA")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.0 400") || answer.starts_with("HTTP/1.1 400"),
            "{answer}"
        );
    }
    // SIGTERM: a graceful stop, exit 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "fedgate serve exited with {status}");
    // …and the audit file ends anchored: a checkpoint written at shutdown.
    let verify = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(["audit", "verify"])
        .arg(dir.join("audit.jsonl"))
        .args(["--cert", &format!("{data}/fedgate_rsa_cert.pem"), "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verify.status.code(), Some(0), "{report}");
    // The configuration applied at start, and the decision.
    assert_eq!(report["events"], 2, "{report}");
    assert_eq!(report["checkpoints"], 1, "{report}");
    assert_eq!(report["unanchored"], 0, "{report}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Every flag of every command says what it is for; `mock init` says it
/// writes a Redis store.
#[test]
fn every_flag_of_every_command_has_help_text() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, seen: &mut usize, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            *seen += 1;
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), seen, missing);
        }
    }
    let cli = fedgate::cli::Cli::command();
    let (mut seen, mut missing) = (0, Vec::new());
    walk(&cli, "fedgate", &mut seen, &mut missing);
    assert!(missing.is_empty(), "flags without help text: {missing:#?}");
    assert!(seen >= 60, "only {seen} flags seen");
    let init = cli
        .find_subcommand("mock")
        .and_then(|m| m.find_subcommand("init"))
        .unwrap();
    let about = init.get_long_about().unwrap().to_string();
    assert!(about.contains("kind = \"redis\""), "{about}");
    assert!(about.contains("FEDGATE_STORE_URL"), "{about}");
}
