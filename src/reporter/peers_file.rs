//! `--peers-file`: the current peer set for other programs (a health check, a
//! sidecar, the release itself through `file:consult/1`). Written whole to a
//! temporary file in the same directory and renamed over the old one, so a
//! reader sees the old or the new content, never half of it. It never holds
//! the cookie.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::PeersFormat;

/// A reported peer and its state: the `--connect` state when connecting,
/// else [`DISCOVERED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub node: String,
    pub state: String,
    /// Why connecting failed (JSON only).
    pub reason: Option<String>,
}

pub const DISCOVERED: &str = "discovered";

pub fn render(format: PeersFormat, own_node: &str, peers: &[Entry], updated_unix: u64) -> String {
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
                    let mut entry = serde_json::json!({"node": p.node, "state": p.state});
                    if let (Some(reason), Some(map)) = (&p.reason, entry.as_object_mut()) {
                        map.insert("reason".into(), reason.clone().into());
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

/// Writes `contents` to `path` atomically (temp file + fsync + rename).
pub fn write_atomic(path: &Path, contents: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("--peers-file {} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.beamup-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)
            .with_context(|| format!("while creating {}", tmp.display()))?;
        file.write_all(contents.as_bytes())
            .with_context(|| format!("while writing {}", tmp.display()))?;
        // Readable by whoever reads the peers (no secret inside).
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("while setting the mode of {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("while syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("while renaming {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn entries(nodes: &[(&str, &str)]) -> Vec<Entry> {
        nodes
            .iter()
            .map(|(node, state)| Entry {
                node: node.to_string(),
                state: state.to_string(),
                reason: state.strip_prefix("failed: ").map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn formats() {
        let two = entries(&[("demo@10.0.0.2", "connected"), ("demo@fd00::3", DISCOVERED)]);
        let mut failed = entries(&[("demo@10.0.0.2", "failed: timeout")]);
        failed[0].state = "failed".into();
        let table: [(PeersFormat, &[Entry], &str); 7] = [
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
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = temp_dir("atomic");
        let path = dir.join("peers");
        for text in ["first\n", "second\n"] {
            write_atomic(&path, text).expect("write");
            assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        }
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["peers"]);
        let err = write_atomic(&dir.join("missing/peers"), "x").expect_err("no such dir");
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// The Erlang format is what `file:consult/1` of a real OTP reads.
    #[test]
    fn erlang_format_reads_back_with_file_consult() {
        let dir = temp_dir("consult");
        let path = dir.join("peers.config");
        let peers = entries(&[("demo@10.0.0.2", DISCOVERED), ("demo@fd00::3", DISCOVERED)]);
        write_atomic(
            &path,
            &render(PeersFormat::Erlang, "demo@10.0.0.1", &peers, 0),
        )
        .expect("write");
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
