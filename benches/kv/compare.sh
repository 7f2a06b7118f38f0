#!/usr/bin/env bash
# safepoint-kv against redis-server, in one run:
#
#  1. throughput: `redis-benchmark -t set` / `-t get`, `-n N -P 16 -q` and `-P 1`, against
#     our server (periodic checkpoints off) and against redis-server (saving
#     off), with the ratio ours/redis per command, once per LOG_MODES entry:
#     "off" (no append-only log), "everysec" / "always" (both servers with
#     `--appendonly yes --appendfsync <mode>`);
#  2. checkpoint pause: both servers filled with the same K keys (1 M, then
#     5 M: SET key:<012 i> <VALUE_SIZE bytes>, loaded with `redis-cli --pipe`);
#     ours takes SAVES checkpoints (SAVE) idle and then SAVES_LOADED while a
#     redis-benchmark SET load runs over the same key space; the pause of each
#     (stop request to release, from the server's log) against Redis's
#     `latest_fork_usec` after each of FORKS BGSAVEs, taken under the same SET
#     load. Memory: steady RSS of each server once filled, and the peak
#     during the loaded checkpoints (ours) / BGSAVEs (Redis: parent plus its
#     fork child, counted as PSS so pages they share count once), sampled
#     every 100 ms.
#
# Usage (from anywhere; it runs in the repo root):
#   benches/kv/compare.sh                      # everything, ~8 minutes on 2 cores
#   N=200000 N1=100000 benches/kv/compare.sh   # quicker throughput part
#   PARTS=throughput benches/kv/compare.sh     # or PARTS=pause
# Environment:
#   N          requests per redis-benchmark test at -P 16 (default 1000000)
#   N1         requests per test at -P 1 (default N)
#   CLIENTS    redis-benchmark -c (default 50, redis-benchmark's default)
#   WORKERS    our server's --workers (default: the number of CPUs, as the server)
#   KEYS       key counts for the pause part (default "1000000 5000000")
#   VALUE_SIZE value bytes in the pause part (default 64)
#   SAVES      idle checkpoints per key count (default 20)
#   SAVES_LOADED checkpoints under load per key count (default 10; each waits
#              for its write, ~10 s at 5 M keys under load)
#   FORKS      Redis BGSAVEs per key count (default 5)
#   PARTS      "throughput pause" (default) or either one
#   LOG_MODES  throughput runs: "off everysec" (default); add "always"
#   ROUNDS     throughput rounds (default 1): each round runs every test on
#              ours and then on Redis; the table gives medians, the ratio's
#              median and each round's ratio, and each server's CPU time
#              per request (steadier than requests/s on a shared machine)
#   CARGO_TARGET_DIR as usual (default: target)
# Needs redis-server, redis-benchmark and redis-cli on PATH (Debian/Ubuntu:
# apt-get install redis-server redis-tools); installs nothing itself.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

N="${N:-1000000}"
N1="${N1:-$N}"
CLIENTS="${CLIENTS:-50}"
KEYS="${KEYS:-1000000 5000000}"
VALUE_SIZE="${VALUE_SIZE:-64}"
SAVES="${SAVES:-20}"
SAVES_LOADED="${SAVES_LOADED:-10}"
FORKS="${FORKS:-5}"
PARTS="${PARTS:-throughput pause}"
LOG_MODES="${LOG_MODES:-off everysec}"
ROUNDS="${ROUNDS:-1}"
WORKERS="${WORKERS:-}"

missing=()
for tool in redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "error: ${missing[*]} not found on PATH." >&2
    echo "Install Redis first, e.g. 'apt-get install -y redis-server redis-tools'" >&2
    echo "(and stop the system service it may start: 'service redis-server stop')." >&2
    exit 1
fi

target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
echo "building safepoint-kv (release)..." >&2
cargo build --release -p safepoint-examples --bin safepoint-kv >&2
bin="$target/release/safepoint-kv"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kv-compare.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# A TCP port on 127.0.0.1 that nothing is listening on.
free_port() {
    local p
    for _ in $(seq 200); do
        # Below the ephemeral range (32768+ on Linux), where a load client's
        # own connections could hold the port.
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo "error: no free port found" >&2
    exit 1
}

wait_ping() { # port
    for _ in $(seq 300); do
        if [[ "$(redis-cli -p "$1" PING 2>/dev/null)" == PONG ]]; then return; fi
        sleep 0.1
    done
    echo "error: nothing answers PING on port $1" >&2
    exit 1
}

# Starts our server; sets OURS_PORT, OURS_PID, OURS_LOG.
start_ours() { # name extra-args...
    local name="$1"
    shift
    local dir="$tmp/$name"
    mkdir -p "$dir"
    OURS_LOG="$tmp/$name.log"
    OURS_PORT="$(free_port)"
    local workers=()
    [[ -n "$WORKERS" ]] && workers=(--workers "$WORKERS")
    "$bin" --port "$OURS_PORT" --dir "$dir" "${workers[@]}" "$@" >"$OURS_LOG" 2>&1 &
    OURS_PID=$!
    pids+=("$OURS_PID")
    wait_ping "$OURS_PORT"
}

# Starts redis-server with saving off (extra args override); sets REDIS_PORT, REDIS_PID.
start_redis() { # name extra-args...
    local dir="$tmp/$1"
    shift
    mkdir -p "$dir"
    REDIS_PORT="$(free_port)"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$dir" --daemonize no --logfile "$dir.log" "$@" &
    REDIS_PID=$!
    pids+=("$REDIS_PID")
    wait_ping "$REDIS_PORT"
}

stop() { # pid
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Runs one redis-benchmark -q test and prints "<ops/s> <server CPU µs per
# request>" (the server's CPU time over the run, from /proc: on a
# shared machine, where requests/s swing with the other load, CPU per
# request is the steadier figure).
bench() { # port pid pipeline n test
    local c0 c1 ops
    c0="$(cpu_ns "$2")"
    ops="$(redis-benchmark -p "$1" -t "$5" -n "$4" -P "$3" -c "$CLIENTS" -q 2>&1 |
        tr '\r' '\n' |
        sed -nE 's/^[A-Z]+: ([0-9.]+) requests per second.*/\1/p' | tail -1)"
    c1="$(cpu_ns "$2")"
    awk -v o="${ops:-0}" -v c="$((c1 - c0))" -v n="$4" 'BEGIN { printf "%d %.2f\n", o, c / 1e3 / n }'
}

cpu_ns() { # pid: CPU time of its threads so far, ns (per-thread schedstat:
    # finer than /proc/PID/stat's clock ticks; threads that have exited,
    # none during these runs, would be missed)
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# Median of the numbers on stdin (the lower middle one for an even count).
median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print 0 }'
}

# ---------------------------------------------------------------- throughput
if [[ " $PARTS " == *" throughput "* ]]; then
    for mode in $LOG_MODES; do
        case "$mode" in
            off) log_args=() ;;
            everysec | always | no) log_args=(--appendonly yes --appendfsync "$mode") ;;
            *) echo "error: LOG_MODES: unknown mode '$mode'" >&2; exit 1 ;;
        esac
        echo "=== throughput, log $mode: redis-benchmark -t set / get -c $CLIENTS -q; -P 16 -n $N, -P 1 -n $N1; $ROUNDS round(s) ===" >&2
        start_ours "tp-$mode" --checkpoint-every 0 "${log_args[@]}"
        start_redis "tp-redis-$mode" "${log_args[@]}"
        for p in 16 1; do
            n="$N"
            [[ "$p" == 1 ]] && n="$N1"
            for round in $(seq "$ROUNDS"); do
                for cmd in set get; do
                    # Ours then Redis, test by test, so a change in the
                    # machine's other load hits both alike.
                    echo "round $round: $cmd -P $p -n $n, ours then redis" >&2
                    bench "$OURS_PORT" "$OURS_PID" "$p" "$n" "$cmd" >>"$tmp/ours.$mode.P$p.$cmd"
                    bench "$REDIS_PORT" "$REDIS_PID" "$p" "$n" "$cmd" >>"$tmp/redis.$mode.P$p.$cmd"
                done
            done
        done
        stop "$OURS_PID"
        stop "$REDIS_PID"
    done
    echo
    echo "throughput (requests/s; $(nproc) CPUs; ours: safepoint-kv${WORKERS:+ --workers $WORKERS}, redis: $(redis-server --version | awk '{print $3}'); median of $ROUNDS round(s), load average $(cut -d' ' -f1-3 /proc/loadavg))"
    printf '%-10s %-10s %11s %11s %7s  %-13s %s\n' log test ours redis ratio "CPU µs/req" "per-round ratios"
    for mode in $LOG_MODES; do
        for p in 16 1; do
            for cmd in set get; do
                of="$tmp/ours.$mode.P$p.$cmd"
                rf="$tmp/redis.$mode.P$p.$cmd"
                ratios="$(paste -d' ' "$of" "$rf" | awk '{ if ($3 > 0) printf "%.2f\n", $1 / $3; else print "n/a" }')"
                printf '%-10s %-10s %11s %11s %7s  %-13s %s\n' "$mode" "${cmd^^} -P $p" \
                    "$(awk '{ print $1 }' "$of" | median)" "$(awk '{ print $1 }' "$rf" | median)" \
                    "$(echo "$ratios" | median)" \
                    "$(awk '{ print $2 }' "$of" | median) / $(awk '{ print $2 }' "$rf" | median)" \
                    "$(echo "$ratios" | paste -sd' ')"
            done
        done
    done
    echo
fi

# --------------------------------------------------------------------- pause
# RESP for SET key:<i, 12 digits> <value> for i in [from, to): the key names
# redis-benchmark -r uses, so the loaded-pause load overwrites existing keys.
gen_sets() { # from to
    awk -v from="$1" -v to="$2" -v size="$VALUE_SIZE" 'BEGIN {
        v = ""; while (length(v) < size) v = v "x"; v = substr(v, 1, size)
        for (i = from; i < to; i++) {
            k = sprintf("key:%012d", i)
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, size, v
        }
    }'
}

fill() { # port from to
    gen_sets "$2" "$3" | redis-cli -p "$1" --pipe >/dev/null
}

info_field() { # port section field
    redis-cli -p "$1" INFO "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'
}

# p50/p99/max (nearest rank) of the numbers on stdin: "p50 p99 max count".
quantiles() {
    sort -n | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "- - - 0"; exit }
        i50 = int(0.50 * NR + 0.999999); i99 = int(0.99 * NR + 0.999999)
        print a[i50], a[i99], a[NR], NR }'
}

rss_mb() { # pid
    awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$1/status"
}

# PSS (kB) of a process plus its children: a BGSAVE child shares its pages
# with its parent copy-on-write, and PSS counts each shared page once in all.
pss_kb() { # pid
    local total=0 p v
    for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        v="$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)"
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# Writes the largest pss_kb of pid seen so far to file, every 100 ms, until killed.
peak_sampler() { # pid file
    local max=0 v
    while true; do
        v="$(pss_kb "$1")"
        ((v > max)) && max="$v" && echo "$max" >"$2"
        sleep 0.1
    done
}

# Starts a redis-benchmark SET load over the first k keys; sets LOAD_PID.
start_load() { # port keys
    redis-benchmark -p "$1" -t set -r "$2" -d "$VALUE_SIZE" -n 1000000000 \
        -P 16 -c "$CLIENTS" -q -l >/dev/null 2>&1 &
    LOAD_PID=$!
    pids+=("$LOAD_PID")
    sleep 1
}

# Pauses (µs) from our log's checkpoint lines numbered in [first, last].
pauses_from_log() { # log first last
    sed -nE 's/^checkpoint ([0-9]+): .*; time to stop ([0-9]+) µs, stopped ([0-9]+) µs \(capture\), pause ([0-9]+) µs.*/\1 \4/p' "$1" |
        awk -v a="$2" -v b="$3" '$1 >= a && $1 <= b { print $2 }'
}
stops_from_log() { # log first last
    sed -nE 's/^checkpoint ([0-9]+): .*; time to stop ([0-9]+) µs.*/\1 \2/p' "$1" |
        awk -v a="$2" -v b="$3" '$1 >= a && $1 <= b { print $2 }'
}

if [[ " $PARTS " == *" pause "* ]]; then
    echo "=== checkpoint pause: keys $KEYS, values $VALUE_SIZE bytes ===" >&2
    start_ours pause --checkpoint-every 0
    start_redis pause-redis
    have=0
    taken=0
    results=()
    for k in $KEYS; do
        echo "filling both to $k keys..." >&2
        fill "$OURS_PORT" "$have" "$k"
        fill "$REDIS_PORT" "$have" "$k"
        have="$k"
        ours_keys="$(redis-cli -p "$OURS_PORT" DBSIZE)"
        redis_keys="$(redis-cli -p "$REDIS_PORT" DBSIZE)"
        ours_rss="$(rss_mb "$OURS_PID")"
        redis_rss="$(rss_mb "$REDIS_PID")"

        echo "ours: $SAVES SAVEs idle at $ours_keys keys..." >&2
        first=$((taken + 1))
        for _ in $(seq "$SAVES"); do
            redis-cli -p "$OURS_PORT" SAVE >/dev/null
        done
        taken=$((taken + SAVES))
        idle="$(pauses_from_log "$OURS_LOG" "$first" "$taken" | quantiles)"
        idle_stop="$(stops_from_log "$OURS_LOG" "$first" "$taken" | quantiles)"

        echo "ours: $SAVES_LOADED SAVEs under a SET -P 16 load over the key space..." >&2
        start_load "$OURS_PORT" "$k"
        echo 0 >"$tmp/ours.peak"
        peak_sampler "$OURS_PID" "$tmp/ours.peak" &
        sampler=$!
        pids+=("$sampler")
        first=$((taken + 1))
        for _ in $(seq "$SAVES_LOADED"); do
            redis-cli -p "$OURS_PORT" SAVE >/dev/null
        done
        taken=$((taken + SAVES_LOADED))
        stop "$sampler"
        stop "$LOAD_PID"
        ours_peak=$(($(cat "$tmp/ours.peak") / 1024))
        loaded_pauses="$(pauses_from_log "$OURS_LOG" "$first" "$taken")"
        loaded="$(printf '%s' "$loaded_pauses" | quantiles)"
        loaded_stop="$(stops_from_log "$OURS_LOG" "$first" "$taken" | quantiles)"
        # Every loaded pause, longest first: with tens of stops the p99 is
        # the max, so say how many were over 1 ms and what they were.
        echo "ours: loaded pauses at $k keys, µs, longest first:" \
            "$(printf '%s' "$loaded_pauses" | sort -rn | head -8 | tr '\n' ' ')" \
            "($(printf '%s' "$loaded_pauses" | awk '$1 > 1000' | wc -l) of" \
            "$SAVES_LOADED over 1 ms)" >&2
        grep '^slow stop:' "$OURS_LOG" | tail -n 4 | sed 's/^/ours: /' >&2 || true

        echo "redis: $FORKS BGSAVEs at $redis_keys keys under the same SET load..." >&2
        start_load "$REDIS_PORT" "$k"
        echo 0 >"$tmp/redis.peak"
        peak_sampler "$REDIS_PID" "$tmp/redis.peak" &
        sampler=$!
        pids+=("$sampler")
        forks=()
        for _ in $(seq "$FORKS"); do
            redis-cli -p "$REDIS_PORT" BGSAVE >/dev/null
            while [[ "$(info_field "$REDIS_PORT" persistence rdb_bgsave_in_progress)" != 0 ]]; do
                sleep 0.1
            done
            forks+=("$(info_field "$REDIS_PORT" stats latest_fork_usec)")
        done
        stop "$sampler"
        stop "$LOAD_PID"
        redis_peak=$(($(cat "$tmp/redis.peak") / 1024))
        fork="$(printf '%s\n' "${forks[@]}" | quantiles)"
        results+=("$k|$ours_keys|$ours_rss|$ours_peak|$redis_keys|$redis_rss|$redis_peak|$idle|$idle_stop|$loaded|$loaded_stop|$fork")
    done
    stop "$OURS_PID"
    stop "$REDIS_PID"

    echo
    echo "checkpoint pause, µs (ours: stop request to release, from the log; redis: latest_fork_usec per BGSAVE)"
    printf '%-9s %-22s %-24s %-22s %-24s %-22s %s\n' keys "ours idle p50/p99/max" "  time to stop p50/p99" \
        "ours loaded p50/p99/max" "  time to stop p50/p99" "redis fork p50/max" "memory ours/redis"
    mem_rows=()
    for row in "${results[@]}"; do
        IFS='|' read -r k ok orss opeak rk rrss rpeak idle idle_stop loaded loaded_stop fork <<<"$row"
        mem_rows+=("$(printf '%-9s %8s %8s %6s %10s %10s %6s %8s %8s' "$k" "$orss" "$rrss" \
            "$(awk -v a="$orss" -v b="$rrss" 'BEGIN { printf "%.2f", a / b }')" "$opeak" "$rpeak" \
            "$(awk -v a="$opeak" -v b="$rpeak" 'BEGIN { printf "%.2f", a / b }')" \
            "$(awk -v a="$opeak" -v b="$orss" 'BEGIN { printf "%.2f", a / b }')" \
            "$(awk -v a="$rpeak" -v b="$rrss" 'BEGIN { printf "%.2f", a / b }')")")
        read -r i50 i99 imax icount <<<"$idle"
        read -r is50 is99 _ _ <<<"$idle_stop"
        read -r l50 l99 lmax lcount <<<"$loaded"
        read -r ls50 ls99 _ _ <<<"$loaded_stop"
        read -r f50 _ fmax fcount <<<"$fork"
        printf '%-9s %-22s %-24s %-22s %-24s %-22s %s\n' "$k" "$i50/$i99/$imax (n=$icount)" "  $is50/$is99" \
            "$l50/$l99/$lmax (n=$lcount)" "  $ls50/$ls99" "$f50/$fmax (n=$fcount)" "RSS ${orss}M / ${rrss}M"
        [[ "$ok" == "$k" && "$rk" == "$k" ]] || echo "  warning: DBSIZE ours $ok, redis $rk, expected $k"
    done
    echo
    echo "memory, MB (steady: RSS once filled; peak: PSS under the SET load during the checkpoints / BGSAVEs, parent + fork child)"
    printf '%-9s %8s %8s %6s %10s %10s %6s %8s %8s\n' keys ours redis ratio "ours peak" "redis peak" ratio \
        "ours p/s" "redis p/s"
    printf '%s\n' "${mem_rows[@]}"
fi
