//! A message's bytes decoded with the character set its MSH-18 declares.
//!
//! MSH-18 has to be read before the text is: it sits in the MSH segment,
//! which is ASCII in every character set the standard lists, so it is found
//! in the raw bytes. The decoding itself is `encoding_rs`'s.

use encoding_rs::Encoding;

use crate::oru::Problem;

/// The text of `message`, decoded as its MSH-18 says: none, `ASCII` or
/// `UNICODE UTF-8` as UTF-8 (strictly: a byte that is not UTF-8 makes the
/// message unreadable rather than silently replaced), `8859/1` … `8859/15`
/// as ISO 8859. Any other character set is refused.
pub fn decode(message: &[u8]) -> Result<String, Problem> {
    let declared = declared_charset(message);
    let encoding = match declared.as_str() {
        "" | "ASCII" | "UNICODE UTF-8" => None,
        other => Some(iso_8859(other).ok_or_else(|| {
            Problem::unreadable(format!("MSH-18 character set {other:?} is not supported"))
        })?),
    };
    match encoding {
        None => String::from_utf8(message.to_vec()).map_err(|error| {
            Problem::unreadable(format!(
                "the message is not UTF-8 (byte {}) and MSH-18 declares {}",
                error.utf8_error().valid_up_to(),
                if declared.is_empty() {
                    "no character set".to_owned()
                } else {
                    format!("{declared:?}")
                }
            ))
        }),
        Some(encoding) => {
            let (text, had_errors) = encoding.decode_without_bom_handling(message);
            if had_errors {
                return Err(Problem::unreadable(format!(
                    "the message is not {declared}"
                )));
            }
            Ok(text.into_owned())
        }
    }
}

/// The header of a message whose bytes could not be decoded, read with
/// replacement characters, so that its AR still names its control id.
pub fn decode_lossy_header(message: &[u8]) -> Option<crate::oru::Header> {
    let text = String::from_utf8_lossy(message);
    let parsed = crate::oru::parse_message(&text).ok()?;
    Some(crate::oru::header(&parsed))
}

/// `8859/N` as the WHATWG encoding of ISO-8859-N (8859/1 is read as
/// windows-1252, its superset: they differ only on C1 control bytes).
fn iso_8859(declared: &str) -> Option<&'static Encoding> {
    let part = declared.strip_prefix("8859/")?;
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Encoding::for_label(format!("iso-8859-{part}").as_bytes())
}

/// MSH-18's first repetition, trimmed; empty when absent.
fn declared_charset(message: &[u8]) -> String {
    let msh = message
        .split(|b| *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or_default();
    let (Some(b"MSH"), Some(&separator)) = (msh.get(..3), msh.get(3)) else {
        return String::new();
    };
    // split: [MSH, MSH-2, MSH-3, …], so MSH-n is at n - 1.
    let field = msh.split(|b| *b == separator).nth(17).unwrap_or_default();
    let repetition = msh.get(5).copied().unwrap_or(b'~');
    let first = field.split(|b| *b == repetition).next().unwrap_or_default();
    String::from_utf8_lossy(first).trim().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(charset: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes =
            format!("MSH|^~\\&|RIS|H|||20260101||ORU^R01|1|P|2.5.1||||||{charset}\rOBX|1|TX|||")
                .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn latin1_and_utf8_read_the_same_text() {
        let latin1 = decode(&message("8859/1", b"L\xe9sion du f\xf4ie")).expect("latin1");
        let utf8 = decode(&message("UNICODE UTF-8", "Lésion du fôie".as_bytes())).expect("utf8");
        assert!(latin1.ends_with("Lésion du fôie"));
        assert_eq!(
            latin1.replace("8859/1", ""),
            utf8.replace("UNICODE UTF-8", "")
        );
    }

    #[test]
    fn undeclared_latin1_and_unknown_charsets_are_unreadable() {
        assert!(decode(&message("", b"L\xe9sion")).is_err());
        assert!(decode(&message("ISO IR87", b"x")).is_err());
        assert!(decode(&message("ASCII", b"plain")).is_ok());
    }
}
