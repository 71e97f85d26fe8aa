//! Federation metadata from a URL or a pasted file: the parser and
//! `fedgate lint metadata` must never panic on it.
#![no_main]

use fedgate::lint::{lint, Options};
use fedgate::trust::metadata::IdpMetadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = IdpMetadata::parse(data);
    let options = Options {
        role: None,
        reply_url: None,
        identifier: None,
        profile: None,
        trust: Vec::new(),
        now: time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_500),
    };
    let _ = lint(data, &options);
});
