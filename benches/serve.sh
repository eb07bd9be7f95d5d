#!/usr/bin/env bash
# Serving benchmark (not a test): a site of 10,000 posts, requests per second for a post page, the
# home page and the actor JSON, beside nginx serving the very same bytes; and the time and peak
# memory of `hortus publish`. See benches/README.md for what the figures mean.
#
# Then the memory of `hortus serve` after that load (now, and with glibc's default malloc arenas
# and the old 16 MiB page cache: the settings before issue 15), and issue 15's fan-out row
# (`cargo bench --bench delivery -- fast`); last, every serving, fan-out and memory row of issue
# 15's table as a ratio against its reference measured in this run.
#
# Knobs (environment): POSTS=10000 DURATION=10s WARMUP=2s THREADS=2 CONNS=64 KEEP=1 (keep the
# temp site and logs) FANOUT=0 (skip the fan-out bench).
set -euo pipefail

POSTS=${POSTS:-10000}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
HORTUS_ADDR=127.0.0.2
NGINX_ADDR=127.0.0.3
USER_NAME=bench

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
need wrk wrk
need nginx nginx
need curl curl
need python3 python3
[ -x /usr/bin/time ] || need /usr/bin/time time

build_hortus

work=$(mktemp -d /tmp/hortus-bench.XXXXXX)
chmod 755 "$work" # nginx workers run as an unprivileged user
hortus_pid="" nginx_pid=""
cleanup() {
    for pid in $hortus_pid $nginx_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $hortus_pid $nginx_pid; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # an unused port on address $1, chosen by the OS
    python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}
wait_http() { # wait_http URL: up to 60 s for the server to answer
    for _ in $(seq 600); do
        curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# --- the site ---------------------------------------------------------------------------------
hport=$(free_port $HORTUS_ADDR)
make_site "$HORTUS_ADDR:$hport"
content_size=$(du -sh "$site/content" | cut -f1)

# --- publish: first (everything new), then again (nothing changed) ----------------------------
echo "== hortus publish (first, $POSTS new posts)" >&2
timed publish1 "$hortus" --dir "$site" publish
tail -n1 "$work/publish1.out" >&2
echo "== hortus publish (again, nothing changed)" >&2
timed publish2 "$hortus" --dir "$site" publish
tail -n1 "$work/publish2.out" >&2
db_size=$(du -ch "$site"/hortus.db* | tail -n1 | cut -f1)

# --- hortus serve -----------------------------------------------------------------------------
"$hortus" --dir "$site" serve --listen "$HORTUS_ADDR:$hport" >"$work/hortus.log" 2>&1 &
hortus_pid=$!
wait_http "$base/"

# The three requests, with the headers every run sends.
paths=("/posts/$slug" "/" "/users/$USER_NAME")
names=("post page" "home page" "actor JSON")
files=("post.html" "home.html" "actor.json")
accepts=("text/html" "text/html" "application/activity+json")
types=("text/html; charset=utf-8" "text/html; charset=utf-8" "application/activity+json")

snap="$work/nginx/html"
mkdir -p "$snap" "$work/nginx/logs" "$work/nginx/tmp"
for i in 0 1 2; do
    code=$(curl -sS -o "$snap/${files[$i]}" -w '%{http_code}' -H "Accept: ${accepts[$i]}" \
        "$base${paths[$i]}")
    [ "$code" = 200 ] || { echo "hortus answered $code for ${paths[$i]}" >&2; exit 1; }
done
chmod -R a+rX "$work/nginx"

# --- nginx with the same bytes ----------------------------------------------------------------
# Workers: one per core (auto), as actix starts one worker per core; both share the 2 cores with
# wrk. Keep-alive unlimited as with actix, no access log, no gzip (wrk asks for none anyway).
nport=$(free_port $NGINX_ADDR)
conf="$work/nginx/nginx.conf"
loc() { # loc PATH FILE TYPE
    printf '        location = %s { default_type "%s"; try_files /%s =404; }\n' "$1" "$3" "$2"
}
cat >"$conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    types { }
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    server {
        listen $NGINX_ADDR:$nport;
        root $snap;
$(for i in 0 1 2; do loc "${paths[$i]}" "${files[$i]}" "${types[$i]}"; done)
    }
}
EOF
nginx -c "$conf" -p "$work/nginx" -g 'daemon off;' &
nginx_pid=$!
nbase="http://$NGINX_ADDR:$nport"
wait_http "$nbase/"
for i in 0 1 2; do # nginx must send exactly what hortus sent
    curl -fsS -H "Accept: ${accepts[$i]}" "$nbase${paths[$i]}" | cmp -s - "$snap/${files[$i]}" \
        || { echo "nginx does not serve the saved ${files[$i]}" >&2; exit 1; }
done

# --- load -------------------------------------------------------------------------------------
# bench URL ACCEPT OUT: warm up, then measure. Timeouts and non-2xx answers are counted, not
# fatal: a slow endpoint is a result.
bench() {
    wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -H "Accept: $2" "$1" >/dev/null
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency -H "Accept: $2" "$1" >"$3"
}
errors() { # socket errors (connect, read, write, timeout) plus non-2xx/3xx answers
    awk '/Socket errors/{gsub(/[^0-9 ]/," "); for(i=1;i<=NF;i++) n+=$i} /Non-2xx/{n+=$NF}
         END{print n+0}' "$1"
}
rps() { awk '/^Requests\/sec:/{printf "%.0f", $2}' "$1"; }
p99() { awk '$1=="99%"{print $2}' "$1"; }

rows=()
for i in 0 1 2; do
    echo "== wrk ${names[$i]}: hortus, then nginx" >&2
    bench "$base${paths[$i]}" "${accepts[$i]}" "$work/wrk-hortus-$i.txt"
    bench "$nbase${paths[$i]}" "${accepts[$i]}" "$work/wrk-nginx-$i.txt"
    h=$(rps "$work/wrk-hortus-$i.txt") n=$(rps "$work/wrk-nginx-$i.txt")
    size=$(stat -c %s "$snap/${files[$i]}")
    rows+=("$(printf '| %-10s | %7s B | %12s | %11s | %6s | %10s | %9s | %s/%s |' "${names[$i]}" \
        "$size" "$h" "$n" "$(awk -v h="$h" -v n="$n" 'BEGIN{printf "%.2g", h/n}')" \
        "$(p99 "$work/wrk-hortus-$i.txt")" "$(p99 "$work/wrk-nginx-$i.txt")" \
        "$(errors "$work/wrk-hortus-$i.txt")" "$(errors "$work/wrk-nginx-$i.txt")")")
done
# status_mb FIELD: VmRSS (resident now) or VmHWM (the peak, which includes the publish every
# `serve` starts with) of hortus, in MiB.
status_mb() { awk -v f="$1:" '$1==f{printf "%.1f", $2/1024}' "/proc/$hortus_pid/status"; }
serve_mb=$(status_mb VmHWM) serve_rss_mb=$(status_mb VmRSS)
# `serve` gives freed memory back once quiet for 2 s (src/app/memory.rs): read again after that.
sleep 6
serve_quiet_mb=$(status_mb VmRSS)

# --- memory reference: the same binary and load with the settings before issue 15 (glibc's
# default of 8 malloc arenas per core, which MALLOC_ARENA_MAX overrides, and a 16 MiB cache).
kill "$hortus_pid"; wait "$hortus_pid" 2>/dev/null || true
sed -i 's/^posts_per_page = .*/&\npage_cache_mb = 16/' "$site/hortus.toml"
MALLOC_ARENA_MAX=$((8 * $(nproc))) "$hortus" --dir "$site" serve --listen "$HORTUS_ADDR:$hport" \
    >"$work/hortus-before.log" 2>&1 &
hortus_pid=$!
wait_http "$base/"
for i in 0 1 2; do
    echo "== wrk ${names[$i]}: hortus with the memory settings before issue 15" >&2
    bench "$base${paths[$i]}" "${accepts[$i]}" "$work/wrk-before-$i.txt"
done
before_mb=$(status_mb VmHWM) before_rss_mb=$(status_mb VmRSS)
sed -i '/^page_cache_mb = 16$/d' "$site/hortus.toml"

# --- the same hortus with its page cache off ([site] page_cache_mb = 0): renders every request,
# as before issue 15; measured in the same run so the gain is a same-run ratio too.
kill "$hortus_pid"; wait "$hortus_pid" 2>/dev/null || true
sed -i 's/^posts_per_page = .*/&\npage_cache_mb = 0/' "$site/hortus.toml"
"$hortus" --dir "$site" serve --listen "$HORTUS_ADDR:$hport" >"$work/hortus-uncached.log" 2>&1 &
hortus_pid=$!
wait_http "$base/"
uncached_rows=()
for i in 0 1 2; do
    echo "== wrk ${names[$i]}: hortus, page cache off" >&2
    curl -fsS -H "Accept: ${accepts[$i]}" "$base${paths[$i]}" | cmp -s - "$snap/${files[$i]}" \
        || { echo "uncached hortus does not send the cached ${files[$i]}" >&2; exit 1; }
    bench "$base${paths[$i]}" "${accepts[$i]}" "$work/wrk-uncached-$i.txt"
    u=$(rps "$work/wrk-uncached-$i.txt") h=$(rps "$work/wrk-hortus-$i.txt") n=$(rps "$work/wrk-nginx-$i.txt")
    uncached_rows+=("$(printf '| %-10s | %14s | %6s | %12s | %6s |' "${names[$i]}" "$u" \
        "$(awk -v u="$u" -v n="$n" 'BEGIN{printf "%.2g", u/n}')" "$h" \
        "$(awk -v h="$h" -v u="$u" 'BEGIN{printf "%.1f", h/u}')")")
done

# --- fan-out: deliveries per second to fast inboxes against RSA-2048 signatures per second on all
# cores, measured together by the delivery bench (benches/delivery.rs).
fanout_rate="" sign_rate=""
if [ "${FANOUT:-1}" != 0 ]; then
    echo "== cargo bench --bench delivery -- fast" >&2
    (cd "$root" && cargo bench --quiet --profile "${PROFILE:-release}" --bench delivery -- fast) >"$work/fanout.txt" 2>"$work/fanout.err" || true
    fanout_rate=$(sed -n 's/^fanout_per_s=//p' "$work/fanout.txt")
    sign_rate=$(sed -n 's/^signs_per_s=//p' "$work/fanout.txt")
fi

# --- report -----------------------------------------------------------------------------------
cat <<EOF

Hortus serving benchmark, $(date -u +%Y-%m-%d) on $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1))
$POSTS posts (content/ $content_size, database $db_size); wrk -t$THREADS -c$CONNS -d$DURATION per URL after a $WARMUP warm-up,
hortus on $HORTUS_ADDR and nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (worker_processes auto) on $NGINX_ADDR, same machine, loopback.
Load average before the run: $load_before.

| endpoint   |      body | hortus req/s | nginx req/s |  ratio | hortus p99 | nginx p99 | errors h/n |
|------------|----------:|-------------:|------------:|-------:|-----------:|----------:|-----------:|
$(printf '%s\n' "${rows[@]}")

| endpoint   | uncached req/s |  ratio | cached req/s |  gain |
|------------|---------------:|-------:|-------------:|------:|
$(printf '%s\n' "${uncached_rows[@]}")

| hortus                          | wall time | peak RSS   |
|---------------------------------|----------:|-----------:|
$(printf '| %-31s | %7.2f s | %6s MiB |' "publish, first ($POSTS new)" "$publish1_s" "$publish1_mb")
$(printf '| %-31s | %7.2f s | %6s MiB |' "publish, again (none changed)" "$publish2_s" "$publish2_mb")
$(printf '| %-31s | %9s | %6s MiB |' "serve, after the load above" "" "$serve_mb")

Issue 15's rows, each against its reference in this run:

| measure | hortus | reference (this run) | ratio | goal |
|---|---:|---:|---:|---:|
$(for i in 0 1 2; do
    h=$(rps "$work/wrk-hortus-$i.txt") n=$(rps "$work/wrk-nginx-$i.txt")
    printf '| %s req/s vs nginx, same bytes | %s | %s | %s | >= 0.5 |\n' "${names[$i]}" "$h" "$n" \
        "$(awk -v h="$h" -v n="$n" 'BEGIN{printf "%.2f", h/n}')"
done)
$(if [ -n "$fanout_rate" ]; then
    printf '| fan-out to fast inboxes vs RSA-2048 signs/s on all cores | %s/s | %s/s | %s | >= 0.7 |\n' \
        "$fanout_rate" "$sign_rate" "$(awk -v f="$fanout_rate" -v s="$sign_rate" 'BEGIN{printf "%.2f", f/s}')"
else
    echo "| fan-out to fast inboxes | (skipped: FANOUT=0 or the bench failed, see fanout.err) | | | >= 0.7 |"
fi)
$(printf '| serve RSS after the load, now (peak) | %s (%s) MiB | %s (%s) MiB before issue 15 | %s | <= 20 MiB |' \
    "$serve_rss_mb" "$serve_mb" "$before_rss_mb" "$before_mb" \
    "$(awk -v a="$serve_rss_mb" -v b="$before_rss_mb" 'BEGIN{printf "%.2f", a/b}')")
$(printf '| serve RSS 6 s after the load (quiet: freed memory given back) | %s MiB | | | <= 20 MiB |' \
    "$serve_quiet_mb")

$(hot_list_coverage hortus "$hortus")

Reproduce: benches/serve.sh (knobs POSTS DURATION WARMUP THREADS CONNS KEEP FANOUT);
the fan-out row alone: cargo bench --bench delivery -- fast.
EOF
