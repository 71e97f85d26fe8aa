//! A bearer token as sent in `Authorization` or to the token exchange:
//! `bearer::verify` must answer with an Identity or a coded error, never
//! panic.
#![no_main]

use fedgate::inbound::bearer::{self, BearerPolicy};
use fedgate::trust::jwks::Jwks;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn trust() -> &'static (Jwks, BearerPolicy, time::OffsetDateTime) {
    static T: OnceLock<(Jwks, BearerPolicy, time::OffsetDateTime)> = OnceLock::new();
    T.get_or_init(|| {
        let fixtures: serde_json::Value =
            serde_json::from_slice(include_bytes!("../../fixtures/jwt/tokens.json"))
                .expect("tokens.json");
        let case = &fixtures["tokens"]["v2_user"];
        let jwks = Jwks::from_json(include_bytes!("../../fixtures/jwt/jwks.json")).expect("jwks");
        let policy = BearerPolicy::new(
            case["issuer"].as_str().expect("iss").to_string(),
            vec![case["audience"].as_str().expect("aud").to_string()],
        );
        let now = time::OffsetDateTime::from_unix_timestamp(fixtures["now"].as_i64().expect("now"))
            .expect("time");
        (jwks, policy, now)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (jwks, policy, now) = trust();
    let _ = bearer::verify(token, jwks, policy, *now);
});
