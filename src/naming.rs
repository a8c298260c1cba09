//! Node names: `basename@address`, always long names.
//!
//! A short name (`-sname`) cannot have an address as its host (OTP:
//! `Can't set short node name!`), and a short-names node cannot talk to an
//! address-named one (`** Hostname 10.0.1.6 is illegal **`), so beamup always
//! uses long names.

use std::net::IpAddr;
use std::path::Path;

/// The name part may hold only letters, digits, `_` and `-` (mix release rule).
pub fn validate_basename(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the node's name part is empty: give --basename NAME".into());
    }
    if name.len() > 200 {
        return Err(format!(
            "the node's name part `{name}` is longer than 200 characters: give a shorter --basename"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "the node's name part `{name}` contains `{bad}`: only letters, digits, `_` and `-` \
             are allowed; give --basename with a valid name"
        ));
    }
    Ok(())
}

/// The host part of a node name for this address. Rust's canonical IPv6 text
/// (compressed, lower case, no brackets) is what Erlang accepts after
/// `-name x@` with `-proto_dist inet6_tcp`; discovery formats peers the same
/// way so names compare equal.
pub fn host_part(address: IpAddr) -> String {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

pub fn node_name(basename: &str, address: IpAddr) -> String {
    format!("{basename}@{}", host_part(address))
}

/// `<root>/bin/<name>` → `<name>` (the shape of mix and relx start scripts).
pub fn basename_from_command(program: &str) -> Option<String> {
    let path = Path::new(program);
    let parent = path.parent()?;
    if parent.file_name()? != "bin" {
        return None;
    }
    Some(path.file_name()?.to_str()?.to_string())
}

/// Splits `name@host` (as in `--peers`) and checks the name part.
pub fn parse_node(node: &str) -> Result<(&str, &str), String> {
    let (name, host) = node.split_once('@').ok_or_else(|| {
        format!("`{node}` is not a node name: write name@host, e.g. demo@10.0.0.2")
    })?;
    validate_basename(name).map_err(|e| format!("in `{node}`: {e}"))?;
    // A node name is an atom, and atoms hold at most 255 characters.
    if node.len() > 255 {
        return Err(format!(
            "`{node}` is longer than 255 characters, the longest node name Erlang accepts"
        ));
    }
    if host.is_empty() {
        return Err(format!("`{node}` has an empty host part"));
    }
    // The host ends up in the peers file (one node per line, Erlang terms)
    // and in `net_kernel:connect_node/1`: an address or a DNS name only.
    if host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
        return Err(format!(
            "in `{node}`: the host part `{}` is neither an IP address nor a DNS name",
            host.escape_debug()
        ));
    }
    Ok((name, host))
}

/// What [`is_dns_name`] accepts, in the words error messages use.
pub const DNS_NAME_RULE: &str = "at most 253 bytes of letters, digits, `-`, `_` and dots";

/// A DNS name as beamup accepts it from users and from metadata APIs: at most
/// 253 bytes (RFC 1035, without the root dot), labels of 1 to 63 letters,
/// digits, `-` or `_` (`_erl._tcp` SRV names), an optional trailing dot. So no
/// NUL, space or newline can reach a vm.args line, a query or a peers file.
pub fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The hidden node beamup's reporter appears as: unique per container (one
/// reporter per VM, pids differ between restarts) and on the own address, so
/// a long-names node accepts it.
pub fn hidden_node_name(own_address: IpAddr) -> String {
    format!("beamup-{}@{}", std::process::id(), host_part(own_address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basename_rules() {
        for ok in ["demo", "my_app", "web-1", "A9"] {
            assert!(validate_basename(ok).is_ok(), "{ok}");
        }
        for bad in ["", "my.app", "a@b", "x y", "ünï", "a/b"] {
            assert!(validate_basename(bad).is_err(), "{bad}");
        }
        assert!(validate_basename(&"a".repeat(201)).is_err());
    }

    #[test]
    fn node_names() {
        let table = [
            ("10.0.1.6", "demo@10.0.1.6"),
            ("fd00:0:0:0:0:0:0:1", "demo@fd00::1"),
            ("FDAA:0:1::A", "demo@fdaa:0:1::a"),
            ("::ffff:10.1.2.3", "demo@10.1.2.3"),
        ];
        for (ip, want) in table {
            assert_eq!(node_name("demo", ip.parse().unwrap()), want);
        }
    }

    #[test]
    fn basename_inference() {
        let table = [
            ("/app/bin/my_app", Some("my_app")),
            ("bin/demo", Some("demo")),
            ("./_build/prod/rel/demo/bin/demo", Some("demo")),
            ("/usr/bin/env", Some("env")),
            ("/app/my_app", None),
            ("demo", None),
        ];
        for (cmd, want) in table {
            assert_eq!(basename_from_command(cmd).as_deref(), want, "{cmd}");
        }
    }

    #[test]
    fn peer_nodes() {
        assert_eq!(parse_node("demo@10.0.0.2").unwrap(), ("demo", "10.0.0.2"));
        assert_eq!(parse_node("demo@fd00::2").unwrap(), ("demo", "fd00::2"));
        assert_eq!(
            parse_node("demo@web-1.svc.").unwrap(),
            ("demo", "web-1.svc.")
        );
        for bad in [
            "demo",
            "@10.0.0.1",
            "de.mo@h",
            "demo@",
            "demo@a\nb",
            "demo@h'x",
            "demo@a..b",
            "demo@a b",
        ] {
            assert!(parse_node(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_names() {
        let long_label = "a".repeat(64);
        let long_name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(long_name.len(), 253);
        let table = [
            ("web", true),
            ("tasks.web.", true),
            ("_erl._tcp.demo.svc.cluster.local", true),
            (long_name.as_str(), true),
            (&format!("{long_name}x"), false),
            (&long_label, false),
            ("", false),
            (".", false),
            ("a..b", false),
            ("web\n-eval x", false),
            ("web\0", false),
            ("wéb", false),
        ];
        for (name, want) in table {
            assert_eq!(is_dns_name(name), want, "{name:?}");
        }
    }

    #[test]
    fn hidden_name_on_own_address() {
        let pid = std::process::id();
        let table = [
            ("10.0.0.1", format!("beamup-{pid}@10.0.0.1")),
            ("fd00:0::1", format!("beamup-{pid}@fd00::1")),
        ];
        for (ip, want) in table {
            assert_eq!(hidden_node_name(ip.parse().expect("ip")), want);
        }
    }
}
