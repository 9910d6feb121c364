//! The ACK that answers a message (original acknowledgment mode): MSA-1
//! AA, AE or AR with the original MSH-10 in MSA-2, and for AE/AR an ERR
//! segment saying why (HL7 table 0357 code, severity E, the reason).

use hl7kit::builder::{Builder, Value};

use crate::oru::{Header, Problem};

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// AA: the message is durable (or knowingly ignored).
    Accept,
    /// AE: read, but cannot be used.
    Error,
    /// AR: cannot be read.
    Reject,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// The ACK to `header`'s message (`None`: the message had no readable MSH;
/// the ACK then names no control id). `now` is the v2 timestamp of the ACK,
/// `control_id` its own MSH-10.
pub fn ack(
    header: Option<&Header>,
    code: AckCode,
    problem: Option<&Problem>,
    now: &str,
    control_id: &str,
) -> String {
    let encoding = header.map_or(hl7kit::Encoding::STANDARD, |h| h.encoding);
    let mut builder = Builder::with_encoding(encoding);
    let text = |f: fn(&Header) -> &String| header.map(f).cloned().unwrap_or_default();
    let version = header
        .map(|h| h.version.clone())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "2.5.1".to_owned());
    builder
        .segment("MSH")
        .set(3, text(|h| &h.receiving_application))
        .set(4, text(|h| &h.receiving_facility))
        .set(5, text(|h| &h.sending_application))
        .set(6, text(|h| &h.sending_facility))
        .set(7, now)
        .set(9, Value::components(["ACK", "R01", "ACK"]))
        .set(10, control_id)
        .set(
            11,
            header
                .map(|h| h.processing_id.clone())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "P".to_owned()),
        )
        .set(12, version);
    builder
        .segment("MSA")
        .set(1, code.as_str())
        .set(2, text(|h| &h.control_id));
    if let Some(problem) = problem {
        let (error, error_text) = problem.code.code_and_text();
        let location = problem
            .location
            .and_then(|l| l.split_once('-'))
            .map(|(segment, field)| Value::components([segment, "1", field]))
            .unwrap_or_else(|| Value::text(""));
        builder
            .segment("ERR")
            .set(2, location)
            .set(3, Value::components([error, error_text, "HL70357"]))
            .set(4, "E")
            .set(8, problem.message.as_str());
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oru::ErrorCode;

    #[test]
    fn an_error_ack_echoes_the_control_id_and_says_why() {
        let header = Header {
            encoding: hl7kit::Encoding::STANDARD,
            sending_application: "RIS".into(),
            sending_facility: "NORTH".into(),
            receiving_application: "REPORTSPLIT".into(),
            receiving_facility: "HUB".into(),
            message_code: "ORU".into(),
            trigger_event: "R01".into(),
            control_id: "MSG-7".into(),
            processing_id: "P".into(),
            version: "2.5.1".into(),
            time: "20260101".into(),
        };
        let problem = Problem::unusable(
            ErrorCode::UnknownKeyIdentifier,
            "PID-3",
            "assigning authority X|Y is not configured",
        );
        let text = ack(
            Some(&header),
            AckCode::Error,
            Some(&problem),
            "20260102030405",
            "A1",
        );
        assert_eq!(
            text,
            "MSH|^~\\&|REPORTSPLIT|HUB|RIS|NORTH|20260102030405||ACK^R01^ACK|A1|P|2.5.1\r\
             MSA|AE|MSG-7\r\
             ERR||PID^1^3|204^Unknown key identifier^HL70357|E||||assigning authority X\\F\\Y is not configured\r"
        );
    }
}
