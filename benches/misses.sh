#!/usr/bin/env bash
# Cache misses (not a test): every public post page of the 10,000-post site requested once, in
# order, by one keep-alive client, so each request is a miss of `serve`'s page cache (4 MiB: a
# few hundred pages) and renders. Prints pages/s and the server's CPU µs per page, for each
# `Accept-Encoding` a client may send (none, gzip, a browser's), for one binary or for two run
# alternately (before/after a change: the ratio is the figure to quote; the client is Python,
# so pages/s is partly the client's, the CPU per page is the server's alone).
#
# Usage: benches/misses.sh [BINARY [BINARY2]]   (default: cargo build --release)
# Knobs: POSTS=10000 ROUNDS=2 KEEP=1
set -euo pipefail
POSTS=${POSTS:-10000}
ROUNDS=${ROUNDS:-2}
USER_NAME=bench
ADDR=127.0.0.9
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
need curl curl
need python3 python3
if [ $# -ge 1 ]; then HORTUS_BIN=$1; fi
build_hortus
bins=("$hortus")
if [ $# -ge 2 ]; then bins+=("$2"); fi

work=$(mktemp -d /tmp/hortus-misses.XXXXXX)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
port=$(python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' $ADDR)
make_site "$ADDR:$port"
"$hortus" --dir "$site" publish >/dev/null 2>&1
# The public posts' paths (followers-only and direct posts have no page).
python3 - "$site/content/posts" >"$work/paths" <<'PY'
import glob, os, re, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.md")):
    front = open(f, encoding="utf-8").read().split("+++")[1]
    vis = re.search(r'^visibility = "(.*)"', front, re.M)
    if vis and vis.group(1) not in ("public", "unlisted"):
        continue
    slug = re.search(r'^slug = "(.*)"', front, re.M)
    print("/posts/" + (slug.group(1) if slug else os.path.basename(f)[:-3]))
PY
echo "== $(wc -l <"$work/paths") post pages; load before: $load_before" >&2

for round in $(seq "$ROUNDS"); do
    for bin in "${bins[@]}"; do
        for accept in "" "gzip" "gzip, deflate, br, zstd"; do
            sync
            "$bin" --dir "$site" serve --listen "$ADDR:$port" >"$work/serve.log" 2>&1 &
            pid=$!
            for _ in $(seq 100); do
                curl -fsS -o /dev/null "http://$ADDR:$port/users/$USER_NAME" 2>/dev/null && break
                sleep 0.1
            done
            python3 - "$work/paths" "$ADDR" "$port" "$pid" "$accept" "$(basename "$bin")" <<'PY'
import http.client, sys, time
paths, addr, port, pid, accept, label = sys.argv[1:]
paths = [l.strip() for l in open(paths) if l.strip()]
def cpu():  # utime + stime of the server, seconds
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100
headers = {"Accept": "text/html"}
if accept:
    headers["Accept-Encoding"] = accept
c = http.client.HTTPConnection(addr, int(port))
c0, t0 = cpu(), time.perf_counter()
for p in paths:
    c.request("GET", p, headers=headers)
    r = c.getresponse()
    r.read()
    assert r.status == 200, (p, r.status)
wall, used = time.perf_counter() - t0, cpu() - c0
print(f"{label:32} accept {accept or '(none)':24} {len(paths) / wall:7.0f} pages/s"
      f"  {used / len(paths) * 1e6:5.0f} µs CPU/page")
PY
            kill "$pid"
            wait "$pid" 2>/dev/null || true
            pid=""
        done
    done
done
