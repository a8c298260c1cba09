//! The template language of vm.args, `--query` and `--template` files:
//! `${VAR}`, `${VAR:-default}` and `$$` for a literal `$`. It is the subset of
//! shell parameter expansion that relx's RELX_REPLACE_OS_VARS understands, but
//! it never goes through a shell: no eval, no command substitution (relx passes
//! the `-name` line through `eval`, a shell-injection risk; see beam-facts.md).

use std::fmt;
use std::path::Path;

/// The largest template beamup reads, and the largest text it renders: a
/// vm.args or sys.config is a few KiB; anything near this is a mistake (a
/// wrong path such as /dev/zero, a value that expands into itself many
/// times), refused with a clear error instead of filling memory.
pub const MAX_SIZE: usize = 1 << 20;

/// A template error, with the place it happened (`origin` is a file path or a
/// flag name such as `--query`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    pub origin: String,
    pub line: usize,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// `${VAR}` where VAR is unset and no default is given.
    Unset(String),
    /// `${` without a closing `}`.
    Unterminated,
    /// `${...}` whose name is not `[A-Za-z_][A-Za-z0-9_]*`.
    BadName(String),
    /// `${A:-${B}}`: a default holding another expansion. Nesting is not
    /// supported (relx's templating has none either), and rendering the
    /// default literally would hand the release a `${B}` it never expected.
    Nested(String),
    /// The template or its rendered text is larger than [`MAX_SIZE`].
    TooLarge,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{}, line {}", self.origin, self.line);
        match &self.kind {
            ErrorKind::Unset(var) => write!(
                f,
                "{at}: variable {var} is not set and has no default: set {var} in the \
                 environment, or write ${{{var}:-default}}"
            ),
            ErrorKind::Unterminated => write!(
                f,
                "{at}: `${{` is not closed by `}}`: write ${{VAR}}, or $$ for a literal `$`"
            ),
            ErrorKind::BadName(name) => write!(
                f,
                "{at}: `${{{name}}}` is not a variable name (letters, digits and _): only \
                 ${{VAR}} and ${{VAR:-default}} are expanded, never commands"
            ),
            ErrorKind::Nested(name) => write!(
                f,
                "{at}: the default of ${{{name}:-...}} holds another `${{`: nested expansions \
                 are not supported; give a literal default, or set {name}"
            ),
            ErrorKind::TooLarge => write!(
                f,
                "{at}: the template or its rendered text is larger than {} KiB: check the \
                 path and the variables it expands",
                MAX_SIZE / 1024
            ),
        }
    }
}

/// Renders `text`; `lookup` gives a variable's value (None: unset).
pub fn render(
    text: &str,
    origin: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut line = 1;
    let err = |line, kind| TemplateError {
        origin: origin.to_string(),
        line,
        kind,
    };
    if text.len() > MAX_SIZE {
        return Err(err(line, ErrorKind::TooLarge));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        if out.len() > MAX_SIZE {
            return Err(err(line, ErrorKind::TooLarge));
        }
        let (before, from_dollar) = rest.split_at(pos);
        out.push_str(before);
        line += before.matches('\n').count();
        let after = &from_dollar[1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body_and_tail) = after.strip_prefix('{') {
            let close = body_and_tail
                .find(['}', '\n'])
                .filter(|&i| body_and_tail.as_bytes()[i] == b'}')
                .ok_or_else(|| err(line, ErrorKind::Unterminated))?;
            let body = &body_and_tail[..close];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if !is_name(name) {
                return Err(err(line, ErrorKind::BadName(body.to_string())));
            }
            if default.is_some_and(|d| d.contains("${")) {
                return Err(err(line, ErrorKind::Nested(name.to_string())));
            }
            // Shell semantics: `${VAR:-d}` uses d when VAR is unset or empty.
            let value = match (lookup(name), default) {
                (Some(v), Some(d)) if v.is_empty() => d.to_string(),
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => return Err(err(line, ErrorKind::Unset(name.to_string()))),
            };
            out.push_str(&value);
            rest = &body_and_tail[close + 1..];
        } else {
            // A lone `$` (e.g. `$HOME` or a trailing `$`) is kept as it is:
            // only the braced form is expanded, like relx.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if out.len() > MAX_SIZE {
        return Err(err(line, ErrorKind::TooLarge));
    }
    Ok(out)
}

/// Reads a template file, refusing one larger than [`MAX_SIZE`] without
/// reading past it.
pub fn read(path: &Path) -> anyhow::Result<String> {
    let max = u64::try_from(MAX_SIZE).unwrap_or(u64::MAX);
    crate::safe_file::read_given(path, max, || {
        format!(
            "larger than {} KiB, which no template needs: check the path",
            MAX_SIZE / 1024
        )
    })
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a variable a template may name (and an
/// environment variable name beamup accepts).
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "SERVICE" => Some("web".into()),
            "EMPTY" => Some(String::new()),
            "EVIL" => Some("$(rm -rf /)".into()),
            _ => None,
        }
    }

    #[test]
    fn renders() {
        let table = [
            ("tasks.${SERVICE}", "tasks.web"),
            ("${MISSING:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("[${EMPTY}]", "[]"),
            ("${SERVICE:-x}", "web"),
            ("$$HOME $$", "$HOME $"),
            ("cost $5 and $", "cost $5 and $"),
            ("${EVIL}", "$(rm -rf /)"),
            ("$(whoami) `id`", "$(whoami) `id`"),
            ("${MISSING:-a:-b}", "a:-b"),
            ("a\n-name ${SERVICE}@h\n", "a\n-name web@h\n"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(render(input, "t", vars).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn errors_name_the_variable_file_and_line() {
        let table = [
            ("one\ntwo ${NOPE}\n", 2, ErrorKind::Unset("NOPE".into())),
            ("${SERVICE", 1, ErrorKind::Unterminated),
            ("x\n${SERVICE\n}", 2, ErrorKind::Unterminated),
            ("${1X}", 1, ErrorKind::BadName("1X".into())),
            ("${A B}", 1, ErrorKind::BadName("A B".into())),
            ("${$(id)}", 1, ErrorKind::BadName("$(id)".into())),
            ("${}", 1, ErrorKind::BadName(String::new())),
            ("x\n${A:-${SERVICE}}", 2, ErrorKind::Nested("A".into())),
            (
                "${SERVICE:-a${B:-c}}",
                1,
                ErrorKind::Nested("SERVICE".into()),
            ),
        ];
        for (input, line, kind) in table {
            let e = render(input, "vm.args.src", vars).unwrap_err();
            assert_eq!((e.line, &e.kind), (line, &kind), "{input:?}");
        }
        let msg = render("\n\n${NOPE}", "/t/vm.args", vars)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/t/vm.args, line 3"), "{msg}");
        assert!(msg.contains("NOPE is not set"), "{msg}");
    }

    #[test]
    fn size_is_bounded() {
        let big = "x".repeat(MAX_SIZE + 1);
        assert_eq!(
            render(&big, "t", vars).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        // A small template expanding a value many times is bounded too.
        let value = "v".repeat(64 * 1024);
        let many = "${V}".repeat(32);
        let e = render(&many, "t", |_| Some(value.clone())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge);
        // /dev/zero is refused after MAX_SIZE bytes, not read forever.
        let e = read(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("larger than 1024 KiB"), "{e}");
    }
}
