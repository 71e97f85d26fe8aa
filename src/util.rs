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

/// Decode an `application/x-www-form-urlencoded` value (a query or form
/// field): `+` is a space, `%XX` a byte; `None` for a bad escape or bytes
/// that are not UTF-8.
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
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

    #[test]
    fn form_values_decode_plus_and_escapes_and_refuse_bad_ones() {
        assert_eq!(super::form_decode("a+b%2Bc%3D").as_deref(), Some("a b+c="));
        assert_eq!(super::form_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(super::form_decode("%zz"), None);
        assert_eq!(super::form_decode("%4"), None);
        assert_eq!(super::form_decode("%FF"), None);
        assert_eq!(
            super::form_decode(&super::urlencode("x y+z/é")).as_deref(),
            Some("x y+z/é")
        );
    }
}
