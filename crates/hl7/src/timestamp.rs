//! HL7 v2 timestamps (DTM/TS: `YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`) as
//! FHIR `dateTime` and `instant` text.
//!
//! FHIR requires a time zone whenever there is a time; a v2 timestamp often
//! has none, so the caller gives the offset the sender's clocks keep
//! (`[hl7] utc_offset`).

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

/// A parsed v2 timestamp; `precision` counts the fields given (1 = year …
/// 6 = seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    date: Date,
    time: Time,
    offset: Option<UtcOffset>,
    precision: u8,
}

impl Timestamp {
    /// Reads `text`; `None` when it is not a valid timestamp.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        let (stamp, offset) = match text.find(['+', '-']) {
            Some(at) => (&text[..at], Some(parse_offset(&text[at..])?)),
            None => (text, None),
        };
        let (digits, fraction) = match stamp.split_once('.') {
            Some((digits, fraction)) => (digits, Some(fraction)),
            None => (stamp, None),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit())
            || !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14)
        {
            return None;
        }
        let number = |range: std::ops::Range<usize>, absent: u32| -> Option<u32> {
            match digits.get(range) {
                Some(part) => part.parse().ok(),
                None => Some(absent),
            }
        };
        let nanos = match fraction {
            Some(f) if !f.is_empty() && f.len() <= 4 && f.bytes().all(|b| b.is_ascii_digit()) => {
                if digits.len() != 14 {
                    return None;
                }
                let padded = format!("{f:0<9}");
                padded.parse::<u32>().ok()?
            }
            Some(_) => return None,
            None => 0,
        };
        let month = Month::try_from(u8::try_from(number(4..6, 1)?).ok()?).ok()?;
        let date = Date::from_calendar_date(
            i32::try_from(number(0..4, 0)?).ok()?,
            month,
            u8::try_from(number(6..8, 1)?).ok()?,
        )
        .ok()?;
        let time = Time::from_hms_nano(
            u8::try_from(number(8..10, 0)?).ok()?,
            u8::try_from(number(10..12, 0)?).ok()?,
            u8::try_from(number(12..14, 0)?).ok()?,
            nanos,
        )
        .ok()?;
        Some(Timestamp {
            date,
            time,
            offset,
            precision: u8::try_from(digits.len() / 2 - 1).ok()?,
        })
    }

    /// As a FHIR `dateTime`, at the precision given (a time is completed to
    /// the second and given `default_offset` when it has no zone of its own).
    pub fn to_date_time(&self, default_offset: UtcOffset) -> String {
        match self.precision {
            1 => format!("{:04}", self.date.year()),
            2 => format!("{:04}-{:02}", self.date.year(), u8::from(self.date.month())),
            3 => format!(
                "{:04}-{:02}-{:02}",
                self.date.year(),
                u8::from(self.date.month()),
                self.date.day()
            ),
            _ => self.to_instant(default_offset),
        }
    }

    /// Its date as a FHIR `date`, at the precision given (a time is left
    /// out: the date stays the one written, in the sender's zone).
    pub fn to_date(&self) -> String {
        let (year, month, day) = (
            self.date.year(),
            u8::from(self.date.month()),
            self.date.day(),
        );
        match self.precision {
            1 => format!("{year:04}"),
            2 => format!("{year:04}-{month:02}"),
            _ => format!("{year:04}-{month:02}-{day:02}"),
        }
    }

    /// As a FHIR `instant` (missing parts are the start of the period).
    pub fn to_instant(&self, default_offset: UtcOffset) -> String {
        let offset = self.offset.unwrap_or(default_offset);
        let at = PrimitiveDateTime::new(self.date, self.time).assume_offset(offset);
        let fraction = if at.nanosecond() == 0 {
            String::new()
        } else {
            format!(".{:03}", at.millisecond())
        };
        let (hours, minutes, _) = offset.as_hms();
        let zone = if offset.is_utc() {
            "Z".to_owned()
        } else {
            format!(
                "{}{:02}:{:02}",
                if offset.is_negative() { '-' } else { '+' },
                hours.unsigned_abs(),
                minutes.unsigned_abs()
            )
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{zone}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }

    /// The instant it stands for, to compare two messages' times.
    pub fn unix_nanos(&self, default_offset: UtcOffset) -> i128 {
        PrimitiveDateTime::new(self.date, self.time)
            .assume_offset(self.offset.unwrap_or(default_offset))
            .unix_timestamp_nanos()
    }
}

/// `+HHMM` / `-HHMM`.
fn parse_offset(text: &str) -> Option<UtcOffset> {
    let (sign, digits) = text.split_at(1);
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i8 = digits[..2].parse().ok()?;
    let minutes: i8 = digits[2..].parse().ok()?;
    let (hours, minutes) = if sign == "-" {
        (-hours, -minutes)
    } else {
        (hours, minutes)
    };
    UtcOffset::from_hms(hours, minutes, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::offset;

    #[test]
    fn precisions_and_zones() {
        let paris = offset!(+01:00);
        let at = |text: &str| Timestamp::parse(text).map(|t| t.to_date_time(paris));
        assert_eq!(at("2026").as_deref(), Some("2026"));
        assert_eq!(at("202603").as_deref(), Some("2026-03"));
        assert_eq!(at("20260314").as_deref(), Some("2026-03-14"));
        assert_eq!(
            at("202603140915").as_deref(),
            Some("2026-03-14T09:15:00+01:00")
        );
        assert_eq!(
            at("20260314091530.25-0500").as_deref(),
            Some("2026-03-14T09:15:30.250-05:00")
        );
        assert_eq!(
            at("20260314091530+0000").as_deref(),
            Some("2026-03-14T09:15:30Z")
        );
    }

    #[test]
    fn invalid_timestamps_are_refused() {
        for text in [
            "",
            "2026031",
            "20261314",
            "20260230",
            "2026031425",
            "abc",
            "20260314+1",
            "2026.5",
        ] {
            assert_eq!(Timestamp::parse(text), None, "{text}");
        }
    }
}
