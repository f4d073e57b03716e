#!/usr/bin/env bash
# What Delta Lake costs over the embedded engine: the same generated project
# (examples/gen_project.rs) built from empty on `type: local` and on `type: delta`, and
# the difference per published relation (seeds and table models; a view's publish is a
# pointer file on both).
#
#   benches/delta.sh
#
# Prints, per size, the wall time and peak RSS of a build from empty and of a second
# build (nothing changed: every table is rebuilt and committed again) on each, and the
# extra milliseconds per Delta commit: a create, then a replace of the table's files.
#
# Figures on the 2-core machine, 2026-12-04, with a debug build (ETLM_BIN=target/debug/etlm):
#
#   build 200 models (table layers, biggest seeds 10,000 rows), 195 Delta commits a build
#     from empty: type: local wall 12.4 s (user 21.4 s, sys 1.4 s), peak RSS 209 MB; type: delta wall 15.3 s (user 24.4 s, sys 2.3 s), peak RSS 222 MB
#       14.9 ms more wall time per commit, 19.8 ms more CPU
#     again: type: local wall 12.2 s (user 21.5 s, sys 1.5 s), peak RSS 205 MB; type: delta wall 16.4 s (user 25.0 s, sys 2.3 s), peak RSS 231 MB
#       21.6 ms more wall time per commit, 22.1 ms more CPU
#
# Reading a table's log at every lookup, from empty cost 29.8 ms a commit; keeping each
# table's current version for the run, 14.1 ms from empty and 26.5 ms again; keeping the
# table state it read as well (one log replay per table and run, none per commit), the
# figures above.
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
        set_aside "$dir/warehouse" "$dir/lake" "$dir/target"
        sync
        for build in 1 2; do
            log="$dir/.delta_bench_${target}_$build.log"
            if ! results+=("$(measure "$log" "$etlm" build --threads "$THREADS" --target "$target" --project-dir "$dir")"); then
                echo "delta.sh: etlm build --target $target failed; output ($log):" >&2
                tail -n 40 "$log" >&2
                exit 1
            fi
        done
    done
    # Each build commits once per table: half the log entries are each build's.
    commits=$(($(find "$dir/lake" -path '*/_delta_log/*.json' | wc -l) / 2))
    printf '%s\n' "${results[@]}" | python3 -c '
import sys
n, rows, layers, commits = sys.argv[1:5]
commits = max(int(commits), 1)
(l1, l2, d1, d2) = [[float(x) for x in line.split()] for line in sys.stdin]
print(f"build {n} models ({layers} layers, biggest seeds {int(rows):,} rows), {commits} Delta commits a build")
for label, local, delta in (("from empty", l1, d1), ("again", l2, d2)):
    (lw, lr, lu, ls), (dw, dr, du, ds) = local, delta
    print(f"  {label}: type: local wall {lw:.1f} s (user {lu:.1f} s, sys {ls:.1f} s), peak RSS {lr / 1024:.0f} MB; "
          f"type: delta wall {dw:.1f} s (user {du:.1f} s, sys {ds:.1f} s), peak RSS {dr / 1024:.0f} MB")
    print(f"    {(dw - lw) * 1000 / commits:.1f} ms more wall time per commit, "
          f"{(du + ds - lu - ls) * 1000 / commits:.1f} ms more CPU")
' "$n" "$SEED_ROWS" "$LAYERS" "$commits"
done
