//! `release::adjust_vm_args`: the first byte picks the release kind, the
//! address family and whether beamup has a cookie; the rest is the vm.args.
use beamup::release::{Kind, adjust_vm_args};

const COOKIE: &str = "fuzz-cookie-3b9d";

fn first_flag(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&knobs, rest)) = data.split_first() else {
            return;
        };
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        let kind = match knobs % 3 {
            0 => Kind::Mix,
            1 => Kind::Relx,
            _ => Kind::Plain,
        };
        let ipv6 = knobs & 4 != 0;
        let cookie = (knobs & 8 != 0).then_some(COOKIE);
        let node = if ipv6 {
            "demo@fd00::1"
        } else {
            "demo@10.0.0.1"
        };

        let adjusted = adjust_vm_args(kind, text, "vm.args", node, ipv6, cookie);
        let lines: Vec<&str> = adjusted.text.lines().collect();
        let names = lines
            .iter()
            .filter(|l| matches!(first_flag(l), "-name" | "-sname"))
            .count();
        match kind {
            Kind::Relx => {
                assert_eq!(
                    lines.first().copied(),
                    Some(format!("-name {node}").as_str())
                );
                assert_eq!(names, 1, "{text:?} -> {:?}", adjusted.text);
                if cookie.is_some() {
                    let cookies = lines
                        .iter()
                        .filter(|l| first_flag(l) == "-setcookie")
                        .count();
                    assert_eq!(cookies, 1, "{text:?} -> {:?}", adjusted.text);
                }
                if ipv6 {
                    assert!(lines.iter().any(|l| first_flag(l) == "-proto_dist"));
                }
            }
            Kind::Mix => assert_eq!(names, 0, "{text:?} -> {:?}", adjusted.text),
            // Every line kept byte for byte, each ended by `\n` (compared on the
            // text: `lines()` would also strip a `\r` the output ends a line with).
            Kind::Plain => assert_eq!(
                adjusted.text.strip_suffix('\n'),
                Some(text.lines().collect::<Vec<_>>().join("\n").as_str())
            ),
        }
        for note in &adjusted.notes {
            assert!(!note.contains(COOKIE), "a note shows the cookie: {note}");
        }
    });
}
