#!/usr/bin/env bash
# Benchmarks `etlm compile` on generated projects (examples/gen_project.rs).
#
#   benches/compile.sh
#
# Builds etlm and the generator in release mode, generates projects of 1,000 and 10,000
# models (kept and reused across runs while the generator source and seed are unchanged),
# runs `etlm compile` RUNS times per size (which includes the column checks and writes
# target/lineage.json; the script fails if it is missing) without and then with the
# compile cache (target/compile.cache, which `etlm compile` writes for the next one), then
# with no target folder, and prints, per size:
#
#   compile 10000 models, cold cache: best 0.88 s, median 0.90 s, peak RSS 252 MB
#   compile 10000 models, warm cache: best 0.61 s, median 0.63 s, peak RSS 265 MB
#   compile 10000 models, no target folder: best 1.08 s, median 1.10 s, peak RSS 260 MB
#
# "No target folder" deletes target/ before each run (the first compile of a checkout: it
# creates every compiled file); "cold" deletes only the cache (a compile after upgrading
# etlm: compiled files are compared and kept); "warm" is the usual repeated compile. All
# render every model and test, and write every artifact.
#
# Environment knobs: SIZES (default "1000 10000"), RUNS (5), SEED (42),
# BENCH_DIR (default $TMPDIR/etlm-bench or /tmp/etlm-bench), CARGO_TARGET_DIR, ETLM_BIN
# (a binary to measure instead of this checkout's, e.g. to compare two commits).
# Exits non-zero if a build, the generator or any `etlm compile` fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

SIZES=${SIZES:-"1000 10000"}
RUNS=${RUNS:-5}
SEED=${SEED:-42}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/etlm-bench}
target_dir=${CARGO_TARGET_DIR:-$root/target}

source "$root/benches/common.sh"

for n in $SIZES; do
    dir=$(generate "$n")
    # "first" goes last: deleting 10,000s of files keeps the file system busy for a while.
    for cache in cold warm first; do
        results=()
        for ((i = 1; i <= RUNS; i++)); do
            log="$dir/.compile_$i.log"
            if [[ $cache == first ]]; then
                rm -rf "$dir/target"
                sync
            elif [[ $cache == cold ]]; then
                rm -f "$dir/target/compile.cache"
            fi
            if ! result=$(measure "$log" "$etlm" compile --project-dir "$dir"); then
                echo "compile.sh: etlm compile failed on $n models (run $i, $cache cache); output:" >&2
                tail -n 40 "$log" >&2
                exit 1
            fi
            results+=("$result")
        done
        if [[ ! -s "$dir/target/lineage.json" ]]; then
            echo "compile.sh: etlm compile wrote no target/lineage.json on $n models" >&2
            exit 1
        fi

        printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
n, cache = sys.argv[1], sys.argv[2]
rows = [line.split() for line in sys.stdin if line.strip()]
walls = sorted(float(w) for w, _ in rows)
rss_mb = max(int(r) for _, r in rows) / 1024
label = {"first": "no target folder", "cold": "cold cache", "warm": "warm cache"}[cache]
print(f"compile {n} models, {label}: best {walls[0]:.2f} s, median {statistics.median(walls):.2f} s, peak RSS {rss_mb:.0f} MB")
' "$n" "$cache"
    done
done
