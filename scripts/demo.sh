#!/usr/bin/env bash
# beamup in one command: `bash scripts/demo.sh` (as root, with Rust installed by rustup).
#
# First installs what it needs and is missing, and only that (`scripts/prerequisites.sh
# demo`: erlang, elixir, dnsmasq-base, iproute2, gcc, util-linux, hostname; it says how to
# get cargo if there is none). Then builds beamup and the demo mix release, makes one
# "container" (a network namespace with its own address and hostname), shows what beamup
# decides (`beamup inspect`), boots the release through beamup there, asks the node who it
# is, and stops it with SIGTERM as `docker stop` would. Everything it creates is removed on
# every exit path.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
indent() { sed 's/^/    /'; }
verdict_done=0
fail() {
  printf '\nVERDICT: FAILED: %s\n' "$*"
  verdict_done=1
  exit 1
}

[ "$(id -u)" -eq 0 ] || { echo "scripts/demo.sh: run as root (it creates a network namespace)" >&2; exit 1; }
say "0. prerequisites: install what is missing (scripts/prerequisites.sh demo)"
bash scripts/prerequisites.sh demo || {
  printf '\nVERDICT: FAILED: prerequisites missing (see above)\n'
  exit 1
}

# Names carry our pid (bu<pid>-...), like the test harness: a later test run removes
# them if this script is ever killed before its trap runs.
ns="bu$$-demo"
sw="bu$$-demosw"
work=$(mktemp -d "${TMPDIR:-/tmp}/beamup-demo.XXXXXX")
vm_pid=""
# The verdict goes to fd 3: an interrupt can land while fd 1 is redirected (`ask >/dev/null`).
exec 3>&1
cleanup() {
  local rc=$?
  if [ -n "$vm_pid" ]; then kill -KILL "$vm_pid" 2>/dev/null || true; fi
  local n
  for n in "$ns" "$sw"; do
    if [ -e "/run/netns/$n" ]; then
      # Everything inside is ours: the VM, epmd, beamup's reporter, dnsmasq.
      for pid in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$n" 2>/dev/null || true
    fi
  done
  rm -rf "/etc/netns/$ns" "$work"
  if [ "$rc" -eq 130 ] && [ "$verdict_done" -eq 0 ]; then
    printf '\nVERDICT: INTERRUPTED (everything it created is removed)\n' >&3
  elif [ "$rc" -ne 0 ] && [ "$verdict_done" -eq 0 ]; then
    printf '\nVERDICT: FAILED: the demo stopped with exit status %s (see above)\n' "$rc" >&3
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "1. build beamup (release profile) and the demo mix release"
cargo build --release --quiet || fail "cargo build --release failed"
beamup="${CARGO_TARGET_DIR:-$repo/target}/release/beamup"
[ -x "$beamup" ] || fail "no binary at $beamup"
echo "    beamup: $beamup ($(du -h "$beamup" | cut -f1))"
cp -a tests/fixtures/demo_mix "$work/demo_mix"
(cd "$work/demo_mix" && MIX_ENV=prod mix release --overwrite --quiet) >"$work/mix.log" 2>&1 \
  || { indent <"$work/mix.log"; fail "mix release failed"; }
release="$work/demo_mix/_build/prod/rel/demo"
echo "    release: $release/bin/demo"

say "2. a \"container\": namespace $ns, eth0 = 10.213.77.10/24 + fd00:213:77::a/64"
ip netns add "$ns"
ip netns add "$sw"
ip -n "$ns" link set lo up
# eth0 is one end of a veth whose other end sits alone in a second namespace (the
# "switch"): the address is the container's own, and nothing can leave.
ip link add eth0 netns "$ns" type veth peer name h0 netns "$sw"
ip -n "$sw" link set h0 up
ip -n "$ns" addr add 10.213.77.10/24 dev eth0
ip -n "$ns" addr add fd00:213:77::a/64 dev eth0 nodad
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default via 10.213.77.1 dev eth0
# Its own DNS on 127.0.0.1 (dnsmasq), answering the discovery query with our address
# and a second container's (.11, which does not exist: only its name is discovered).
mkdir -p "/etc/netns/$ns"
printf 'nameserver 127.0.0.1\n' >"/etc/netns/$ns/resolv.conf"
ip netns exec "$ns" dnsmasq --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
  --host-record=demo.svc.example,10.213.77.10 --host-record=demo.svc.example,10.213.77.11 \
  --pid-file= --user=root
ip -n "$ns" addr show dev eth0 | grep inet | indent
in_container() { ip netns exec "$ns" unshare --uts sh -c 'hostname demo-host && exec "$@"' sh "$@"; }

# What a deployment would mount: a cookie secret and a vm.args template.
cookie="demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
(umask 077 && printf '%s' "$cookie" >"$work/cookie")
cat >"$work/vm.args.tmpl" <<'TEMPLATE'
## rendered by beamup for this container
-kernel net_ticktime 20
-demo_greeting hello-from-${BEAMUP_BASENAME}
TEMPLATE
opts=(--ip interface:eth0 --vm-args "$work/vm.args.tmpl" --query 'demo.svc.example'
      --cookie-file "$work/cookie")
export TMPDIR="$work"   # beamup renders vm.args into $TMPDIR/beamup/

say "3. beamup inspect ${opts[*]} -- bin/demo start"
in_container "$beamup" inspect "${opts[@]}" -- "$release/bin/demo" start 2>&1 | indent \
  || fail "beamup inspect failed"

say "4. boot: beamup ${opts[*]} -- bin/demo start"
# A plain command, not the function: in the background bash then execs it directly, so
# $! is the pid that becomes beamup and then the VM (what SIGTERM must reach).
ip netns exec "$ns" unshare --uts sh -c 'hostname demo-host && exec "$@"' sh \
  "$beamup" "${opts[@]}" -- "$release/bin/demo" start >"$work/vm.log" 2>&1 &
vm_pid=$!
node=demo@10.213.77.10
ask() {
  ip netns exec "$ns" env RELEASE_NODE="$node" RELEASE_DISTRIBUTION=name RELEASE_COOKIE="$cookie" \
    "$release/bin/demo" rpc "$1" 2>&1
}
up=0
for _ in $(seq 1 60); do
  if ask ':ok' >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$vm_pid" 2>/dev/null || break
  sleep 0.5
done
echo "    beamup's log lines (stderr; stdout belongs to the release):"
indent <"$work/vm.log"
[ "$up" -eq 1 ] || fail "the node $node never answered"

say "5. ask the node"
answer_node=$(ask 'IO.puts(node())')
answer_long=$(ask 'IO.puts(:net_kernel.longnames())')
answer_greet=$(ask 'IO.puts(inspect(:init.get_argument(:demo_greeting)))')
echo "    node()                      -> $answer_node"
echo "    :net_kernel.longnames()     -> $answer_long"
echo "    init:get_argument(greeting) -> $answer_greet"
if grep -qF "$cookie" "$work/vm.log"; then fail "the cookie appears in the log"; fi

say "5b. discovery: beamup peers --basename demo --ip interface:eth0 --query demo.svc.example"
peers=$(in_container "$beamup" peers --basename demo --ip interface:eth0 --query demo.svc.example 2>"$work/peers.log") \
  || { indent <"$work/peers.log"; fail "beamup peers failed"; }
echo "$peers" | indent
echo "    (its own node is left out: a node does not connect to itself)"

say "6. stop it as docker stop does: SIGTERM to the container's main process"
kill -TERM "$vm_pid"
set +e
wait "$vm_pid"
stop_rc=$?
set -e
vm_pid=""
echo "    exited with status $stop_rc"

if [ "$answer_node" = "$node" ] && [ "$answer_long" = "true" ] \
   && { [ "$answer_greet" = '{:ok, [[~c"hello-from-demo"]]}' ] || [ "$answer_greet" = "{:ok, [['hello-from-demo']]}" ]; } \
   && [ "$peers" = "demo@10.213.77.11" ] && [ "$stop_rc" -eq 0 ]; then
  verdict_done=1
  printf '\nVERDICT: OK: %s booted through beamup with long names and its rendered vm.args, found its peer by DNS, and stopped cleanly on SIGTERM\n' "$node"
else
  fail "node=$answer_node longnames=$answer_long greeting=$answer_greet peers=$peers stop_status=$stop_rc"
fi
