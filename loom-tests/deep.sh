#!/usr/bin/env bash
# The loom models at preemption bound 3 (CI runs bound 2). Much slower:
# run it before changing the census, the barrier or the parking code.
#   loom-tests/deep.sh                 # every model
#   loom-tests/deep.sh MODEL_NAME      # one model (a cargo test filter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
    CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
    cargo test -p safepoint-loom-tests --release -- --test-threads=1 "$@"
