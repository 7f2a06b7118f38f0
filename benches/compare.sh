#!/usr/bin/env bash
# Runs every bench (safepoint and tokio side by side) and prints, per
# workload, the ratio ours/tokio of criterion's median estimates, plus their
# geometric mean, then the safepoint-only figures (safepoint().await cost,
# TTSP percentiles, the thread-wake floor).
#
# Usage (from anywhere; it runs in the repo root):
#   benches/compare.sh                 # all benches, ~10 minutes
#   WARM=1 MEASURE=3 benches/compare.sh
#   BENCHES="rt_multi_threaded" benches/compare.sh
#   SKIP_RUN=1 benches/compare.sh      # just re-print the table from the last run
# Environment:
#   WARM, MEASURE      criterion warm-up / measurement seconds (default 1 / 3)
#   BENCHES            which bench targets (default: rt_multi_threaded net_time safepoint tasks)
#   CARGO_TARGET_DIR   as usual (default: target); results are read from
#                      $CARGO_TARGET_DIR/criterion
#   SP_TTSP_*          see benches/benches/safepoint.rs
# Ratios below 1 mean safepoint is faster.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

WARM="${WARM:-1}"
MEASURE="${MEASURE:-3}"
BENCHES="${BENCHES:-rt_multi_threaded net_time safepoint tasks}"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in
    /*) ;;
    *) target="$root/$target" ;;
esac
crit="$target/criterion"
logdir="$target/bench-logs"
mkdir -p "$logdir"
stamp="$logdir/.compare-start"

if [[ -z "${SKIP_RUN:-}" ]]; then
    touch "$stamp"
    # Build first so compile time does not land inside the first bench.
    cargo bench -p safepoint-benches --no-run
    for b in $BENCHES; do
        echo "=== cargo bench --bench $b ===" >&2
        cargo bench -p safepoint-benches --bench "$b" -- \
            --warm-up-time "$WARM" --measurement-time "$MEASURE" 2>&1 |
            tee "$logdir/$b.log"
    done
fi

# The median point estimate (in ns) from a criterion estimates.json.
median_ns() {
    sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([-0-9.eE+]+).*/\1/' "$1"
}

fmt_time() {
    awk -v ns="$1" 'BEGIN {
        if (ns >= 1e9) printf "%.3f s", ns / 1e9;
        else if (ns >= 1e6) printf "%.3f ms", ns / 1e6;
        else if (ns >= 1e3) printf "%.3f us", ns / 1e3;
        else printf "%.1f ns", ns }'
}

echo
echo "=== safepoint / tokio (criterion medians; ratio < 1: safepoint faster) ==="
printf '%-28s %14s %14s %8s\n' workload safepoint tokio ratio
ratios=()
if [[ -d "$crit" ]]; then
    for dir in "$crit"/*/; do
        group="$(basename "$dir")"
        ours="$dir/safepoint/new/estimates.json"
        theirs="$dir/tokio/new/estimates.json"
        [[ -f "$ours" && -f "$theirs" ]] || continue
        if [[ -f "$stamp" && -z "${SKIP_RUN:-}" ]]; then
            # Only results from this run.
            [[ "$ours" -nt "$stamp" && "$theirs" -nt "$stamp" ]] || continue
        fi
        a="$(median_ns "$ours")"
        b="$(median_ns "$theirs")"
        r="$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')"
        ratios+=("$r")
        printf '%-28s %14s %14s %8s\n' "$group" "$(fmt_time "$a")" "$(fmt_time "$b")" "$r"
    done
fi
if ((${#ratios[@]} > 0)); then
    gm="$(printf '%s\n' "${ratios[@]}" | awk '{ s += log($1); n++ } END { printf "%.3f", exp(s / n) }')"
    printf '%-28s %14s %14s %8s\n' "geometric mean (${#ratios[@]})" "" "" "$gm"
else
    echo "(no paired results found under $crit)"
fi

# The safepoint-only figures, unless this run left that bench out (its log
# would be an older run's).
sp_log_current() {
    [[ -f "$logdir/safepoint.log" ]] || return 1
    [[ -n "${SKIP_RUN:-}" || ! -f "$stamp" || "$logdir/safepoint.log" -nt "$stamp" ]]
}
if sp_log_current; then
    echo
    echo "=== safepoint only ==="
    grep -E '^safepoint\(\)\.await' "$logdir/safepoint.log" || true
    # The TTSP table printed by the bench, from its header to the end.
    sed -n '/^=== TTSP/,$p' "$logdir/safepoint.log" | grep -v '^$' || true
fi
