//! An incremental checker of the ZMTP 3 byte stream a client sends, run by the relay
//! before any byte reaches the zeromq crate.
//!
//! It exists because the crate trusts frame headers: it reserves whatever length a header
//! claims and buffers every part of a multi-part message, with no limit. The guard knows
//! just enough ZMTP (RFC 23) to bound both: the 64-byte greeting, then frames of
//! `[flags][length: 1 or 8 bytes][body]`. It never buffers: [`Guard::feed`] looks at each
//! chunk as it arrives, so the relay forwards a chunk only after every header in it passed.
//!
//! What it refuses (the relay then cuts the connection):
//! - a greeting without the ZMTP signature, a major version below 3, or a mechanism other
//!   than NULL (the only one this transport speaks);
//! - reserved flag bits, or a command frame with MORE set (ZMTP 3 commands are one frame);
//! - a command longer than [`Limits::max_command`];
//! - a message whose parts add up to more than [`Limits::max_message`] bytes, or that has
//!   more than [`Limits::max_parts`] parts.
//!
//! Messages within those limits but not what the protocol sends (several parts, empty,
//! longer than the frame limit) are let through and dropped, logged and counted by the
//! server: only what could hurt the process is cut here.

/// Bytes of a ZMTP 3 greeting.
const GREETING_LEN: usize = 64;
/// The mechanism field of the greeting: "NULL", zero-padded to 20 bytes.
const MECHANISM_AT: usize = 12;
const MECHANISM_LEN: usize = 20;
const NULL_MECHANISM: &[u8] = b"NULL";

const FLAG_MORE: u8 = 0b001;
const FLAG_LONG: u8 = 0b010;
const FLAG_COMMAND: u8 = 0b100;
const FLAGS_RESERVED: u8 = !0b111;

/// What the guard lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Longest message, all parts together.
    pub(crate) max_message: u64,
    /// Most parts in one message.
    pub(crate) max_parts: u32,
    /// Longest command frame (READY and its properties).
    pub(crate) max_command: u64,
}

impl Limits {
    /// Most parts a message may have; the protocol uses one, libzmq REQ-style envelopes two.
    pub(crate) const MAX_PARTS: u32 = 16;
    /// Longest command: READY carries the socket type and at most a 255-byte identity, so
    /// this leaves ample room for the metadata libzmq peers may add.
    pub(crate) const MAX_COMMAND: u64 = 16 * 1024;
    /// The least message limit, so that a peer slightly over the frame limit is dropped
    /// and counted rather than cut.
    pub(crate) const MIN_MESSAGE: u64 = 64 * 1024;

    /// The limits for a server whose frames are at most `max_frame_len` bytes.
    pub(crate) fn for_frames(max_frame_len: usize) -> Self {
        let frame = u64::try_from(max_frame_len).unwrap_or(u64::MAX);
        Self {
            max_message: frame.max(Self::MIN_MESSAGE),
            max_parts: Self::MAX_PARTS,
            max_command: Self::MAX_COMMAND,
        }
    }
}

/// Why the guard refused a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Violation {
    /// The first or tenth greeting byte is not the ZMTP signature.
    #[error("not a ZMTP greeting")]
    Signature,
    /// The peer speaks ZMTP 1 or 2.
    #[error("ZMTP version {0} is not supported (3.x needed)")]
    Version(u8),
    /// The peer asked for PLAIN, CURVE or another mechanism.
    #[error("only the NULL security mechanism is spoken")]
    Mechanism,
    /// A frame header has reserved bits set.
    #[error("reserved frame flag bits set: {0:#04x}")]
    ReservedFlags(u8),
    /// A command frame claims to be part of a multi-part message.
    #[error("command frame with the MORE flag")]
    CommandWithMore,
    /// A command frame is over the limit.
    #[error("command frame of {0} bytes")]
    CommandTooLarge(u64),
    /// A message is over the limit.
    #[error("message of at least {0} bytes")]
    MessageTooLarge(u64),
    /// A message has too many parts.
    #[error("message of more than {0} parts")]
    TooManyParts(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside the greeting, `seen` bytes in.
    Greeting { seen: usize },
    /// Waiting for a frame's flags byte.
    Flags,
    /// Reading a frame's length, big-endian: `have` of `need` bytes, accumulated in `len`.
    Length { flags: u8, need: u8, have: u8, len: u64 },
    /// Inside a frame body.
    Body { flags: u8, remaining: u64 },
}

/// The checker for one connection's client → server bytes.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    limits: Limits,
    state: State,
    /// Parts and bytes of the message being read.
    parts: u32,
    message_bytes: u64,
    /// Set once the first command (the READY of the handshake) has passed.
    handshake_done: bool,
}

impl Guard {
    /// A checker at the start of a connection.
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Greeting { seen: 0 },
            parts: 0,
            message_bytes: 0,
            handshake_done: false,
        }
    }

    /// True once the greeting and the first command frame have passed.
    pub(crate) fn handshake_done(&self) -> bool {
        self.handshake_done
    }

    /// Checks the next chunk of the stream. After an error the stream must be cut: the
    /// guard's state is no longer meaningful.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Violation> {
        while let Some((&first, rest)) = bytes.split_first() {
            match self.state {
                State::Greeting { seen } => {
                    let take = (GREETING_LEN - seen).min(bytes.len());
                    for (offset, &byte) in bytes[..take].iter().enumerate() {
                        check_greeting_byte(seen + offset, byte)?;
                    }
                    let seen = seen + take;
                    self.state =
                        if seen == GREETING_LEN { State::Flags } else { State::Greeting { seen } };
                    bytes = &bytes[take..];
                }
                State::Flags => {
                    if first & FLAGS_RESERVED != 0 {
                        return Err(Violation::ReservedFlags(first));
                    }
                    if first & FLAG_COMMAND != 0 && first & FLAG_MORE != 0 {
                        return Err(Violation::CommandWithMore);
                    }
                    let need = if first & FLAG_LONG != 0 { 8 } else { 1 };
                    self.state = State::Length { flags: first, need, have: 0, len: 0 };
                    bytes = rest;
                }
                State::Length { flags, need, have, len } => {
                    let len = (len << 8) | u64::from(first);
                    let have = have + 1;
                    bytes = rest;
                    if have < need {
                        self.state = State::Length { flags, need, have, len };
                        continue;
                    }
                    self.check_frame(flags, len)?;
                    if len == 0 {
                        self.end_frame(flags);
                    } else {
                        self.state = State::Body { flags, remaining: len };
                    }
                }
                State::Body { flags, remaining } => {
                    let available = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                    let take = remaining.min(available);
                    // `take` is at most `bytes.len()`, so it fits in usize.
                    let skip = usize::try_from(take).unwrap_or(bytes.len());
                    bytes = &bytes[skip..];
                    if take == remaining {
                        self.end_frame(flags);
                    } else {
                        self.state = State::Body { flags, remaining: remaining - take };
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks a frame header once its length is known, before any of its body is let by.
    fn check_frame(&mut self, flags: u8, len: u64) -> Result<(), Violation> {
        if flags & FLAG_COMMAND != 0 {
            if len > self.limits.max_command {
                return Err(Violation::CommandTooLarge(len));
            }
            return Ok(());
        }
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            return Err(Violation::TooManyParts(self.limits.max_parts));
        }
        self.message_bytes = self.message_bytes.saturating_add(len);
        if self.message_bytes > self.limits.max_message {
            return Err(Violation::MessageTooLarge(self.message_bytes));
        }
        Ok(())
    }

    fn end_frame(&mut self, flags: u8) {
        self.state = State::Flags;
        if flags & FLAG_COMMAND != 0 {
            self.handshake_done = true;
        } else if flags & FLAG_MORE == 0 {
            self.parts = 0;
            self.message_bytes = 0;
        }
    }
}

fn check_greeting_byte(index: usize, byte: u8) -> Result<(), Violation> {
    match index {
        0 if byte != 0xff => Err(Violation::Signature),
        9 if byte != 0x7f => Err(Violation::Signature),
        10 if byte < 3 => Err(Violation::Version(byte)),
        i if (MECHANISM_AT..MECHANISM_AT + MECHANISM_LEN).contains(&i) => {
            let expected = NULL_MECHANISM.get(i - MECHANISM_AT).copied().unwrap_or(0);
            if byte == expected { Ok(()) } else { Err(Violation::Mechanism) }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting() -> Vec<u8> {
        let mut g = vec![0_u8; GREETING_LEN];
        g[0] = 0xff;
        g[8] = 1;
        g[9] = 0x7f;
        g[10] = 3;
        g[11] = 1;
        g[MECHANISM_AT..MECHANISM_AT + 4].copy_from_slice(b"NULL");
        g
    }

    fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        if body.len() > 255 {
            f.push(flags | FLAG_LONG);
            f.extend_from_slice(&(body.len() as u64).to_be_bytes());
        } else {
            f.push(flags);
            f.push(body.len() as u8);
        }
        f.extend_from_slice(body);
        f
    }

    fn limits() -> Limits {
        Limits { max_message: 1000, max_parts: 3, max_command: 100 }
    }

    fn stream() -> Vec<u8> {
        let mut s = greeting();
        s.extend(frame(FLAG_COMMAND, b"\x05READY"));
        s
    }

    /// Feeds `bytes` in every split into two chunks, and byte by byte, and checks all agree.
    fn verdict(bytes: &[u8]) -> Result<(), Violation> {
        let mut whole = Guard::new(limits());
        let expected = whole.feed(bytes);
        for split in 0..=bytes.len() {
            let mut g = Guard::new(limits());
            let got = g.feed(&bytes[..split]).and_then(|()| g.feed(&bytes[split..]));
            assert_eq!(got, expected, "split at {split}");
        }
        let mut g = Guard::new(limits());
        let got = bytes.iter().try_for_each(|b| g.feed(std::slice::from_ref(b)));
        assert_eq!(got, expected, "byte by byte");
        expected
    }

    #[test]
    fn a_normal_conversation_passes() {
        let mut s = stream();
        s.extend(frame(0, &[1, 2, 3]));
        s.extend(frame(FLAG_MORE, b""));
        s.extend(frame(0, &[7; 300]));
        s.extend(frame(0, b""));
        assert_eq!(verdict(&s), Ok(()));
        let mut g = Guard::new(limits());
        assert!(!g.handshake_done());
        g.feed(&s).unwrap();
        assert!(g.handshake_done());
    }

    #[test]
    fn bad_greetings_are_refused() {
        let mut s = greeting();
        s[0] = b'G';
        assert_eq!(verdict(&s), Err(Violation::Signature));
        let mut s = greeting();
        s[9] = 0;
        assert_eq!(verdict(&s), Err(Violation::Signature));
        let mut s = greeting();
        s[10] = 2;
        assert_eq!(verdict(&s), Err(Violation::Version(2)));
        let mut s = greeting();
        s[MECHANISM_AT..MECHANISM_AT + 5].copy_from_slice(b"CURVE");
        assert_eq!(verdict(&s), Err(Violation::Mechanism));
        let mut s = greeting();
        s[MECHANISM_AT + 4] = b'X';
        assert_eq!(verdict(&s), Err(Violation::Mechanism));
        let mut s = b"GET / HTTP/1.1\r\n".to_vec();
        s.resize(80, b'x');
        assert_eq!(verdict(&s), Err(Violation::Signature));
    }

    #[test]
    fn huge_length_claims_are_refused_before_any_body() {
        let mut s = stream();
        s.push(FLAG_LONG);
        s.extend_from_slice(&(1_u64 << 44).to_be_bytes());
        assert_eq!(verdict(&s), Err(Violation::MessageTooLarge(1 << 44)));
        let mut s = stream();
        s.push(FLAG_LONG);
        s.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(verdict(&s), Err(Violation::MessageTooLarge(u64::MAX)));
        let mut s = stream();
        s.push(FLAG_COMMAND | FLAG_LONG);
        s.extend_from_slice(&(1_u64 << 40).to_be_bytes());
        assert_eq!(verdict(&s), Err(Violation::CommandTooLarge(1 << 40)));
    }

    #[test]
    fn messages_are_bounded_over_all_their_parts() {
        let mut s = stream();
        s.extend(frame(FLAG_MORE, &[0; 600]));
        s.extend(frame(0, &[0; 401]));
        assert_eq!(verdict(&s), Err(Violation::MessageTooLarge(1001)));
        let mut s = stream();
        for _ in 0..3 {
            s.extend(frame(FLAG_MORE, b"x"));
        }
        s.extend(frame(0, b"x"));
        assert_eq!(verdict(&s), Err(Violation::TooManyParts(3)));
        // The count restarts with each message.
        let mut s = stream();
        for _ in 0..10 {
            s.extend(frame(FLAG_MORE, &[0; 400]));
            s.extend(frame(0, &[0; 600]));
        }
        assert_eq!(verdict(&s), Ok(()));
    }

    #[test]
    fn bad_flags_are_refused() {
        let mut s = stream();
        s.extend(frame(0b1000_0000, b"x"));
        assert_eq!(verdict(&s), Err(Violation::ReservedFlags(0x80)));
        let mut s = stream();
        s.extend(frame(FLAG_COMMAND | FLAG_MORE, b"x"));
        assert_eq!(verdict(&s), Err(Violation::CommandWithMore));
    }

    #[test]
    fn the_server_default_limits_follow_the_frame_limit() {
        assert_eq!(Limits::for_frames(1024).max_message, Limits::MIN_MESSAGE);
        assert_eq!(Limits::for_frames(1 << 20).max_message, 1 << 20);
    }
}
