//! Times as Hortus writes them, in its tables and to peers: RFC 3339, UTC, whole seconds
//! (`2026-03-01T12:00:00Z`). One format and one width everywhere, so text order is time order
//! in SQL `ORDER BY` and `WHERE` comparisons, and a time read back compares equal to the one
//! written. Peers read any RFC 3339; Mastodon itself sends whole seconds or milliseconds.
//!
//! [`rfc3339`] is the one way to write a time; `federation` imports it as `timestamp`.

use time::{OffsetDateTime, UtcOffset};

/// `t` in UTC, fraction dropped. Never fails: years outside 0000–9999 (which no clock here
/// produces) are clamped rather than written in another width.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year().clamp(0, 9999),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The current time as Hortus stores it.
pub fn now() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;
    use time::macros::datetime;

    #[test]
    fn utc_whole_seconds_one_width_ordered_as_text() {
        assert_eq!(
            rfc3339(datetime!(2026-03-01 21:00:00.987654321 +09:00)),
            "2026-03-01T12:00:00Z"
        );
        assert_eq!(rfc3339(OffsetDateTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // What other modules store and compare: text order is time order, and it parses back.
        let times = [
            datetime!(1999-12-31 23:59:59 -05:00),
            datetime!(2026-01-02 03:04:05.5 UTC),
            datetime!(2026-01-02 03:04:06 +01:00),
            datetime!(2026-01-02 03:04:06 UTC),
        ];
        let mut sorted = times;
        sorted.sort();
        let texts: Vec<String> = sorted.iter().map(|t| rfc3339(*t)).collect();
        let mut as_text = texts.clone();
        as_text.sort();
        assert_eq!(texts, as_text);
        for (t, s) in sorted.iter().zip(&texts) {
            assert_eq!(s.len(), 20);
            let back = OffsetDateTime::parse(s, &Rfc3339).unwrap();
            assert_eq!(back, t.replace_nanosecond(0).unwrap());
        }
    }
}
