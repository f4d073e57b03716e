# Shared by the benchmarks: builds etlm and the generator in release mode, and defines
# `measure` (wall time and peak RSS of a command) and `generate` (a generated project,
# reused while the generator source and seed are unchanged). Sourced, not run.
# Expects: root, SEED, BENCH_DIR, target_dir; ETLM_BIN is optional.

if ! command -v python3 >/dev/null 2>&1; then
    echo "benches: python3 is required (it times runs and reads peak RSS)" >&2
    exit 1
fi

# ETLM_BIN: measure that etlm binary (e.g. an earlier commit's, to compare) instead of
# building this checkout's.
if [[ -n "${ETLM_BIN:-}" ]]; then
    cargo build --release --example gen_project
    etlm="$ETLM_BIN"
else
    cargo build --release --bin etlm --example gen_project
    etlm="$target_dir/release/etlm"
fi
gen="$target_dir/release/examples/gen_project"

# Runs a command; prints "<wall seconds> <peak RSS in KiB>" of it on stdout. The command's
# own output goes to $log. Exits with the command's status.
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
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if sys.platform == "darwin":
    rss //= 1024
print(f"{wall:.6f} {rss}")
sys.exit(code)
PY
}

mkdir -p "$BENCH_DIR"
stamp_value="seed=$SEED gen=$(cksum < examples/gen_project.rs | cut -d' ' -f1)"


# Generates (or reuses) a project of $1 models; prints its directory.
generate() {
    local n=$1
    local dir="$BENCH_DIR/gen_$n"
    local stamp="$dir/.gen_stamp"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$stamp_value" ]]; then
        rm -f "$stamp"
        "$gen" --models "$n" --out "$dir" --seed "$SEED" >&2
        echo "$stamp_value" > "$stamp"
    fi
    echo "$dir"
}
