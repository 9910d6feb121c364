//! A batch file or a stream of messages cut into its messages.
//!
//! Archives come as FHS/BHS … BTS/FTS batches or as plain streams of
//! messages, with `\r` (the standard), `\n` or `\r\n` after each segment,
//! sometimes still carrying MLLP's framing bytes. A message starts at each
//! `MSH` segment; the batch header and trailer segments are dropped.

/// Segments that wrap a batch and belong to no message.
const BATCH_SEGMENTS: [&[u8]; 4] = [b"FHS", b"BHS", b"BTS", b"FTS"];

/// MLLP's start-of-block and end-of-block bytes, left over in some archives.
const FRAMING: [u8; 2] = [0x0B, 0x1C];

/// The messages of `input`, each with its segments ended by `\r`.
///
/// Lines before the first `MSH` that are not batch segments make a message
/// of their own, so that they are reported as unreadable instead of being
/// lost without a word.
pub fn split_messages(input: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in input.split(|b| *b == b'\r' || *b == b'\n') {
        let line = trim_framing(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let name = line.get(..3).unwrap_or(line);
        if BATCH_SEGMENTS.contains(&name) {
            messages.extend(current.take());
            continue;
        }
        if name == b"MSH" {
            messages.extend(current.take());
        }
        let message = current.get_or_insert_with(Vec::new);
        message.extend_from_slice(line);
        message.push(b'\r');
    }
    messages.extend(current);
    messages
}

fn trim_framing(mut line: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = line
        && FRAMING.contains(first)
    {
        line = rest;
    }
    while let [rest @ .., last] = line
        && FRAMING.contains(last)
    {
        line = rest;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_with_any_line_ends_yields_its_messages() {
        let file = b"FHS|^~\\&|RIS\r\nBHS|^~\\&|RIS\nMSH|^~\\&|A\rPID|1\r\nMSH|^~\\&|B\nOBX|1\n\nBTS|2\rFTS|1\r";
        let messages = split_messages(file);
        assert_eq!(
            messages,
            vec![
                b"MSH|^~\\&|A\rPID|1\r".to_vec(),
                b"MSH|^~\\&|B\rOBX|1\r".to_vec()
            ]
        );
    }

    #[test]
    fn framing_bytes_are_dropped_and_stray_lines_kept_as_their_own_message() {
        let file = b"garbage line\n\x0bMSH|^~\\&|A\rPID|1\x1c\r";
        let messages = split_messages(file);
        assert_eq!(
            messages,
            vec![b"garbage line\r".to_vec(), b"MSH|^~\\&|A\rPID|1\r".to_vec()]
        );
        assert!(split_messages(b"\r\n \n").is_empty());
    }
}
