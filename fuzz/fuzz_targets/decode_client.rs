//! Any bytes as a client's frame: decoding never panics, and what decodes encodes back to
//! a frame that decodes to the same message (a signed frame: to one that verifies under the
//! same token exactly when the original did).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pong_domain::codec::{ClientFrame, decode_client, encode_open};
use pong_domain::proto::Token;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = decode_client(data) else { return };
    match frame {
        ClientFrame::Open(msg) => {
            let mut again = Vec::new();
            encode_open(&msg, &mut again).expect("a decoded message encodes");
            match decode_client(&again) {
                Ok(ClientFrame::Open(m)) => assert_eq!(m, msg),
                other => panic!("re-encoded open frame decodes as {other:?}"),
            }
        }
        ClientFrame::Signed(f) => {
            // Verifying is total: any tag under any token is a yes or a no.
            let _ = f.verify(&Token([0; 16]));
            let _ = f.verify(&Token([0xa5; 16]));
        }
    }
});
