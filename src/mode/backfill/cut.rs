//! Cutting a range into windows, and the checks of the range and window
//! flags (`--since`, `--until`, `--window`) that `backfill` and `retract`
//! share, with the same messages.

use std::time::Duration;

use time::OffsetDateTime;

use crate::pull::rfc3339;

/// At most this many windows in one run: enough for 30 years of hourly
/// windows; more is a typo in `--window`.
const MAX_WINDOWS: u128 = 300_000;

/// Why the flags do not make a range of windows (a usage error, found
/// before any request).
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("--since {since} is not before --until {until}")]
    Empty { since: String, until: String },
    #[error("--window {window:?} cuts the range into {count} windows; use a longer window")]
    TooManyWindows { window: Duration, count: u128 },
}

/// `Ok` if `[since, until)` holds any time.
pub(crate) fn nonempty(since: OffsetDateTime, until: OffsetDateTime) -> Result<(), RangeError> {
    if since >= until {
        return Err(RangeError::Empty {
            since: rfc3339(since),
            until: rfc3339(until),
        });
    }
    Ok(())
}

/// The span of the windows of `[since, until)` (a `window` too long for
/// `time` is a day), if they are not too many.
pub(crate) fn window_span(
    since: OffsetDateTime,
    until: OffsetDateTime,
    window: Duration,
) -> Result<time::Duration, RangeError> {
    let span = time::Duration::try_from(window).unwrap_or(time::Duration::DAY);
    let count =
        (until - since).whole_seconds().max(1) as u128 / span.whole_seconds().max(1) as u128 + 1;
    if count > MAX_WINDOWS {
        return Err(RangeError::TooManyWindows { window, count });
    }
    Ok(span)
}

/// The windows of `[since, until)`, each `span` long (the last one shorter).
pub(crate) fn windows(
    since: OffsetDateTime,
    until: OffsetDateTime,
    span: time::Duration,
) -> impl Iterator<Item = (OffsetDateTime, OffsetDateTime)> {
    std::iter::successors(Some(since), move |start| Some(*start + span))
        .take_while(move |start| *start < until)
        .map(move |start| (start, (start + span).min(until)))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn an_empty_range_and_too_many_windows_are_refused() {
        let start = datetime!(2024-01-01 0:00 UTC);
        assert!(matches!(
            nonempty(start, start),
            Err(RangeError::Empty { .. })
        ));
        assert!(nonempty(start, start + time::Duration::SECOND).is_ok());
        let decades = start + time::Duration::days(365 * 40);
        assert!(matches!(
            window_span(start, decades, Duration::from_secs(3600)),
            Err(RangeError::TooManyWindows { .. })
        ));
        assert_eq!(
            window_span(start, decades, Duration::from_secs(86_400)).ok(),
            Some(time::Duration::DAY)
        );
    }
}
