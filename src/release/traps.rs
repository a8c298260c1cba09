//! The release's traps for a node beamup names: what its env.sh (sourced by
//! mix's start script *after* beamup) and the environment would undo, with a
//! warning naming the fix, and where `-proto_dist inet6_tcp` must go for an
//! IPv6 node (once, and nowhere the user already put it).

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use super::Release;
use crate::environment::Environment;

/// The release kind, and its env.sh (read once: it runs after beamup), with
/// the warnings both deserve.
pub struct Traps {
    pub release: Release,
    /// beamup adds `-proto_dist inet6_tcp` (see `adds_inet6`).
    pub inet6: bool,
}

pub fn traps(
    release: &Release,
    env: &Environment,
    node: &str,
    address: IpAddr,
    warnings: &mut Vec<String>,
) -> Traps {
    let release = release.clone();
    let env_sh = release
        .env_sh()
        .and_then(|path| fs::read_to_string(&path).ok().map(|text| (path, text)));
    if let Some((path, text)) = &env_sh {
        warnings.extend(env_sh_warnings(path, text, node));
    }
    warnings.extend(distribution_warnings(env, node));
    let inet6 = adds_inet6(address, env, env_sh.as_ref().map(|(_, text)| text.as_str()));
    Traps { release, inet6 }
}

/// The variables beamup may put `-proto_dist inet6_tcp` into for an IPv6
/// node (mix: ELIXIR_ERL_OPTIONS, plain: ERL_AFLAGS; relx: its vm.args).
pub const INET6_VARIABLES: [&str; 2] = ["ELIXIR_ERL_OPTIONS", "ERL_AFLAGS"];

/// OTP 25 honours `-proto_dist inet6_tcp` only when it is given once (twice,
/// the node silently listens on IPv4): beamup adds it for an IPv6 node, and
/// nowhere when the user's environment or env.sh already does.
fn adds_inet6(address: IpAddr, env: &Environment, env_sh: Option<&str>) -> bool {
    address.is_ipv6() && !inet6_already_set(env, env_sh)
}

fn env_sh_warnings(env_sh: &Path, text: &str, node: &str) -> Vec<String> {
    super::env_sh_clobbers(text)
        .into_iter()
        .map(|c| {
            let var = c.variable;
            let fix = if var == "RELEASE_NODE" {
                "export RELEASE_NODE=${RELEASE_NODE:-...}".to_string()
            } else {
                "export RELEASE_DISTRIBUTION=${RELEASE_DISTRIBUTION:-name}".to_string()
            };
            let msg = format!(
                "{}, line {}: `{}` runs after beamup and overrides {var} (beamup set it for node \
                 {node}); change it to `{fix}` so beamup's value is kept",
                env_sh.display(),
                c.line,
                c.text
            );
            tracing::warn!("{msg}");
            msg
        })
        .collect()
}

fn distribution_warnings(env: &Environment, node: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = env.get("RELEASE_DISTRIBUTION").filter(|d| *d != "name") {
        let msg = format!(
            "RELEASE_DISTRIBUTION={d} in the environment is overridden with `name`: a node named \
             after an address needs long names (sname fails with `Can't set short node name!`, \
             and sname nodes reject address hosts with `Hostname ... is illegal`)"
        );
        tracing::warn!("{msg}");
        out.push(msg);
    }
    if let Some(n) = env.get("RELEASE_NODE").filter(|n| *n != node) {
        let msg = format!("RELEASE_NODE={n} in the environment is overridden with {node}");
        tracing::warn!("{msg}");
        out.push(msg);
    }
    out
}

/// Adds `-proto_dist inet6_tcp` to an options variable, keeping what it had.
pub fn with_inet6(existing: Option<&str>) -> String {
    match existing.map(str::trim).filter(|s| !s.is_empty()) {
        Some(e) if e.contains("inet6_tcp") => e.to_string(),
        Some(e) => format!("{e} -proto_dist inet6_tcp"),
        None => "-proto_dist inet6_tcp".to_string(),
    }
}

/// Whether `-proto_dist inet6_tcp` already reaches the VM without beamup:
/// through the environment, or through a mix release's env.sh (which runs
/// after beamup; Fly's generated env.sh sets ERL_AFLAGS this way).
fn inet6_already_set(env: &Environment, env_sh: Option<&str>) -> bool {
    let in_env = [
        "ERL_AFLAGS",
        "ERL_FLAGS",
        "ERL_ZFLAGS",
        "ELIXIR_ERL_OPTIONS",
    ]
    .iter()
    .any(|v| env.get(v).is_some_and(|x| x.contains("inet6_tcp")));
    let in_env_sh = env_sh.is_some_and(super::env_sh_sets_inet6);
    if in_env_sh {
        tracing::info!("env.sh sets -proto_dist inet6_tcp itself; beamup does not add it again");
    }
    in_env || in_env_sh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet6_options_keep_the_users() {
        assert_eq!(with_inet6(None), "-proto_dist inet6_tcp");
        assert_eq!(with_inet6(Some("  ")), "-proto_dist inet6_tcp");
        assert_eq!(with_inet6(Some("+S 2")), "+S 2 -proto_dist inet6_tcp");
        assert_eq!(
            with_inet6(Some("-proto_dist inet6_tcp +S 1")),
            "-proto_dist inet6_tcp +S 1"
        );
    }
}
