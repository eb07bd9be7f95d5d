#!/usr/bin/env bash
# Memory of `hortus serve` (issue 15), variant against variant: one 10,000-post site, then for each
# round and each variant in turn (A, B, A, B: the machine's load moves between runs) start `serve`,
# read /proc just after start, run wrk over a post page, the home page and the actor JSON, read
# /proc 1 s after (VmRSS and VmHWM, file-backed / anonymous RSS, what holds it: the binary, shared
# libraries, [heap], other anonymous such as thread arenas and stacks; the thread count) and
# VmRSS once more 6 s later, after the idle trim. Each URL's req/s and the server's CPU time per
# request; each binary's code size and how much of link/hot-functions.txt it matches. Not a test;
# benches/README.md ("Issue 15: memory, fourth session") has the figures.
#
#   benches/memory.sh LABEL=COMMAND ...     e.g.
#   benches/memory.sh before=target/hortus-before after=target/release/hortus
#   benches/memory.sh arenas8='env MALLOC_ARENA_MAX=16 target/release/hortus'
# COMMAND must exec the binary (a path, or `env VAR=… path`): its pid is the one measured.
# No argument: the release build of this checkout. Knobs: POSTS=10000 ROUNDS=2 DURATION=5s
# WARMUP=1s THREADS=2 CONNS=64 KEEP=1.
set -euo pipefail

POSTS=${POSTS:-10000}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
ADDR=127.0.0.6
USER_NAME=bench

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
need wrk wrk
need curl curl
need python3 python3

if [ $# = 0 ]; then
    build_hortus
    set -- "now=$hortus"
fi
labels=() commands=()
for v in "$@"; do
    labels+=("${v%%=*}") commands+=("${v#*=}")
done
# The site is made with the first variant's binary (the last word of its command).
hortus=${commands[0]##* }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

work=$(mktemp -d /tmp/hortus-memory.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' $ADDR)
make_site "$ADDR:$port"
"$hortus" --dir "$site" publish >/dev/null 2>&1

wait_http() {
    for _ in $(seq 600); do
        curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# mem PID: "rss hwm file anon binary libs heap other threads" in MiB from /proc.
mem() {
    python3 - "$1" <<'EOF'
import re, sys
pid = sys.argv[1]
status = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status'))
kb = lambda k: int(status[k].split()[0])
import os
exe = os.path.realpath(f'/proc/{pid}/exe')
parts = {'binary': 0, 'libs': 0, 'heap': 0, 'other': 0}
name = None
for l in open(f'/proc/{pid}/smaps'):
    f = l.split()
    if re.match(r'^[0-9a-f]+-[0-9a-f]+ ', l):
        name = f[5] if len(f) > 5 else ''
    elif f[0] == 'Rss:':
        n = int(f[1])
        if name.split(' ')[0] == exe: parts['binary'] += n
        elif name.startswith('/'): parts['libs'] += n
        elif name == '[heap]': parts['heap'] += n
        else: parts['other'] += n
mib = lambda k: f'{k / 1024:.1f}'
print(mib(kb('VmRSS')), mib(kb('VmHWM')), mib(kb('RssFile')), mib(kb('RssAnon')),
      *(mib(parts[k]) for k in ('binary', 'libs', 'heap', 'other')), status['Threads'].strip())
EOF
}

paths=("/posts/$slug" "/" "/users/$USER_NAME")
accepts=("text/html" "text/html" "application/activity+json")
rps() { awk '/^Requests\/sec:/{printf "%.0f", $2}' "$1"; }
# cpu_ticks PID: user + system CPU time of the process so far, in clock ticks (/proc/PID/stat).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# us_per_request TICKS WRK_OUTPUT: the server's CPU time per request answered, in microseconds.
us_per_request() {
    awk -v t="$1" -v hz="$(getconf CLK_TCK)" \
        '/ requests in /{printf "%.1f", t / hz * 1e6 / $1}' "$2"
}

rows=()
for round in $(seq "$ROUNDS"); do
    for i in "${!labels[@]}"; do
        echo "== round $round: ${labels[$i]}" >&2
        # shellcheck disable=SC2086 # the command is words on purpose (env VAR=… path)
        ${commands[$i]} --dir "$site" serve --listen "$ADDR:$port" >"$work/serve.log" 2>&1 &
        pid=$!
        wait_http "http://$ADDR:$port/"
        sleep 1
        started=$(mem "$pid")
        reqs=()
        for j in 0 1 2; do
            wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -H "Accept: ${accepts[$j]}" \
                "http://$ADDR:$port${paths[$j]}" >/dev/null
            ticks=$(cpu_ticks "$pid")
            wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -H "Accept: ${accepts[$j]}" \
                "http://$ADDR:$port${paths[$j]}" >"$work/wrk.txt"
            ticks=$(($(cpu_ticks "$pid") - ticks))
            reqs+=("$(rps "$work/wrk.txt") ($(us_per_request "$ticks" "$work/wrk.txt"))")
        done
        sleep 1
        loaded=$(mem "$pid")
        # `serve` gives freed memory back once quiet for 2 s (src/app/memory.rs).
        sleep 5
        quiet=$(mem "$pid")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        pid=""
        rows+=("$(printf '| %s | %s | %s | %s | %s | %s |' "${labels[$i]}" "$round" \
            "$(awk '{print $1}' <<<"$started")" \
            "$(awk -v OFS=' | ' '{print $1, $2, $3 " / " $4, $5, $6, $7, $8, $9}' <<<"$loaded")" \
            "$(awk '{print $1}' <<<"$quiet")" \
            "${reqs[0]} | ${reqs[1]} | ${reqs[2]}")")
    done
done

cat <<EOF

hortus serve memory, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load before: $load_before
$POSTS posts; per variant: start, /proc; wrk -t$THREADS -c$CONNS -d$DURATION per URL (post, home, actor); /proc. MiB.

Requests per second, and in brackets the server's CPU time per request (µs; robust to load).

| variant | round | RSS started | RSS loaded | peak | file / anon | binary | libs | [heap] | other anon | threads | RSS 6 s later | post req/s (µs) | home req/s (µs) | actor req/s (µs) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")
EOF

# Each binary's code size, and how much of link/hot-functions.txt it still has.
echo
for i in "${!labels[@]}"; do
    hot_list_coverage "${labels[$i]}" "${commands[$i]##* }"
done
