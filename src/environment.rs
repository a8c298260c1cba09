//! The process environment as beamup read it at start, and the directory
//! derived from it where beamup keeps a node's files.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use erl_dist::epmd::DEFAULT_EPMD_PORT;

/// Moves epmd off 4369: epmd listens there and the VM asks its own and its
/// peers' epmds there (all nodes of a cluster share it).
const EPMD_PORT_VAR: &str = "ERL_EPMD_PORT";

/// The process environment as beamup read it at start. Its Debug shows the
/// names only: RELEASE_COOKIE may be among the values.
#[derive(Clone, Default)]
pub struct Environment {
    pub vars: HashMap<String, String>,
    /// The raw environment, passed on to the release unchanged but for exports.
    pub raw: Vec<(OsString, OsString)>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Environment")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl Environment {
    pub fn capture() -> Self {
        let raw: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let vars = raw
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
            .collect();
        Environment { vars, raw }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The environment with `vars` set, replacing same-named variables: what
    /// an exec'd command gets.
    pub fn overlay<'v>(
        &self,
        vars: impl Iterator<Item = (&'v str, &'v str)> + Clone,
    ) -> Vec<(OsString, OsString)> {
        let mut out: Vec<(OsString, OsString)> = self
            .raw
            .iter()
            .filter(|(k, _)| !vars.clone().any(|(name, _)| k.as_os_str() == name))
            .cloned()
            .collect();
        out.extend(vars.map(|(k, v)| (OsString::from(k), OsString::from(v))));
        out
    }

    /// The port of the epmds the release's VM asks, its own and its peers':
    /// ERL_EPMD_PORT, 4369 when unset. A value no VM could use is an error
    /// that names the variable.
    pub fn epmd_port(&self) -> Result<u16, String> {
        // Raw: a value that is not UTF-8 is named too, not taken for unset.
        let Some(raw) = self.raw(EPMD_PORT_VAR) else {
            return Ok(DEFAULT_EPMD_PORT);
        };
        raw.to_str()
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|&port| port != 0)
            .ok_or_else(|| {
                format!(
                    "{EPMD_PORT_VAR}={raw:?} is not a port: give a number from 1 to 65535 (the \
                     same on every node of the cluster), or unset it for epmd's 4369"
                )
            })
    }

    /// PATH as the OS gave it (possibly not UTF-8).
    pub fn raw_path(&self) -> Option<&OsStr> {
        self.raw("PATH")
    }

    /// A variable as the OS gave it (possibly not UTF-8).
    fn raw(&self, name: &str) -> Option<&OsStr> {
        self.raw
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_os_str())
    }

    /// Where rendered files go: RELEASE_TMP, else $TMPDIR/beamup/<node> —
    /// outside the release, so a read-only release directory keeps working, and
    /// one directory per node, so two beamups sharing /tmp never overwrite each
    /// other's vm.args.
    pub fn render_dir(&self, node: &str) -> PathBuf {
        if let Some(t) = self.get("RELEASE_TMP").filter(|t| !t.is_empty()) {
            return PathBuf::from(t);
        }
        let tmp = self
            .get("TMPDIR")
            .filter(|t| !t.is_empty())
            .unwrap_or("/tmp");
        Path::new(tmp).join("beamup").join(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_dir_prefers_release_tmp() {
        let mut env = Environment::default();
        let n = "demo@10.0.0.1";
        assert_eq!(
            env.render_dir(n),
            PathBuf::from("/tmp/beamup/demo@10.0.0.1")
        );
        env.vars.insert("TMPDIR".into(), "/var/tmp".into());
        assert_eq!(
            env.render_dir(n),
            PathBuf::from("/var/tmp/beamup/demo@10.0.0.1")
        );
        env.vars.insert("RELEASE_TMP".into(), "/run/app".into());
        assert_eq!(env.render_dir(n), PathBuf::from("/run/app"));
    }

    #[test]
    fn epmd_port_is_erl_epmd_port_or_4369() {
        let with = |value: &str| Environment {
            raw: vec![(EPMD_PORT_VAR.into(), value.into())],
            ..Environment::default()
        };
        assert_eq!(Environment::default().epmd_port(), Ok(4369));
        assert_eq!(with("4370").epmd_port(), Ok(4370));
        for bad in ["", "0", "65536", "-1", " 4370", "epmd"] {
            let e = with(bad).epmd_port().expect_err(bad);
            assert!(
                e.contains("ERL_EPMD_PORT") && e.contains("1 to 65535"),
                "{e}"
            );
        }
    }
}
