#!/usr/bin/env bash
# Benchmarks `etlm compile` on generated projects (examples/gen_project.rs).
#
#   benches/compile.sh
#
# Builds etlm and the generator in release mode (unless ETLM_BIN and GEN_BIN name built
# ones), generates projects of 1,000 and 10,000
# models in the generator's default shape (5.4 YAML tests per model: 54,000 generic tests
# at 10,000 models; kept and reused across runs while the generator and seed are unchanged),
# runs `etlm compile` RUNS times per size (which includes the column checks and writes
# target/lineage.json; the script fails if it is missing) without and then with the
# compile cache (target/compile.cache, which `etlm compile` writes for the next one), then
# with no target folder, and prints, per size:
#
#   compile 10000 models, cold cache: best 2.36 s, median 2.74 s (user 3.12 s, sys 0.98 s), peak RSS 458 MB
#   compile 10000 models, warm cache: best 1.93 s, median 2.11 s (user 2.48 s, sys 0.88 s), peak RSS 462 MB
#   compile 10000 models, no target folder: best 3.03 s, median 3.04 s (user 3.29 s, sys 2.36 s), peak RSS 462 MB
#
# "No target folder" sets target/ aside before each run (the first compile of a checkout:
# it creates every compiled file; `set_aside` in common.sh says why it is not deleted);
# "cold" deletes only the cache (a compile after upgrading etlm: compiled files are
# compared and kept); "warm" is the usual repeated compile. All
# render every model and test, and write every artifact. User and system times are the
# medians of the runs (the CPU time etlm spent, over all its threads).
#
# Environment knobs: SIZES (default "1000 10000"), RUNS (5), SEED (42),
# BENCH_DIR (default $TMPDIR/etlm-bench or /tmp/etlm-bench), CARGO_TARGET_DIR, ETLM_BIN
# (a binary to measure instead of this checkout's, e.g. to compare two commits), GEN_BIN
# (a prebuilt generator), GEN_FLAGS (more generator flags, e.g. "--tests-per-model 1").
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
    # shellcheck disable=SC2086 # GEN_FLAGS is a list of flags
    dir=$(generate "$n" ${GEN_FLAGS:-})
    for cache in cold warm first; do
        results=()
        for ((i = 1; i <= RUNS; i++)); do
            log="$dir/.compile_$i.log"
            if [[ $cache == first ]]; then
                set_aside "$dir/target"
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
walls = sorted(float(r[0]) for r in rows)
rss_mb = max(int(r[1]) for r in rows) / 1024
user = statistics.median(float(r[2]) for r in rows)
sys_s = statistics.median(float(r[3]) for r in rows)
label = {"first": "no target folder", "cold": "cold cache", "warm": "warm cache"}[cache]
print(f"compile {n} models, {label}: best {walls[0]:.2f} s, median {statistics.median(walls):.2f} s "
      f"(user {user:.2f} s, sys {sys_s:.2f} s), peak RSS {rss_mb:.0f} MB")
' "$n" "$cache"
    done
done
