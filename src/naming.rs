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
    if host.is_empty() {
        return Err(format!("`{node}` has an empty host part"));
    }
    Ok((name, host))
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
        for bad in ["demo", "@10.0.0.1", "de.mo@h", "demo@"] {
            assert!(parse_node(bad).is_err(), "{bad}");
        }
    }
}
