#!/usr/bin/env bash
# One downloader of one large file from `shoal serve`, as its only source (the web seed:
# no tracker peer, no other client), against curl fetching the same file from the same
# server in the same run. Warm cache (the file in the page cache) and cold cache (page
# cache dropped before each fetch: needs root), RUNS runs of each, medians; prints the
# wall-time ratio shoal / curl, to shoal's "download complete" line and to its exit.
# shoal's "download complete" comes once the file is synced to disk (then renamed from
# its .part name), which curl does not do: `curl+sync` is curl's time plus a `sync` of
# its file right after, the like-for-like figure. The downloaded copies are compared
# with the original.
#
#   benches/serve/serve_vs_curl.sh [SIZE_MIB=1024] [RUNS=3]
#
# Builds the release binary first, unless SHOAL names a `shoal` binary to measure.
# SHOAL_OTHER names a second binary (e.g. an older build) measured in the same runs,
# interleaved with the first and curl: two more columns, its ratios to curl. Each run's
# figures go to stderr.
#
# Everything on 127.0.0.1; files in a temporary folder under $TMPDIR (removed at the
# end). A benchmark, never a test: the figures depend on the
# machine and on what else runs on it.
set -euo pipefail

size_mib=${1:-1024}
runs=${2:-3}
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
if [ -n "${SHOAL:-}" ]; then
    shoal=$SHOAL
else
    cargo build --release --locked -q -p shoal-mio
    shoal=${CARGO_TARGET_DIR:-$here/target}/release/shoal
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-serve-bench.XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/dl"
echo "making a ${size_mib} MiB file..." >&2
head -c "$((size_mib << 20))" /dev/urandom > "$work/www/big.bin"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$shoal" serve "$work/www" --http "127.0.0.1:$port" --udp off > "$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 600); do
    grep -q "listening on" "$work/serve.log" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$work/serve.log" || { echo "shoal serve did not start" >&2; exit 1; }
url="http://127.0.0.1:$port"

can_drop=no
if [ -w /proc/sys/vm/drop_caches ]; then can_drop=yes; fi

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
warm() { cat "$work/www/big.bin" > /dev/null; }

# Wall seconds of a command, its output to a log.
timed() {
    local start end
    start=$(date +%s.%N)
    "$@" >> "$work/run.log" 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

run_curl() {
    rm -f "$work/dl/big.bin"
    timed curl -sS --fail -o "$work/dl/big.bin" "$url/files/big.bin"
}
# Wall seconds to exit, and to the "download complete" line (said once every file is
# synced and has its final name; before `stopped` is announced and the engine winds
# down), as "EXIT COMPLETE".
run_shoal() {
    local bin=${1:-$shoal}
    rm -rf "$work/dl/big.bin" "$work/dl/.shoal"
    local start end complete
    start=$(date +%s.%N)
    "$bin" download "$url/big.bin.torrent" -o "$work/dl" --no-seed --plain --port 0 2>&1 |
        while IFS= read -r line; do
            echo "$line" >> "$work/run.log"
            case $line in "download complete"*) date +%s.%N > "$work/complete";; esac
        done
    end=$(date +%s.%N)
    complete=$(cat "$work/complete")
    echo "$(echo "$end - $start" | bc -l) $(echo "$complete - $start" | bc -l)"
}
check() {
    cmp -s "$work/www/big.bin" "$work/dl/big.bin" || { echo "$1: the copy differs" >&2; exit 1; }
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

modes=(warm)
if [ "$can_drop" = yes ]; then modes+=(cold); else echo "(not root: cold-cache runs left out)" >&2; fi

other=${SHOAL_OTHER:-}
header=$(printf '%-5s %7s %12s %13s %13s %10s %16s %10s' cache "curl s" "curl+sync s" \
    "shoal done s" "shoal exit s" "done/curl" "done/curl+sync" "exit/curl")
if [ -n "$other" ]; then header+=$(printf ' %16s %22s' "other done/curl" "other done/curl+sync"); fi
echo "$header"
for mode in "${modes[@]}"; do
    c=(); cs=(); s=(); d=(); od=()
    for _ in $(seq "$runs"); do
        if [ "$mode" = warm ]; then warm; else drop_caches; fi
        c+=("$(run_curl)"); check curl
        # What shoal's "download complete" waits for and curl does not do: the file on disk.
        cs+=("$(echo "${c[-1]} + $(timed sync "$work/dl/big.bin")" | bc -l)")
        # The download's own writes are in the page cache: drop them too.
        if [ "$mode" = warm ]; then warm; else drop_caches; fi
        read -r exit_s done_s < <(run_shoal); check shoal
        s+=("$exit_s"); d+=("$done_s")
        if [ -n "$other" ]; then
            if [ "$mode" = warm ]; then warm; else drop_caches; fi
            read -r exit_s done_s < <(run_shoal "$other"); check other
            od+=("$done_s")
        fi
    done
    echo "$mode runs: curl ${c[*]}; curl+sync ${cs[*]}; shoal done ${d[*]}${other:+; other done ${od[*]}}" >&2
    cm=$(printf '%s\n' "${c[@]}" | median)
    csm=$(printf '%s\n' "${cs[@]}" | median)
    sm=$(printf '%s\n' "${s[@]}" | median)
    dm=$(printf '%s\n' "${d[@]}" | median)
    line=$(printf '%-5s %7.2f %12.2f %13.2f %13.2f %10.2f %16.2f %10.2f' "$mode" "$cm" "$csm" \
        "$dm" "$sm" "$(echo "$dm / $cm" | bc -l)" "$(echo "$dm / $csm" | bc -l)" \
        "$(echo "$sm / $cm" | bc -l)")
    if [ -n "$other" ]; then
        odm=$(printf '%s\n' "${od[@]}" | median)
        line+=$(printf ' %16.2f %22.2f' "$(echo "$odm / $cm" | bc -l)" "$(echo "$odm / $csm" | bc -l)")
    fi
    echo "$line"
done
