//! Text from outside beamup (a metadata API's answer, an environment
//! variable, the local VM, a peer) as it may be shown in a log line, an
//! error message or on a terminal: control characters escaped (a newline
//! cannot forge a second log line, an escape sequence cannot drive the
//! terminal) and the length bounded.

/// Characters of outside text shown before `...`.
const SHOWN_CHARS: usize = 200;

/// `text` with every control character escaped (`\n`, `\u{1b}`, ...) and at
/// most [`SHOWN_CHARS`] characters.
pub fn shown(text: &str) -> String {
    shown_max(text, SHOWN_CHARS)
}

/// [`shown`] with its own bound, e.g. a one-line snippet of an answer.
pub fn shown_max(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_length_bounded() {
        let table = [
            ("10.0.0.1", "10.0.0.1"),
            ("x\n2026-12-06 INFO forged", "x\\n2026-12-06 INFO forged"),
            ("\u{1b}[2J\u{1b}]0;t\u{7}", "\\u{1b}[2J\\u{1b}]0;t\\u{7}"),
            ("a\r\tb", "a\\r\\tb"),
            ("é ünïcode", "é ünïcode"),
        ];
        for (input, want) in table {
            assert_eq!(shown(input), want, "{input:?}");
        }
        let long = "a".repeat(500);
        assert_eq!(shown(&long).len(), SHOWN_CHARS + 3);
        assert_eq!(shown_max("abcdef", 3), "abc...");
        assert!(!shown(&"\n".repeat(300)).contains('\n'));
    }
}
