#!/usr/bin/env bash
# Stand-in for Azure Resource Manager and the Retail Prices API: the project's
# stateful fake (tests/standins/azure/fake_azure.py) whose router sends every
# Compute-VM and AKS request through Prism 5.14.2 in proxy mode with the official
# specs (merged by tests/standins/azure/merge_specs.py), so those requests and
# answers are validated against Azure's schemas; the other ARM paths (resource
# groups, networks, disks, operation status) and the price API go to the fake
# directly (see tests/standins/azure/README.md).
#
#   scripts/standins/azure.sh start   # idempotent; prints the exports
#   scripts/standins/azure.sh stop
#   scripts/standins/azure.sh env     # prints the exports again
#
# Ports (127.0.0.1 only): the router on $BPR_AZURE_PORT (default 26030), Prism on
# the next port, the fake's API listener on the one after.
# Exports for the tests (also written to .standins/azure/env):
#   BPR_TEST_AZURE_URL        the router: what the component and the tests use
#                             (ARM, retail prices, and the fake's /_fake/* controls)
#   BPR_TEST_AZURE_PRISM_LOG  Prism's log, scanned by the tests for violations
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.standins/azure"
PRISM_PREFIX="$ROOT/.standins/prism"
PRISM="$PRISM_PREFIX/node_modules/.bin/prism"
PRISM_VERSION="5.14.2"
SRC="$ROOT/tests/standins/azure"
SPEC="$DIR/azure-arm.json"
PORT="${BPR_AZURE_PORT:-26030}"
PRISM_PORT="$((PORT + 1))"
API_PORT="$((PORT + 2))"
URL="http://127.0.0.1:$PORT"
PRISM_URL="http://127.0.0.1:$PRISM_PORT"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # url, what, log
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null "$1"; then return 0; fi
        sleep 0.1
    done
    echo "azure stand-in: $2 did not answer on $1 within 30 s; see $3" >&2
    tail -n 20 "$3" >&2 || true
    exit 1
}

install_prism() {
    if [[ -x "$PRISM" ]] && grep -q "\"version\": \"$PRISM_VERSION\"" \
        "$PRISM_PREFIX/node_modules/@stoplight/prism-cli/package.json" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$PRISM_PREFIX"
    npm install --prefix "$PRISM_PREFIX" --no-audit --no-fund --loglevel=error \
        "@stoplight/prism-cli@$PRISM_VERSION" >"$DIR/npm.log" 2>&1 \
        || { echo "azure stand-in: npm install of prism failed; see $DIR/npm.log" >&2; exit 1; }
}

print_env() {
    printf 'export BPR_TEST_AZURE_URL=%s\nexport BPR_TEST_AZURE_PRISM_LOG=%s\n' "$URL" "$DIR/prism.log"
}

start() {
    mkdir -p "$DIR"
    install_prism
    python3 "$SRC/merge_specs.py" "$SPEC"
    if ! alive "$DIR/fake.pid"; then
        python3 "$SRC/fake_azure.py" --port "$PORT" --api-port "$API_PORT" \
            --prism-url "$PRISM_URL" --spec "$SPEC" >"$DIR/fake.log" 2>&1 &
        echo $! >"$DIR/fake.pid"
    fi
    wait_for "$URL/_fake/log" "the fake" "$DIR/fake.log"
    if ! alive "$DIR/prism.pid"; then
        # --errors: a request or answer that violates the spec becomes an error
        # answer instead of a mere `sl-violations` header.
        "$PRISM" proxy --errors -h 127.0.0.1 -p "$PRISM_PORT" "$SPEC" "http://127.0.0.1:$API_PORT" \
            >"$DIR/prism.log" 2>&1 &
        echo $! >"$DIR/prism.pid"
    fi
    wait_for "$PRISM_URL/" "prism" "$DIR/prism.log"
    print_env | tee "$DIR/env"
}

stop() {
    for name in prism fake; do
        if alive "$DIR/$name.pid"; then
            kill "$(cat "$DIR/$name.pid")" 2>/dev/null || true
        fi
        rm -f "$DIR/$name.pid"
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
