//! What kind of release the command starts, and what each kind needs:
//! - mix (Elixir >= 1.9): reads RELEASE_NODE / RELEASE_DISTRIBUTION /
//!   RELEASE_COOKIE / RELEASE_VM_ARGS, but sources `releases/<vsn>/env.sh`
//!   *after* beamup, so an unconditional export there undoes beamup's name;
//! - relx (rebar3): takes the node name from exactly one `-name`/`-sname` line
//!   of the vm.args at VMARGS_PATH, the cookie from its `-setcookie` line
//!   (RELX_COOKIE only reaches the script's own rpc helpers);
//! - anything else: only the exported variables.

mod subcommands;
mod traps;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use self::subcommands::{Call, Op, classify, subcommand_for};
pub use self::traps::{INET6_VARIABLES, Traps, traps, with_inet6};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Mix,
    Relx,
    Plain,
}

#[derive(Debug, Clone)]
pub struct Release {
    pub kind: Kind,
    /// `<root>` of `<root>/bin/<name>`.
    pub root: Option<PathBuf>,
    /// The release version directory, `<root>/releases/<vsn>`.
    pub vsn_dir: Option<PathBuf>,
}

impl Release {
    /// A plain command (or none): no release root, no kind-specific files.
    pub fn plain() -> Release {
        Release {
            kind: Kind::Plain,
            root: None,
            vsn_dir: None,
        }
    }
}

/// Looks at the start script (its first 64 KiB) to tell mix from relx.
pub fn detect(program: &Path) -> Release {
    let plain = Release::plain();
    let Some(root) = program.parent().and_then(|bin| bin.parent()) else {
        return plain;
    };
    let Some(head) = script_head(program) else {
        return plain;
    };
    let kind = if head.contains("RELEASE_DISTRIBUTION") && head.contains("env.sh") {
        Kind::Mix
    } else if head.contains("VMARGS_PATH") && head.contains("RELX_") {
        Kind::Relx
    } else {
        return plain;
    };
    let vsn_dir = release_version(root).map(|vsn| root.join("releases").join(vsn));
    Release {
        kind,
        root: Some(root.to_path_buf()),
        vsn_dir,
    }
}

/// The first 64 KiB of `program` when it is a script (`#!`): mix and relx
/// start scripts are shell scripts, and a binary command (erl, a launcher) is
/// not read past its first two bytes.
fn script_head(program: &Path) -> Option<String> {
    let mut file = fs::File::open(program).ok()?;
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic).ok()?;
    if &magic != b"#!" {
        return None;
    }
    let mut bytes = magic.to_vec();
    file.take(64 * 1024).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `releases/start_erl.data` holds `<erts vsn> <release vsn>` for both kinds.
fn release_version(root: &Path) -> Option<String> {
    let data = fs::read_to_string(root.join("releases").join("start_erl.data")).ok()?;
    data.split_whitespace().nth(1).map(str::to_string)
}

impl Release {
    pub fn env_sh(&self) -> Option<PathBuf> {
        match self.kind {
            Kind::Mix => self.vsn_dir.as_ref().map(|d| d.join("env.sh")),
            _ => None,
        }
    }

    /// The release's own vm.args (relx): `vm.args.src` when present (relx
    /// templates it; beamup renders it with the same syntax), else `vm.args`.
    pub fn vm_args(&self) -> Option<PathBuf> {
        let dir = self.vsn_dir.as_ref()?;
        [dir.join("vm.args.src"), dir.join("vm.args")]
            .into_iter()
            .find(|p| p.is_file())
    }

    /// `releases/COOKIE` (mix writes one; the cookie of last resort for --connect).
    pub fn cookie_file(&self) -> Option<PathBuf> {
        let f = self.root.as_ref()?.join("releases").join("COOKIE");
        f.is_file().then_some(f)
    }
}

/// A line of env.sh that overrides what beamup exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clobber {
    pub line: usize,
    pub variable: &'static str,
    pub text: String,
}

/// Finds unconditional `export RELEASE_NODE=...` / `RELEASE_DISTRIBUTION=...`
/// lines. `${RELEASE_NODE:-...}` keeps beamup's value and is fine, and so is
/// `RELEASE_DISTRIBUTION=name`, which agrees with beamup.
pub fn env_sh_clobbers(text: &str) -> Vec<Clobber> {
    let mut found = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        let assignment = line.strip_prefix("export ").unwrap_or(line).trim_start();
        for variable in ["RELEASE_NODE", "RELEASE_DISTRIBUTION"] {
            let Some(value) = assignment
                .strip_prefix(variable)
                .and_then(|rest| rest.strip_prefix('='))
            else {
                continue;
            };
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            let keeps_ours = value.starts_with(&format!("${{{variable}:-"))
                || value.starts_with(&format!("${{{variable}-"));
            let agrees = variable == "RELEASE_DISTRIBUTION" && value == "name";
            if !keeps_ours && !agrees {
                found.push(Clobber {
                    line: i + 1,
                    variable,
                    text: line.to_string(),
                });
            }
        }
    }
    found
}

/// Whether env.sh passes `-proto_dist inet6_tcp` itself (Fly's generated
/// env.sh sets ERL_AFLAGS so): a second one would make OTP 25 fall back to
/// IPv4.
pub fn env_sh_sets_inet6(text: &str) -> bool {
    text.lines()
        .any(|l| !l.trim_start().starts_with('#') && l.contains("inet6_tcp"))
}

/// What `adjust_vm_args` changed, for warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjusted {
    pub text: String,
    pub notes: Vec<String>,
}

/// Makes a vm.args agree with beamup's node name.
/// relx: exactly one `-name <node>` line (relx requires one and `eval`s it),
/// `-proto_dist inet6_tcp` for an IPv6 node (relx's own rpc reads it from
/// vm.args), and the cookie in `-setcookie` when beamup has one.
/// mix: no `-name`/`-sname` line (mix names the node from RELEASE_NODE).
pub fn adjust_vm_args(
    kind: Kind,
    text: &str,
    origin: &str,
    node: &str,
    ipv6: bool,
    cookie: Option<&str>,
) -> Adjusted {
    let mut notes = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut has_proto = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let flag = line.split_whitespace().next().unwrap_or("");
        match (kind, flag) {
            (Kind::Mix | Kind::Relx, "-name" | "-sname") => {
                let want = format!("-name {node}");
                if line != want {
                    let what = if kind == Kind::Mix {
                        "removed: the mix start script names the node from RELEASE_NODE".to_string()
                    } else {
                        format!("replaced by `{want}`")
                    };
                    notes.push(format!("{origin}, line {}: `{line}` {what}", i + 1));
                }
            }
            (Kind::Relx, "-setcookie") if cookie.is_some() => {}
            (_, "-proto_dist") => {
                has_proto = true;
                lines.push(raw.to_string());
            }
            _ => lines.push(raw.to_string()),
        }
    }
    if kind == Kind::Relx {
        let mut head = vec![format!("-name {node}")];
        if let Some(c) = cookie {
            head.push(format!("-setcookie {c}"));
        }
        if ipv6 && !has_proto {
            head.push("-proto_dist inet6_tcp".to_string());
        }
        head.extend(lines);
        lines = head;
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Adjusted { text, notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_clobbering_env_sh_lines() {
        let env_sh = "\
#!/bin/sh
# export RELEASE_NODE=commented
export RELEASE_NODE=demo@localhost
export RELEASE_NODE=${RELEASE_NODE:-demo@127.0.0.1}
RELEASE_DISTRIBUTION=sname
export RELEASE_DISTRIBUTION=name
export RELEASE_NODE=\"${FLY_APP_NAME}@${FLY_PRIVATE_IP}\"
export RELEASE_NODE_EXTRA=x
";
        let found: Vec<(usize, &str)> = env_sh_clobbers(env_sh)
            .iter()
            .map(|c| (c.line, c.variable))
            .collect();
        assert_eq!(
            found,
            [
                (3, "RELEASE_NODE"),
                (5, "RELEASE_DISTRIBUTION"),
                (7, "RELEASE_NODE")
            ]
        );
    }

    #[test]
    fn relx_vm_args_get_one_name_line() {
        let src = "-sname rdemo\n\n-setcookie rdemo_cookie\n+K true\n";
        let a = adjust_vm_args(Kind::Relx, src, "vm.args", "demo@10.0.0.1", false, None);
        assert_eq!(
            a.text,
            "-name demo@10.0.0.1\n\n-setcookie rdemo_cookie\n+K true\n"
        );
        assert_eq!(a.notes.len(), 1);
        assert!(a.notes[0].contains("line 1: `-sname rdemo` replaced by `-name demo@10.0.0.1`"));

        let a = adjust_vm_args(Kind::Relx, src, "v", "demo@fd00::1", true, Some("s3cret"));
        assert_eq!(
            a.text,
            "-name demo@fd00::1\n-setcookie s3cret\n-proto_dist inet6_tcp\n\n+K true\n"
        );
        assert!(!a.notes.iter().any(|n| n.contains("s3cret")));
    }

    #[test]
    fn mix_vm_args_lose_name_lines() {
        let src = "## comment\n-name x@y\n+K true\n";
        let a = adjust_vm_args(Kind::Mix, src, "t", "demo@10.0.0.1", true, Some("c"));
        assert_eq!(a.text, "## comment\n+K true\n");
        assert!(a.notes[0].contains("removed"));
        let same = adjust_vm_args(Kind::Plain, src, "t", "demo@10.0.0.1", false, None);
        assert_eq!(same.text, src);
        assert!(same.notes.is_empty());
    }
}
