#!/usr/bin/env bash
# Static export benchmark (not a test): `hortus export` of a 10,000-post site — time, documents
# per second, peak memory — then an export with nothing changed and one after editing a single
# post, beside `cp -r` of the same output tree measured in the same run. See benches/README.md.
#
# Knobs (environment): POSTS=10000 KEEP=1 (keep the temp site and the output), EDITS=5 (one-edit
# exports in a row: the row is noisy on a shared disk, so the minimum and median are printed too,
# with the phases of the median run).
set -euo pipefail

POSTS=${POSTS:-10000}
EDITS=${EDITS:-5}
ADDR=127.0.0.2
USER_NAME=bench

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
need python3 python3
[ -x /usr/bin/time ] || need /usr/bin/time time

build_hortus

work=$(mktemp -d /tmp/hortus-export-bench.XXXXXX)
cleanup() { if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

field() { # field LABEL KEY: a number from the export's JSON line
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/$1.out" "$2"
}

# --- the site (the serving benchmark's generator: same posts, same seed) ------------------------
make_site "$ADDR:8080"
post_file=$(grep -l "^slug = \"$slug\"" "$site"/content/posts/*.md 2>/dev/null | head -n1 || true)
[ -n "$post_file" ] || post_file="$site/content/posts/$slug.md"
[ -f "$post_file" ] || { echo "cannot find the file of post $slug" >&2; exit 1; }
echo "== hortus publish ($POSTS new posts)" >&2
sync # the generator's 40 MB still being written back would be measured, not the publish
timed publish_new "$hortus" --dir "$site" publish
echo "== cp -r of content/ and the database it wrote (reference)" >&2
sync
mkdir -p "$work/site-copy"
timed copy_site cp -r "$site/content" "$site/hortus.db" "$work/site-copy/"
timed publish "$hortus" --dir "$site" publish # what every export pays first: a no-op publish

# --- exports ----------------------------------------------------------------------------------
out="$work/out"
echo "== hortus export (full, into an empty directory)" >&2
timed full "$hortus" --dir "$site" export "$out"
echo "== cp -r of the same tree (reference)" >&2
sync
timed copy cp -r "$out" "$work/copy"
echo "== hortus export (again, nothing changed)" >&2
timed same "$hortus" --dir "$site" export "$out"
echo "== hortus export (after editing one post)" >&2
printf '\nOne more line, edited for the benchmark.\n' >>"$post_file"
timed edit "$hortus" --dir "$site" export "$out"
# More one-edit exports, each after one more edit, with the export's phases in its JSON log.
for i in $(seq 2 "$EDITS"); do
    printf '\nAnother line, edit %d for the benchmark (編集 %d, تعديل).\n' "$i" "$i" >>"$post_file"
    HORTUS_LOG=hortus::export=debug HORTUS_LOG_FORMAT=json \
        timed "edit$i" "$hortus" --dir "$site" export "$out"
done
edits_summary=$(python3 - "$work" "$EDITS" <<'PY'
import json, statistics, sys
work, n = sys.argv[1], int(sys.argv[2])
runs = []
for i in range(2, n + 1):
    report = json.load(open(f"{work}/edit{i}.out"))
    phases, last = [], 0
    for line in open(f"{work}/edit{i}.err"):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        msg = ev.get("message", "")
        if msg.startswith("export: ") and "ms" in ev:
            phases.append(f"{msg[8:]} {ev['ms'] - last}")
            last = ev["ms"]
    runs.append((report["seconds"], report["documents"], phases))
if not runs:
    print("(EDITS=1: no repeated one-edit exports)")
    sys.exit()
secs = sorted(r[0] for r in runs)
median = sorted(runs, key=lambda r: r[0])[(len(runs) - 1) // 2]
print(f"One edit, {len(runs)} more runs (export* seconds): min {secs[0]:.3f}, "
      f"median {statistics.median(secs):.3f}, max {secs[-1]:.3f}; {median[1]} documents each.")
print("Phases of the median run (ms each): " + "; ".join(median[2]) + ".")
PY
)

files=$(field full files)
docs=$(field full documents)
size=$(du -sh "$out" | cut -f1)
written_edit=$(field edit written)
edited=$(python3 -c 'import json,sys; print(", ".join(json.load(open(sys.argv[1]))["written_paths"]))' "$work/edit.out")

row() { # row LABEL WALL RSS [EXPORT_SECONDS WRITTEN RENDERED]
    printf '| %-31s | %7.2f s | %6s MiB | %9s | %7s | %8s | %6s |\n' "$1" "$2" "$3" \
        "${4:+$(printf '%.2f s' "$4")}" "${5:-}" "${6:-}" \
        "$(awk -v w="$2" -v f="$full_s" 'BEGIN{printf "%.3f", w/f}')"
}
cat <<EOF

Hortus export benchmark, $(date -u +%Y-%m-%d) on $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1))
$POSTS posts: $docs documents through the handlers, $files files, $size on disk.
Load average before the run: $load_before.

| run                             | wall time |   peak RSS |   export* | written | rendered | × full |
|---------------------------------|----------:|-----------:|----------:|--------:|---------:|-------:|
$(row "export, full (empty directory)" "$full_s" "$full_mb" "$(field full seconds)" "$(field full written)" "$docs")
$(row "cp -r of the same tree" "$copy_s" "$copy_mb" "" "$files")
$(row "export, nothing changed" "$same_s" "$same_mb" "$(field same seconds)" "$(field same written)" "$(field same documents)")
$(row "export, one post edited" "$edit_s" "$edit_mb" "$(field edit seconds)" "$written_edit" "$(field edit documents)")
$(row "publish, nothing changed" "$publish_s" "$publish_mb")
$(row "publish, $POSTS new posts" "$publish_new_s" "$publish_new_mb")

Full export against cp -r of its output: $(awk -v f="$full_s" -v c="$copy_s" 'BEGIN{printf "%.1f", f/c}')× the time.
Full export: $(awk -v d="$docs" -v s="$(field full seconds)" 'BEGIN{printf "%.0f", d/s}') documents per second (export* time), $(awk -v d="$docs" -v s="$full_s" 'BEGIN{printf "%.0f", d/s}') per second of wall time.
* export: the time the export itself reports (after publishing); wall time includes the no-op
  publish every export starts with and the process start.
After one edit it wrote: $edited.
$edits_summary

Issue 15's export and publish rows, each beside a reference measured in this run:

| measure | hortus | reference (same run) | ratio | goal |
|---|---:|---|---:|---:|
| \`hortus publish\`, $POSTS new posts | $(printf '%.2f s' "$publish_new_s") | cp -r of content/ and hortus.db: $(printf '%.2f s' "$copy_site_s") | $(awk -v a="$publish_new_s" -v b="$copy_site_s" 'BEGIN{printf "%.1f×", a/b}') | < 2 s |
| full export, documents per second | $(awk -v d="$docs" -v s="$(field full seconds)" 'BEGIN{printf "%.0f/s", d/s}') | cp -r of the output: $(awk -v d="$files" -v s="$copy_s" 'BEGIN{printf "%.0f files/s", d/s}') | $(awk -v d="$docs" -v s="$(field full seconds)" -v f="$files" -v c="$copy_s" 'BEGIN{printf "%.2f", (d/s)/(f/c)}') | ≥ 5,000/s |
| export after editing one post | $(printf '%.3f s' "$(field edit seconds)") | the full export: $(printf '%.2f s' "$(field full seconds)") | $(awk -v a="$(field edit seconds)" -v b="$(field full seconds)" 'BEGIN{printf "%.4f", a/b}') | < 0.2 s |
| export when nothing changed | $(printf '%.3f s' "$(field same seconds)") | the full export: $(printf '%.2f s' "$(field full seconds)") | $(awk -v a="$(field same seconds)" -v b="$(field full seconds)" 'BEGIN{printf "%.4f", a/b}') | < 0.2 s |

Export times are the export's own (after the no-op publish every export starts with, about
$(printf '%.2f s' "$publish_s") of wall time here). Reproduce: benches/export.sh (POSTS=$POSTS).
EOF
