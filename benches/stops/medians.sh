#!/usr/bin/env bash
# Runs the stops-under-load bench RUNS times (default 5) and prints, per
# scenario, the median over the runs of every figure of its `summary` line
# (and the range, min..max), plus the total timeouts. Every run's full
# output is kept in $OUT_DIR (default a temporary directory).
#
#   benches/stops/medians.sh                      # 5 runs, default knobs
#   RUNS=3 SP_STOPS_SCENARIOS=A benches/stops/medians.sh
#   RUNS=0 OUT_DIR=dir benches/stops/medians.sh   # re-aggregate dir/run*.txt
#
# The SP_STOPS_* knobs pass through to the bench (see the header of
# benches/benches/stops_under_load.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
OUT_DIR=${OUT_DIR:-$(mktemp -d)}
cargo bench -p safepoint-benches --bench stops_under_load --no-run >/dev/null 2>&1
for i in $(seq 1 "$RUNS"); do
    cargo bench -q -p safepoint-benches --bench stops_under_load >"$OUT_DIR/run$i.txt" 2>&1
    grep '^summary' "$OUT_DIR/run$i.txt" | sed "s/^/run $i: /"
done
echo
echo "medians over $(ls "$OUT_DIR"/run*.txt | wc -l) runs (outputs in $OUT_DIR):"
cat "$OUT_DIR"/run*.txt | grep '^summary' | awk '
{
    sc = $2; scen[sc] = 1; n[sc]++
    for (i = 3; i <= NF; i++) {
        split($i, kv, "="); k = kv[1]; v = kv[2]
        if (!(k in order)) { order[k] = ++nk; keys[nk] = k }
        if (v != "-") vals[sc, k] = vals[sc, k] " " v
    }
}
# Plain decimals (awk would print 1.5521e+06): 3 places below 100, none above.
function num(v) { if (v == int(v)) return sprintf("%d", v); return (v + 0 >= 100) ? sprintf("%.0f", v) : sprintf("%.3f", v) }
END {
    for (sc in scen) {
        line = "scenario " sc " (" n[sc] " runs):"
        for (j = 1; j <= nk; j++) {
            k = keys[j]
            m = split(vals[sc, k], a, " ")
            if (m == 0) { line = line " " k "=-"; continue }
            # insertion sort (numeric)
            for (x = 2; x <= m; x++) { t = a[x] + 0; y = x - 1
                while (y >= 1 && a[y] + 0 > t) { a[y + 1] = a[y]; y-- }
                a[y + 1] = t }
            med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
            if (k == "timeouts" || k == "attempted" || k == "completed") {
                s = 0; for (x = 1; x <= m; x++) s += a[x]
                line = line " " k "=" med " (total " s ")"
            } else if (k == "stops") {
                line = line " " k "=" med
            } else {
                line = line " " k "=" num(med) " [" num(a[1]) ".." num(a[m]) "]"
            }
        }
        print line
    }
}' | sort
