//! `--peers-file`: the current peer set for other programs (a health check, a
//! sidecar, the release itself through `file:consult/1`). Written with
//! `safe_file::write` (whole, renamed into place: a reader sees the old or the
//! new content, never half of it), mode 0644: it never holds the cookie and is
//! meant for other programs, which may run as other users.

use std::fmt::Write as _;
use std::path::Path;

use crate::peer::{PeerStatus, PeersFormat};
use crate::safe_file;

/// The peers file's mode: readable by everyone (no secret inside).
pub const MODE: u32 = 0o644;

/// Renders and writes the peers file.
pub fn write(
    path: &Path,
    format: PeersFormat,
    own_node: &str,
    peers: &[PeerStatus],
    updated_unix: u64,
) -> anyhow::Result<()> {
    let text = render(format, own_node, peers, updated_unix);
    safe_file::write(path, text.as_bytes(), MODE)
}

pub fn render(
    format: PeersFormat,
    own_node: &str,
    peers: &[PeerStatus],
    updated_unix: u64,
) -> String {
    match format {
        PeersFormat::Lines => peers.iter().fold(String::new(), |mut out, p| {
            out.push_str(&p.node);
            out.push('\n');
            out
        }),
        PeersFormat::Json => {
            let peers: Vec<serde_json::Value> = peers
                .iter()
                .map(|p| {
                    let mut entry = serde_json::json!({"node": p.node, "state": p.state.name()});
                    if let (Some(reason), Some(map)) = (p.state.reason(), entry.as_object_mut()) {
                        map.insert("reason".into(), reason.into());
                    }
                    entry
                })
                .collect();
            let doc =
                serde_json::json!({"node": own_node, "peers": peers, "updated": updated_unix});
            format!("{doc}\n")
        }
        PeersFormat::Erlang => {
            let list = peers
                .iter()
                .map(|p| quoted_atom(&p.node))
                .collect::<Vec<_>>()
                .join(", ");
            let mut out = String::new();
            let _ = writeln!(out, "{{node, {}}}.", quoted_atom(own_node));
            let _ = writeln!(out, "{{peers, [{list}]}}.");
            out
        }
    }
}

/// `'demo@10.0.0.1'`: node names hold `@`, `.` and `:` so they must be
/// quoted; `\` and `'` are escaped (Erlang reference manual, "Atom").
fn quoted_atom(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    use crate::peer::PeerState;

    fn entries(nodes: &[(&str, PeerState)]) -> Vec<PeerStatus> {
        nodes
            .iter()
            .map(|(node, state)| PeerStatus {
                node: node.to_string(),
                state: state.clone(),
            })
            .collect()
    }

    #[test]
    fn formats() {
        let two = entries(&[
            ("demo@10.0.0.2", PeerState::Connected),
            ("demo@fd00::3", PeerState::Discovered),
        ]);
        let failed = entries(&[("demo@10.0.0.2", PeerState::Failed("timeout".into()))]);
        let table: [(PeersFormat, &[PeerStatus], &str); 7] = [
            (PeersFormat::Lines, &two, "demo@10.0.0.2\ndemo@fd00::3\n"),
            (PeersFormat::Lines, &[], ""),
            (
                PeersFormat::Json,
                &two,
                "{\"node\":\"demo@10.0.0.1\",\"peers\":[{\"node\":\"demo@10.0.0.2\",\"state\":\
                 \"connected\"},{\"node\":\"demo@fd00::3\",\"state\":\"discovered\"}],\
                 \"updated\":1700000000}\n",
            ),
            (
                PeersFormat::Json,
                &failed,
                "{\"node\":\"demo@10.0.0.1\",\"peers\":[{\"node\":\"demo@10.0.0.2\",\"reason\":\
                 \"timeout\",\"state\":\"failed\"}],\"updated\":1700000000}\n",
            ),
            (
                PeersFormat::Json,
                &[],
                "{\"node\":\"demo@10.0.0.1\",\"peers\":[],\"updated\":1700000000}\n",
            ),
            (
                PeersFormat::Erlang,
                &two,
                "{node, 'demo@10.0.0.1'}.\n{peers, ['demo@10.0.0.2', 'demo@fd00::3']}.\n",
            ),
            (
                PeersFormat::Erlang,
                &[],
                "{node, 'demo@10.0.0.1'}.\n{peers, []}.\n",
            ),
        ];
        for (format, peers, want) in table {
            assert_eq!(
                render(format, "demo@10.0.0.1", peers, 1_700_000_000),
                want,
                "{format:?}"
            );
        }
    }

    #[test]
    fn atoms_are_escaped() {
        let table = [
            ("demo@10.0.0.1", "'demo@10.0.0.1'"),
            ("it's", "'it\\'s'"),
            ("a\\b", "'a\\\\b'"),
        ];
        for (text, want) in table {
            assert_eq!(quoted_atom(text), want);
        }
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("beamup-peers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn written_whole_with_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = temp_dir("mode");
        let path = dir.join("peers");
        let peers = entries(&[("demo@10.0.0.2", PeerState::Discovered)]);
        write(&path, PeersFormat::Lines, "demo@10.0.0.1", &peers, 0).expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "demo@10.0.0.2\n"
        );
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o7777, MODE);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// The Erlang format is what `file:consult/1` of a real OTP reads.
    #[test]
    fn erlang_format_reads_back_with_file_consult() {
        let dir = temp_dir("consult");
        let path = dir.join("peers.config");
        let peers = entries(&[
            ("demo@10.0.0.2", PeerState::Discovered),
            ("demo@fd00::3", PeerState::Discovered),
        ]);
        write(&path, PeersFormat::Erlang, "demo@10.0.0.1", &peers, 0).expect("write");
        let eval = format!(
            "{{ok, Terms}} = file:consult(\"{}\"), \
             {{node, N}} = lists:keyfind(node, 1, Terms), \
             {{peers, Ps}} = lists:keyfind(peers, 1, Terms), \
             io:format(\"~s|~s~n\", [N, lists:join(\",\", [atom_to_list(P) || P <- Ps])]), \
             halt().",
            path.display()
        );
        let out = Command::new("erl")
            .args(["-noshell", "-eval", &eval])
            .output()
            .expect("erl is not installed: apt-get install erlang-nox");
        assert!(
            out.status.success(),
            "erl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "demo@10.0.0.1|demo@10.0.0.2,demo@fd00::3"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
