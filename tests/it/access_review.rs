//! `fedgate access review` (issue 18, part 5) over a fixture whose answers
//! are counted by hand: two configuration versions (applied on 1 January
//! and 1 February), an audit trail of sign-ins around them, and the
//! review of two dates, their diff, CSV, HTML and Graph's current members.

use std::collections::HashMap;
use std::process::Command;

use fedgate::config::history::{Entry, History};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::TempDir;

const G_OPS: &str = "11111111-1111-4111-8111-111111111111";
const G_ADMINS: &str = "22222222-2222-4222-8222-222222222222";
const G_OTHER: &str = "33333333-3333-4333-8333-333333333333";
const HOSTILE: &str = "=HYPERLINK(\"http://x\")<script>alert(1)</script>@contoso.example";

fn at(s: &str) -> OffsetDateTime {
    fedgate::timefmt::parse(s).unwrap()
}

fn rule(id: &str, console: &str, grant: &str, roles: &str) -> String {
    format!("[[rules]]\nid = \"{id}\"\ntenant = \"contoso\"\nconsole = \"{console}\"\n{grant}\nroles = [{roles}]\nscope = \"contoso\"\n")
}

const CONSOLES: &str = "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://fedgate.example\"\n\
[[consoles]]\nid = \"backup\"\nkind = \"autotask\"\ndisplay_name = \"Backup\"\nidentifier = \"https://b.example/sp\"\nreply_url = \"https://b.example/acs\"\n";

/// The state directory's history: v1 from 1 January (ops, admins), v2
/// from 1 February (ops; admins removed; auditors by app role added; and a
/// rule of another console, which a review of `backup` leaves out).
fn history(dir: &TempDir) -> (String, String) {
    let v1 = format!(
        "{CONSOLES}{}{}",
        rule(
            "ops",
            "backup",
            &format!("groups = [\"{G_OPS}\"]"),
            "\"Tech\""
        ),
        rule(
            "admins",
            "backup",
            &format!("groups = [\"{G_ADMINS}\"]"),
            "\"Administrator\""
        )
    );
    let v2 = format!(
        "{CONSOLES}{}{}{}",
        rule(
            "ops",
            "backup",
            &format!("groups = [\"{G_OPS}\"]"),
            "\"Tech\""
        ),
        rule(
            "auditors",
            "backup",
            "app_roles = [\"Backup.Read\"]",
            "\"Business\""
        ),
        rule(
            "elsewhere",
            "other",
            &format!("groups = [\"{G_OPS}\"]"),
            "\"x\""
        )
    );
    let h = History::new(&dir.join("state"));
    let mut previous = None;
    for (text, when) in [(&v1, "2026-01-01T09:00:00Z"), (&v2, "2026-02-01T09:00:00Z")] {
        let version = h.save(text).unwrap();
        h.append(&Entry {
            version: version.clone(),
            applied: at(when),
            source: "reload".into(),
            file: "fedgate.toml".into(),
            modified: None,
            owner_uid: None,
            previous: previous.replace(version.clone()),
            env: vec![],
        })
        .unwrap();
    }
    std::fs::write(dir.join("fedgate.toml"), &v2).unwrap();
    (
        fedgate::config::history::version_of(&v1),
        fedgate::config::history::version_of(&v2),
    )
}

fn sign_in(time: &str, tenant: &str, upn: &str, groups: &[&str], roles: &[&str]) -> String {
    json!({"schema": 2, "time": time, "outcome": "allowed", "code": "ok", "tenant": tenant,
        "console": "backup", "subject": format!("sub-{upn}"), "upn": upn, "object_id": format!("oid-{}", upn.len()),
        "groups": groups, "app_roles": roles, "kind": "user", "via": "saml"})
    .to_string()
}

/// The trail, by hand: who signed in when, with which groups.
fn audit(dir: &TempDir) -> std::path::PathBuf {
    let lines = [
        sign_in("2026-01-10T08:00:00Z", "contoso", "alice@contoso.example", &[G_OPS], &[]),
        // Another tenant's user with the same group id: never contoso's rule.
        sign_in("2026-01-11T08:00:00Z", "fabrikam", "mallory@fabrikam.example", &[G_OPS, G_ADMINS], &[]),
        sign_in("2026-01-12T08:00:00Z", "contoso", "bob@contoso.example", &[G_ADMINS], &[]),
        sign_in("2026-01-13T08:00:00Z", "contoso", HOSTILE, &[G_OPS], &[]),
        // A sign-out carries no fresh claims: alice's last sign-in stays the 10th.
        json!({"schema": 2, "time": "2026-01-14T08:00:00Z", "outcome": "allowed", "code": "logout", "tenant": "contoso",
            "subject": "sub-alice@contoso.example", "upn": "alice@contoso.example", "groups": [], "via": "logout"}).to_string(),
        r#"{"checkpoint":1,"time":"2026-01-14T09:00:00Z","key":"k","alg":"rsa-sha256","signature":"s","seq":6,"prev":"p"}"#.to_string(),
        sign_in("2026-01-20T08:00:00Z", "contoso", "carol@contoso.example", &[G_OTHER], &[]),
        sign_in("2026-02-05T08:00:00Z", "contoso", "bob@contoso.example", &[G_ADMINS], &[]),
        sign_in("2026-02-10T08:00:00Z", "contoso", "carol@contoso.example", &[G_OTHER], &["Backup.Read"]),
        "not json".to_string(),
        sign_in("2026-03-01T08:00:00Z", "contoso", "eve@contoso.example", &[G_OPS], &[]),
    ];
    let path = dir.join("audit.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn review(dir: &TempDir, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(["access", "review", "--console", "backup", "--config"])
        .arg(dir.join("fedgate.toml"))
        .arg("--audit")
        .arg(dir.join("audit.jsonl"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (rule, upn) pairs of a review.
fn pairs(r: &Value) -> Vec<(String, String)> {
    r["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().into(),
                a["upn"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn p(rule: &str, upn: &str) -> (String, String) {
    (rule.into(), upn.into())
}

#[test]
fn a_review_shows_the_rules_then_in_force_and_the_users_they_granted() {
    let dir = TempDir::new("access-review");
    let (v1, v2) = history(&dir);
    audit(&dir);

    // 15 January: v1's rules; alice, the hostile UPN (ops) and bob (admins).
    let r = json_of(&review(&dir, &["--at", "2026-01-15", "--json"]));
    assert_eq!(r["version"]["version"], v1);
    assert_eq!(r["until"], "2026-02-01T09:00:00Z");
    let ids: Vec<&str> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ops", "admins"]);
    let mut got = pairs(&r);
    got.sort();
    let mut want = vec![
        p("admins", "bob@contoso.example"),
        p("ops", "alice@contoso.example"),
        p("ops", HOSTILE),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        r["access"][0]["last_sign_in"]
            .as_str()
            .map(|s| s < "2026-01-15"),
        Some(true)
    );
    let alice = r["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["upn"] == "alice@contoso.example")
        .unwrap();
    assert_eq!(
        alice["last_sign_in"], "2026-01-10T08:00:00Z",
        "the logout is not a sign-in"
    );
    assert_eq!(r["audit"]["unreadable"], 1);

    // 15 February: v2; admins gone (bob loses access though he signed in
    // again), carol reaches the console by her new app role.
    let r = json_of(&review(&dir, &["--at", "2026-02-15T00:00:00Z", "--json"]));
    assert_eq!(r["version"]["version"], v2);
    let mut got = pairs(&r);
    got.sort();
    let mut want = vec![
        p("auditors", "carol@contoso.example"),
        p("ops", "alice@contoso.example"),
        p("ops", HOSTILE),
    ];
    want.sort();
    assert_eq!(got, want);

    // The diff between the two dates.
    let d = json_of(&review(
        &dir,
        &["--diff", "2026-01-15", "2026-02-15", "--json"],
    ));
    assert_eq!(d["rules_added"], json!(["auditors"]));
    assert_eq!(d["rules_removed"], json!(["admins"]));
    assert_eq!(d["rules_changed"], json!([]));
    assert_eq!(
        d["gained"],
        json!([["backup", "contoso", "carol@contoso.example"]])
    );
    assert_eq!(
        d["lost"],
        json!([["backup", "contoso", "bob@contoso.example"]])
    );

    // CSV: every rule, formula cells neutralised.
    let out = review(&dir, &["--at", "2026-01-15", "--csv"]);
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.starts_with("console,rule,tenant,grants_via,roles,scope,require_mfa,source,user,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains(",\"'=HYPERLINK(\"\"http://x\"\")"), "{csv}");
    assert!(!csv.contains(",=HYPERLINK"), "{csv}");

    // HTML: printable, the hostile UPN shown as text.
    let out = review(&dir, &["--at", "2026-01-15", "--html"]);
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("Reviewed by"));

    // Before the history begins: no rules are known, and it says so.
    let out = review(&dir, &["--at", "2025-12-01"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("review.no_version"),
        "{out:?}"
    );
}

/// With Graph credentials, each rule's groups' current members, marked as
/// current membership (the mock Graph answers `transitiveMembers`).
#[tokio::test]
async fn graph_lists_each_rule_groups_current_members_marked_as_current() {
    let dir = TempDir::new("access-review-graph");
    history(&dir);
    let files = vec![audit(&dir)];
    let memberships = HashMap::from([
        ("oid-zed".to_string(), vec![G_OPS.to_string()]),
        (
            "oid-amy".to_string(),
            vec![G_OPS.to_string(), G_ADMINS.to_string()],
        ),
    ]);
    let upns = HashMap::from([
        ("oid-zed".to_string(), "zed@contoso.example".to_string()),
        ("oid-amy".to_string(), "amy@contoso.example".to_string()),
    ]);
    let (base, graph, stop) =
        fedgate::mock::graph::serve_loopback_with(memberships, upns, 1, false)
            .await
            .unwrap();
    let client = fedgate::trust::graph::GraphClient::new(
        format!("{base}/token"),
        format!("{base}/v1.0"),
        "graph-app".into(),
        fedgate::trust::credential::ClientCredential::Secret("graph-secret".into()),
    )
    .unwrap();
    let hist = History::new(&dir.join("state"));
    let now = OffsetDateTime::now_utc();
    let mut r = fedgate::review::review(
        &hist,
        &files,
        Some("backup"),
        at("2026-01-15T00:00:00Z"),
        now,
    )
    .unwrap();
    r.add_graph(&HashMap::from([("contoso".to_string(), &client)]))
        .await;
    let mut current: Vec<(String, String, String)> = r
        .current_members
        .iter()
        .map(|m| {
            (
                m.rule.clone(),
                m.upn.clone().unwrap_or_default(),
                m.kind.clone(),
            )
        })
        .collect();
    current.sort();
    assert_eq!(
        current,
        [
            ("admins".into(), "amy@contoso.example".into(), "user".into()),
            ("ops".into(), "amy@contoso.example".into(), "user".into()),
            ("ops".into(), "zed@contoso.example".into(), "user".into()),
        ]
    );
    // One member per page: paging followed.
    assert!(graph.requests.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    let csv = r.to_csv();
    assert_eq!(
        csv.matches("Microsoft Graph: current membership, not as of the date")
            .count(),
        3,
        "{csv}"
    );
    assert!(r.to_html().contains("current membership, not as of"));
    // A Graph that is down is a note, never "no members".
    let _ = stop.send(());
    let (base, _g, stop) = fedgate::mock::graph::serve_loopback(HashMap::new(), 1, true)
        .await
        .unwrap();
    let down = fedgate::trust::graph::GraphClient::new(
        format!("{base}/token"),
        format!("{base}/v1.0"),
        "graph-app".into(),
        fedgate::trust::credential::ClientCredential::Secret("graph-secret".into()),
    )
    .unwrap();
    let mut r = fedgate::review::review(
        &hist,
        &files,
        Some("backup"),
        at("2026-01-15T00:00:00Z"),
        now,
    )
    .unwrap();
    r.add_graph(&HashMap::from([("contoso".to_string(), &down)]))
        .await;
    assert!(r.current_members.is_empty());
    assert_eq!(r.graph_notes.len(), 2, "{:?}", r.graph_notes);
    assert!(
        r.graph_notes[0].contains("graph.request_failed"),
        "{:?}",
        r.graph_notes
    );
    let _ = stop.send(());
}
