//! Mutation testing of the verifier: thousands of single-byte changes and
//! element shuffles of a valid signed response. The verifier must never
//! panic, and whenever it still accepts, the Identity must be exactly the
//! original one: a change that verifies can only be one outside what was
//! signed and read (e.g. inside a comment), never one that alters the user.

use fedgate::inbound::saml::{self, SamlSettings};
use fedgate::mock::entra::{self, MockLogin};
use fedgate::trust::metadata::IdpMetadata;
use fedgate::trust::signing::SigningKey;

const SP: &str = "https://fedgate.example.test/saml/contoso/metadata";
const ACS: &str = "https://fedgate.example.test/saml/contoso/acs";
const TID: &str = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";

fn data(f: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_responses_never_panic_and_never_change_who_logs_in() {
    let key =
        SigningKey::from_pem(&data("fedgate_rsa_key.pem"), &data("fedgate_rsa_cert.pem")).unwrap();
    let login = MockLogin {
        tenant_id: TID.into(),
        sp_entity_id: SP.into(),
        acs_url: ACS.into(),
        issue_instant: fedgate::timefmt::parse("2026-03-02T10:00:00Z").unwrap(),
        in_response_to: None,
        id_seed: "mut0000000000000".into(),
    };
    let xml = entra::signed_response(&entra::user_with_groups(5), &login, &key).unwrap();
    let idp = IdpMetadata::from_pem(
        &data("fedgate_rsa_cert.pem"),
        &format!("https://sts.windows.net/{TID}/"),
    )
    .unwrap();
    let settings = SamlSettings::new(SP, ACS);
    let now = fedgate::timefmt::parse("2026-03-02T10:01:00Z").unwrap();
    let original = saml::verify(xml.as_bytes(), &idp, &settings, now).unwrap();
    let fingerprint = |id: &fedgate::identity::Identity| {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}",
            id.subject,
            id.tenant_id,
            id.object_id,
            id.groups,
            id.roles,
            id.upn,
            id.mfa,
            id.expires_at
        )
    };
    let want = fingerprint(&original);

    let alphabet = b"<>/=\"' :abcdefxyzAZ09-_#&;!?\n";
    let mut rng = Rng(0x5eed_f00d_cafe_babe);
    let mut accepted = 0;
    for _ in 0..4000 {
        let mut bytes = xml.clone().into_bytes();
        match rng.below(3) {
            0 => {
                let i = rng.below(bytes.len());
                bytes[i] = alphabet[rng.below(alphabet.len())];
            }
            1 => {
                let i = rng.below(bytes.len());
                bytes.remove(i);
            }
            _ => {
                // Move a random slice elsewhere (a crude element shuffle).
                let a = rng.below(bytes.len());
                let len = rng.below(200).min(bytes.len() - a);
                let chunk: Vec<u8> = bytes.drain(a..a + len).collect();
                let at = rng.below(bytes.len());
                bytes.splice(at..at, chunk);
            }
        }
        if bytes == xml.as_bytes() {
            continue;
        }
        if let Ok(id) = saml::verify(&bytes, &idp, &settings, now) {
            accepted += 1;
            assert_eq!(
                fingerprint(&id),
                want,
                "a mutation changed the identity:\n{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    // Almost every mutation must be refused (the few accepted ones touch
    // unsigned, unread bytes such as the Response's own attributes or the KeyInfo).
    assert!(accepted < 400, "{accepted} of 4000 mutations accepted");
}
