#!/usr/bin/env bash
# Benchmarks `etlm build` on the embedded engine with a generated project
# (examples/gen_project.rs): seeds, models and their YAML tests, from an empty warehouse.
#
#   benches/run.sh
#
# Prints, per size:
#
#   build 1000 models, 1 thread: wall 15.7 s, DataFusion queries 12.1 s (nodes 15.2 s), etlm overhead 3.6 ms per node (1,005 nodes)
#   build 1000 models, 2 threads: wall 8.6 s
#
# "DataFusion queries" sums `query_s` from the run history: the time each seed and model
# spent in DataFusion writing its staged data and running its audit tests. Everything
# else (start, compile, staging directories, publishing with fsync, registering,
# scheduling, history) is etlm's overhead, divided by the number of built nodes. One
# thread makes wall time and summed query time comparable. Environment knobs: SIZES (default "1000"), SEED (42), THREADS (2),
# BENCH_DIR, CARGO_TARGET_DIR, ETLM_BIN (a binary to measure instead of this checkout's), GEN_BIN (a prebuilt
# generator). Exits non-zero if a build or a run fails. benches/build.sh compares with dbt-duckdb on bigger seeds.
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
    set_aside "$dir/warehouse" "$dir/target"
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
    in_engine=$("$etlm" show --format json --project-dir "$dir" \
        "select sum(query_s) as q, sum(duration_s) as s, count(*) as n from _etlm.model_runs" | head -n 1)
    read -r wall2 _ < <(fresh_build "$dir" "$THREADS")
    python3 - "$n" "$wall1" "$in_engine" "$THREADS" "$wall2" <<'PY'
import json, sys
n, wall1, engine, threads, wall2 = sys.argv[1:]
engine = json.loads(engine)
count, query, nodes = engine["n"], engine.get("q", 0), engine.get("s", 0)
wall1 = float(wall1)
print(f"build {n} models, 1 thread: wall {wall1:.1f} s, DataFusion queries {query:.1f} s "
      f"(nodes {nodes:.1f} s), etlm overhead {(wall1 - query) / count * 1000:.1f} ms per node ({count:,} nodes)")
print(f"build {n} models, {threads} threads: wall {float(wall2):.1f} s")
PY
done
