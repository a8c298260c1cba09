#!/usr/bin/env bash
# Builds the fuzz targets with cargo-afl (AFL++ on stable Rust) and runs each
# for --minutes (default 10), one after the other, niced. Appends one line per
# target to bench/results/fuzz.txt and exits 1 if any target found a crash or
# a hang (the inputs are under fuzz/out/<target>/default/{crashes,hangs}/).
#
#   bash fuzz/run.sh [--minutes N] [TARGET...]     (default: every target)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
all=(template flag_values vm_args peers_file dist_handshake dist_messages dns_answer)
minutes=10
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=${2:?--minutes needs a number}; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "fuzz/run.sh: unknown flag $1 (use --minutes N)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz/run.sh: no target $t (have: ${all[*]})" >&2; exit 2; }
done

# cargo-afl is a crates.io package; `config --build` compiles the AFL++ it
# ships (once per toolchain; it refuses, harmlessly, when already built).
command -v cargo-afl >/dev/null || cargo install --locked cargo-afl
if ! config=$(cargo afl config --build 2>&1) && [[ "$config" != *"already built"* ]]; then
  echo "$config" >&2
  echo "fuzz/run.sh: cargo afl config --build failed" >&2
  exit 1
fi

cd "$here"
cargo afl build --release
rm -rf out/seeds
target/release/seeds out/seeds

# No core_pattern or CPU governor changes in a container: tell AFL++ so.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
results="$root/bench/results/fuzz.txt"
failed=0
for t in "${targets[@]}"; do
  rm -rf "out/$t"
  echo "fuzz/run.sh: $t for $minutes min" >&2
  # -m: an input that makes the parser allocate 2 GiB counts as a crash.
  nice -n 10 cargo afl fuzz -m 2048 -V $((minutes * 60)) -i "out/seeds/$t" -o "out/$t" \
    "target/release/$t" > "out/$t.log" 2>&1 || { echo "fuzz/run.sh: afl-fuzz failed on $t, see fuzz/out/$t.log" >&2; failed=1; continue; }
  stats="out/$t/default/fuzzer_stats"
  get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  line=$(printf '%s  %-21s %4s min  %12s execs  %6s/s  corpus %5s  crashes %s  hangs %s' \
    "$(date -u +%FT%TZ)" "$t${BEAMUP_FUZZ_RAW:+ (raw)}" "$(( $(get run_time) / 60 ))" "$(get execs_done)" "$(get execs_per_sec)" \
    "$(get corpus_count)" "$(get saved_crashes)" "$(get saved_hangs)")
  echo "$line" | tee -a "$results"
  if [ "$(get saved_crashes)" != 0 ] || [ "$(get saved_hangs)" != 0 ]; then
    echo "fuzz/run.sh: $t: inputs in fuzz/out/$t/default/crashes and hangs" >&2
    failed=1
  fi
done
exit $failed
