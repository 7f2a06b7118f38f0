#!/usr/bin/env bash
# wrk against the `http` example (safepoint + safepoint-hyper) and its tokio
# twin (benches/http/tokio_http.rs: tokio + hyper-util, the same service),
# alternating which goes first in each round, then medians per server and
# connection count: requests/s, p99 latency, max latency, the server's CPU
# time (user + system, from /proc) per request, and the ratios
# safepoint/tokio (req/s above 1, latency and CPU below 1 favour safepoint).
#
# Usage (from anywhere; it runs in the repo root; needs `wrk`):
#   benches/http/compare.sh
#   ROUNDS=5 DURATION=10 CONNS="50 256" WORKERS=2 THREADS=1 benches/http/compare.sh
# Environment:
#   ROUNDS     rounds, each running every server at every connection count (3)
#   DURATION   seconds per wrk run (10)
#   CONNS      wrk connection counts (-c), space separated ("50 256")
#   WORKERS    worker threads of each server (2)
#   THREADS    wrk threads (-t) (1)
#   CARGO_TARGET_DIR  as usual (default: target)
# Raw wrk output goes to $CARGO_TARGET_DIR/bench-logs/http/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-50 256}"
WORKERS="${WORKERS:-2}"
THREADS="${THREADS:-1}"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in
    /*) ;;
    *) target="$root/$target" ;;
esac
logdir="$target/bench-logs/http"
mkdir -p "$logdir"
results="$logdir/results.txt"
: > "$results"

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

cargo build --release -p safepoint-examples --example http
cargo build --release -p safepoint-benches --example http_tokio
declare -A bin=(
    [safepoint]="$target/release/examples/http"
    [tokio]="$target/release/examples/http_tokio"
)

pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

# Starts server $1 on a free port; sets $pid and $addr.
start() {
    local log="$logdir/$1.server.log"
    # Emptied here, not by the redirect below: that one runs in the child,
    # and the loop could read the previous run's address first.
    : > "$log"
    "${bin[$1]}" --port 0 --workers "$WORKERS" >> "$log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        addr=$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}' || true)
        [[ -n "$addr" ]] && return 0
        sleep 0.1
    done
    echo "$1 did not start; see $log" >&2
    exit 1
}

stop() {
    kill -TERM "$pid"
    local status=0
    wait "$pid" || status=$?
    pid=""
    if [[ "$status" != 0 ]]; then
        echo "$1 exited with status $status after SIGTERM" >&2
        exit 1
    fi
}

hz=$(getconf CLK_TCK)
# utime + stime of process $1, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# wrk prints latencies as 812.00us, 1.23ms or 1.01s: to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}

for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then order="safepoint tokio"; else order="tokio safepoint"; fi
    for c in $CONNS; do
        for server in $order; do
            start "$server"
            # One second of warm-up (connections, allocator), not counted.
            wrk -t"$THREADS" -c"$c" -d1s "http://$addr/" > /dev/null
            out="$logdir/$server.c$c.r$round.txt"
            cpu0=$(cpu_ticks "$pid")
            wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --latency "http://$addr/" > "$out"
            cpu1=$(cpu_ticks "$pid")
            stop "$server"
            rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
            p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
            max=$(to_ms "$(awk '$1 == "Latency" && NF >= 4 {print $4; exit}' "$out")")
            errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$out")
            reqs=$(awk '/ requests in / {print $1}' "$out")
            # The server's user + system CPU during the run, per request.
            cpu_us=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$reqs" -v hz="$hz" \
                'BEGIN { printf "%.2f", (b - a) * 1e6 / hz / n }')
            echo "$server c=$c round=$round req/s=$rps p99=${p99}ms max=${max}ms cpu/req=${cpu_us}us ${errors}"
            echo "$server $c $round $rps $p99 $max $cpu_us" >> "$results"
            if [[ -n "$errors" ]]; then
                echo "errors in $out" >&2
            fi
        done
    done
done

echo
echo "medians over $ROUNDS rounds (wrk -t$THREADS -d${DURATION}s, $WORKERS workers each):"
printf "%-10s %5s %12s %10s %10s %12s %12s\n" server conns "req/s" "p99 ms" "max ms" "worst max" "cpu/req us"
for c in $CONNS; do
    for server in safepoint tokio; do
        awk -v s="$server" -v c="$c" '
            function median(a, n,   i, j, t) {
                for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
                return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
            }
            $1 == s && $2 == c { n++; r[n] = $4; p[n] = $5; m[n] = $6; u[n] = $7; if ($6 > w) w = $6 }
            END { printf "%-10s %5s %12.0f %10.3f %10.3f %12.3f %12.2f\n", s, c, median(r, n), median(p, n), median(m, n), w, median(u, n) }
        ' "$results"
    done
done | tee "$logdir/medians.txt"
echo
echo "ratios safepoint/tokio of the medians:"
for c in $CONNS; do
    awk -v c="$c" '
        $2 == c { rps[$1] = $3; p99[$1] = $4; max[$1] = $5; cpu[$1] = $7 }
        END { printf "c=%-5s req/s %.2f   p99 %.2f   max %.2f   cpu/req %.2f\n", c, rps["safepoint"] / rps["tokio"], p99["safepoint"] / p99["tokio"], max["safepoint"] / max["tokio"], cpu["safepoint"] / cpu["tokio"] }
    ' "$logdir/medians.txt"
done
