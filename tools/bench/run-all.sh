#!/bin/sh
# Runs every Pacer benchmark against a build directory and prints their tables:
# each figure next to its target with PASS or MISS. Benchmarks prove targets;
# a MISS is a finding to report, not a failure: the exit status is non-zero
# only when a benchmark could not run. See tools/bench/README.md.
# Usage: tools/bench/run-all.sh <build-dir> [--quick]    (`make bench` runs it without --quick)
#   --quick: a smoke run with a few samples, to check that the benchmarks work
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -d "$1" ] || { [ $# -eq 2 ] && [ "$2" != --quick ]; }; then
        echo "usage: $0 <build-dir> [--quick]" >&2
        exit 2
fi
BUILD=$(cd "$1" && pwd)
QUICK=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
BENCHMARKS="bench_executor_memory bench_launch_latency bench_check_cpu bench_vs_mesos_executor bench_scheduler
        bench_event_fanout"
TARGETS="pacer-executor pacer-proto-py bench-http-server bench-spawn bench-spawn-linked bench-fork-curl bench-ref-executor
        bench-libcurl-floor pacer-scheduler bench-master bench-http-get bench-sse"

# Everything the drivers run must be built; building what is missing is cheap.
# shellcheck disable=SC2086
if ! cmake --build "$BUILD" --target $TARGETS >/dev/null; then
        echo "run-all: cannot build the benchmark targets in $BUILD" >&2
        exit 1
fi

if grep -Eq '^PACER_SANITIZE:[A-Z]+=.+' "$BUILD/CMakeCache.txt" 2>/dev/null ||
        grep -Eq '^CMAKE_BUILD_TYPE:[A-Z]+=Debug' "$BUILD/CMakeCache.txt" 2>/dev/null; then
        echo "run-all: WARNING: $BUILD is a sanitizer or Debug build; its figures say little" >&2
fi

log=$(mktemp)
rcfile=$(mktemp)
trap 'rm -f "$log" "$rcfile"' EXIT
failed=""
start=$(date +%s)
echo "Pacer benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm), $(nproc) CPUs, build $BUILD"
for b in $BENCHMARKS; do
        echo 0 >"$rcfile"
        {
                # shellcheck disable=SC2086
                "$PYTHON" -u "$HERE/$b.py" "$BUILD" $QUICK || echo $? >"$rcfile"
        } | tee -a "$log"
        if [ "$(cat "$rcfile")" != 0 ]; then
                echo "run-all: $b FAILED to run" >&2
                failed="$failed $b"
        fi
done

passes=$(grep -c ' PASS$' "$log" || true)
misses=$(grep -c ' MISS$' "$log" || true)
echo
echo "== summary: $passes PASS, $misses MISS in $(($(date +%s) - start)) s"
grep ' MISS$' "$log" | sed 's/^ */   /' || true
if [ -n "$failed" ]; then
        echo "   could not run:$failed" >&2
        exit 1
fi
