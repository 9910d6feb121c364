//! HL7 v2 escape sequences, decoded by hl7kit, except where hl7kit 0.2 would
//! panic: it cuts the digits of a hex escape (`\X..\`) by bytes, so a
//! non-ASCII character inside one ("\X4ѣ \", found by the `hl7` fuzz target)
//! slices inside a character. Such a sequence is no hex and is kept as
//! written, as hl7kit keeps every other sequence it cannot decode.

use std::borrow::Cow;

use hl7kit::Encoding;

/// `value` with its escape sequences decoded.
pub fn unescape(value: &str, encoding: Encoding) -> Cow<'_, str> {
    let escape = encoding.escape as char;
    if value.is_ascii() {
        return hl7kit::unescape(value, encoding);
    }
    let mut out = String::with_capacity(value.len());
    // Sequences are paired left to right, as hl7kit pairs them: the text
    // before each unsafe one, and after the last, is decoded by hl7kit.
    let mut decoded_to = 0;
    let mut at = 0;
    while let Some(open) = value[at..].find(escape).map(|i| at + i) {
        let body = open + escape.len_utf8();
        let Some(close) = value[body..].find(escape).map(|i| body + i) else {
            break;
        };
        let after = close + escape.len_utf8();
        let sequence = &value[body..close];
        if sequence.starts_with('X') && !sequence.is_ascii() {
            out.push_str(&hl7kit::unescape(&value[decoded_to..open], encoding));
            out.push_str(&value[open..after]);
            decoded_to = after;
        }
        at = after;
    }
    if decoded_to == 0 {
        return hl7kit::unescape(value, encoding);
    }
    out.push_str(&hl7kit::unescape(&value[decoded_to..], encoding));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hex_escape_holding_a_non_ascii_character_is_kept_as_written() {
        let e = Encoding::STANDARD;
        assert_eq!(unescape(r"a\F\b \X4ѣ \ c\.br\d", e), "a|b \\X4ѣ \\ c\nd");
        assert_eq!(unescape(r"\Xѣ\", e), r"\Xѣ\");
    }

    #[test]
    fn other_text_decodes_as_hl7kit_decodes_it() {
        let e = Encoding::STANDARD;
        for text in [
            r"caf\XC3A9\ x\.br\y",
            r"é \F\ \S\ ü",
            r"\H\bold\N\ and \oops",
            "plain é",
        ] {
            assert_eq!(unescape(text, e), hl7kit::unescape(text, e), "{text}");
        }
    }
}
