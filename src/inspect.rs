//! `beamup inspect`: every decision, printed to stdout instead of exec'ing.
//! A dry run: it writes nothing (a running node's vm.args lives at the same
//! path) and shows the rendered files' text instead, with the cookie (its
//! value, and any `-setcookie` argument) shown as `<redacted>`.

use serde_json::{Map, Value, json};

use crate::cli::Flags;
use crate::config::{self, Config, Mode, RenderedFile};
use crate::cookie;
use crate::discovery::RecordKind;
use crate::environment::Environment;
use crate::exit_codes::Failure;
use crate::platform;

/// `beamup inspect [--json]`: a dry run, shows the rendered files, writes nothing.
pub fn inspect(
    flags: &Flags,
    command: &[String],
    json: bool,
    env: &Environment,
) -> Result<i32, Failure> {
    let config = config::resolve_dry(flags, command, env, Mode::Inspect, None)?;
    if json {
        println!("{}", to_json(&config));
    } else {
        print!("{}", to_text(&config));
    }
    Ok(0)
}

pub fn record_name(r: RecordKind) -> &'static str {
    match r {
        RecordKind::A => "a",
        RecordKind::Aaaa => "aaaa",
        RecordKind::AAndAaaa => "a+aaaa",
        RecordKind::Srv => "srv",
    }
}

pub fn to_json(c: &Config) -> Value {
    let env: Map<String, Value> = c
        .exports
        .iter()
        .map(|e| (e.name.clone(), Value::String(e.shown().to_string())))
        .collect();
    json!({
        "address": c.address.to_string(),
        "source": c.source,
        "node": c.node,
        "basename": c.basename,
        "distribution": "name",
        "release": c.release,
        "platform": platform::name(c.platform),
        "platform_reason": c.platform_reason,
        "env": env,
        "cookie": c.cookie.as_ref().map(|k| k.origin.as_str()),
        "files": c.files.iter().map(|f| json!({
            "path": f.dest.display().to_string(),
            "source": f.source.display().to_string(),
            "mode": "0600",
            "content": shown(c, f),
        })).collect::<Vec<_>>(),
        "query": c.query,
        "record": record_name(c.discovery.record),
        "static_peers": c.discovery.static_peers,
        "connect": c.reporter.connect.is_some(),
        "epmd_port": c.epmd_port,
        "reporter": c.discovery.is_active(),
        "command": cookie::redact_args(&c.command, c.cookie.as_ref()),
        "warnings": c.warnings,
    })
}

pub fn to_text(c: &Config) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<13}{v}\n"));
    line("address", &format!("{} (from {})", c.address, c.source));
    line("node", &format!("{} (long names)", c.node));
    line("basename", &c.basename);
    line(
        "platform",
        &format!("{} ({})", platform::name(c.platform), c.platform_reason),
    );
    line("release", &format!("{:?}", c.release).to_lowercase());
    line("query", c.query.as_deref().unwrap_or("(none)"));
    line("record", record_name(c.discovery.record));
    line(
        "reporter",
        &if !c.discovery.is_active() {
            "off (nothing to discover)".to_string()
        } else if c.reporter.connect.is_some() {
            format!("on, connecting peers (epmd port {})", c.epmd_port)
        } else {
            "on".to_string()
        },
    );
    line(
        "cookie",
        &c.cookie.as_ref().map_or("(none)".to_string(), |k| {
            format!("<redacted> (from {})", k.origin)
        }),
    );
    if !c.command.is_empty() {
        line(
            "command",
            &cookie::redact_args(&c.command, c.cookie.as_ref()).join(" "),
        );
    }
    out.push_str("exports:\n");
    for e in &c.exports {
        out.push_str(&format!("  {}={}\n", e.name, e.shown()));
    }
    if !c.files.is_empty() {
        out.push_str("files:\n");
        for f in &c.files {
            out.push_str(&format!(
                "  {} (from {}, mode 0600, not written by inspect):\n",
                f.dest.display(),
                f.source.display()
            ));
            for l in shown(c, f).lines() {
                out.push_str(&format!("    | {l}\n"));
            }
        }
    }
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// A rendered file's text as inspect shows it (cookie redacted).
fn shown(c: &Config, f: &RenderedFile) -> String {
    cookie::redact(f.content.expose(), c.cookie.as_ref())
}
