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
//!
//! Results and how to read them: docs/performance.md.

use std::hint::black_box;

/// The allocator the `fedgate` binary uses (src/main.rs), so the figures are
/// those of the shipped binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use fedgate::inbound::bearer::{self, BearerPolicy};
use fedgate::inbound::saml::{self, SamlSettings};
use fedgate::mock::entra::{self, MockLogin};
use fedgate::trust::certs::SigAlg;
use fedgate::trust::jwks::Jwks;
use fedgate::trust::metadata::IdpMetadata;
use fedgate::trust::signing::SigningKey;

const SP: &str = "https://fedgate.example.test/saml/contoso/metadata";
const ACS: &str = "https://fedgate.example.test/saml/contoso/acs";
const TID: &str = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";

fn file(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/{rel}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn saml_benches(c: &mut Criterion) {
    let key = SigningKey::from_pem(
        &file("tests/data/fedgate_rsa_key.pem"),
        &file("tests/data/fedgate_rsa_cert.pem"),
    )
    .expect("test key");
    let login = MockLogin {
        tenant_id: TID.into(),
        sp_entity_id: SP.into(),
        acs_url: ACS.into(),
        issue_instant: fedgate::timefmt::parse("2026-03-02T10:00:00Z").expect("time"),
        in_response_to: None,
        id_seed: "bench0000000000000000".into(),
    };
    let xml = entra::signed_response(&entra::user_with_groups(20), &login, &key).expect("sign");
    let posted = base64::engine::general_purpose::STANDARD.encode(&xml);
    let idp = IdpMetadata::from_pem(
        &file("tests/data/fedgate_rsa_cert.pem"),
        &format!("https://sts.windows.net/{TID}/"),
    )
    .expect("trust");
    let settings = SamlSettings::new(SP, ACS);
    let now = fedgate::timefmt::parse("2026-03-02T10:01:00Z").expect("time");
    // The benchmark measures the success path: make sure it is one.
    saml::verify(posted.as_bytes(), &idp, &settings, now).expect("the bench response verifies");

    // The same shape, signed independently (xmlsec1), as posted (base64): 7 KB, 20 groups.
    let main_posted = file("fixtures/saml/valid_main_20_groups.b64");
    let main_idp =
        IdpMetadata::parse(file("fixtures/saml/idp_metadata.xml").as_bytes()).expect("metadata");
    let main_now = fedgate::timefmt::parse("2026-03-02T10:00:00Z").expect("time");
    saml::verify(main_posted.as_bytes(), &main_idp, &settings, main_now)
        .expect("the fixture verifies");

    let mut g = c.benchmark_group("saml");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_xmlsec1_signed_7kb_20_groups", |b| {
        b.iter(|| {
            saml::verify(
                black_box(main_posted.as_bytes()),
                &main_idp,
                &settings,
                main_now,
            )
        })
    });
    eprintln!(
        "saml bench response: {} bytes XML, {} bytes posted",
        xml.len(),
        posted.len()
    );
    g.bench_function("verify_entra_20_groups", |b| {
        b.iter(|| saml::verify(black_box(posted.as_bytes()), &idp, &settings, now))
    });
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
    let msg = b"x".repeat(600);
    let sig = key.sign(&msg).expect("sign");
    g.bench_function("rsa2048_verify_floor", |b| {
        b.iter(|| idp.signing_certs[0].verify(SigAlg::RsaSha256, black_box(&msg), &sig))
    });
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

criterion_group!(benches, saml_benches, jwt_benches);
criterion_main!(benches);
