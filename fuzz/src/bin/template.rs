//! `template::render`: vm.args, `--query` and `--template` files.
use beamup::template;

fn lookup(name: &str) -> Option<String> {
    // Values no longer than the shortest `${X}` (4 bytes), so the output can
    // never be longer than the template; one value looks like a template, to
    // show it is never expanded a second time.
    match name {
        "A" => Some("a$".into()),
        "B" => Some("${A}".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match template::render(text, "fuzz", lookup) {
            Ok(out) => {
                assert!(out.len() <= text.len(), "{text:?} grew to {out:?}");
                if !text.contains('$') {
                    assert_eq!(out, text);
                }
            }
            Err(e) => {
                let lines = text.matches('\n').count() + 1;
                assert!(
                    e.line >= 1 && e.line <= lines,
                    "{text:?}: line {} of {lines}",
                    e.line
                );
                let _ = e.to_string();
            }
        }
    });
}
