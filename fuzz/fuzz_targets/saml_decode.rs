//! `fedgate saml decode` and the admin page's test tab show a hostile
//! SAMLResponse to a human: they must never panic on one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_500);
    let _ = fedgate::inbound::saml::decode::report(data, now);
});
