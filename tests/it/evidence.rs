//! The admin page's Evidence tab (issue 18, part 3) over real HTTP: the
//! hand-counted fixture of `it::audit_query` (split across a rotated file
//! and the live one) read by a running fedgate as its `audit.file`; the
//! counts, the table, the chart's counts, the CSV download against
//! `fedgate audit query --csv` on the same files, refusal without a
//! session, a bad date, and hostile values escaped in HTML and neutralised
//! in CSV.

use std::path::{Path, PathBuf};
use std::process::Command;

use fedgate::audit::{AuditEvent, AuditLog};
use fedgate::demo::Environment;

const TOKEN: &str = "admin-token-for-the-tests-0123456789";
/// The rotated file: the fixture's first two events and a line that is not JSON.
const ROTATED: &str = "audit.jsonl.20261201T103000Z";

/// Two consoles named as the fixture names them, so the chart has them.
const CONSOLES: &str = r#"
[[consoles]]
id = "vault"
kind = "generic"
display_name = "Vault"
identifier = "https://vault.example/saml"
reply_url = "https://vault.example/saml/acs"
extra_roles = ["Backup Operator"]

[[consoles]]
id = "cloud"
kind = "generic"
display_name = "Cloud"
identifier = "https://cloud.example/saml"
reply_url = "https://cloud.example/saml/acs"
extra_roles = ["Backup Operator"]
"#;

/// The fixture of `it::audit_query` (5 decisions of tenant contoso on
/// 2026-12-01 and a checkpoint), then, on 2026-12-02, three hostile
/// events of tenant `evil`:
///
/// | upn                                   | console       | outcome |
/// | `<script>alert(1)</script>`           | vault         | denied  |
/// | `=HYPERLINK("http://evil.example",…)` | vault         | allowed |
/// | `@SUM(1+1)*cmd`                       | `<img src=x>` | denied  |
///
/// and 520 allowed logins of tenant `bulk` at cloud on 2026-12-03. The
/// first two lines go to a rotated file with a line that is not JSON.
fn files(dir: &super::TempDir) -> (PathBuf, PathBuf) {
    let live = super::audit_query::fixture(dir);
    let log = AuditLog::new(Some(&live)).unwrap();
    let at = |t: &str| fedgate::timefmt::parse(t).unwrap();
    let hostile = |t: &str, upn: &str, console: &str, outcome: &'static str, reason: &str| {
        let mut e = AuditEvent::new(at(t), "evil", "saml", None);
        e.subject = Some(upn.into());
        e.upn = Some(upn.into());
        e.console = Some(console.into());
        e.outcome = outcome;
        e.code = if outcome == "allowed" {
            "ok".into()
        } else {
            "policy.no_rule_matched".into()
        };
        e.reason = reason.into();
        e.groups = vec!["<b>admins</b>".into(), "=cmd|' /C calc'!A0".into()];
        e
    };
    log.record(&hostile(
        "2026-12-02T09:00:00Z",
        "<script>alert(1)</script>",
        "vault",
        "denied",
        "</svg></table><script>alert(2)</script>",
    ));
    log.record(&hostile(
        "2026-12-02T09:10:00Z",
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "vault",
        "allowed",
        "-2+3",
    ));
    log.record(&hostile(
        "2026-12-02T09:20:00Z",
        "@SUM(1+1)*cmd",
        "<img src=x>",
        "denied",
        "\" onmouseover=\"alert(3)",
    ));
    for i in 0..520 {
        let mut e = AuditEvent::new(
            at("2026-12-03T10:00:00Z") + time::Duration::seconds(i),
            "bulk",
            "saml",
            None,
        );
        e.upn = Some(format!("user{i}@bulk.example"));
        e.console = Some("cloud".into());
        e.outcome = "allowed";
        e.code = "ok".into();
        log.record(&e);
    }
    drop(log);
    let text = std::fs::read_to_string(&live).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let rotated = dir.join(ROTATED);
    std::fs::write(&rotated, format!("{}\n{}\nnot json\n", lines[0], lines[1])).unwrap();
    std::fs::write(&live, format!("{}\n", lines[2..].join("\n"))).unwrap();
    (rotated, live)
}

/// Signs in with the local token; the session cookie.
async fn sign_in(http: &reqwest::Client, url: &str) -> String {
    let login = http.get(format!("{url}/admin")).send().await.unwrap();
    let csrf_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fedgate_csrf="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    let body = login.text().await.unwrap();
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let r = http
        .post(format!("{url}/admin/login"))
        .header("cookie", csrf_cookie)
        .form(&[("token", TOKEN), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fedgate_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string()
}

/// The number in `data-count` of the element with this id.
fn count(html: &str, id: &str) -> u64 {
    html.split(&format!("id=\"{id}\" data-count=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no {id} in {html}"))
}

/// The rows of the events table.
fn rows(html: &str) -> Vec<&str> {
    let table = html
        .split("<table id=\"evidence-events\">")
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .unwrap();
    table.split("<tr><td>").skip(1).collect()
}

/// The chart's text table: (console, day, allowed, denied), the totals as day "total".
fn chart(html: &str) -> Vec<(String, String, u64, u64)> {
    let mut out = Vec::new();
    for table in html
        .split("<table class=\"counts\" data-console=\"")
        .skip(1)
    {
        let console = table.split('"').next().unwrap().to_string();
        let table = table.split("</table>").next().unwrap();
        for tr in table.split("<tr ").skip(1) {
            let attr = |name: &str| {
                tr.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            };
            let day = if tr.starts_with("class=\"total\"") {
                "total".to_string()
            } else {
                attr("data-day")
            };
            out.push((
                console.clone(),
                day,
                attr("data-allowed").parse().unwrap(),
                attr("data-denied").parse().unwrap(),
            ));
        }
    }
    out
}

fn cli_csv(files: &[&Path], args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(["audit", "query"])
        .args(files)
        .args(args)
        .arg("--csv")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lines_in(files: &[&Path]) -> u64 {
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.is_empty())
                .count() as u64
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evidence_tab_filters_counts_charts_and_downloads_as_the_cli_does() {
    std::env::set_var("FEDGATE_ADMIN_TOKEN", TOKEN);
    let dir = super::TempDir::new("evidence");
    let (rotated, live) = files(&dir);
    let overrides = [(
        "FEDGATE_AUDIT__FILE".to_string(),
        live.display().to_string(),
    )];
    let env = Environment::start_with_overrides(CONSOLES, &overrides)
        .await
        .unwrap();
    let url = env.fedgate_url.clone();
    let http = super::no_redirects();

    // Not signed in: refused, the login page, no evidence.
    for path in ["/admin/evidence", "/admin/evidence.csv?outcome=denied"] {
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let body = r.text().await.unwrap();
        assert!(body.contains("name=\"token\""), "{body}");
        assert!(!body.contains("alice@contoso.example"), "{body}");
    }
    // A session that is not an admin's (a made-up cookie) is no better.
    let r = http
        .get(format!("{url}/admin/evidence"))
        .header("cookie", "fedgate_session=made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let session = sign_in(&http, &url).await;
    let get = |path: String| {
        let (http, session, url) = (http.clone(), session.clone(), url.clone());
        async move {
            let r = http
                .get(format!("{url}{path}"))
                .header("cookie", session)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.text().await.unwrap())
        }
    };
    let page = |q: &str| get(format!("/admin/evidence?{q}"));

    // The dashboard links to the tab.
    let (_, _, dash) = get("/admin".into()).await;
    assert!(dash.contains("href=\"/admin/evidence\""), "{dash}");

    // Everything: the rotated file then the live one, the line that is not
    // JSON counted, checkpoints never shown.
    let (status, headers, all) = page("").await;
    assert_eq!(status, 200, "{all}");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(count(&all, "count-lines"), lines_in(&[&rotated, &live]));
    assert_eq!(count(&all, "count-unreadable"), 1);
    assert!(all.contains(ROTATED), "the rotated file is read");
    assert!(!all.contains("checkpoint"), "no checkpoint shown");
    // Kept to look at (target/test-artefacts/admin-evidence.html).
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    std::fs::write(artefacts.join("admin-evidence.html"), &all).unwrap();

    // The fixture's hand counts (tenant contoso: the server's own sign-in
    // events are tenant "-"), the same as it::audit_query's.
    for (q, n) in [
        ("tenant=contoso", 5),
        ("tenant=contoso&console=vault", 2),
        ("console=vault&outcome=allowed&tenant=contoso", 1),
        ("outcome=denied&tenant=contoso", 2),
        ("user=ALICE%40contoso.example", 3),
        ("code=policy.mfa_required", 1),
        ("tenant=fabrikam", 0),
        (
            "since=2026-12-01T10%3A30%3A00Z&until=2026-12-01T12%3A30%3A00Z",
            2,
        ),
        ("since=2026-12-01T13%3A00%3A00Z&until=2026-12-02", 1),
        ("until=2026-12-01T10%3A00%3A00Z", 0),
        // Days: midnight UTC, until exclusive.
        ("since=2026-12-01&until=2026-12-02", 5),
        ("since=2026-12-02&until=2026-12-03", 3),
        ("tenant=evil", 3),
    ] {
        let (status, _, html) = page(q).await;
        assert_eq!(status, 200, "{q}: {html}");
        assert_eq!(count(&html, "count-matched"), n, "{q}");
        assert_eq!(rows(&html).len() as u64, n, "{q}: rows shown");
    }
    let (_, _, window) = page("since=2026-12-01T10%3A30%3A00Z&until=2026-12-01T12%3A30%3A00Z&console=cloud&outcome=allowed").await;
    assert_eq!(count(&window, "count-matched"), 1);
    assert!(window.contains("alice@contoso.example"));
    // The form shows the filters applied.
    assert!(window.contains("name=\"console\" list=\"evidence-consoles\" value=\"cloud\""));

    // Newest first; at most 500 shown, the rest in the CSV.
    let (_, _, bulk) = page("tenant=bulk").await;
    assert_eq!(count(&bulk, "count-matched"), 520);
    let shown = rows(&bulk);
    assert_eq!(shown.len(), 500);
    assert!(shown[0].starts_with("2026-12-03T10:08:39Z"), "{}", shown[0]);
    assert!(
        shown[499].starts_with("2026-12-03T10:00:20Z"),
        "{}",
        shown[499]
    );
    assert!(bulk.contains("<span data-count=\"20\">20</span> more matched"));
    assert!(bulk.contains("href=\"&#x2f;admin&#x2f;evidence.csv?tenant=bulk\""));

    // The chart's counts, by hand: contoso's four logins on 2026-12-01 (the
    // sign-out is not one), evil's three on 12-02 (one at an unconfigured
    // console: "other"), bulk's 520 at cloud on 12-03.
    let mut c = chart(&all);
    c.sort();
    let row =
        |console: &str, day: &str, a: u64, d: u64| (console.to_string(), day.to_string(), a, d);
    assert_eq!(
        c,
        vec![
            row("cloud", "2026-12-01", 1, 1),
            row("cloud", "2026-12-03", 520, 0),
            row("cloud", "total", 521, 1),
            row("other", "2026-12-02", 0, 1),
            row("other", "total", 0, 1),
            row("vault", "2026-12-01", 1, 1),
            row("vault", "2026-12-02", 1, 1),
            row("vault", "total", 2, 2),
        ]
    );
    // The SVG: one bar per non-zero count, every day of the range on the axis.
    let svgs: Vec<&str> = all.split("<svg ").skip(1).collect();
    assert_eq!(svgs.len(), 3);
    let bars: usize = svgs
        .iter()
        .map(|s| s.split("</svg>").next().unwrap().matches("<rect ").count())
        .sum();
    assert_eq!(bars, 2 + 1 + 1 + 2 + 2);
    assert!(all.contains("<title>2026-12-03: 520 allowed</title>"));
    let mut c = chart(&page("tenant=contoso").await.2);
    c.sort();
    assert_eq!(
        c,
        vec![
            row("cloud", "2026-12-01", 1, 1),
            row("cloud", "total", 1, 1),
            row("vault", "2026-12-01", 1, 1),
            row("vault", "total", 1, 1),
        ]
    );

    // Hostile values: escaped in the page (table, chart, form), never markup.
    let (_, _, evil) = page("tenant=evil").await;
    for raw in [
        "<script>alert(1)</script>",
        "<script>alert(2)",
        "</svg></table>",
        "<img src=x>",
        "\" onmouseover=\"",
    ] {
        assert!(!evil.contains(raw), "{raw} rendered as markup");
        assert!(!all.contains(raw), "{raw} rendered as markup");
    }
    assert!(
        evil.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{evil}"
    );
    assert!(evil.contains("&lt;&#x2f;svg&gt;&lt;&#x2f;table&gt;"));
    assert!(evil.contains("&lt;img src=x&gt;"));
    assert!(!evil.contains("<script"), "no script at all on the page");
    let (status, _, reflected) = page("user=%3Cscript%3Ealert(4)%3C%2Fscript%3E").await;
    assert_eq!(status, 200);
    assert!(!reflected.contains("<script>alert(4)"));
    assert!(reflected.contains("value=\"&lt;script&gt;alert(4)"));

    // A bad date: the page, with the code, not a 500.
    for q in ["since=yesterday", "until=2026-13-01"] {
        let (status, _, html) = page(q).await;
        assert_eq!(status, 400, "{q}");
        assert!(html.contains("query.bad_time"), "{html}");
        assert!(html.contains("id=\"evidence-error\""));
    }
    let (status, _, html) = get("/admin/evidence.csv?since=yesterday".into()).await;
    assert_eq!(status, 400);
    assert!(html.contains("query.bad_time"));

    // The CSV download: the CLI's output for the same files and filters,
    // byte for byte.
    let chain = [rotated.as_path(), live.as_path()];
    for (q, args) in [
        (
            "outcome=denied&tenant=contoso",
            vec!["--outcome", "denied", "--tenant", "contoso"],
        ),
        ("console=vault", vec!["--console", "vault"]),
        ("tenant=evil", vec!["--tenant", "evil"]),
        ("tenant=bulk", vec!["--tenant", "bulk"]),
        (
            "since=2026-12-01T10%3A30%3A00Z&until=2026-12-02T00%3A00%3A00Z",
            vec![
                "--since",
                "2026-12-01T10:30:00Z",
                "--until",
                "2026-12-02T00:00:00Z",
            ],
        ),
        ("", vec![]),
    ] {
        let (status, headers, csv) = get(format!("/admin/evidence.csv?{q}")).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"fedgate-evidence-")
                && disposition.ends_with(".csv\""),
            "{disposition}"
        );
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
        assert_eq!(csv, cli_csv(&chain, &args), "{q}");
    }
    // By hand: the header, the denials with their reasons quoted.
    let (_, _, denied) = get("/admin/evidence.csv?outcome=denied&tenant=contoso".into()).await;
    let lines: Vec<&str> = denied.lines().collect();
    assert_eq!(
        lines[0],
        "time,outcome,code,tenant,console,user,roles,reason"
    );
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with(
        "2026-12-01T10:05:00Z,denied,policy.no_rule_matched,contoso,vault,bob@contoso.example"
    ));
    assert_eq!(
        get("/admin/evidence.csv?tenant=bulk".into())
            .await
            .2
            .lines()
            .count(),
        521
    );
    // Formulas neutralised: the cells start with ' (quoted where CSV needs it).
    let (_, _, evil) = get("/admin/evidence.csv?tenant=evil".into()).await;
    assert!(
        evil.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\","),
        "{evil}"
    );
    assert!(evil.contains(",'@SUM(1+1)*cmd,"), "{evil}");
    assert!(evil.contains(",'-2+3"), "{evil}");
    for line in evil.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell} in {line}");
        }
    }
    env.stop().await;
}
