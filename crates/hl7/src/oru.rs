//! An ORU^R01 message read into the fields reportsplit uses: the header
//! (for the ACK and the filters), the patient's identifiers, and one
//! [`Order`] per OBR with its OBX text.

use std::borrow::Cow;

use base64::Engine as _;
use hl7kit::{Encoding, Field, Message, ParseError, Warning};

use crate::ack::AckCode;

/// HL7 table 0357 (message error condition codes) used in ERR-3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    SegmentSequence,
    RequiredFieldMissing,
    DataType,
    TableValueNotFound,
    UnsupportedMessageType,
    UnknownKeyIdentifier,
}

impl ErrorCode {
    /// The code and its text in table 0357.
    pub fn code_and_text(self) -> (&'static str, &'static str) {
        match self {
            ErrorCode::SegmentSequence => ("100", "Segment sequence error"),
            ErrorCode::RequiredFieldMissing => ("101", "Required field missing"),
            ErrorCode::DataType => ("102", "Data type error"),
            ErrorCode::TableValueNotFound => ("103", "Table value not found"),
            ErrorCode::UnsupportedMessageType => ("200", "Unsupported message type"),
            ErrorCode::UnknownKeyIdentifier => ("204", "Unknown key identifier"),
        }
    }
}

/// Why a message is answered AE (read, but cannot be used) or AR (cannot
/// be read). The text names fields, never their patient data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    pub ack: AckCode,
    pub code: ErrorCode,
    /// The field at fault, e.g. `PID-3` (ERR-2).
    pub location: Option<&'static str>,
    pub message: String,
}

impl Problem {
    pub fn unreadable(message: impl Into<String>) -> Problem {
        Problem {
            ack: AckCode::Reject,
            code: ErrorCode::SegmentSequence,
            location: None,
            message: message.into(),
        }
    }

    pub fn unusable(
        code: ErrorCode,
        location: &'static str,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            ack: AckCode::Error,
            code,
            location: Some(location),
            message: message.into(),
        }
    }

    /// A stable name for summaries, metrics and dead letters.
    pub fn key(&self) -> String {
        let kind = match self.ack {
            AckCode::Reject => "hl7-unreadable",
            _ => "hl7-unusable",
        };
        match self.location {
            Some(location) => format!("{kind}-{}", location.to_ascii_lowercase()),
            None => kind.to_owned(),
        }
    }
}

/// MSH: what the ACK echoes and what the filters read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub encoding: Encoding,
    pub sending_application: String,
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    /// MSH-9.1 and MSH-9.2, e.g. `ORU` and `R01`.
    pub message_code: String,
    pub trigger_event: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-11.1.
    pub processing_id: String,
    /// MSH-12.1.
    pub version: String,
    /// MSH-7, raw.
    pub time: String,
}

/// An extended composite identifier (CX, PID-3): value and assigning authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientId {
    pub value: String,
    /// PID-3.4.1, the assigning authority's namespace id.
    pub authority: String,
}

/// An entity identifier (EI: ORC-2/3, OBR-2/3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityId {
    pub value: String,
    /// EI.2, the namespace id.
    pub namespace: String,
}

/// A coded element (CE/CWE) triplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded {
    pub code: String,
    pub text: String,
    pub system: String,
}

/// OBR-32's interpreter: an id and a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    pub id: String,
    pub family: String,
    pub given: String,
}

/// One OBR with the ORC before it and the OBX after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub placer: Option<EntityId>,
    pub filler: Option<EntityId>,
    /// OBR-4, the primary triplet then the alternate one.
    pub procedure: Vec<Coded>,
    /// OBR-7 and OBR-22, raw.
    pub observed: String,
    pub reported: String,
    /// OBR-24.
    pub section: String,
    /// OBR-25.
    pub status: String,
    pub interpreter: Option<Interpreter>,
    /// The report's text from its OBX segments (`Ok(None)`: none).
    pub text: Result<Option<String>, Problem>,
}

/// PID-5 (first repetition), PID-7 and PID-8, raw: what a Patient created
/// from the message carries besides its identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demographics {
    /// XPN.1.1, the surname.
    pub family: String,
    /// XPN.2 and XPN.3 (given name, second given names or initials), those present.
    pub given: Vec<String>,
    /// PID-7.1, a v2 timestamp.
    pub birth: String,
    /// PID-8, table 0001.
    pub sex: String,
}

/// An ORU^R01 message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oru {
    pub header: Header,
    pub patient_ids: Vec<PatientId>,
    pub demographics: Demographics,
    pub orders: Vec<Order>,
}

/// Reads the MSH of `message` (for the ACK), whatever follows.
pub fn parse_message(text: &str) -> Result<Message, Problem> {
    // hl7kit's own error texts quote the input: ours name only where.
    let message = Message::parse(text).map_err(|error| {
        Problem::unreadable(match error {
            ParseError::Empty => "the message is empty".to_owned(),
            ParseError::InvalidUtf8 { valid_up_to } => {
                format!("the message is not UTF-8 (byte {valid_up_to})")
            }
            ParseError::MissingMsh { .. } => "the message does not start with MSH".to_owned(),
            ParseError::MalformedMsh { reason } => format!("malformed MSH segment: {reason}"),
            ParseError::MalformedSegment { line, .. } => {
                format!("segment {line} does not start with a segment name")
            }
        })
    })?;
    if message
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::EncodingFallback { .. }))
    {
        return Err(Problem::unreadable(
            "MSH-2 does not declare four distinct encoding characters",
        ));
    }
    Ok(message)
}

/// The header fields of a parsed message.
pub fn header(message: &Message) -> Header {
    let get = |path: &str| decoded(message, path);
    Header {
        encoding: message.encoding(),
        sending_application: get("MSH-3.1"),
        sending_facility: get("MSH-4.1"),
        receiving_application: get("MSH-5.1"),
        receiving_facility: get("MSH-6.1"),
        message_code: get("MSH-9.1"),
        trigger_event: get("MSH-9.2"),
        control_id: get("MSH-10"),
        processing_id: get("MSH-11.1"),
        version: get("MSH-12.1"),
        time: get("MSH-7.1"),
    }
}

fn decoded(message: &Message, path: &str) -> String {
    message
        .get(path)
        .map(|v| {
            crate::escape::unescape(v, message.encoding())
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// The ORU^R01 content of a parsed message.
pub fn read_oru(message: &Message) -> Result<Oru, Problem> {
    let header = header(message);
    if !header.message_code.eq_ignore_ascii_case("ORU")
        || !header.trigger_event.eq_ignore_ascii_case("R01")
    {
        return Err(Problem {
            ack: AckCode::Reject,
            code: ErrorCode::UnsupportedMessageType,
            location: Some("MSH-9"),
            message: format!(
                "message type {}^{} is not ORU^R01",
                header.message_code, header.trigger_event
            ),
        });
    }
    let encoding = message.encoding();
    let mut patient_ids = Vec::new();
    let mut demographics = Demographics::default();
    let mut orders: Vec<Order> = Vec::new();
    let mut pending_orc: Option<(Option<EntityId>, Option<EntityId>)> = None;
    let mut obx_values: Vec<Vec<(String, Field<'_>)>> = Vec::new();
    for segment in message.segments() {
        match segment.name().to_ascii_uppercase().as_str() {
            "PID" if patient_ids.is_empty() => {
                if let Some(field) = segment.field(3) {
                    for repetition in field.repetitions() {
                        let value = component(encoding, repetition.component(1));
                        let authority = repetition
                            .component(4)
                            .and_then(|c| c.subcomponent(1))
                            .map(|s| {
                                crate::escape::unescape(s.value(), encoding)
                                    .trim()
                                    .to_owned()
                            })
                            .unwrap_or_default();
                        if !value.is_empty() {
                            patient_ids.push(PatientId { value, authority });
                        }
                    }
                }
                demographics = read_demographics(encoding, &segment);
            }
            "ORC" => {
                pending_orc = Some((
                    entity(encoding, segment.field(2)),
                    entity(encoding, segment.field(3)),
                ));
            }
            "OBR" => {
                let (orc_placer, orc_filler) = pending_orc.take().unwrap_or((None, None));
                let field_text = |n: usize| {
                    segment
                        .field(n)
                        .and_then(|f| f.repetition(1))
                        .map(|r| {
                            crate::escape::unescape(r.value(), encoding)
                                .trim()
                                .to_owned()
                        })
                        .unwrap_or_default()
                };
                let first_component =
                    |n: usize| component(encoding, segment.field(n).and_then(|f| f.component(1)));
                let procedure = segment
                    .field(4)
                    .and_then(|f| f.repetition(1))
                    .map(|r| {
                        [1, 4]
                            .into_iter()
                            .map(|at| Coded {
                                code: component(encoding, r.component(at)),
                                text: component(encoding, r.component(at + 1)),
                                system: component(encoding, r.component(at + 2)),
                            })
                            .filter(|c| !c.code.is_empty() || !c.text.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                let interpreter = segment.field(32).and_then(|f| f.component(1)).map(|c| {
                    let part = |n: usize| {
                        c.subcomponent(n)
                            .map(|s| {
                                crate::escape::unescape(s.value(), encoding)
                                    .trim()
                                    .to_owned()
                            })
                            .unwrap_or_default()
                    };
                    Interpreter {
                        id: part(1),
                        family: part(2),
                        given: part(3),
                    }
                });
                orders.push(Order {
                    placer: orc_placer.or_else(|| entity(encoding, segment.field(2))),
                    filler: orc_filler.or_else(|| entity(encoding, segment.field(3))),
                    procedure,
                    observed: first_component(7),
                    reported: first_component(22),
                    section: field_text(24).to_ascii_uppercase(),
                    status: field_text(25).to_ascii_uppercase(),
                    interpreter: interpreter.filter(|i| {
                        !(i.id.is_empty() && i.family.is_empty() && i.given.is_empty())
                    }),
                    text: Ok(None),
                });
                obx_values.push(Vec::new());
            }
            "OBX" => {
                let Some(values) = obx_values.last_mut() else {
                    return Err(Problem::unreadable("an OBX segment comes before any OBR"));
                };
                let value_type = segment
                    .field(2)
                    .map(|f| f.value().trim().to_ascii_uppercase())
                    .unwrap_or_default();
                if let Some(field) = segment.field(5) {
                    values.push((value_type, field));
                }
            }
            _ => {}
        }
    }
    for (order, values) in orders.iter_mut().zip(&obx_values) {
        order.text = report_text(encoding, values);
    }
    Ok(Oru {
        header,
        patient_ids,
        demographics,
        orders,
    })
}

/// PID-5's first name, PID-7 and PID-8 of a PID segment.
fn read_demographics(encoding: Encoding, pid: &hl7kit::Segment<'_>) -> Demographics {
    let name = pid.field(5).and_then(|f| f.repetition(1));
    let family = name
        .and_then(|n| n.component(1))
        .and_then(|c| c.subcomponent(1))
        .map(|s| {
            crate::escape::unescape(s.value(), encoding)
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    let given = [2, 3]
        .into_iter()
        .map(|at| component(encoding, name.and_then(|n| n.component(at))))
        .filter(|part| !part.is_empty())
        .collect();
    Demographics {
        family,
        given,
        birth: component(encoding, pid.field(7).and_then(|f| f.component(1))),
        sex: component(encoding, pid.field(8).and_then(|f| f.component(1))).to_ascii_uppercase(),
    }
}

fn component(encoding: Encoding, component: Option<hl7kit::Component<'_>>) -> String {
    component
        .map(|c| {
            crate::escape::unescape(c.value(), encoding)
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn entity(encoding: Encoding, field: Option<Field<'_>>) -> Option<EntityId> {
    let repetition = field?.repetition(1)?;
    let value = component(encoding, repetition.component(1));
    (!value.is_empty()).then(|| EntityId {
        value,
        namespace: component(encoding, repetition.component(2)),
    })
}

/// The report's text: each TX/ST/FT OBX-5 repetition is one line (feeds
/// put a line per OBX, or a line per `~` repetition), FT's `\.br\` is a
/// line break; an ED carries a whole text (Base64, hex or plain). Other
/// value types (codes, numbers) carry no report text.
fn report_text(
    encoding: Encoding,
    values: &[(String, Field<'_>)],
) -> Result<Option<String>, Problem> {
    let mut lines: Vec<String> = Vec::new();
    for (value_type, field) in values {
        match value_type.as_str() {
            "TX" | "ST" | "FT" => {
                for repetition in field.repetitions() {
                    let raw = strip_formatting(repetition.value(), encoding.escape as char);
                    lines.push(crate::escape::unescape(&raw, encoding).into_owned());
                }
            }
            "ED" => lines.push(embedded_text(encoding, field)?),
            "RP" => {
                return Err(Problem::unusable(
                    ErrorCode::DataType,
                    "OBX-5",
                    "the report's text is a reference pointer (RP); it must be in the message",
                ));
            }
            _ => {}
        }
    }
    let text = lines.join("\n");
    Ok((!text.trim().is_empty()).then_some(text))
}

/// Removes FT's formatting commands (`\H\`, `\N\`, `\.in+2\`, …) that the
/// escape decoder keeps; `\.sp\` becomes a line break. `\.br\` and the
/// delimiter escapes are left for the decoder.
fn strip_formatting(raw: &str, escape: char) -> Cow<'_, str> {
    if !raw.contains(escape) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + escape.len_utf8()..];
        let Some(end) = after.find(escape) else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let sequence = &after[..end];
        match sequence {
            "H" | "N" => {}
            ".sp" => out.push('\n'),
            s if s.starts_with('.') && s != ".br" => {}
            _ => {
                out.push(escape);
                out.push_str(sequence);
                out.push(escape);
            }
        }
        rest = &after[end + escape.len_utf8()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// ED: source ^ type ^ subtype ^ encoding ^ data; only a text is usable.
fn embedded_text(encoding: Encoding, field: &Field<'_>) -> Result<String, Problem> {
    let part = |n: usize| {
        field
            .component(n)
            .map(|c| c.value().trim().to_owned())
            .unwrap_or_default()
    };
    let (kind, subtype, data_encoding, data) = (part(2), part(3), part(4), part(5));
    let is_text = kind.eq_ignore_ascii_case("TEXT") || kind.eq_ignore_ascii_case("text/plain");
    if !is_text || !(subtype.is_empty() || subtype.eq_ignore_ascii_case("PLAIN")) {
        return Err(Problem::unusable(
            ErrorCode::DataType,
            "OBX-5",
            format!("the embedded data is {kind}/{subtype}, not a plain text"),
        ));
    }
    let bytes = match data_encoding.to_ascii_uppercase().as_str() {
        "BASE64" => base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|_| {
                Problem::unusable(ErrorCode::DataType, "OBX-5", "the ED data is not Base64")
            })?,
        "HEX" => hex_bytes(&data).ok_or_else(|| {
            Problem::unusable(ErrorCode::DataType, "OBX-5", "the ED data is not hex")
        })?,
        "A" | "" => crate::escape::unescape(&data, encoding)
            .into_owned()
            .into_bytes(),
        other => {
            return Err(Problem::unusable(
                ErrorCode::TableValueNotFound,
                "OBX-5",
                format!("ED data encoding {other:?} is not A, Hex or Base64"),
            ));
        }
    };
    String::from_utf8(bytes).map_err(|_| {
        Problem::unusable(
            ErrorCode::DataType,
            "OBX-5",
            "the embedded text is not UTF-8",
        )
    })
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_commands_go_and_escapes_stay() {
        assert_eq!(
            strip_formatting(
                r"\H\IMPRESSION\N\:\.sp\\.in+4\No mass \T\ no \.br\cyst",
                '\\'
            ),
            "IMPRESSION:\nNo mass \\T\\ no \\.br\\cyst"
        );
        assert_eq!(strip_formatting(r"open \H", '\\'), r"open \H");
    }
}
