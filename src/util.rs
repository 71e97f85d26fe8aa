//! Small helpers used at every layer: random ids, hex, query-value
//! percent-encoding. This module depends on nothing of fedgate (only std and
//! the OS RNG through aws-lc-rs), so any module may call it without reaching
//! up the flow.

/// 128 random bits from the OS, hex. `None` only if the OS RNG fails, and
/// then nothing that needs an unguessable id may proceed.
pub fn random_id() -> Option<String> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new().fill(&mut b).ok()?;
    Some(hex(&b))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// At most `max` characters of `s` (an ellipsis marks a cut): for values a
/// client sends that end up in messages, the audit trail or logs (an unknown
/// tenant in a URL, a token exchange's `audience`).
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod clip_tests {
    #[test]
    fn clips_on_a_character_boundary() {
        assert_eq!(super::clip("contoso", 64), "contoso");
        assert_eq!(super::clip(&"é".repeat(100), 3), "ééé…");
    }
}
