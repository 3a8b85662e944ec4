//! The one clock: every layer takes "now" from here, at the precision both databases store.

/// A point in time, always UTC.
pub type DateTime = chrono::DateTime<chrono::Utc>;

/// Now, truncated to microseconds: the precision both backends store, so a value read back
/// equals the value written.
pub fn now() -> DateTime {
    truncate_micros(chrono::Utc::now())
}

/// Drops sub-microsecond digits.
pub fn truncate_micros(t: DateTime) -> DateTime {
    use chrono::Timelike;
    let nanos = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(nanos).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_has_whole_microseconds() {
        use chrono::Timelike;
        assert_eq!(now().nanosecond() % 1_000, 0);
        let t = chrono::DateTime::from_timestamp(1, 123_456_789).unwrap();
        assert_eq!(truncate_micros(t).nanosecond(), 123_456_000);
    }
}
