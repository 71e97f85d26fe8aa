//! Runs `saml::verify` on the 7 KB fixture N times: a driver for profilers
//! (`valgrind --tool=callgrind target/release/examples/verify_loop 200`).

/// The allocator the `fedgate` binary uses, so the loop measures what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use fedgate::inbound::saml::{self, SamlSettings};
use fedgate::trust::metadata::IdpMetadata;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
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
    let start = std::time::Instant::now();
    for _ in 0..n {
        saml::verify(std::hint::black_box(&posted), &idp, &settings, now)?;
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "{n} verifications, {:.1} µs each, {:.0}/s",
        per * 1e6,
        1.0 / per
    );
    Ok(())
}
