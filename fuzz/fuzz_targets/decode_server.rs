//! Any bytes as a server's frame: decoding never panics, and what decodes encodes back to a
//! frame that decodes to the same message. A decoded keyframe's state is checked the way
//! a client checks it before use (validation never panics either).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pong_domain::codec::{decode_server, encode_server};
use pong_domain::proto::ServerMsg;
use pong_domain::rules::{MatchConfig, Rules};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = decode_server(data) else { return };
    let mut again = Vec::new();
    encode_server(&msg, &mut again).expect("a decoded message encodes");
    assert_eq!(decode_server(&again).as_ref(), Ok(&msg));
    if let ServerMsg::Keyframe(k) = &msg {
        for players in 2..=4 {
            let rules = Rules::new(MatchConfig { players, lives: 3, tick_hz: 60, seed: 1 });
            let _ = k.state.validate(&rules);
        }
    }
});
