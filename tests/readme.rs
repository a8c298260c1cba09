//! README.md stays true to the code: its `beamup --help` section is the
//! binary's output, and the two set-up commands it opens with exist.

use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

#[test]
fn help_section_matches_the_binary() {
    let out = Command::new(env!("CARGO_BIN_EXE_beamup"))
        .arg("--help")
        .output()
        .expect("run beamup --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf8");
    let readme = readme();
    let begin = readme.find("<!-- help:begin").expect("help:begin marker");
    let end = readme.find("<!-- help:end -->").expect("help:end marker");
    let section = &readme[begin..end];
    let body = section
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.rsplit_once("```"))
        .map(|(body, _)| body)
        .expect("a ```text block between the markers");
    assert_eq!(
        body.trim_end(),
        help.trim_end(),
        "README's --help section is stale: paste the output of `beamup --help`"
    );
}

#[test]
fn opens_with_the_two_commands() {
    let readme = readme();
    let first_block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a first sh block");
    let commands: Vec<&str> = first_block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands[0].starts_with("bash scripts/demo.sh"));
    assert!(commands[1].starts_with("bash scripts/test.sh"));
    for script in ["scripts/demo.sh", "scripts/test.sh"] {
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(script)
                .is_file(),
            "{script} missing"
        );
    }
    let ci =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).expect(".ci/run");
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run must call the README's test command"
    );
}
