//! Runs `saml::verify` on the 7 KB fixture N times: a driver for profilers
//! (`valgrind --tool=callgrind target/release/examples/verify_loop 300`).
//!
//! `verify_loop N --paired` alternates blocks of SAML verifications with
//! blocks of bare RSA-2048 verifies (the floor of any verification) and
//! prints both and their ratio. On a shared machine whose speed drifts from
//! minute to minute, the ratio measured this way is what stays put, and it
//! is what the code controls (docs/performance.md).

use std::hint::black_box;
use std::time::Instant;

use fedgate::inbound::saml::{self, SamlSettings};
use fedgate::trust::certs::SigAlg;
use fedgate::trust::metadata::IdpMetadata;
use fedgate::trust::signing::SigningKey;

/// The allocator the `fedgate` binary uses, so the loop measures what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let paired = args.next().as_deref() == Some("--paired");
    let dir = env!("CARGO_MANIFEST_DIR");
    let posted = std::fs::read(format!("{dir}/fixtures/saml/valid_main_20_groups.b64"))?;
    let idp = IdpMetadata::parse(&std::fs::read(format!(
        "{dir}/fixtures/saml/idp_metadata.xml"
    ))?)?;
    let settings = SamlSettings::new(
        "https://fedgate.example.test/saml/contoso/metadata",
        "https://fedgate.example.test/saml/contoso/acs",
    );
    let now = fedgate::timefmt::parse("2026-03-02T10:00:00Z").ok_or("time")?;
    let saml_once = || saml::verify(black_box(&posted), &idp, &settings, now);
    saml_once()?;

    if !paired {
        let start = Instant::now();
        for _ in 0..n {
            saml_once()?;
        }
        let per = start.elapsed().as_secs_f64() / n as f64;
        println!(
            "{n} verifications, {:.1} µs each, {:.0}/s",
            per * 1e6,
            1.0 / per
        );
        return Ok(());
    }

    // The floor: one RSA-2048 PKCS#1 v1.5 SHA-256 verify of a SignedInfo-sized
    // message with a pre-parsed key, as `saml/rsa2048_verify_floor` in the bench.
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/tests/data/{f}"));
    let key = SigningKey::from_pem(
        &read("fedgate_rsa_key.pem")?,
        &read("fedgate_rsa_cert.pem")?,
    )?;
    let trust = IdpMetadata::from_pem(&read("fedgate_rsa_cert.pem")?, "https://idp.example/")?;
    let msg = b"x".repeat(600);
    let sig = key.sign(&msg)?;
    let floor_once = || trust.signing_certs[0].verify(SigAlg::RsaSha256, black_box(&msg), &sig);
    if floor_once() != Some(true) {
        return Err("the floor signature does not verify".into());
    }

    const BLOCK: usize = 200;
    let mut saml_us = Vec::new();
    let mut floor_us = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..n.div_ceil(BLOCK) {
        let t = Instant::now();
        for _ in 0..BLOCK {
            saml_once()?;
        }
        let s = t.elapsed().as_secs_f64() * 1e6 / BLOCK as f64;
        let t = Instant::now();
        for _ in 0..BLOCK {
            black_box(floor_once());
        }
        let f = t.elapsed().as_secs_f64() * 1e6 / BLOCK as f64;
        saml_us.push(s);
        floor_us.push(f);
        ratios.push(s / f);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, f, r) = (
        median(&mut saml_us),
        median(&mut floor_us),
        median(&mut ratios),
    );
    println!(
        "{} blocks of {BLOCK}, medians: saml::verify {s:.1} µs ({:.0}/s), RSA-2048 floor {f:.1} µs ({:.0}/s), ratio {r:.2}",
        saml_us.len(),
        1e6 / s,
        1e6 / f
    );
    println!(
        "at the issue's reference floor (41,000/s, 24.4 µs): {:.0} verifications/s",
        41_000.0 / r
    );
    Ok(())
}
