#!/usr/bin/env bash
# Benchmarks `etlm build` on the embedded engine with a generated project
# (examples/gen_project.rs): seeds, models and their YAML tests, from an empty warehouse.
#
#   benches/run.sh
#
# Prints, per size:
#
#   build 1000 models, 1 thread: wall 9.8 s, in nodes 7.9 s, etlm overhead 1.9 ms per node (1,012 nodes)
#   build 1000 models, 2 threads: wall 6.1 s
#
# "in nodes" is the sum of every node's own time from the run history (staging the
# query with DataFusion, auditing, publishing); the overhead is the rest of the wall time
# (start, compile, scheduling, history) divided by the number of nodes. One thread makes
# the two comparable. Environment knobs: SIZES (default "1000"), SEED (42), THREADS (2),
# BENCH_DIR, CARGO_TARGET_DIR. Exits non-zero if a build or a run fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

SIZES=${SIZES:-"1000"}
SEED=${SEED:-42}
THREADS=${THREADS:-2}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/etlm-bench}
target_dir=${CARGO_TARGET_DIR:-$root/target}

source "$root/benches/common.sh"

# Builds the project in $1 from an empty warehouse with $2 threads; prints "<wall> <rss>".
fresh_build() {
    local dir=$1 threads=$2
    rm -rf "$dir/warehouse" "$dir/target"
    local log="$dir/.build_$threads.log"
    if ! measure "$log" "$etlm" build --threads "$threads" --project-dir "$dir"; then
        echo "run.sh: etlm build failed ($threads threads); output:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

for n in $SIZES; do
    dir=$(generate "$n")
    read -r wall1 _ < <(fresh_build "$dir" 1)
    in_nodes=$("$etlm" show --format json --project-dir "$dir" \
        "select sum(duration_s) as s, count(*) as n from _etlm.model_runs" | head -n 1)
    tests=$("$etlm" show --format json --project-dir "$dir" \
        "select sum(duration_s) as s, count(*) as n from _etlm.test_results where not audit" | head -n 1)
    read -r wall2 _ < <(fresh_build "$dir" "$THREADS")
    python3 - "$n" "$wall1" "$in_nodes" "$tests" "$THREADS" "$wall2" <<'PY'
import json, sys
n, wall1, nodes, tests, threads, wall2 = sys.argv[1:]
nodes, tests = json.loads(nodes), json.loads(tests)
# Audits run inside their model's time; tests run after publishing have their own.
count = nodes["n"] + tests["n"]  # audits are part of their model's node
busy = nodes["s"] + (tests["s"] or 0)
wall1 = float(wall1)
overhead_ms = (wall1 - busy) / count * 1000
print(f"build {n} models, 1 thread: wall {wall1:.1f} s, in nodes {busy:.1f} s, "
      f"etlm overhead {overhead_ms:.1f} ms per node ({count:,} nodes and tests)")
print(f"build {n} models, {threads} threads: wall {float(wall2):.1f} s")
PY
done
