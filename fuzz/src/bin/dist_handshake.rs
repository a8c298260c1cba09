//! The client handshake with the local node and the epmd lookup before it,
//! fed what a node (or something on its port) sends back. The error a bad
//! reply turns into must never show the cookie.
use beamup::dist::peer_input::handshake;
use beamup::secret::Secret;
use beamup_fuzz::{COOKIE, LOCAL_NODE, OWN_NODE, Peer, block_on};
use erl_dist::epmd::EpmdClient;
use erl_dist::node::{Creation, LocalNode};

fn main() {
    let cookie = Secret::new(COOKIE);
    let own = OWN_NODE.parse().expect("a valid node name");
    afl::fuzz!(|data: &[u8]| {
        let me = LocalNode::new(Clone::clone(&own), Creation::new(5));
        let shaken = block_on(handshake(
            Peer::sending(data),
            me,
            &cookie,
            LOCAL_NODE,
            OWN_NODE,
        ));
        if let Err(e) = shaken {
            let shown = format!("{e} {e:?}");
            let planted = data.windows(COOKIE.len()).any(|w| w == COOKIE.as_bytes());
            assert!(
                planted || !shown.contains(COOKIE),
                "the error shows the cookie: {shown}"
            );
        }
        let _ = block_on(EpmdClient::new(Peer::sending(data)).get_node("demo"));
    });
}
