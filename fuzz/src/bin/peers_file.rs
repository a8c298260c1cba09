//! `reporter::render`, the peers file in its three formats: each must read
//! back as the peers that were written. Lines of the input are the peers
//! (`node`, or `node\treason` for a failed one); node names as discovery makes them
//! never hold a newline, so the `lines` format is checked only then.
use beamup::cli::PeersFormat;
use beamup::peer::{PeerState, PeerStatus};
use beamup::reporter::render;

fn entries(text: &str) -> Vec<PeerStatus> {
    text.split('\n')
        .skip(1)
        .map(|line| match line.split_once('\t') {
            Some((node, reason)) => PeerStatus {
                node: node.to_string(),
                state: PeerState::Failed(reason.to_string()),
            },
            None => PeerStatus {
                node: line.to_string(),
                state: PeerState::Connected,
            },
        })
        .collect()
}

/// Reads `{node, 'Own'}.\n{peers, ['a', 'b']}.\n` back, as `file:consult/1`
/// would (quoted atoms escape `\\` and `\'`); None if it is not that shape.
fn consult(text: &str) -> Option<(String, Vec<String>)> {
    let mut rest = text.strip_prefix("{node, ")?;
    let own = atom(&mut rest)?;
    rest = rest.strip_prefix("}.\n{peers, [")?;
    let mut peers = Vec::new();
    while !rest.starts_with(']') {
        if !peers.is_empty() {
            rest = rest.strip_prefix(", ")?;
        }
        peers.push(atom(&mut rest)?);
    }
    (rest == "]}.\n").then_some((own, peers))
}

fn atom(rest: &mut &str) -> Option<String> {
    let mut chars = rest.strip_prefix('\'')?.chars();
    let mut out = String::new();
    loop {
        match chars.next()? {
            '\\' => out.push(chars.next()?),
            '\'' => break,
            c => out.push(c),
        }
    }
    *rest = chars.as_str();
    Some(out)
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let own = text.split('\n').next().unwrap_or("");
        let peers = entries(text);
        let nodes: Vec<&str> = peers.iter().map(|p| p.node.as_str()).collect();

        let json = render(PeersFormat::Json, own, &peers, 7);
        let doc: serde_json::Value =
            serde_json::from_str(&json).expect("the JSON peers file parses");
        assert_eq!(doc["node"], own);
        let read: Vec<&str> = doc["peers"]
            .as_array()
            .expect("peers is an array")
            .iter()
            .map(|p| p["node"].as_str().expect("node is a string"))
            .collect();
        assert_eq!(read, nodes);

        let erlang = render(PeersFormat::Erlang, own, &peers, 7);
        let (read_own, read_peers) = consult(&erlang).expect("the erlang peers file reads back");
        assert_eq!(read_own, own);
        assert_eq!(read_peers, nodes);

        let lines = render(PeersFormat::Lines, own, &peers, 7);
        if !nodes.iter().any(|n| n.contains('\n')) {
            assert_eq!(lines.lines().count(), nodes.len());
        }
    });
}
