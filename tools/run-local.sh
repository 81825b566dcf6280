#!/bin/sh
# `make run`: pacer-scheduler in local mode on this machine, with the example
# app (examples/hello.json: a tiny HTTP service with an HTTP health check, 3
# instances) deployed through pacerctl. Ctrl-C stops everything: the
# scheduler shuts its executors (and their tasks) down before it exits.
#
# Usage: tools/run-local.sh [BUILD_DIR]
#   PACER_RUN_PORT   REST API port (default 8080)
#   PACER_DATA_DIR   state and sandboxes (default BUILD_DIR/run-data)
#   CONSUL_HTTP_ADDR a Consul agent to register in; without it a `consul`
#                    binary on PATH is started as a dev agent, else
#                    registration is off (the scheduler says so loudly)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PORT=${PACER_RUN_PORT:-8080}
DATA=${PACER_DATA_DIR:-$BUILD/run-data}
URL=http://127.0.0.1:$PORT
SCHEDULER=$BUILD/scheduler/pacer-scheduler
PACERCTL=$BUILD/tools/pacerctl

for b in "$SCHEDULER" "$PACERCTL" "$BUILD/executor/pacer-executor"; do
        [ -x "$b" ] || { echo "run-local: $b is not built: run 'make build' first" >&2; exit 1; }
done
mkdir -p "$DATA"
LOG=$DATA/scheduler.log

"$SCHEDULER" --master=local --http="127.0.0.1:$PORT" --data-dir="$DATA" >"$LOG" 2>&1 &
PID=$!
stop() {
        trap - INT TERM EXIT
        if kill -0 "$PID" 2>/dev/null; then
                echo
                echo "run-local: stopping pacer-scheduler (pid $PID) and its executors..."
                kill -TERM "$PID" 2>/dev/null || true
                wait "$PID" 2>/dev/null || true
        fi
        echo "run-local: stopped. State kept in $DATA (delete it for a fresh start)."
}
# Ctrl-C is how this is meant to end: a clean stop exits 0
trap 'stop; exit 0' INT TERM
trap stop EXIT

# wait for the REST API (the scheduler may first start a Consul dev agent)
i=0
until "$PACERCTL" --url="$URL" ping >/dev/null 2>&1; do
        if ! kill -0 "$PID" 2>/dev/null; then
                echo "run-local: pacer-scheduler exited; its log ($LOG):" >&2
                tail -20 "$LOG" >&2
                exit 1
        fi
        i=$((i + 1))
        [ "$i" -lt 300 ] || { echo "run-local: the REST API did not come up; see $LOG" >&2; exit 1; }
        sleep 0.1
done

grep -E "Consul|consul" "$LOG" | head -3 || true
echo "run-local: deploying examples/hello.json (3 instances of a tiny HTTP service)..."
"$PACERCTL" --url="$URL" deploy examples/hello.json
"$PACERCTL" --url="$URL" tasks

cat <<INFO

Pacer is running in local mode.
  REST API (Marathon-compatible):  $URL   (e.g. curl $URL/v2/apps)
  try:  $PACERCTL --url=$URL apps
        $PACERCTL --url=$URL tasks
        $PACERCTL --url=$URL scale /hello 5
        $PACERCTL --url=$URL events
  scheduler log:   $LOG
  task sandboxes:  $DATA/local/sandboxes/ (stdout, stderr, executor.log)
Press Ctrl-C to stop everything.
INFO
wait "$PID"
