//! What the measuring examples share: the 7 KB fixture with its trust, and
//! the RSA-2048 floor. (Not an example itself: cargo builds only
//! `examples/*.rs` and `examples/*/main.rs`.)

use fedgate::inbound::saml::SamlSettings;
use fedgate::trust::certs::SigAlg;
use fedgate::trust::metadata::IdpMetadata;
use fedgate::trust::signing::SigningKey;

pub type Error = Box<dyn std::error::Error>;

/// The posted SAMLResponse of `fixtures/saml/valid_main_20_groups.b64`,
/// its IdP, fedgate's settings and the instant it is valid at.
pub struct Fixture {
    pub posted: Vec<u8>,
    pub idp: IdpMetadata,
    pub settings: SamlSettings,
    pub now: time::OffsetDateTime,
}

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
