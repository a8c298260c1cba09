//! What the local node sends once connected, read as the session's reader
//! does: frames through `CheckedFrames` and erl_dist's receiver (ETF
//! decoding), ticks skipped, `{Ref, Result}` matched against our own
//! references, and the results decoded as `erlang:nodes/0` and
//! `net_kernel:connect_node/1` replies.
//!
//! BEAMUP_FUZZ_RAW=1 leaves `CheckedFrames` out, to see what it guards
//! against (fuzz/README.md).
use beamup::dist::peer_input::{CheckedFrames, decode_bool, decode_nodes, reply_of};
use beamup_fuzz::{OWN_NODE, Peer, block_on};
use erl_dist::message::{Message, Receiver, RecvError, channel};
use futures_io::{AsyncRead, AsyncWrite};

fn read_all<T: AsyncRead + AsyncWrite + Unpin>(mut rx: Receiver<T>) {
    loop {
        match block_on(rx.recv()) {
            Ok(Message::Tick) => {}
            Ok(message) => {
                if let Some((_key, result)) = reply_of(message, OWN_NODE) {
                    let _ = decode_nodes(result.clone());
                    let _ = decode_bool(result, "net_kernel:connect_node/1");
                }
            }
            Err(RecvError::Decode(_) | RecvError::UnsupportedOp { .. }) => {}
            Err(_) => break,
        }
    }
}

fn main() {
    let raw = std::env::var_os("BEAMUP_FUZZ_RAW").is_some();
    afl::fuzz!(|data: &[u8]| {
        let peer = Peer::sending(data);
        if raw {
            read_all(channel(peer, Default::default()).1);
        } else {
            read_all(channel(CheckedFrames::new(peer), Default::default()).1);
        }
    });
}
