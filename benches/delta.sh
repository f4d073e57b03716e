#!/usr/bin/env bash
# What Delta Lake costs over the embedded engine: the same generated project
# (examples/gen_project.rs) built from empty on `type: local` and on `type: delta`, and
# the difference per published relation (seeds and table models; a view's publish is a
# pointer file on both).
#
#   benches/delta.sh
#
# Prints, per size, both builds' wall time and peak RSS, and the extra milliseconds per
# Delta commit.
#
# Environment knobs: SIZES (default "200"), SEED_ROWS (10000), LAYERS (`table`: every
# layer a Delta table; `view`), THREADS (2), SEED (42), BENCH_DIR (default
# $TMPDIR/etlm-bench or /tmp/etlm-bench), CARGO_TARGET_DIR, ETLM_BIN (a binary built with
# `--features delta` to measure instead of this checkout's), GEN_BIN (a prebuilt
# generator). Exits non-zero if a build fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

SIZES=${SIZES:-"200"}
SEED_ROWS=${SEED_ROWS:-10000}
LAYERS=${LAYERS:-table}
THREADS=${THREADS:-2}
SEED=${SEED:-42}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/etlm-bench}
target_dir=${CARGO_TARGET_DIR:-$root/target}
ETLM_FEATURES=delta

source "$root/benches/common.sh"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

for n in $SIZES; do
    dir=$(generate "$n" --seed-rows "$SEED_ROWS" --layers "$LAYERS")
    # The generator owns profiles.yml; the Delta target is added beside its `dev`.
    grep -q '^    lake:' "$dir/profiles.yml" || printf '    lake:\n      type: delta\n      location: lake\n' >> "$dir/profiles.yml"
    results=()
    for target in dev lake; do
        rm -rf "$dir/warehouse" "$dir/lake" "$dir/target"
        sync
        log="$dir/.delta_bench_$target.log"
        if ! results+=("$(measure "$log" "$etlm" build --threads "$THREADS" --target "$target" --project-dir "$dir")"); then
            echo "delta.sh: etlm build --target $target failed; output ($log):" >&2
            tail -n 40 "$log" >&2
            exit 1
        fi
    done
    commits=$(find "$dir/lake" -path '*/_delta_log/*.json' | wc -l)
    printf '%s\n' "${results[@]}" | python3 -c '
import sys
n, rows, layers, commits = sys.argv[1:5]
(lw, lr, lu, ls), (dw, dr, du, ds) = [[float(x) for x in line.split()] for line in sys.stdin]
print(f"build {n} models ({layers} layers, biggest seeds {int(rows):,} rows), from empty")
print(f"  type: local  wall {lw:.1f} s (user {lu:.1f} s, sys {ls:.1f} s), peak RSS {lr / 1024:.0f} MB")
print(f"  type: delta  wall {dw:.1f} s (user {du:.1f} s, sys {ds:.1f} s), peak RSS {dr / 1024:.0f} MB")
commits = int(commits)
print(f"  {commits} Delta commits: {(dw - lw) * 1000 / max(commits, 1):.1f} ms more wall time per commit, "
      f"{(du + ds - lu - ls) * 1000 / max(commits, 1):.1f} ms more CPU")
' "$n" "$SEED_ROWS" "$LAYERS" "$commits"
done
