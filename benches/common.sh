# Shared by the benchmarks: builds etlm and the generator in release mode, and defines
# `measure` (wall time, peak RSS and CPU time of a command) and `generate` (a generated
# project, reused while the generator, its flags and the seed are unchanged). Sourced,
# not run.
# Expects: root, SEED, BENCH_DIR, target_dir; ETLM_BIN, GEN_BIN and ETLM_FEATURES (cargo
# features of the etlm built) are optional. With ETLM_BIN and GEN_BIN set, nothing is
# built (no cargo run at all).

if ! command -v python3 >/dev/null 2>&1; then
    echo "benches: python3 is required (it times runs and reads peak RSS)" >&2
    exit 1
fi

# ETLM_BIN: measure that etlm binary (e.g. an earlier commit's, to compare) instead of
# building this checkout's. GEN_BIN: a prebuilt generator (e.g.
# `rustc --edition 2024 -O examples/gen_project.rs -o /tmp/gen_project`, which needs no
# dependency) instead of building examples/gen_project.rs with cargo.
build_targets=()
[[ -n "${ETLM_BIN:-}" ]] || build_targets+=(--bin etlm)
[[ -n "${GEN_BIN:-}" ]] || build_targets+=(--example gen_project)
if ((${#build_targets[@]})); then
    cargo build --release ${ETLM_FEATURES:+--features "$ETLM_FEATURES"} "${build_targets[@]}"
fi
etlm=${ETLM_BIN:-$target_dir/release/etlm}
gen=${GEN_BIN:-$target_dir/release/examples/gen_project}
for bin in "$etlm" "$gen"; do
    if [[ ! -x "$bin" ]]; then
        echo "benches: $bin is not an executable" >&2
        exit 1
    fi
done
# The builds run in the generated project's folder: a relative path given from the
# checkout's root must still name the same binary there.
etlm=$(realpath "$etlm")
gen=$(realpath "$gen")

# Runs a command; prints "<wall seconds> <peak RSS in KiB> <user seconds> <system seconds>"
# of it on stdout (CPU times of the command and its children). The command's own output
# goes to $log. Exits with the command's status.
measure() {
    local log=$1
    shift
    python3 - "$log" "$@" <<'PY'
import resource, subprocess, sys, time
log, cmd = sys.argv[1], sys.argv[2:]
with open(log, "wb") as out:
    start = time.perf_counter()
    code = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
# ru_maxrss of waited-for children: KiB on Linux (bytes on macOS).
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
rss = usage.ru_maxrss
if sys.platform == "darwin":
    rss //= 1024
print(f"{wall:.6f} {rss} {usage.ru_utime:.3f} {usage.ru_stime:.3f}")
sys.exit(code)
PY
}

mkdir -p "$BENCH_DIR"

# `set_aside PATH...` moves the paths that exist into $BENCH_DIR/.set_aside, removed when
# the script exits: a measured build starts without them, as if they had been deleted.
# Deleting them right before would measure the file system instead. On ext4 without a
# journal (this machine's disk), making a file skips every inode of the block group
# deleted in the last minute or more (`recently_deleted` in fs/ext4/ialloc.c), so after
# `rm -rf` of a previous build's 10,000 files, making the next build's files took seconds
# of system time (perf: `find_get_block_common`, `recently_deleted`, `ext4_get_group_desc`).
# A first build on a fresh checkout has no such inodes.
set_aside_dir="$(cd "$BENCH_DIR" && pwd)/.set_aside"
rm -rf "$set_aside_dir"
trap 'rm -rf "$set_aside_dir"' EXIT
set_aside() {
    local path
    for path in "$@"; do
        if [[ -e "$path" || -L "$path" ]]; then
            mkdir -p "$set_aside_dir"
            mv "$path" "$(mktemp -d "$set_aside_dir/XXXXXX")/"
        fi
    done
}
stamp_base="seed=$SEED gen=$(cksum < examples/gen_project.rs | cut -d' ' -f1) bin=$(cksum < "$gen" | cut -d' ' -f1)"

# Generates (or reuses) a project of $1 models, with the generator flags that follow (e.g.
# `--seed-rows 100000 --dbt`); prints its directory: gen_<n>, plus the flags when given
# (gen_1000_seed_rows_100000_dbt), so each shape has a folder of its own.
generate() {
    local n=$1
    shift
    local suffix
    suffix=$(printf '%s_' "$@" | tr -cs 'A-Za-z0-9' '_' | sed 's/^_*//; s/_*$//')
    local dir="$BENCH_DIR/gen_$n${suffix:+_$suffix}"
    local stamp="$dir/.gen_stamp"
    local stamp_value="$stamp_base flags=$*"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$stamp_value" ]]; then
        rm -f "$stamp"
        "$gen" --models "$n" --out "$dir" --seed "$SEED" "$@" >&2
        echo "$stamp_value" > "$stamp"
    fi
    echo "$dir"
}
