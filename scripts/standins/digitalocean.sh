#!/usr/bin/env bash
# Stand-in for the DigitalOcean API: the project's stateful fake
# (tests/standins/digitalocean/fake_do.py) behind Prism 5.14.2 in proxy mode with
# DigitalOcean's official OpenAPI spec, so every request and every answer is
# validated against DigitalOcean's schema.
#
#   scripts/standins/digitalocean.sh start   # idempotent; prints the exports
#   scripts/standins/digitalocean.sh stop
#
# Ports (127.0.0.1 only): Prism on $BPR_DO_PRISM_PORT (default 18420), the fake on
# Prism's port + 1 (the tests find the fake's /_fake/* controls there).
# Exports for the tests (also written to .standins/digitalocean/env):
#   BPR_TEST_DO_URL       Prism, what the component is pointed at
#   BPR_TEST_DO_FAKE_URL  the fake itself (test controls, request log)
#   BPR_TEST_DO_PRISM_LOG Prism's log, scanned by the tests for violations
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.standins/digitalocean"
PRISM_PREFIX="$ROOT/.standins/prism"
PRISM="$PRISM_PREFIX/node_modules/.bin/prism"
PRISM_VERSION="5.14.2"
SPEC="$ROOT/tests/standins/digitalocean/digitalocean-compute.yaml"
FAKE="$ROOT/tests/standins/digitalocean/fake_do.py"
PRISM_PORT="${BPR_DO_PRISM_PORT:-18420}"
FAKE_PORT="$((PRISM_PORT + 1))"
PRISM_URL="http://127.0.0.1:$PRISM_PORT"
FAKE_URL="http://127.0.0.1:$FAKE_PORT"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # url, what, log
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null -H 'authorization: Bearer standin' "$1"; then return 0; fi
        sleep 0.1
    done
    echo "digitalocean stand-in: $2 did not answer on $1 within 30 s; see $3" >&2
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
        || { echo "digitalocean stand-in: npm install of prism failed; see $DIR/npm.log" >&2; exit 1; }
}

start() {
    mkdir -p "$DIR"
    install_prism
    if ! alive "$DIR/fake.pid"; then
        python3 "$FAKE" --port "$FAKE_PORT" --public-url "$PRISM_URL" >"$DIR/fake.log" 2>&1 &
        echo $! >"$DIR/fake.pid"
    fi
    wait_for "$FAKE_URL/_fake/log" "the fake" "$DIR/fake.log"
    if ! alive "$DIR/prism.pid"; then
        # --errors: a request or response that violates the spec becomes an error
        # answer instead of a mere `sl-violations` header.
        "$PRISM" proxy --errors -h 127.0.0.1 -p "$PRISM_PORT" "$SPEC" "$FAKE_URL" \
            >"$DIR/prism.log" 2>&1 &
        echo $! >"$DIR/prism.pid"
    fi
    wait_for "$PRISM_URL/v2/sizes" "prism" "$DIR/prism.log"
    printf 'export BPR_TEST_DO_URL=%s\nexport BPR_TEST_DO_FAKE_URL=%s\nexport BPR_TEST_DO_PRISM_LOG=%s\n' "$PRISM_URL" "$FAKE_URL" "$DIR/prism.log" \
        | tee "$DIR/env"
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
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
