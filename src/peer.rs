//! A peer and its state, as beamup reports it: the one type the distribution
//! client fills in (`--connect`), the reporter logs transitions of, and the
//! peers file writes (in a [`PeersFormat`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum PeerState {
    /// Found by discovery; beamup does not connect peers (no `--connect`).
    Discovered,
    /// In the local node's `erlang:nodes()` (or the local node itself), or
    /// `net_kernel:connect_node/1` just returned true.
    Connected,
    /// `connect_node` is still running on the node (connection setup can take
    /// up to net_setuptime, 7 s by default); the next sync sees the outcome.
    Connecting,
    Failed(String),
    /// Not asked: the local node is not reachable right now.
    Unknown,
}

impl PeerState {
    /// The name the peers file shows.
    pub fn name(&self) -> &'static str {
        match self {
            PeerState::Discovered => "discovered",
            PeerState::Connected => "connected",
            PeerState::Connecting => "connecting",
            PeerState::Failed(_) => "failed",
            PeerState::Unknown => "unknown",
        }
    }

    /// Why connecting failed.
    pub fn reason(&self) -> Option<&str> {
        match self {
            PeerState::Failed(reason) => Some(reason),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub node: String,
    #[serde(flatten)]
    pub state: PeerState,
}

/// `--peers-format`: one node per line, JSON, or Erlang terms for `file:consult/1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeersFormat {
    #[default]
    Lines,
    Json,
    Erlang,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialise_and_name_themselves() {
        let status = |node: &str, state| PeerStatus {
            node: node.into(),
            state,
        };
        // (status, JSON, name, reason)
        let cases = [
            (
                status("b@10.0.0.2", PeerState::Connected),
                r#"{"node":"b@10.0.0.2","state":"connected"}"#,
                "connected",
                None,
            ),
            (
                status("c@fd00::3", PeerState::Failed("down".into())),
                r#"{"node":"c@fd00::3","state":"failed","detail":"down"}"#,
                "failed",
                Some("down"),
            ),
            (
                status("d@x", PeerState::Connecting),
                r#"{"node":"d@x","state":"connecting"}"#,
                "connecting",
                None,
            ),
            (
                status("e@x", PeerState::Unknown),
                r#"{"node":"e@x","state":"unknown"}"#,
                "unknown",
                None,
            ),
            (
                status("f@x", PeerState::Discovered),
                r#"{"node":"f@x","state":"discovered"}"#,
                "discovered",
                None,
            ),
        ];
        for (status, want, name, reason) in cases {
            let json = serde_json::to_string(&status).expect("serialise");
            assert_eq!(json, want);
            let back: PeerStatus = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, status);
            assert_eq!(status.state.name(), name);
            assert_eq!(status.state.reason(), reason);
        }
    }
}
