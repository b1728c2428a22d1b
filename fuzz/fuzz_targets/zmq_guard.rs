//! Any byte stream a ZeroMQ client could send, cut into any chunks: the guard never panics,
//! and its verdict does not depend on how the stream was cut (it parses incrementally, so a
//! chunk boundary anywhere must not change what it lets through).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pong_transport_zmq::fuzzing::guard_verdict;

fuzz_target!(|input: (Vec<u8>, Vec<u16>)| {
    let (stream, cuts) = input;
    let whole = guard_verdict(&[&stream]);
    let mut chunks = Vec::new();
    let mut at = 0;
    for c in cuts {
        let end = (at + usize::from(c) % 97).min(stream.len());
        chunks.push(&stream[at..end]);
        at = end;
    }
    chunks.push(&stream[at..]);
    assert_eq!(guard_verdict(&chunks), whole, "the verdict depends on the chunking");
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(guard_verdict(&bytes), whole, "byte by byte differs");
});
