//! Property tests of the parsers and renderers that read user and network
//! input: the template renderer, durations, `--ip` sources, vm.args
//! adjustment, node-name rules and the peers-file writers. Each property is
//! something the README promises; proptest looks for an input that breaks it.

use std::net::IpAddr;
use std::time::Duration;

use beamup::address::Source;
use beamup::cli::PeersFormat;
use beamup::peer::{PeerState, PeerStatus};
use beamup::release::{Kind, adjust_vm_args};
use beamup::reporter::render as render_peers;
use beamup::{duration, naming, template};
use proptest::prelude::*;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u16; 8]>().prop_map(IpAddr::from),
    ]
}

fn basename() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,200}"
}

/// Text with many `$`, `{`, `}`, `:-` and newlines, where the renderer's
/// cases meet.
fn template_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("$".to_string()),
            Just("${".to_string()),
            Just("}".to_string()),
            Just(":-".to_string()),
            Just("\n".to_string()),
            "[A-Z_]{1,3}",
            "[ -~]{0,4}",
            ".{0,2}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

fn vars(name: &str) -> Option<String> {
    match name.len() % 3 {
        0 => None,
        1 => Some(String::new()),
        _ => Some(format!("<{name}>")),
    }
}

proptest! {
    // Failures are printed with their minimal input; no regression files are
    // written into the source tree.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    // ----- templates --------------------------------------------------------

    /// Any text renders or fails with an error; never a panic, and an error
    /// names a line that exists.
    #[test]
    fn template_total(text in template_text()) {
        match template::render(&text, "t", vars) {
            Ok(out) => prop_assert!(out.len() <= template::MAX_SIZE),
            Err(e) => prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1)),
        }
    }

    /// `$$` is a literal `$`: escaping every `$` of any text gives it back.
    #[test]
    fn template_escape_round_trips(text in ".{0,64}") {
        let escaped = text.replace('$', "$$");
        prop_assert_eq!(template::render(&escaped, "t", |_| None).unwrap(), text);
    }

    /// A value is inserted as it is, never expanded again (no `$(...)`, no
    /// second round of `${...}`).
    #[test]
    fn template_values_are_inert(value in ".{0,64}", default in "[^$}\n]{0,16}") {
        let out = template::render("[${V}]", "t", |_| Some(value.clone())).unwrap();
        prop_assert_eq!(out, format!("[{value}]"));
        let out = template::render(&format!("${{U:-{default}}}"), "t", |_| None).unwrap();
        prop_assert_eq!(out, default);
    }

    /// `${A:-...${...}` is always an error, never a literal `${`.
    #[test]
    fn template_nested_defaults_fail(pre in "[a-z]{0,4}", inner in "[A-Z]{1,4}") {
        let text = format!("${{A:-{pre}${{{inner}}}}}");
        prop_assert!(template::render(&text, "t", |_| None).is_err());
    }

    // ----- durations --------------------------------------------------------

    /// Any input parses or fails; never a panic, whatever the digits.
    #[test]
    fn duration_total(input in "[0-9.]{0,40}(ms|s|m|h|x|)") {
        let _ = duration::parse(&input);
        for bounds in [duration::INTERVAL, duration::DNS_TIMEOUT, duration::METADATA_TIMEOUT] {
            if let Ok(d) = bounds.parse(&input) {
                prop_assert!(d >= bounds.min && d <= bounds.max, "{} {input} -> {d:?}", bounds.flag);
            }
        }
    }

    /// Whole numbers of each unit mean what they say.
    #[test]
    fn duration_units(n in 1u64..100_000, unit in 0usize..4) {
        let (suffix, ms) = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)][unit];
        prop_assert_eq!(duration::parse(&format!("{n}{suffix}")).unwrap(), Duration::from_millis(n * ms));
    }

    // ----- --ip sources -----------------------------------------------------

    /// Any `--ip` value parses or fails, and a parsed source prints back as a
    /// value that parses to the same source (what `inspect` shows can be
    /// pasted back).
    #[test]
    fn sources_round_trip(
        kind in prop_oneof![
            Just("auto"), Just("env"), Just("interface"), Just("cidr"), Just("hostname"),
            Just("interfaces"), Just("query"), Just("rancher"), Just("ecs"), Just("dhcp"),
        ],
        arg in proptest::option::of(prop_oneof![
            ".{0,12}",
            "[A-Z_]{1,8}",
            "(10|fd00:):?[0-9.:]{0,8}/[0-9]{1,3}",
            "https?://[a-z.]{1,12}(:[0-9]{1,5})?/{0,2}",
        ]),
    ) {
        let input = match &arg {
            Some(a) => format!("{kind}:{a}"),
            None => kind.to_string(),
        };
        if let Ok(source) = Source::parse(&input) {
            let shown = source.to_string();
            prop_assert_eq!(Source::parse(&shown), Ok(source), "{} -> {}", input, shown);
        }
    }

    // ----- vm.args ----------------------------------------------------------

    /// relx: exactly one `-name` line and it is beamup's; with a cookie,
    /// exactly one `-setcookie` line; with IPv6, one `-proto_dist`. mix: no
    /// name line at all. Every other line is kept, in order. Adjusting twice
    /// changes nothing more.
    #[test]
    fn vm_args_adjustment(
        lines in proptest::collection::vec(prop_oneof![
            Just("-name other@h".to_string()),
            Just("  -sname x".to_string()),
            Just("-setcookie old".to_string()),
            Just("-proto_dist inet6_tcp".to_string()),
            Just("## a comment".to_string()),
            Just(String::new()),
            "[+-][a-zA-Z]{1,8}( [a-z0-9]{1,8})?",
        ], 0..12),
        relx in any::<bool>(),
        ipv6 in any::<bool>(),
        cookie in proptest::option::of("[A-Za-z0-9_]{1,20}"),
        base in basename(),
        address in ip(),
    ) {
        let node = naming::node_name(&base, address);
        let text = lines.join("\n");
        let kind = if relx { Kind::Relx } else { Kind::Mix };
        let once = adjust_vm_args(kind, &text, "vm.args", &node, ipv6, cookie.as_deref());
        let out: Vec<&str> = once.text.lines().collect();
        let flag = |l: &&str| l.split_whitespace().next().unwrap_or("").to_string();
        let count = |f: &str| out.iter().filter(|l| flag(l) == f).count();
        let names: Vec<String> = out.iter()
            .filter(|l| flag(l) == "-name" || flag(l) == "-sname")
            .map(|l| l.to_string())
            .collect();
        if relx {
            prop_assert_eq!(names, vec![format!("-name {node}")]);
            if let Some(c) = &cookie {
                let want = format!("-setcookie {c}");
                prop_assert_eq!(out.iter().filter(|l| **l == want).count(), 1);
                prop_assert_eq!(count("-setcookie"), 1);
            }
            if ipv6 {
                prop_assert!(count("-proto_dist") >= 1);
            }
        } else {
            prop_assert!(names.is_empty(), "{:?}", once.text);
        }
        // The other lines, in order.
        let kept: Vec<&str> = text.lines()
            .filter(|l| !matches!(flag(l).as_str(), "-name" | "-sname"))
            .filter(|l| !(relx && cookie.is_some() && flag(l) == "-setcookie"))
            .collect();
        let mut rest = out.iter().filter(|l| !matches!(flag(l).as_str(), "-name" | "-sname"));
        for want in kept {
            prop_assert!(rest.any(|l| *l == want), "{want:?} lost from {:?}", once.text);
        }
        let twice = adjust_vm_args(kind, &once.text, "vm.args", &node, ipv6, cookie.as_deref());
        prop_assert_eq!(twice.text, once.text);
    }

    // ----- node names -------------------------------------------------------

    /// Every node beamup names is one `--peers` accepts, splits back into its
    /// parts, and fits an Erlang atom (255 characters).
    #[test]
    fn node_names_round_trip(base in basename(), address in ip()) {
        let node = naming::node_name(&base, address);
        let (name, host) = naming::parse_node(&node).unwrap();
        prop_assert_eq!(name, base.as_str());
        prop_assert_eq!(host.parse::<IpAddr>().unwrap(), address.to_canonical());
        prop_assert!(node.len() <= 255);
    }

    /// `--peers` never accepts a name that could break a peers-file line, an
    /// Erlang atom or a vm.args line.
    #[test]
    fn parse_node_rejects_what_breaks_files(
        node in prop_oneof![".{0,300}", "[a-z_-]{1,200}@.{0,260}", "[a-z]{1,8}@[a-z0-9.:'\n -]{1,20}"],
    ) {
        if let Ok((name, host)) = naming::parse_node(&node) {
            prop_assert!(naming::validate_basename(name).is_ok());
            prop_assert!(node.len() <= 255, "{} bytes", node.len());
            prop_assert!(!host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\''));
        }
    }

    /// Basenames: exactly `[A-Za-z0-9_-]{1,200}`.
    #[test]
    fn basename_rule(name in ".{0,210}") {
        let want = (1..=200).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        prop_assert_eq!(naming::validate_basename(&name).is_ok(), want);
    }

    // ----- peers files ------------------------------------------------------

    /// Each format gives back exactly the nodes written, in order.
    #[test]
    fn peers_files_round_trip(
        own in (basename(), ip()),
        peers in proptest::collection::vec((basename(), ip(), proptest::option::of(".{0,20}")), 0..8),
        updated in any::<u64>(),
    ) {
        let own = naming::node_name(&own.0, own.1);
        let entries: Vec<PeerStatus> = peers.iter().map(|(b, a, reason)| PeerStatus {
            node: naming::node_name(b, *a),
            state: match reason {
                Some(reason) => PeerState::Failed(reason.clone()),
                None => PeerState::Connected,
            },
        }).collect();
        let nodes: Vec<String> = entries.iter().map(|e| e.node.clone()).collect();

        let lines = render_peers(PeersFormat::Lines, &own, &entries, updated);
        prop_assert_eq!(lines.lines().map(str::to_string).collect::<Vec<_>>(), nodes.clone());

        let json: serde_json::Value =
            serde_json::from_str(&render_peers(PeersFormat::Json, &own, &entries, updated)).unwrap();
        prop_assert_eq!(&json["node"], &serde_json::json!(own));
        prop_assert_eq!(&json["updated"], &serde_json::json!(updated));
        let listed: Vec<String> = json["peers"].as_array().unwrap().iter()
            .map(|p| p["node"].as_str().unwrap().to_string()).collect();
        prop_assert_eq!(listed, nodes.clone());
        for (p, e) in json["peers"].as_array().unwrap().iter().zip(&entries) {
            prop_assert_eq!(p.get("reason").and_then(|r| r.as_str()), e.state.reason());
        }

        let erlang = render_peers(PeersFormat::Erlang, &own, &entries, updated);
        let terms: Vec<&str> = erlang.lines().collect();
        prop_assert_eq!(terms.len(), 2, "{}", erlang);
        prop_assert_eq!(quoted_atoms(terms[0]), vec![own.clone()]);
        prop_assert_eq!(quoted_atoms(terms[1]), nodes);
    }

    /// Erlang atoms are quoted and escaped whatever they hold.
    #[test]
    fn erlang_atoms_escape_anything(node in ".{0,40}") {
        let entries = [PeerStatus { node: node.clone(), state: PeerState::Discovered }];
        let erlang = render_peers(PeersFormat::Erlang, "demo@10.0.0.1", &entries, 0);
        let peers_term = erlang.split_once("}.\n").map(|(_, rest)| rest).unwrap();
        prop_assert_eq!(quoted_atoms(peers_term), vec![node]);
    }
}

/// The quoted atoms of an Erlang term, unescaped (`\\` and `\'`), as
/// `file:consult/1` would read them.
fn quoted_atoms(term: &str) -> Vec<String> {
    let mut atoms = Vec::new();
    let mut chars = term.chars();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut atom = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => atom.extend(chars.next()),
                '\'' => break,
                c => atom.push(c),
            }
        }
        atoms.push(atom);
    }
    atoms
}
