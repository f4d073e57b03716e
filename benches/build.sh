#!/usr/bin/env bash
# Benchmarks `etlm build` against `dbt build` on dbt-duckdb, side by side in one run, on
# the same generated project (examples/gen_project.rs with `--seed-rows` and `--dbt`):
# seeds, models and their YAML tests (5.4 per model) from an empty warehouse.
#
#   benches/build.sh
#
# Prints, per size (figures on the 2-core machine, 2026-12-07, with kept view rows read by
# mapping their files):
#
#   build 1000 models, 5,400 tests, biggest seeds 100,000 rows, 2 threads
#     dbt build (dbt-core 1.11.16, dbt-duckdb 1.11.1), empty warehouse: wall 227.2 s (user 275.8 s, sys 18.3 s), peak RSS 918 MB
#     etlm build, empty warehouse: wall 14.7 s (user 20.3 s, sys 5.6 s), peak RSS 319 MB
#     etlm build again, nothing changed: wall 20.6 s (user 30.2 s, sys 6.3 s), peak RSS 388 MB
#     etlm build --skip-unchanged, nothing changed: wall 0.6 s (user 0.6 s, sys 0.3 s), peak RSS 187 MB
#     dbt / etlm: 15.5x the wall time, etlm peak RSS 35% of dbt's
#
# On 2026-12-06 (SortedWindowExec, LZ4 kept rows): dbt 278.4 s / 929 MB, etlm 20.6 s /
# 504 MB (13.5x, 54%).
#
# On 2026-12-04 (quiet machine, before SortedWindowExec): dbt 202.2 s / 938 MB, etlm
# 24.9 s / 517 MB (8.1x, 55%).
#
# On 2026-12-03 (a slower day for the machine, before the cores were shared): dbt 329.6 s
# and 918 MB, etlm 48.6 s and 579 MB (6.8x, 63%).
#
# With mimalloc's default 1 s purge delay the same run gave etlm 39.6 s and 886 MB (8.5x,
# 95% of dbt's memory); alone, 48.5 s. LAYERS=table: 52.2 s and 534 MB (dbt 367.1 s and
# 1,241 MB: 7.0x, 43%), against 49.0 s and 971 MB with the default delay.
#
# Earlier the same day: 151.5 s / 600 MB with folded audits alone (2.3x), 61.9 s once
# views kept their rows. With LAYERS=table then: dbt 367.1 s / 1,241 MB, etlm 89.6 s.
#
# (Before folded audits, on f7f4dec under load: dbt 430.5 s, etlm 462.7 s. Most of
# etlm's time was DataFusion running the intermediate layers' views of views.)
#
# dbt runs in the project folder with dbt's own profile (`--profiles-dir dbt_profiles`:
# dbt-duckdb on `gen.duckdb` there) and target folder (`--target-path dbt_target`), so it
# shares nothing with etlm's `profiles.yml`, `warehouse/` and `target/`. "Empty
# warehouse" sets the build's database and target folder aside first (for dbt also its
# partial-parse state; `set_aside` in common.sh says why they are not deleted there and
# then), so each build parses, seeds, builds and tests everything. The
# second etlm build changes nothing; when `etlm build --help` lists `--skip-unchanged`,
# a third build runs with it. Peak RSS is the largest process's (dbt is one Python
# process; etlm one process).
#
# dbt is `$DBT`, else `dbt` on PATH (e.g. `python3 -m venv /tmp/dbtvenv &&
# /tmp/dbtvenv/bin/pip install 'dbt-core<1.12' dbt-duckdb`, then DBT=/tmp/dbtvenv/bin/dbt;
# dbt-core 1.12 needs a parser wheel that its installer downloads outside the package
# registry); without it only etlm's figures are printed. Each build's output is kept in
# the project folder (.build_dbt.log, .build_etlm_*.log).
#
# Environment knobs: SIZES (default "1000"), SEED_ROWS (rows of the biggest seeds,
# default 100000), LAYERS (`view`, dbt's default, or `table`: how the layers between
# staging and marts are materialized), THREADS (2), SEED (42), DBT, BENCH_DIR (default $TMPDIR/etlm-bench or
# /tmp/etlm-bench), CARGO_TARGET_DIR, ETLM_BIN (a binary to measure instead of this
# checkout's), GEN_BIN (a prebuilt generator). Exits non-zero if a cargo build, the
# generator or any build fails (a failing test fails its build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

SIZES=${SIZES:-"1000"}
SEED_ROWS=${SEED_ROWS:-100000}
LAYERS=${LAYERS:-view}
THREADS=${THREADS:-2}
SEED=${SEED:-42}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/etlm-bench}
target_dir=${CARGO_TARGET_DIR:-$root/target}

source "$root/benches/common.sh"
# Builds run in the project folder: keep paths absolute.
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

dbt=${DBT:-$(command -v dbt || true)}
if [[ -n "$dbt" && ! -x "$dbt" ]]; then
    echo "build.sh: DBT=$dbt is not an executable" >&2
    exit 1
fi
if [[ -n "$dbt" ]]; then
    # "installed: 1.11.16" under Core, "duckdb: 1.11.1" under Plugins.
    dbt_version=$("$dbt" --version 2>&1 | python3 -c '
import re, sys
text = sys.stdin.read()
core = re.search(r"installed:\s*(\S+)", text)
duck = re.search(r"duckdb:\s*(\S+)", text)
core = core.group(1) if core else "?"
duck = duck.group(1) if duck else "not installed"
print(f"dbt-core {core}, dbt-duckdb {duck}")
')
    if [[ $dbt_version == *"not installed"* ]]; then
        echo "build.sh: $dbt has no duckdb adapter (pip install dbt-duckdb)" >&2
        exit 1
    fi
else
    echo "build.sh: no dbt found (set DBT or put dbt on PATH): measuring etlm alone" >&2
fi

skip_unchanged=false
if "$etlm" build --help 2>/dev/null | grep -q -- --skip-unchanged; then
    skip_unchanged=true
fi

# Runs a build in the project folder $1 (so dbt's relative paths resolve there), output to
# $1/$2; prints measure's figures. On failure prints the log's end and exits.
timed_build() {
    local dir=$1 log=$2 label=$3
    shift 3
    local result
    if ! result=$(cd "$dir" && measure "$dir/$log" "$@"); then
        echo "build.sh: $label failed; output ($dir/$log):" >&2
        tail -n 40 "$dir/$log" >&2
        exit 1
    fi
    echo "$result"
}

for n in $SIZES; do
    dir=$(generate "$n" --seed-rows "$SEED_ROWS" --layers "$LAYERS" --dbt)
    rows=()
    labels=()
    if [[ -n "$dbt" ]]; then
        set_aside "$dir/gen.duckdb" "$dir/gen.duckdb.wal" "$dir/dbt_target" "$dir/logs"
        sync
        rows+=("$(timed_build "$dir" .build_dbt.log "dbt build" \
            "$dbt" build --threads "$THREADS" --profiles-dir dbt_profiles --target-path dbt_target)")
        labels+=("dbt build ($dbt_version), empty warehouse")
    fi
    set_aside "$dir/warehouse" "$dir/target"
    sync
    rows+=("$(timed_build "$dir" .build_etlm_1.log "etlm build" \
        "$etlm" build --threads "$THREADS" --project-dir "$dir")")
    labels+=("etlm build, empty warehouse")
    tests=$("$etlm" show --format json --project-dir "$dir" \
        "select count(*) as n from _etlm.test_results where run_id = (select run_id from _etlm.runs order by started_at desc limit 1)" |
        python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["n"])')
    rows+=("$(timed_build "$dir" .build_etlm_2.log "etlm build (nothing changed)" \
        "$etlm" build --threads "$THREADS" --project-dir "$dir")")
    labels+=("etlm build again, nothing changed")
    if $skip_unchanged; then
        rows+=("$(timed_build "$dir" .build_etlm_3.log "etlm build --skip-unchanged" \
            "$etlm" build --skip-unchanged --threads "$THREADS" --project-dir "$dir")")
        labels+=("etlm build --skip-unchanged, nothing changed")
    fi
    # One "label<TAB>wall rss user sys" line per build.
    for i in "${!rows[@]}"; do
        printf '%s\t%s\n' "${labels[$i]}" "${rows[$i]}"
    done | python3 -c '
import sys
n, tests, seed_rows, threads, with_dbt = sys.argv[1:]
builds = []
for line in sys.stdin:
    label, figures = line.rstrip("\n").split("\t")
    wall, rss, user, system = figures.split()
    builds.append((label, float(wall), int(rss) / 1024, float(user), float(system)))
print(f"build {n} models, {int(tests):,} tests, biggest seeds {int(seed_rows):,} rows, {threads} threads")
for label, wall, rss, user, system in builds:
    print(f"  {label}: wall {wall:.1f} s (user {user:.1f} s, sys {system:.1f} s), peak RSS {rss:.0f} MB")
if with_dbt == "yes":
    dbt, etlm = builds[0], builds[1]
    print(f"  dbt / etlm: {dbt[1] / etlm[1]:.1f}x the wall time, etlm peak RSS {100 * etlm[2] / dbt[2]:.0f}% of dbt\x27s")
' "$n" "$tests" "$SEED_ROWS" "$THREADS" "$([[ -n "$dbt" ]] && echo yes || echo no)"
done
