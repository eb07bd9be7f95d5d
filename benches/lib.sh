# Shared by the benchmark scripts (sourced, not run): installing what they need, building
# Hortus, timing a command, and the 10,000-post site they all measure.
# The caller sets `here` (the benches/ folder) and POSTS and USER_NAME before using them.

root=$(cd "$here/.." && pwd)
export HORTUS_LOG=${HORTUS_LOG:-warn}

need() { # need COMMAND PACKAGE: install from Debian only when missing
    command -v "$1" >/dev/null 2>&1 && return
    echo "installing $2 ..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

build_hortus() { # sets load_before (taken first: other work skews every figure) and hortus
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    if [ -n "${HORTUS_BIN:-}" ]; then # an already built binary: comparing two commits
        hortus=$HORTUS_BIN
        echo "== using $hortus (HORTUS_BIN)" >&2
        return
    fi
    local profile=${PROFILE:-release} # PROFILE=quick: Cargo.toml's faster-to-build profile
    echo "== building (cargo build --profile $profile)" >&2
    (cd "$root" && cargo build --profile "$profile" --quiet)
    hortus="$root/target/$profile/hortus"
}

# timed LABEL CMD...: wall seconds and peak RSS (MiB) into $LABEL_s / $LABEL_mb; the command's
# stdout and stderr kept in $work/LABEL.out and $work/LABEL.err.
timed() {
    local out="$work/time-$1.txt" label=$1
    shift
    /usr/bin/time -v -o "$out" "$@" >"$work/$label.out" 2>"$work/$label.err"
    printf -v "${label}_s" '%s' "$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$out")"
    printf -v "${label}_mb" '%s' "$(awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$out")"
}

# make_site ADDR:PORT: `hortus init` in $work/site with exactly $POSTS posts from gen_posts.py
# (seeded: every script measures the same posts). Sets site, base and slug (a post from the
# middle of the archive).
make_site() {
    site="$work/site"
    base="http://$1"
    "$hortus" --dir "$site" init --domain "$1" --user "$USER_NAME" --base-url "$base" \
        --listen "$1" >/dev/null
    rm -f "$site/content/posts/hello.md"
    echo "== generating $POSTS posts" >&2
    local gen
    gen=$(python3 "$here/gen_posts.py" "$site" "$POSTS")
    slug=$(sed -n 's/^bench_slug=//p' <<<"$gen")
}

# hot_list_coverage LABEL BINARY: the binary's code size, and how many names of
# link/hot-functions.txt (the functions build.rs has the linker place first, issue 15) it has: a
# list older than Cargo.lock or the toolchain matches little, and serve's code is then about
# 6 MiB larger in memory. Regenerate with benches/hot-functions.sh.
hot_list_coverage() {
    need nm binutils
    python3 - "$1" "$2" "$root/link/hot-functions.txt" <<'EOF'
import subprocess, sys
label, binary, listing = sys.argv[1:]
text, names = 0, set()
for line in subprocess.run(['size', '-A', binary], capture_output=True, text=True).stdout.splitlines():
    if line.startswith('.text '): text = int(line.split()[1])
for line in subprocess.run(['nm', binary], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if len(f) == 3 and f[1] in 'tTwW': names.add(f[2])
try:
    hot = [l.strip() for l in open(listing) if l.strip() and not l.startswith('#')]
except OSError:
    hot = []
found = sum(1 for n in hot if n in names)
print(f'{label}: text {text / 2**20:.1f} MiB; of link/hot-functions.txt\'s {len(hot)} functions, '
      f'{found} are in it' + ('' if found >= 0.9 * len(hot) else
                              ' (stale: run benches/hot-functions.sh, then build again)'))
EOF
}
