//! MLLP framing (HL7's Minimal Lower Layer Protocol: `0x0B` message
//! `0x1C 0x0D`) as a tokio-util codec.
//!
//! Written here rather than taken from `hl7-mllp-codec`: that crate is
//! built on tokio-util 0.6 and has no bound on a frame, and the bound is
//! what keeps a connection's memory to one message however much a peer
//! sends. Bytes between frames (a peer's stray line ends) are skipped.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

const START: u8 = 0x0B;
const END: [u8; 2] = [0x1C, 0x0D];

#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    #[error("a message is larger than hl7.max_message_bytes ({max} bytes)")]
    TooLarge { max: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Frames of at most `max_message_bytes` between the framing bytes.
#[derive(Debug, Clone)]
pub struct MllpCodec {
    max_message_bytes: usize,
    /// How far the current frame was searched for its end already.
    searched: usize,
}

impl MllpCodec {
    pub fn new(max_message_bytes: usize) -> MllpCodec {
        MllpCodec {
            max_message_bytes,
            searched: 0,
        }
    }
}

impl Decoder for MllpCodec {
    type Item = Bytes;
    type Error = MllpError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, MllpError> {
        if self.searched == 0 {
            match src.iter().position(|b| *b == START) {
                Some(start) => src.advance(start),
                None => {
                    src.clear();
                    return Ok(None);
                }
            }
        }
        // src[0] is START; search the rest, from where the last call stopped.
        let from = self.searched.max(1);
        let end = src
            .get(from.saturating_sub(1)..)
            .and_then(|rest| rest.windows(2).position(|w| w == END))
            .map(|at| at + from.saturating_sub(1));
        match end {
            Some(end) => {
                self.searched = 0;
                let mut frame = src.split_to(end + END.len());
                frame.advance(1);
                frame.truncate(frame.len() - END.len());
                Ok(Some(frame.freeze()))
            }
            None if src.len() > self.max_message_bytes + 1 + END.len() => {
                Err(MllpError::TooLarge {
                    max: self.max_message_bytes,
                })
            }
            None => {
                self.searched = src.len().max(1);
                src.reserve(1024);
                Ok(None)
            }
        }
    }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = MllpError;

    fn encode(&mut self, message: &[u8], dst: &mut BytesMut) -> Result<(), MllpError> {
        dst.reserve(message.len() + 3);
        dst.put_u8(START);
        dst.put_slice(message);
        dst.put_slice(&END);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(codec: &mut MllpCodec, chunks: &[&[u8]]) -> Result<Vec<Bytes>, MllpError> {
        let mut buffer = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buffer.extend_from_slice(chunk);
            while let Some(frame) = codec.decode(&mut buffer)? {
                frames.push(frame);
            }
        }
        Ok(frames)
    }

    #[test]
    fn frames_split_anywhere_are_put_together_and_noise_between_them_skipped() {
        let mut codec = MllpCodec::new(100);
        let frames = decode_all(
            &mut codec,
            &[
                b"\r\n\x0bMSH|a\rPID",
                b"|1\x1c",
                b"\r\n\x0bMSH|b\x1c\r\x0b",
                b"MSH|c\x1c\r",
            ],
        )
        .expect("frames");
        assert_eq!(
            frames,
            vec![
                Bytes::from_static(b"MSH|a\rPID|1"),
                Bytes::from_static(b"MSH|b"),
                Bytes::from_static(b"MSH|c"),
            ]
        );
    }

    #[test]
    fn a_frame_over_the_limit_is_an_error_before_it_is_read_whole() {
        let mut codec = MllpCodec::new(10);
        let big = [b'x'; 64];
        let result = decode_all(&mut codec, &[b"\x0b", &big]);
        assert!(matches!(result, Err(MllpError::TooLarge { max: 10 })));
        let mut codec = MllpCodec::new(10);
        let exact = decode_all(&mut codec, &[b"\x0b0123456789\x1c\r"]).expect("fits");
        assert_eq!(exact.len(), 1);
    }

    proptest! {
        /// What is encoded decodes to the same messages, however the bytes are cut.
        #[test]
        fn encode_then_decode_in_any_chunks(
            messages in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("no framing", |b| *b != 0x0B && *b != 0x1C), 0..50), 1..5),
            cut in 1usize..17,
        ) {
            let mut codec = MllpCodec::new(1000);
            let mut wire = BytesMut::new();
            for message in &messages {
                codec.encode(message, &mut wire).expect("encoded");
            }
            let chunks: Vec<&[u8]> = wire.chunks(cut).collect();
            let frames = decode_all(&mut codec, &chunks).expect("decoded");
            let frames: Vec<Vec<u8>> = frames.iter().map(|f| f.to_vec()).collect();
            prop_assert_eq!(frames, messages);
        }
    }
}
