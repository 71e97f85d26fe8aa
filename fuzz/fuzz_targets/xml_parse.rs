//! fedgate's XML parser against roxmltree, the parser it replaced: on any
//! input, both give the same tree, or fedgate refuses (it is stricter on
//! purpose in places, see tests/it/xml_parser.rs). fedgate accepting what
//! roxmltree refuses, or a different tree, is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/it/xml_oracle.rs"]
mod xml_oracle;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match (xml_oracle::ours(text), xml_oracle::roxml(text)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "different trees"),
        (Ok(_), Err(e)) => panic!("fedgate accepts what roxmltree refuses: {e}"),
        _ => {}
    }
});
