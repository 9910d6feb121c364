//! The pure HL7 v2 side of reportsplit: the bytes of an ORU^R01 message in,
//! what to do with it out — the DiagnosticReports it carries (FHIR R4 JSON,
//! after the HL7 v2-to-FHIR IG's ORU^R01 map), or why it is ignored, unusable
//! (AE) or unreadable (AR) — and the ACK that answers it.
//!
//! No I/O, no clock (the time of an ACK comes in as an argument): the shell
//! (`reportsplit`'s `mllp` and `hl7` modes) reads, spools and writes.
//!
//! The message structure (segments, fields, repetitions, components, the
//! encoding characters of MSH-2 and the escape sequences) is read by the
//! `hl7kit` crate; this crate decides the character set (MSH-18), the
//! report's text (OBX TX/FT/ST lines, or one ED), and the mapping.

pub mod ack;
pub mod batch;
pub mod charset;
pub mod escape;
pub mod map;
pub mod oru;
pub mod timestamp;

pub use ack::{AckCode, ack};
pub use batch::split_messages;
pub use charset::decode;
pub use map::{Evaluation, Hl7Settings, MappedReport, PatientIdentifier, Verdict, evaluate};
pub use oru::{ErrorCode, Header, Problem};
