//! Documented communication of results: the sentence in which the
//! radiologist records that the findings reached someone ("discussed with
//! Dr. Lee at 14:05", "Dr. Smith was notified", "communicated by telephone to
//! the ordering physician on 12/3/2026 at 2:05 pm"), with who was told, when
//! (as written, and normalised when it can be read) and how.
//!
//! A sentence documents a communication when it has a communication verb
//! (discussed, called, communicated, notified, informed, conveyed...) and
//! names a recipient or the results themselves, and it neither plans nor
//! asks for one ("will be discussed", "to be discussed at the MDT", "please
//! call", "if", "should") nor denies it ("could not be reached"), nor uses
//! the words otherwise ("informed consent", "as discussed above"). The test is per sentence and
//! knows nothing of findings: which results the communication covers is
//! the reader's call (reportsplit reads it as covering every critical result
//! of the report, docs/fhir-model.md).
//!
//! Dates with slashes are read month first (12/3/2026 is 3 December), as US
//! reports write them; a date that is no calendar date is kept as written
//! with no normalised value.

use std::sync::LazyLock;

use regex::Regex;

use crate::layout::Layout;
use crate::{Medium, Notification, Said, When};

// Word boundaries here are ASCII (`(?-u:\b)`): a Unicode one makes the
// regex crate's lazy DFA give up on a text holding any non-ASCII character
// ("°", "–"), and its fallback costs tens of thousands of instructions per
// search. The words matched are ASCII.

/// A communication verb or noun, searched over the whole text once.
static VERB: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?-u:\b)(?:discussed|called|communicated|notified|notification|informed|telephoned|phoned|paged|conveyed|relayed|spoke|spoken|made aware|acknowledged receipt|read back)(?-u:\b)",
    )
    .ok()
});

/// What makes a sentence with a communication verb no record of one.
static NOT_A_RECORD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?-u:\b)(?:consent|will|please|should|shall|if|to be|pending|awaiting|recommend(?:ed|s)?|not|unable|could not|cannot|so-called|as discussed|discussed (?:above|below|previously|earlier)|(?:is|are|also) called)(?-u:\b)",
    )
    .ok()
});

/// Words that name the results being passed on.
static RESULTS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(?:findings?|results?|report|impression|these|this|above)(?-u:\b)")
        .ok()
});

/// A named person: "Dr. Lee", "Doctor Ann Lee", "Ann Lee, MD", "J. Park, RN".
static PERSON: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?-u:\b)(?:(?:Dr\.?|Doctor)\s+(?:[A-Z]\.\s*)?[A-Z][A-Za-z'\-]+(?:\s+[A-Z][A-Za-z'\-]+)?",
        r"|(?:[A-Z]\.\s*|[A-Z][a-z'\-]+\s+)(?:[A-Z]\.\s*)?[A-Z][A-Za-z'\-]+,?\s+(?:MD|M\.D\.|DO|RN|NP|PA-C|PA|CNP|CNM)(?-u:\b))",
    ))
    .ok()
});

/// A recipient named by role: "the ordering physician", "the patient's
/// nurse", "the emergency department team".
static ROLE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?-u:\b)(?:the\s+)?(?:patient's\s+)?",
        r"(?:(?:ordering|referring|requesting|treating|attending|covering|on-call|on\s+call|primary|primary\s+care|emergency|emergency\s+department|emergency\s+room|ED|ER|ICU|clinical|surgical|trauma|charge|bedside|obstetric|neurology|stroke)\s+)*",
        r"(?:physicians?|providers?|clinicians?|doctors?|team|resident|nurse|surgeon|service|practitioner|fellow|hospitalist|midwife|patient)(?-u:\b)",
    ))
    .ok()
});

/// A clock time: 14:05, 2:05 pm, 2 p.m., 1405 hours.
static TIME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?-u:\b)(?:(?P<h>\d{1,2}):(?P<m>\d{2})(?::\d{2})?(?:\s*(?P<ampm>[ap])(?:\.m\.|\.?m(?-u:\b)))?",
        r"|(?P<h2>\d{1,2})\s*(?P<ampm2>[ap])(?:\.m\.|\.?m(?-u:\b))",
        r"|(?P<h3>[01]\d|2[0-3])(?P<m3>[0-5]\d)\s*(?:hours|hrs|h)(?-u:\b))",
    ))
    .ok()
});

/// A date: 12/3/2026 (month first), 2026-12-03, December 3, 2026.
static DATE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?-u:\b)(?:(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}|\d{2})",
        r"|(?P<y2>\d{4})-(?P<mo2>\d{2})-(?P<d2>\d{2})",
        r"|(?P<name>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+(?P<d3>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y3>\d{4}))(?-u:\b)",
    ))
    .ok()
});

/// How the results were passed on.
static MEDIUM: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?-u:\b)(?:(?P<phone>telephone|telephonically|phone|phoned|telephoned)",
        r"|(?P<face>in\s+person|face[\s-]to[\s-]face)",
        r"|(?P<electronic>electronically|e-?mail|secure\s+(?:message|chat)|text\s+message)",
        r"|(?P<verbal>verbally|verbal))(?-u:\b)",
    ))
    .ok()
});

/// The documented communications of `text`, one per sentence, in text
/// order. Spans are bytes (turned into chars with the rest).
pub(crate) fn notifications<'a>(text: &'a str, layout: &Layout<'a>) -> Vec<Notification<'a>> {
    let mut out: Vec<Notification<'a>> = Vec::new();
    let Some(verb) = VERB.as_ref() else {
        return out;
    };
    let mut last_sentence = None;
    for found in verb.find_iter(text) {
        // Sentences are in text order: a binary search per verb, never a
        // walk over every sentence.
        let after = layout
            .sentences
            .partition_point(|s| s.start <= found.start());
        let Some(index) = after.checked_sub(1) else {
            continue;
        };
        let sentence = layout.sentences[index];
        if found.start() >= sentence.end || last_sentence == Some(index) {
            continue;
        }
        last_sentence = Some(index);
        if let Some(notification) = read_sentence(text, sentence.start, sentence.end) {
            out.push(notification);
        }
    }
    out
}

/// The communication `text[start..end]` documents, if it documents one.
fn read_sentence(text: &str, start: usize, end: usize) -> Option<Notification<'_>> {
    let sentence = &text[start..end];
    if NOT_A_RECORD.as_ref()?.is_match(sentence) {
        return None;
    }
    let recipient = recipient(sentence);
    if recipient.is_none() && !RESULTS.as_ref()?.is_match(sentence) {
        return None;
    }
    let span = |from: usize, to: usize| Said {
        text: &sentence[from..to],
        start: start + from,
        end: start + to,
    };
    let time = TIME.as_ref()?.captures(sentence).and_then(|c| {
        let whole = c.get(0)?;
        Some((whole.start(), whole.end(), clock_time(&c)))
    });
    let date = DATE.as_ref()?.captures(sentence).and_then(|c| {
        let whole = c.get(0)?;
        Some((whole.start(), whole.end(), calendar_date(&c)))
    });
    let when = match (time, date) {
        (None, None) => None,
        (time, date) => {
            let from = time.iter().chain(&date).map(|t| t.0).min()?;
            let to = time.iter().chain(&date).map(|t| t.1).max()?;
            Some(When {
                said: span(from, to),
                date: date.and_then(|d| d.2),
                time: time.and_then(|t| t.2),
            })
        }
    };
    let medium = MEDIUM.as_ref()?.captures(sentence).and_then(|c| {
        if c.name("phone").is_some() {
            Some(Medium::Phone)
        } else if c.name("face").is_some() {
            Some(Medium::InPerson)
        } else if c.name("electronic").is_some() {
            Some(Medium::Electronic)
        } else if c.name("verbal").is_some() {
            Some(Medium::Verbal)
        } else {
            None
        }
    });
    Some(Notification {
        text: sentence,
        start,
        end,
        recipient: recipient.map(|(from, to)| span(from, to)),
        when,
        medium,
    })
}

/// Who was told: the first person or role the sentence names that is not
/// the teller ("by Dr. Ray"), with a name right after a role joined to it
/// ("the ordering physician, Dr. Lee"). Offsets within the sentence.
fn recipient(sentence: &str) -> Option<(usize, usize)> {
    let mut candidates: Vec<(usize, usize)> = PERSON
        .as_ref()?
        .find_iter(sentence)
        .chain(ROLE.as_ref()?.find_iter(sentence))
        .map(|m| (m.start(), m.end()))
        .filter(|&(from, _)| {
            !sentence[..from]
                .trim_end()
                .to_ascii_lowercase()
                .ends_with(" by")
        })
        .collect();
    candidates.sort_unstable();
    let &(from, mut to) = candidates.first()?;
    for &(next_from, next_to) in &candidates[1..] {
        let gap = &sentence[to.min(next_from)..next_from];
        if next_from >= to && gap.len() <= 2 && gap.chars().all(|c| c == ',' || c == ' ') {
            to = next_to;
        } else if next_from < to {
            to = to.max(next_to);
        }
    }
    Some((from, to))
}

/// "HH:MM" of a time match, if it is a time of day.
fn clock_time(c: &regex::Captures<'_>) -> Option<String> {
    let number = |name: &str| c.name(name).and_then(|m| m.as_str().parse::<u32>().ok());
    let (hour, minute, ampm) = if let Some(hour) = number("h") {
        (hour, number("m")?, c.name("ampm"))
    } else if let Some(hour) = number("h2") {
        (hour, 0, c.name("ampm2"))
    } else {
        (number("h3")?, number("m3")?, None)
    };
    let hour = match ampm.map(|m| m.as_str().to_ascii_lowercase()) {
        Some(half) if (1..=12).contains(&hour) => match (half.as_str(), hour) {
            ("a", 12) => 0,
            ("a", h) => h,
            (_, 12) => 12,
            (_, h) => h + 12,
        },
        Some(_) => return None,
        None => hour,
    };
    (hour < 24 && minute < 60).then(|| format!("{hour:02}:{minute:02}"))
}

/// "YYYY-MM-DD" of a date match, if it is a calendar date.
fn calendar_date(c: &regex::Captures<'_>) -> Option<String> {
    let number = |name: &str| c.name(name).and_then(|m| m.as_str().parse::<u32>().ok());
    let (year, month, day) = if let Some(month) = number("mo") {
        let year = c.name("y")?;
        let short = year.as_str().len() == 2;
        let year = number("y")?;
        (if short { 2000 + year } else { year }, month, number("d")?)
    } else if let Some(year) = number("y2") {
        (year, number("mo2")?, number("d2")?)
    } else {
        let name = c.name("name")?.as_str().to_ascii_lowercase();
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        let month = MONTHS.iter().position(|m| name.starts_with(m))? as u32 + 1;
        (number("y3")?, month, number("d3")?)
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (day >= 1 && day <= days).then(|| format!("{year:04}-{month:02}-{day:02}"))
}

#[cfg(test)]
mod tests {
    use crate::{Medium, SectionKind, extract_as};

    /// (recipient, when as written, date, time, medium) of each notification.
    type Read = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<Medium>,
    );

    fn read(text: &str) -> Vec<Read> {
        let out = extract_as(text, crate::shared_lexicon(), SectionKind::Impression);
        out.notifications
            .iter()
            .map(|n| {
                (
                    n.recipient.as_ref().map(|r| r.text.to_string()),
                    n.when.as_ref().map(|w| w.said.text.to_string()),
                    n.when.as_ref().and_then(|w| w.date.clone()),
                    n.when.as_ref().and_then(|w| w.time.clone()),
                    n.medium,
                )
            })
            .collect()
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn who_when_and_how() {
        assert_eq!(
            read("Acute appendicitis. These findings were discussed with Dr. Okafor at 14:05."),
            [(some("Dr. Okafor"), some("14:05"), None, some("14:05"), None)]
        );
        assert_eq!(
            read(
                "Free air. Communicated by telephone to the ordering physician on 12/3/2026 at 2:05 pm."
            ),
            [(
                some("the ordering physician"),
                some("12/3/2026 at 2:05 pm"),
                some("2026-12-03"),
                some("14:05"),
                Some(Medium::Phone)
            )]
        );
        assert_eq!(
            read("Dr. Smith was notified."),
            [(some("Dr. Smith"), None, None, None, None)]
        );
        assert_eq!(
            read(
                "Findings were called to the emergency department physician, Dr. Ana Reyes, at 0915 hours on March 4, 2026."
            ),
            [(
                some("the emergency department physician, Dr. Ana Reyes"),
                some("0915 hours on March 4, 2026"),
                some("2026-03-04"),
                some("09:15"),
                None
            )]
        );
    }

    #[test]
    fn the_teller_is_not_the_recipient() {
        assert_eq!(
            read("Results called by Dr. Ray to Lin Wu, RN at 11:40 p.m."),
            [(
                some("Lin Wu, RN"),
                some("11:40 p.m."),
                None,
                some("23:40"),
                None
            )]
        );
    }

    #[test]
    fn a_record_without_a_recipient_counts_when_it_names_the_results() {
        assert_eq!(
            read("Critical result notification documented in the results system."),
            [(None, None, None, None, None)]
        );
        assert_eq!(
            read("Findings discussed face-to-face with the surgical team."),
            [(
                some("the surgical team"),
                None,
                None,
                None,
                Some(Medium::InPerson)
            )]
        );
    }

    #[test]
    fn plans_requests_denials_and_other_uses_are_not_records() {
        for text in [
            "Findings will be discussed with the referring physician.",
            "Results to be discussed at the breast MDT.",
            "Report pending discussion with the on-call team.",
            "Please call the reading room with questions.",
            "If symptoms persist, the team should be notified.",
            "The ordering physician could not be reached.",
            "Informed consent was obtained.",
            "The mass, as discussed above, is unchanged.",
            "A so-called double duct sign.",
            "No pneumothorax.",
        ] {
            assert!(read(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn a_time_or_date_that_is_no_clock_or_calendar_keeps_its_words_only() {
        let out = read("Findings discussed with Dr. Patel at 25:70 on 2/30/2026.");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, some("25:70 on 2/30/2026"));
        assert_eq!((out[0].2.clone(), out[0].3.clone()), (None, None));
    }

    #[test]
    fn twelve_o_clock_and_two_digit_years() {
        let out = read("Discussed with Dr. Cho at 12:10 am on 1/5/26.");
        assert_eq!(out[0].2, some("2026-01-05"));
        assert_eq!(out[0].3, some("00:10"));
        let out = read("Discussed with Dr. Cho at 12 pm.");
        assert_eq!(out[0].3, some("12:00"));
    }

    #[test]
    fn one_record_per_sentence() {
        let out =
            read("Findings were discussed with and called to Dr. Lee, who was informed at 9:00.");
        assert_eq!(out.len(), 1);
    }
}
