//! Whatever is posted as a SAMLResponse (base64 or XML): `saml::verify`
//! must answer with an Identity or a coded error, never panic, hang or
//! blow up memory. Seeds: `fuzz/seeds/saml_verify` (fixtures/saml, copied
//! by `scripts/fuzz`).
#![no_main]

use fedgate::inbound::saml::{self, SamlSettings};
use fedgate::trust::metadata::IdpMetadata;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn trust() -> &'static (IdpMetadata, SamlSettings, time::OffsetDateTime) {
    static T: OnceLock<(IdpMetadata, SamlSettings, time::OffsetDateTime)> = OnceLock::new();
    T.get_or_init(|| {
        let md = IdpMetadata::parse(include_bytes!("../../fixtures/saml/idp_metadata.xml"))
            .expect("the fixture metadata parses");
        let settings = SamlSettings::new(
            "https://fedgate.example.test/saml/contoso/metadata",
            "https://fedgate.example.test/saml/contoso/acs",
        );
        let now = fedgate::timefmt::parse("2026-03-02T10:00:00Z").expect("time");
        (md, settings, now)
    })
}

fuzz_target!(|data: &[u8]| {
    let (md, settings, now) = trust();
    let _ = saml::verify(data, md, settings, *now);
});
