#!/usr/bin/env bash
# Fuzz the HTTP Signature parsers, the activity parser, the teaser and the Markdown renderer
# (fuzz/, cargo-fuzz + libFuzzer + AddressSanitizer) for SECONDS per target, default 60. Prints
# runs and exec/s per target; exits non-zero if any target crashes (panic, sanitizer report, or an
# input slower than 10 s), leaving the input in fuzz/artifacts/<target>/ and the log in
# fuzz/artifacts/<target>.log.
#
# The machine has one stable toolchain and can fetch no other, so RUSTC_BOOTSTRAP=1 lets stable
# rustc take the -Z flags cargo-fuzz passes. cargo-fuzz itself comes from crates.io.
set -euo pipefail
secs=${1:-60}
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS per target]" >&2; exit 2; }
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
fuzz() { cargo fuzz "$1" --fuzz-dir fuzz "${@:2}"; }

fuzz build --debug-assertions
status=0
for target in $(fuzz list); do
  corpus=fuzz/corpus/$target
  log=fuzz/artifacts/$target.log
  mkdir -p "$corpus" fuzz/artifacts
  dirs=("$corpus")
  [ -d "fuzz/seeds/$target" ] && dirs+=("fuzz/seeds/$target")
  dict=fuzz/signature.dict
  [ -f "fuzz/$target.dict" ] && dict=fuzz/$target.dict
  if timeout $((secs + 300)) cargo fuzz run --fuzz-dir fuzz --debug-assertions "$target" "${dirs[@]}" -- \
    -max_total_time="$secs" -timeout=10 -max_len=9000 -dict="$dict" \
    -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
    tail -n 40 "$log"
  fi
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
  printf '%-18s %-5s %s runs in %s s, %s exec/s\n' "$target" "$result" "${runs:-?}" "$secs" "${rate:-?}"
done
exit $status
