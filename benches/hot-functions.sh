#!/usr/bin/env bash
# Writes link/hot-functions.txt: the functions `hortus serve` runs in its ordinary life, which
# build.rs hands the linker (`--symbol-ordering-file`) so they sit together at the start of the
# binary's code (issue 15; benches/README.md, "Issue 15: memory, fifth session").
#
# Why: the kernel maps a program's code in 64 kB blocks (fault-around, large folios), and the
# functions one request runs are strewn over the whole 13 MB text: serve ended with 88 % of it
# resident while it had run 3.6 MB of it. Grouped, the code it runs fills few blocks.
#
# What counts as ordinary life (a list made by running it, under valgrind's callgrind): start
# (migrations, a publish with nothing new, the keys, the HTTP client), every public page and
# document in each encoding and as a 304, an edited post published by the watcher and served
# again. Not the inbox or deliveries: their code is mapped when they first run.
#
# Regenerate after a Cargo.lock or toolchain change (symbol names carry a hash of the crate's
# version and features; a name that no longer exists is skipped by the linker, so a stale list
# costs memory, never correctness). benches/memory.sh prints how much of the list the binary
# it measures still matches.
#
#   benches/hot-functions.sh && cargo build --release   # ~2 minutes plus the two builds
#   HORTUS_BIN=path benches/hot-functions.sh
set -euo pipefail

POSTS=${POSTS:-1000}
ADDR=127.0.0.8
USER_NAME=bench

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
need valgrind valgrind
need curl curl
need python3 python3
build_hortus
out="$root/link/hot-functions.txt"

work=$(mktemp -d /tmp/hortus-hot.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' $ADDR)
make_site "$ADDR:$port"
"$hortus" --dir "$site" publish >/dev/null 2>&1
base="http://$ADDR:$port"

valgrind --tool=callgrind --dump-instr=no --compress-strings=no --compress-pos=no \
    --demangle=no --callgrind-out-file="$work/cg.%p" \
    "$hortus" --dir "$site" serve --listen "$ADDR:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do
    curl -fs -o /dev/null --max-time 5 "$base/" && break
    sleep 0.5
done

# fetch_all: every public page and document, identity, gzip, brotli, and conditional (304).
fetch_all() {
    local u accept path etag
    for u in "/posts/$slug|text/html" "/|text/html" "/page/2|text/html" \
        "/users/$USER_NAME|application/activity+json" "/users/$USER_NAME|text/html" \
        "/posts/$slug|application/activity+json" "/tags/birds|text/html" "/feed.xml|*/*" \
        "/users/$USER_NAME/outbox|application/activity+json" \
        "/users/$USER_NAME/outbox/page/1|application/activity+json" "/actor|*/*" \
        "/users/$USER_NAME/followers|application/activity+json" \
        "/.well-known/webfinger?resource=acct:$USER_NAME@$ADDR:$port|*/*" \
        "/.well-known/nodeinfo|*/*" "/nodeinfo/2.1|*/*" "/sitemap.xml|*/*" \
        "/robots.txt|*/*" "/no-such-page|text/html"; do
        path=${u%%|*} accept=${u#*|}
        for enc in "gzip, deflate, br" "gzip" ""; do
            curl -s -o /dev/null --max-time 60 -H "Accept: $accept" \
                ${enc:+-H "Accept-Encoding: $enc"} "$base$path"
        done
        etag=$(curl -s -D - -o /dev/null --max-time 60 -H "Accept: $accept" "$base$path" |
            sed -n 's/^[Ee][Tt]ag: //p' | tr -d '\r')
        curl -s -o /dev/null --max-time 60 -H "Accept: $accept" ${etag:+-H "If-None-Match: $etag"} \
            "$base$path"
    done
}
fetch_all
# An edit, published by the watcher, then everything again (pages rendered anew).
post="$site/content/posts/$slug.md"
printf '\nEdited: été, 編集, تعديل 🌱\n' >>"$post"
sleep 8
fetch_all
sleep 3
callgrind_control -d "$pid" >/dev/null
sleep 2
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=""

mkdir -p "$(dirname "$out")"
# The list's header names what its symbol hashes depend on (the toolchain and Cargo.lock):
# build.rs warns when the build's differ, so a stale list does not cost memory unseen.
rustc_version=$(rustc -V)
lock_sha=$(sha256sum "$root/Cargo.lock" | cut -d' ' -f1)
python3 - "$work" "$hortus" "$out" "$rustc_version" "$lock_sha" <<'EOF'
import glob, os, re, sys
work, binary, out, rustc_version, lock_sha = sys.argv[1:]
binary = os.path.realpath(binary)
dumps = [f for f in glob.glob(f'{work}/cg.*') if re.search(r'\.\d+$', f)]
names, ob = {}, None
for dump in dumps:
    for line in open(dump, errors='replace'):
        if line.startswith('ob='):
            ob = os.path.realpath(line[3:].strip()) if line[3:].strip().startswith('/') else ''
        elif line.startswith('fn=') and ob:
            # Our code, and OpenSSL's (linked into the binary when static; its names are the
            # same in the shared library). callgrind marks recursion levels with 'N.
            lib = os.path.basename(ob)
            if ob == binary or lib.startswith(('libcrypto.so', 'libssl.so')):
                names.setdefault(re.sub(r"'\d+$", '', line[3:].strip()), None)
with open(out, 'w') as f:
    f.write('# Functions `hortus serve` runs at start, serving pages and publishing an edit, placed\n'
            '# first in the binary by the linker (build.rs). Generated by benches/hot-functions.sh;\n'
            '# regenerate after a Cargo.lock or toolchain change. Not edited by hand.\n'
            f'# rustc: {rustc_version}\n'
            f'# Cargo.lock: {lock_sha}\n')
    f.write('\n'.join(names) + '\n')
print(f'{len(names)} functions -> {out}', file=sys.stderr)
EOF
echo "== now build again (cargo build --release) for a binary laid out by the new list" >&2
