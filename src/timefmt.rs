//! Timestamps as SAML (xs:dateTime, UTC) and the CLI (`--now`, RFC 3339) write them.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Parse an RFC 3339 / xs:dateTime timestamp. SAML requires UTC ("Z"), but an
/// explicit offset is converted rather than misread.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok()
}

/// Format as RFC 3339 in UTC, as printed in JSON output.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
