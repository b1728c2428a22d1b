//! Frames: how messages become bytes and back.
//!
//! ```text
//! server → client   [version][postcard(ServerMsg)]
//! client → server   [version][0][postcard(OpenMsg)]
//!                   [version][1][postcard(Signed, SessionMsg)][tag: 8 bytes]
//! ```
//!
//! The encoding is [postcard](https://docs.rs/postcard): compact (varints, no field names),
//! not self-describing, so a frame can only ever decode into the one type the reader asks
//! for; no frame can make the reader run code or build a type of the sender's choosing.
//! The `tag` of a signed frame is SipHash-2-4, keyed with the session [`Token`], over every
//! byte before it: the server checks it with [`SignedFrame::verify`] before it believes
//! anything in the frame.
//!
//! Decoding is total: any byte string gives a message or a [`DecodeError`], never a panic,
//! and never reads or allocates more than the frame's [`MAX_FRAME_LEN`] bytes allow.

use std::hash::Hasher;

use serde::Serialize;
use serde::de::DeserializeOwned;
use siphasher::sip::SipHasher24;

use crate::proto::{OpenMsg, PROTOCOL_VERSION, ServerMsg, SessionMsg, Signed, Token};

/// Largest frame either side sends or accepts, in bytes. The largest real message (a
/// 4-player lobby or result with 20-character names) is well under half of it.
pub const MAX_FRAME_LEN: usize = 1024;

/// Length of the authentication tag at the end of a signed frame.
pub const TAG_LEN: usize = 8;

const KIND_OPEN: u8 = 0;
const KIND_SIGNED: u8 = 1;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame has no bytes.
    #[error("empty frame")]
    Empty,
    /// The frame is longer than [`MAX_FRAME_LEN`].
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The first byte is not [`PROTOCOL_VERSION`].
    #[error("protocol version {0} is not supported (this build speaks {PROTOCOL_VERSION})")]
    UnknownVersion(u8),
    /// A client frame's kind byte is neither open (0) nor signed (1).
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The frame ends in the middle of a message.
    #[error("frame is truncated")]
    Truncated,
    /// A whole message was read and bytes are left over.
    #[error("{0} unexpected bytes after the message")]
    TrailingBytes(usize),
    /// The bytes do not form a valid message (bad tag, bad varint, invalid field).
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded message would exceed [`MAX_FRAME_LEN`].
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The serializer failed (not expected for this crate's types).
    #[error("cannot encode: {0}")]
    Serialize(String),
}

/// A decoded client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// An unsigned message (join or resume request).
    Open(OpenMsg),
    /// A signed session message; check it with [`SignedFrame::verify`] before acting on it.
    Signed(SignedFrame<'a>),
}

/// A signed client message whose signature has not been checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFrame<'a> {
    /// Session and sequence number.
    pub header: Signed,
    /// The message.
    pub msg: SessionMsg,
    signed: &'a [u8],
    tag: [u8; TAG_LEN],
}

impl SignedFrame<'_> {
    /// True if the frame was signed with `token`.
    pub fn verify(&self, token: &Token) -> bool {
        let expected = mac(token, self.signed);
        // Compare without an early exit, so timing does not reveal how much of a guess was right.
        expected.iter().zip(self.tag.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

fn mac(token: &Token, bytes: &[u8]) -> [u8; TAG_LEN] {
    let mut h = SipHasher24::new_with_key(&token.0);
    h.write(bytes);
    h.finish().to_le_bytes()
}

fn append<T: Serialize + ?Sized>(msg: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let buf = std::mem::take(out);
    *out = postcard::to_extend(msg, buf).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    Ok(())
}

fn finish(out: &[u8]) -> Result<(), EncodeError> {
    if out.len() > MAX_FRAME_LEN {
        return Err(EncodeError::TooLarge { len: out.len(), max: MAX_FRAME_LEN });
    }
    Ok(())
}

/// Encodes a server message into `out` (cleared first).
///
/// # Errors
/// [`EncodeError::TooLarge`] if it would not fit in a frame.
pub fn encode_server(msg: &ServerMsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    out.push(PROTOCOL_VERSION);
    append(msg, out)?;
    finish(out)
}

/// Encodes an unsigned client message into `out` (cleared first).
///
/// # Errors
/// [`EncodeError::TooLarge`] if it would not fit in a frame.
pub fn encode_open(msg: &OpenMsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    out.extend_from_slice(&[PROTOCOL_VERSION, KIND_OPEN]);
    append(msg, out)?;
    finish(out)
}

/// Encodes and signs a session message into `out` (cleared first).
///
/// # Errors
/// [`EncodeError::TooLarge`] if it would not fit in a frame.
pub fn encode_signed(
    header: Signed,
    msg: &SessionMsg,
    token: &Token,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.clear();
    out.extend_from_slice(&[PROTOCOL_VERSION, KIND_SIGNED]);
    append(&(header, msg), out)?;
    let tag = mac(token, out);
    out.extend_from_slice(&tag);
    finish(out)
}

fn check_frame(frame: &[u8]) -> Result<&[u8], DecodeError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(DecodeError::TooLarge { len: frame.len(), max: MAX_FRAME_LEN });
    }
    match frame.split_first() {
        None => Err(DecodeError::Empty),
        Some((&PROTOCOL_VERSION, rest)) => Ok(rest),
        Some((&v, _)) => Err(DecodeError::UnknownVersion(v)),
    }
}

fn take<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(DecodeError::TrailingBytes(rest.len())),
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(DecodeError::Truncated),
        Err(e) => Err(DecodeError::Invalid(e.to_string())),
    }
}

/// Decodes a frame sent by a server.
///
/// # Errors
/// A [`DecodeError`] saying what is wrong with the frame.
pub fn decode_server(frame: &[u8]) -> Result<ServerMsg, DecodeError> {
    take(check_frame(frame)?)
}

/// Decodes a frame sent by a client. A signed frame still has to be verified.
///
/// # Errors
/// A [`DecodeError`] saying what is wrong with the frame.
pub fn decode_client(frame: &[u8]) -> Result<ClientFrame<'_>, DecodeError> {
    let rest = check_frame(frame)?;
    let Some((&kind, payload)) = rest.split_first() else { return Err(DecodeError::Truncated) };
    match kind {
        KIND_OPEN => Ok(ClientFrame::Open(take(payload)?)),
        KIND_SIGNED => {
            let Some(body_len) = payload.len().checked_sub(TAG_LEN) else {
                return Err(DecodeError::Truncated);
            };
            let (body, tag) = payload.split_at(body_len);
            let (header, msg) = take::<(Signed, SessionMsg)>(body)?;
            let mut t = [0u8; TAG_LEN];
            t.copy_from_slice(tag);
            let signed = &frame[..frame.len() - TAG_LEN];
            Ok(ClientFrame::Signed(SignedFrame { header, msg, signed, tag: t }))
        }
        k => Err(DecodeError::UnknownKind(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{InputRun, SessionId};
    use crate::sim::Intent;

    fn signed_input() -> (Vec<u8>, Token) {
        let token = Token([7; 16]);
        let mut out = Vec::new();
        let run = InputRun::new(1234, [Intent::Plus; 6]);
        encode_signed(
            Signed { session: SessionId(3), seq: 99 },
            &SessionMsg::Input(run),
            &token,
            &mut out,
        )
        .unwrap();
        (out, token)
    }

    #[test]
    fn signed_frames_verify_only_with_their_token() {
        let (frame, token) = signed_input();
        let ClientFrame::Signed(f) = decode_client(&frame).unwrap() else { panic!() };
        assert!(f.verify(&token));
        assert!(!f.verify(&Token([8; 16])));
        assert_eq!(f.header.seq, 99);
    }

    #[test]
    fn flipping_any_byte_breaks_the_signature_or_the_decoding() {
        let (frame, token) = signed_input();
        for i in 2..frame.len() {
            let mut f = frame.clone();
            f[i] ^= 0x01;
            match decode_client(&f) {
                Ok(ClientFrame::Signed(s)) => assert!(!s.verify(&token), "byte {i}"),
                Ok(other) => panic!("byte {i} decoded as {other:?}"),
                Err(_) => {}
            }
        }
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(decode_server(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_server(&[9, 0]), Err(DecodeError::UnknownVersion(9)));
        assert_eq!(decode_client(&[PROTOCOL_VERSION, 5]), Err(DecodeError::UnknownKind(5)));
        assert_eq!(decode_client(&[PROTOCOL_VERSION]), Err(DecodeError::Truncated));
        let big = vec![PROTOCOL_VERSION; MAX_FRAME_LEN + 1];
        assert_eq!(
            decode_server(&big),
            Err(DecodeError::TooLarge { len: MAX_FRAME_LEN + 1, max: MAX_FRAME_LEN })
        );
        let mut pong = Vec::new();
        encode_server(&ServerMsg::Pong { id: 1, client_time: 2, server_time: 3 }, &mut pong)
            .unwrap();
        pong.push(0);
        assert_eq!(decode_server(&pong), Err(DecodeError::TrailingBytes(1)));
    }
}
