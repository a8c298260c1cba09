//! The start scripts' subcommands: which ones talk to a running node, and
//! which one serves each of `beamup remote|rpc|pid|stop`.

use super::Kind;

/// What a release command is, for `beamup -- /app/bin/my_app <command>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Starts the node (`start`, `foreground`, ...), or anything beamup does
    /// not know: the whole boot pipeline, as always.
    Boot,
    /// Talks to the running node (`rpc`, `remote`, `stop`, ...): needs its
    /// identity, and there is nothing to do without a running node.
    Node,
    /// Runs on its own (mix `eval`, `version`): the running node's identity
    /// when there is one, else the boot pipeline without a reporter (e.g. a
    /// `docker run --rm image /app/bin/my_app eval 'Migrate.run()'`).
    Standalone,
}

impl Call {
    /// Whether beamup forks a reporter and records the boot for this call.
    pub fn boots(self) -> bool {
        self == Call::Boot
    }
}

/// What `beamup remote|rpc|pid|stop` asks of the release's own start script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Remote,
    /// Runs an expression: Elixir for mix (`rpc`), Erlang for relx (`eval`;
    /// relx's own `rpc` takes `Mod Fun Args`, reachable as `beamup --
    /// bin/<name> rpc ...`).
    Rpc,
    Pid,
    Stop,
}

/// The start scripts' subcommands beamup knows: what each is for, and which
/// one serves an [`Op`]. From the lists in mix's `bin/<name>` and relx's
/// extended start script (rebar3 3.19); anything else boots.
const SUBCOMMANDS: &[(Kind, &str, Call, Option<Op>)] = &[
    (Kind::Mix, "remote", Call::Node, Some(Op::Remote)),
    (Kind::Mix, "rpc", Call::Node, Some(Op::Rpc)),
    (Kind::Mix, "pid", Call::Node, Some(Op::Pid)),
    (Kind::Mix, "stop", Call::Node, Some(Op::Stop)),
    (Kind::Mix, "restart", Call::Node, None),
    (Kind::Mix, "eval", Call::Standalone, None),
    (Kind::Mix, "version", Call::Standalone, None),
    (Kind::Relx, "remote_console", Call::Node, Some(Op::Remote)),
    (Kind::Relx, "eval", Call::Node, Some(Op::Rpc)),
    (Kind::Relx, "pid", Call::Node, Some(Op::Pid)),
    (Kind::Relx, "stop", Call::Node, Some(Op::Stop)),
    (Kind::Relx, "remote", Call::Node, None),
    (Kind::Relx, "remsh", Call::Node, None),
    (Kind::Relx, "rpc", Call::Node, None),
    (Kind::Relx, "restart", Call::Node, None),
    (Kind::Relx, "reboot", Call::Node, None),
    (Kind::Relx, "ping", Call::Node, None),
    (Kind::Relx, "status", Call::Node, None),
    (Kind::Relx, "versions", Call::Node, None),
    (Kind::Relx, "upgrade", Call::Node, None),
    (Kind::Relx, "downgrade", Call::Node, None),
    (Kind::Relx, "install", Call::Node, None),
    (Kind::Relx, "unpack", Call::Node, None),
    (Kind::Relx, "uninstall", Call::Node, None),
    (Kind::Relx, "daemon_attach", Call::Node, None),
    (Kind::Relx, "attach", Call::Node, None),
    (Kind::Relx, "escript", Call::Standalone, None),
    (Kind::Relx, "help", Call::Standalone, None),
];

/// Sorts `<root>/bin/<name> <command>` by [`SUBCOMMANDS`].
pub fn classify(kind: Kind, command: &[String]) -> Call {
    let Some(sub) = command.get(1) else {
        return Call::Boot;
    };
    SUBCOMMANDS
        .iter()
        .find(|(k, name, _, _)| *k == kind && name == sub)
        .map_or(Call::Boot, |(_, _, call, _)| *call)
}

/// The start script's subcommand for `op` (None: a plain command has none).
pub fn subcommand_for(kind: Kind, op: Op) -> Option<&'static str> {
    SUBCOMMANDS
        .iter()
        .find(|(k, _, _, o)| *k == kind && *o == Some(op))
        .map(|(_, name, _, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn classifies_release_commands() {
        let table = [
            (Kind::Mix, &["/a/bin/x", "start"][..], Call::Boot),
            (Kind::Mix, &["/a/bin/x", "start_iex"], Call::Boot),
            (Kind::Mix, &["/a/bin/x", "daemon"], Call::Boot),
            (Kind::Mix, &["/a/bin/x"], Call::Boot),
            (Kind::Mix, &["/a/bin/x", "rpc", "1"], Call::Node),
            (Kind::Mix, &["/a/bin/x", "remote"], Call::Node),
            (Kind::Mix, &["/a/bin/x", "pid"], Call::Node),
            (Kind::Mix, &["/a/bin/x", "stop"], Call::Node),
            (Kind::Mix, &["/a/bin/x", "eval", "1"], Call::Standalone),
            (Kind::Mix, &["/a/bin/x", "version"], Call::Standalone),
            (Kind::Relx, &["/a/bin/x", "foreground"], Call::Boot),
            (Kind::Relx, &["/a/bin/x", "console"], Call::Boot),
            (Kind::Relx, &["/a/bin/x", "remote_console"], Call::Node),
            (Kind::Relx, &["/a/bin/x", "eval", "ok."], Call::Node),
            (Kind::Relx, &["/a/bin/x", "ping"], Call::Node),
            (Kind::Relx, &["/a/bin/x", "escript", "s"], Call::Standalone),
            (Kind::Plain, &["/usr/bin/erl", "rpc"], Call::Boot),
            (Kind::Mix, &["/a/bin/x", "custom"], Call::Boot),
        ];
        for (kind, command, want) in table {
            assert_eq!(classify(kind, &args(command)), want, "{kind:?} {command:?}");
        }
    }

    #[test]
    fn every_op_has_a_subcommand_for_release_scripts() {
        for op in [Op::Remote, Op::Rpc, Op::Pid, Op::Stop] {
            for kind in [Kind::Mix, Kind::Relx] {
                let sub = subcommand_for(kind, op).expect("a subcommand");
                assert_eq!(classify(kind, &args(&["/a/bin/x", sub])), Call::Node);
            }
            assert_eq!(subcommand_for(Kind::Plain, op), None);
        }
        assert_eq!(subcommand_for(Kind::Mix, Op::Rpc), Some("rpc"));
        assert_eq!(subcommand_for(Kind::Relx, Op::Rpc), Some("eval"));
        assert_eq!(
            subcommand_for(Kind::Relx, Op::Remote),
            Some("remote_console")
        );
    }
}
