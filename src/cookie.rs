//! The distribution cookie: one rule for the release and for `--connect`'s
//! reporter, so they can never disagree (issue 9, "Secrets").
//!
//! First found wins:
//! 1. `--cookie-file PATH` (a Docker/Kubernetes secret);
//! 2. `RELEASE_COOKIE` in the environment (what a mix release reads);
//! 3. `RELX_COOKIE` in the environment (what relx's own rpc helpers read);
//! 4. relx: the `-setcookie` line of the vm.args beamup renders for it;
//! 5. the release's `releases/COOKIE` (mix writes one at build time);
//! 6. `$HOME/.erlang.cookie` (what a VM without any of the above uses).
//!
//! A cookie from 1–3 is handed to the release under both names
//! (`RELEASE_COOKIE`, `RELX_COOKIE`) and, for relx, as the vm.args
//! `-setcookie` line: relx's `foreground` reads the VM's cookie only from
//! vm.args, so without that line the VM and the reporter could hold different
//! cookies. 4–6 are what the release finds by itself and are only read when
//! `--connect` needs them.
//!
//! The value is a [`Secret`]; its origin is a plain string that may be shown
//! and recorded anywhere.

use std::path::Path;

use anyhow::Context as _;

use crate::exit_codes::{ExitCode, Failure, OrExit};
use crate::secret::Secret;

/// The variables a cookie is exported under; a `--query` naming one of them
/// is refused (a query is sent to DNS servers and logged).
pub const VARIABLES: [&str; 2] = ["RELEASE_COOKIE", "RELX_COOKIE"];

/// The largest cookie file read (a cookie is a short word; OTP's own limit
/// for ~/.erlang.cookie is 255 characters).
const MAX_FILE: u64 = 4096;

#[derive(Debug, Clone)]
pub struct Cookie {
    pub value: Secret,
    /// Where it came from, e.g. `--cookie-file /run/secrets/cookie`,
    /// `RELEASE_COOKIE`: never the value.
    pub origin: String,
    /// Whether beamup hands it to the release (sources 1–3; see the module
    /// doc): exported and written into a relx vm.args.
    pub exported: bool,
}

/// Sources 1–3: the cookie beamup gives the release, if any. Warns (without
/// values) when the environment holds another cookie than the one chosen.
pub fn given(
    cookie_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Cookie>, Failure> {
    let from_env = |name: &str| env(name).filter(|v| !v.is_empty());
    let chosen = if let Some(path) = cookie_file {
        Some(from_file(path)?)
    } else {
        VARIABLES
            .iter()
            .find_map(|name| from_env(name).map(|v| (*name, v)))
            .map(|(name, value)| checked(&value, name.to_string()))
            .transpose()?
    };
    if let Some(c) = &chosen {
        for name in VARIABLES {
            if from_env(name).is_some_and(|v| v != c.value.expose()) {
                tracing::warn!(
                    "{name} in the environment differs from the cookie of {}; the release and \
                     --connect both use the latter",
                    c.origin
                );
            }
        }
    }
    Ok(chosen)
}

/// Source 1: the `--cookie-file` cookie (also read again by `beamup rpc`
/// and friends, which never find the value in a state file).
pub fn from_file(path: &Path) -> Result<Cookie, Failure> {
    let origin = format!("--cookie-file {}", path.display());
    let text = read_small(path)
        .with_context(|| {
            format!(
                "while reading the cookie file {} (--cookie-file)",
                path.display()
            )
        })
        .or_exit(ExitCode::Config)?;
    checked(text.trim(), origin)
}

/// Sources 4–6, for `--connect` when beamup gives the release no cookie:
/// the one the release will find by itself.
pub fn found(
    relx_vm_args: Option<(&Path, &str)>,
    release_cookie_file: Option<&Path>,
    home: Option<&str>,
) -> Option<Cookie> {
    let found = |value: &str, origin: String| {
        let value = value.trim();
        (!value.is_empty()).then(|| Cookie {
            value: Secret::new(value),
            origin,
            exported: false,
        })
    };
    let from_file = |path: &Path| {
        read_small(path)
            .ok()
            .and_then(|text| found(&text, path.display().to_string()))
    };
    relx_vm_args
        .and_then(|(path, text)| {
            setcookie(text).and_then(|v| found(v, format!("{} (-setcookie)", path.display())))
        })
        .or_else(|| release_cookie_file.and_then(from_file))
        .or_else(|| home.and_then(|h| from_file(&Path::new(h).join(".erlang.cookie"))))
}

/// The argument of the last `-setcookie` line of a vm.args (erl lets the
/// last one win).
pub fn setcookie(vm_args: &str) -> Option<&str> {
    vm_args
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-setcookie"))
        .filter(|rest| rest.starts_with(char::is_whitespace))
        .filter_map(|rest| rest.split_whitespace().next())
        .next_back()
}

/// `text` as it may be shown: the cookie's value, and the word after any
/// `-setcookie` (a relx vm.args, an `erl -setcookie X` command), replaced by
/// `<redacted>`.
pub fn redact(text: &str, cookie: Option<&Cookie>) -> String {
    let mut out = match cookie.map(|c| c.value.expose()) {
        Some(value) if !value.is_empty() => text.replace(value, "<redacted>"),
        _ => text.to_string(),
    };
    let mut from = 0;
    while let Some(at) = out[from..].find("-setcookie") {
        let start = from + at + "-setcookie".len();
        let rest = &out[start..];
        let gap = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let word = rest[gap..]
            .find(char::is_whitespace)
            .unwrap_or(rest.len() - gap);
        if gap > 0 && word > 0 {
            out.replace_range(start + gap..start + gap + word, "<redacted>");
        }
        from = start;
    }
    out
}

/// A command line as it may be shown: [`redact`] on each argument, and the
/// argument after a `-setcookie` argument replaced.
pub fn redact_args(args: &[String], cookie: Option<&Cookie>) -> Vec<String> {
    let mut after_flag = false;
    args.iter()
        .map(|arg| {
            let shown = if after_flag {
                "<redacted>".to_string()
            } else {
                redact(arg, cookie)
            };
            after_flag = arg == "-setcookie";
            shown
        })
        .collect()
}

/// A cookie is one word: anything else would break the vm.args line it is
/// written into (or add lines to it).
fn checked(value: &str, origin: String) -> Result<Cookie, Failure> {
    if value.is_empty() {
        return Err(Failure::msg(
            ExitCode::Config,
            format!("the cookie of {origin} is empty"),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Failure::msg(
            ExitCode::Config,
            format!("the cookie of {origin} holds more than one word: a cookie is one word"),
        ));
    }
    Ok(Cookie {
        value: Secret::new(value),
        origin,
        exported: true,
    })
}

fn read_small(path: &Path) -> anyhow::Result<String> {
    crate::safe_file::read_given(path, MAX_FILE, || {
        format!("larger than {MAX_FILE} bytes: a cookie is one short word")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_chain_of_given_cookies() {
        let dir = std::env::temp_dir().join(format!("beamup-cookie-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("cookie");
        std::fs::write(&file, "from-file\n").expect("write");
        // (--cookie-file, environment, expected value and origin)
        type Case<'a> = (
            Option<&'a Path>,
            &'a [(&'a str, &'a str)],
            Option<(&'a str, &'a str)>,
        );
        let table: [Case; 5] = [
            (None, &[], None),
            (None, &[("RELEASE_COOKIE", "")], None),
            (
                Some(&file),
                &[("RELEASE_COOKIE", "env"), ("RELX_COOKIE", "relx")],
                Some(("from-file", "--cookie-file ")),
            ),
            (
                None,
                &[("RELEASE_COOKIE", "env"), ("RELX_COOKIE", "relx")],
                Some(("env", "RELEASE_COOKIE")),
            ),
            (
                None,
                &[("RELX_COOKIE", "relx")],
                Some(("relx", "RELX_COOKIE")),
            ),
        ];
        for (path, vars, want) in table {
            let got = given(path, env(vars)).expect("given");
            let got = got.map(|c| {
                assert!(c.exported);
                (c.value.expose().to_string(), c.origin)
            });
            match (got, want) {
                (None, None) => {}
                (Some((v, o)), Some((wv, wo))) => {
                    assert_eq!(v, wv);
                    assert!(o.starts_with(wo), "{o}");
                }
                (got, want) => panic!("{path:?} {vars:?}: got {got:?}, want {want:?}"),
            }
        }
        for bad in ["two words", "line\n-eval x"] {
            let err = given(None, env(&[("RELX_COOKIE", bad)])).expect_err(bad);
            assert_eq!(err.code, ExitCode::Config);
            let shown = format!("{:#}", err.error);
            assert!(shown.contains("RELX_COOKIE"), "{shown}");
            assert!(!shown.contains(bad), "the value is never shown: {shown}");
        }
        std::fs::write(&file, "\n").expect("write");
        assert!(given(Some(&file), env(&[])).is_err(), "empty file");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn the_chain_of_found_cookies() {
        let dir = std::env::temp_dir().join(format!("beamup-found-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let release_cookie = dir.join("COOKIE");
        std::fs::write(&release_cookie, "from-release\n").expect("write");
        std::fs::write(dir.join(".erlang.cookie"), "from-home").expect("write");
        let home = dir.to_str().expect("utf8");
        let vm = Path::new("vm.args");
        let with = "-name a@b\n-setcookie first\n-setcookie  last \n";
        // (relx vm.args, releases/COOKIE, HOME, expected value)
        type Case<'a> = (
            Option<(&'a Path, &'a str)>,
            Option<&'a Path>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let table: [Case; 5] = [
            (
                Some((vm, with)),
                Some(&release_cookie),
                Some(home),
                Some("last"),
            ),
            (
                Some((vm, "-name a@b\n")),
                Some(&release_cookie),
                None,
                Some("from-release"),
            ),
            (None, None, Some(home), Some("from-home")),
            (
                None,
                Some(&dir.join("missing")),
                Some(home),
                Some("from-home"),
            ),
            (None, None, None, None),
        ];
        for (vm_args, file, home, want) in table {
            let got = found(vm_args, file, home);
            assert_eq!(got.as_ref().map(|c| c.value.expose()), want);
            assert!(got.is_none_or(|c| !c.exported));
        }
        assert_eq!(setcookie("-setcookiex y\n## -setcookie z\n"), None);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn redaction() {
        let c = Cookie {
            value: Secret::new("s3cret"),
            origin: "RELEASE_COOKIE".into(),
            exported: true,
        };
        // (text, cookie known, shown)
        let table = [
            (
                "-name a@b\n-setcookie s3cret\n",
                true,
                "-name a@b\n-setcookie <redacted>\n",
            ),
            (
                "-setcookie other\n+K true",
                false,
                "-setcookie <redacted>\n+K true",
            ),
            (
                "erl -setcookie  x -s init",
                false,
                "erl -setcookie  <redacted> -s init",
            ),
            ("-setcookie\n-setcookie", false, "-setcookie\n-setcookie"),
            ("{cookie, \"s3cret\"}.", true, "{cookie, \"<redacted>\"}."),
        ];
        for (text, known, want) in table {
            assert_eq!(redact(text, known.then_some(&c)), want, "{text}");
        }
        let args: Vec<String> = ["erl", "-setcookie", "x", "-s", "s3cret"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            redact_args(&args, Some(&c)),
            ["erl", "-setcookie", "<redacted>", "-s", "<redacted>"]
        );
    }
}
