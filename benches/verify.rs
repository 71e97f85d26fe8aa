#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `cargo bench --bench verify`: verification throughput on one core.
//!
//! - `saml/verify_entra_20_groups`: a whole `saml::verify` (base64 decode,
//!   parse, ID and assertion checks, exclusive C14N of SignedInfo and the
//!   Assertion, SHA-256, RSA-2048 verify, every condition, Identity) on an
//!   Entra-shaped Response of ~7 KB with 20 group ids, as posted (base64).
//! - `jwt/verify_rs256_v2`: a whole `bearer::verify` of an Entra v2 access token.
//! - floors: the RSA-2048 PKCS#1 verify alone, and the parse and C14N steps
//!   alone, to show where the time goes.
//! - `hostile/*`: the shapes of issue 15 (40,408 IDs, a 90,000-name
//!   PrefixList) and the largest ones the limits allow
//!   (`tests/it/hostile_shapes.rs`, shared with `it::hostile`).
//!
//! Results and how to read them: docs/performance.md.

use std::hint::black_box;

/// The allocator the `fedgate` binary uses (src/main.rs), so the figures are
/// those of the shipped binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../examples/common/mod.rs"]
mod common;
#[path = "../tests/it/hostile_shapes.rs"]
mod shapes;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use fedgate::inbound::bearer::{self, BearerPolicy};
use fedgate::inbound::saml;
use fedgate::trust::jwks::Jwks;

fn file(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/{rel}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn saml_benches(c: &mut Criterion) {
    // The two responses, their trust and instants: examples/common/mod.rs,
    // shared with `verify_loop` and `verify_parts`.
    let entra = common::entra_fixture().expect("the Entra-shaped response");
    let xml = fedgate::inbound::saml::decode_input(&entra.posted, saml::DEFAULT_MAX_BYTES)
        .expect("decode");
    let main = common::fixture().expect("the xmlsec1 fixture");
    // The benchmark measures the success path: make sure it is one.
    for f in [&entra, &main] {
        saml::verify(&f.posted, &f.idp, &f.settings, f.now).expect("the bench response verifies");
    }

    let mut g = c.benchmark_group("saml");
    g.throughput(Throughput::Elements(1));
    for (name, f) in [
        ("verify_xmlsec1_signed_7kb_20_groups", &main),
        ("verify_entra_20_groups", &entra),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| saml::verify(black_box(&f.posted), &f.idp, &f.settings, f.now))
        });
    }
    g.bench_function("parse_only", |b| {
        b.iter(|| fedgate::xml::parse(black_box(&xml)).map(|d| d.descendants().count()))
    });
    let doc = fedgate::xml::parse(&xml).expect("parse");
    let assertion = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Assertion")
        .expect("assertion");
    g.bench_function("c14n_assertion_only", |b| {
        b.iter(|| fedgate::xml::c14n::canonicalize(assertion, None, &[]).len())
    });
    let floor = common::RsaFloor::new().expect("floor");
    g.bench_function("rsa2048_verify_floor", |b| b.iter(|| floor.verify()));
    g.finish();
}

fn jwt_benches(c: &mut Criterion) {
    let fixtures: serde_json::Value =
        serde_json::from_str(&file("fixtures/jwt/tokens.json")).expect("tokens.json");
    let case = &fixtures["tokens"]["v2_user"];
    let token = case["jwt"].as_str().expect("jwt").to_string();
    let jwks = Jwks::from_json(file("fixtures/jwt/jwks.json").as_bytes()).expect("jwks");
    let policy = BearerPolicy::new(
        case["issuer"].as_str().expect("iss").to_string(),
        vec![case["audience"].as_str().expect("aud").to_string()],
    );
    let now = time::OffsetDateTime::from_unix_timestamp(fixtures["now"].as_i64().expect("now"))
        .expect("time");
    bearer::verify(&token, &jwks, &policy, now).expect("the bench token verifies");
    let mut g = c.benchmark_group("jwt");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_rs256_v2", |b| {
        b.iter(|| bearer::verify(black_box(&token), &jwks, &policy, now))
    });
    g.finish();
}

/// `hostile/*`: what the shapes of issue 15 cost, refused or not (the
/// figures before and after the limits: docs/performance.md, "Hostile
/// inputs"). Each is a whole `saml::verify` of raw XML unless named after
/// the one step it measures.
fn hostile_benches(c: &mut Criterion) {
    let entra = common::entra_fixture().expect("the Entra-shaped response");
    let signed = saml::decode_input(&entra.posted, saml::DEFAULT_MAX_BYTES).expect("decode");
    let verify = |xml: &str| {
        saml::verify(
            black_box(xml.as_bytes()),
            &entra.idp,
            &entra.settings,
            entra.now,
        )
        .is_err()
    };
    let mut g = c.benchmark_group("hostile");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));

    // The two: 40,408 distinct IDs in 512 KiB, unsigned; a
    // 90,000-entry PrefixList over 200 declared prefixes.
    let ids = shapes::ids_response(40_408);
    assert!(ids.len() <= saml::DEFAULT_MAX_BYTES);
    g.bench_function("ids_40k_512kib", |b| b.iter(|| verify(&ids)));
    let prefixes = shapes::prefixlist_response(&signed, 200, 90_000);
    assert!(
        prefixes.len() <= saml::DEFAULT_MAX_BYTES,
        "{}",
        prefixes.len()
    );
    g.bench_function("prefixlist_90k", |b| b.iter(|| verify(&prefixes)));

    // The largest allowed shapes.
    let ids_max = shapes::ids_response(HOSTILE_MAX_IDS);
    g.bench_function("ids_at_limit", |b| b.iter(|| verify(&ids_max)));
    let list_max = shapes::prefixlist_response(&signed, 200, HOSTILE_MAX_PREFIXES);
    g.bench_function("prefixlist_at_limit", |b| b.iter(|| verify(&list_max)));
    // Canonicalization alone, of 20,000 elements under 200 bindings with a
    // maximal PrefixList (the widest subtree a Reference can digest).
    let wide = shapes::wide_namespaced_document(200, 20_000);
    let wide_doc = fedgate::xml::parse(&wide).expect("wide parses");
    let names = shapes::prefix_names(HOSTILE_MAX_PREFIXES);
    let list: Vec<&str> = names.iter().map(String::as_str).collect();
    g.bench_function("c14n_wide_20k_elements_max_prefixlist", |b| {
        b.iter(|| fedgate::xml::c14n::canonicalize(wide_doc.root_element(), None, &list).len())
    });
    // Parse alone, of deep-but-allowed nesting with the most bindings in scope.
    let deep = shapes::deep_namespaced_document(50, 60, 4);
    g.bench_function("parse_deep_240_bindings", |b| {
        b.iter(|| fedgate::xml::parse(black_box(&deep)).map(|d| d.descendants().count()))
    });
    g.finish();
}

/// The most IDs allowed: these plus the Response's own.
const HOSTILE_MAX_IDS: usize = saml::limits::MAX_IDS - 1;
const HOSTILE_MAX_PREFIXES: usize = saml::limits::MAX_PREFIX_LIST_ENTRIES;

/// What an audit event costs to write: chained, and with `audit.fsync =
/// "event"` an fsync each (the disk under `target/`).
fn audit_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("audit");
    let dir = std::env::temp_dir().join(format!("fedgate-bench-audit-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut event =
        fedgate::audit::AuditEvent::new(time::OffsetDateTime::now_utc(), "contoso", "saml", None);
    event.outcome = "allowed";
    event.code = "ok".into();
    event.reason = "granted by engineering-backup-operators".into();
    for (name, each) in [("record_chained", false), ("record_fsync_each", true)] {
        let path = dir.join(format!("{name}.jsonl"));
        let _ = std::fs::remove_file(&path);
        let log = fedgate::audit::AuditLog::new(Some(&path)).unwrap();
        log.sync_each_event(each);
        g.bench_function(name, |b| b.iter(|| log.record(&event)));
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(
    benches,
    saml_benches,
    jwt_benches,
    hostile_benches,
    audit_benches
);
criterion_main!(benches);
