//! What the measuring examples and the bench share: the two SAML responses
//! with their trust, and the RSA-2048 floor. (Not an example itself: cargo
//! builds only `examples/*.rs` and `examples/*/main.rs`; `benches/verify.rs`
//! includes it by path.)
#![allow(dead_code)] // each user takes what it needs

use fedgate::inbound::saml::SamlSettings;
use fedgate::trust::certs::SigAlg;
use fedgate::trust::metadata::IdpMetadata;
use fedgate::trust::signing::SigningKey;

pub type Error = Box<dyn std::error::Error>;

/// A posted SAMLResponse, its IdP, fedgate's settings and the instant it
/// is valid at.
pub struct Fixture {
    pub posted: Vec<u8>,
    pub idp: IdpMetadata,
    pub settings: SamlSettings,
    pub now: time::OffsetDateTime,
}

/// `fixtures/saml/valid_main_20_groups.b64`: 7,043 bytes of XML with 20
/// groups, signed by xmlsec1, base64 wrapped at 64 columns.
pub fn fixture() -> Result<Fixture, Error> {
    let dir = env!("CARGO_MANIFEST_DIR");
    Ok(Fixture {
        posted: std::fs::read(format!("{dir}/fixtures/saml/valid_main_20_groups.b64"))?,
        idp: IdpMetadata::parse(&std::fs::read(format!(
            "{dir}/fixtures/saml/idp_metadata.xml"
        ))?)?,
        settings: SamlSettings::new(
            "https://fedgate.example.test/saml/contoso/metadata",
            "https://fedgate.example.test/saml/contoso/acs",
        ),
        now: fedgate::timefmt::parse("2026-03-02T10:00:00Z").ok_or("time")?,
    })
}

/// An Entra-shaped Response with 20 groups (6.5 KB) signed by fedgate's mock
/// Entra ID (`mock::entra`) with `tests/data/fedgate_rsa_key.pem`, posted as
/// Entra posts it: base64 on one line. The bench's `saml/verify_entra_20_groups`.
pub fn entra_fixture() -> Result<Fixture, Error> {
    use base64::Engine;
    use fedgate::mock::entra::{self, MockLogin};
    const TID: &str = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";
    let read =
        |f: &str| std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")));
    let key = SigningKey::from_pem(
        &read("fedgate_rsa_key.pem")?,
        &read("fedgate_rsa_cert.pem")?,
    )?;
    let settings = SamlSettings::new(
        "https://fedgate.example.test/saml/contoso/metadata",
        "https://fedgate.example.test/saml/contoso/acs",
    );
    let login = MockLogin {
        tenant_id: TID.into(),
        sp_entity_id: settings.sp_entity_id.clone(),
        acs_url: settings.acs_url.clone(),
        issue_instant: fedgate::timefmt::parse("2026-03-02T10:00:00Z").ok_or("time")?,
        in_response_to: None,
        id_seed: "bench0000000000000000".into(),
    };
    let xml = entra::signed_response(&entra::user_with_groups(20), &login, &key)?;
    Ok(Fixture {
        posted: base64::engine::general_purpose::STANDARD
            .encode(xml)
            .into_bytes(),
        idp: IdpMetadata::from_pem(
            &read("fedgate_rsa_cert.pem")?,
            &format!("https://sts.windows.net/{TID}/"),
        )?,
        settings,
        now: fedgate::timefmt::parse("2026-03-02T10:01:00Z").ok_or("time")?,
    })
}

/// The floor of any verification: one RSA-2048 PKCS#1 v1.5 SHA-256 verify
/// of a SignedInfo-sized message with a pre-parsed key, as the bench's
/// `saml/rsa2048_verify_floor`.
pub struct RsaFloor {
    trust: IdpMetadata,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl RsaFloor {
    pub fn new() -> Result<Self, Error> {
        let read = |f: &str| {
            std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")))
        };
        let key = SigningKey::from_pem(
            &read("fedgate_rsa_key.pem")?,
            &read("fedgate_rsa_cert.pem")?,
        )?;
        let trust = IdpMetadata::from_pem(&read("fedgate_rsa_cert.pem")?, "https://idp.example/")?;
        let message = b"x".repeat(600);
        let signature = key.sign(&message)?;
        let floor = RsaFloor {
            trust,
            message,
            signature,
        };
        if floor.verify() != Some(true) {
            return Err("the floor signature does not verify".into());
        }
        Ok(floor)
    }

    pub fn verify(&self) -> Option<bool> {
        self.trust.signing_certs[0].verify(
            SigAlg::RsaSha256,
            std::hint::black_box(&self.message),
            &self.signature,
        )
    }
}
