#!/usr/bin/env bash
# Stand-in for the Vultr API v2: the project's stateful fake
# (tests/standins/vultr/fake_vultr.py) behind Prism 5.14.2 in proxy mode with
# Vultr's OpenAPI spec (tests/standins/vultr/vultr-v2.json), so every request and
# every answer is validated against Vultr's schema.
#
#   scripts/standins/vultr.sh start   # idempotent; prints the exports
#   scripts/standins/vultr.sh stop
#   scripts/standins/vultr.sh env     # the exports again
#
# Ports (127.0.0.1 only): Prism on $BPR_VULTR_PRISM_PORT (default 27030), the fake
# on Prism's port + 1 (the tests find the fake's /_fake/* controls there).
# Exports for the tests (also written to .standins/vultr/env):
#   BPR_TEST_VULTR_URL        Prism, what the component is pointed at
#   BPR_TEST_VULTR_FAKE_URL   the fake itself (test controls, request log)
#   BPR_TEST_VULTR_PRISM_LOG  Prism's log, scanned by the tests for violations
# Prism is installed once per checkout into .standins/prism (as digitalocean.sh does).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.standins/vultr"
PRISM_PREFIX="$ROOT/.standins/prism"
PRISM="$PRISM_PREFIX/node_modules/.bin/prism"
PRISM_VERSION="5.14.2"
SPEC="$ROOT/tests/standins/vultr/vultr-v2.json"
FAKE="$ROOT/tests/standins/vultr/fake_vultr.py"
PRISM_PORT="${BPR_VULTR_PRISM_PORT:-27030}"
FAKE_PORT="$((PRISM_PORT + 1))"
PRISM_URL="http://127.0.0.1:$PRISM_PORT"
FAKE_URL="http://127.0.0.1:$FAKE_PORT"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # url, what, log
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null "$1"; then return 0; fi
        sleep 0.1
    done
    echo "vultr stand-in: $2 did not answer on $1 within 30 s; see $3" >&2
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
        || { echo "vultr stand-in: npm install of prism failed; see $DIR/npm.log" >&2; exit 1; }
}

env_lines() {
    printf 'export BPR_TEST_VULTR_URL=%s\nexport BPR_TEST_VULTR_FAKE_URL=%s\nexport BPR_TEST_VULTR_PRISM_LOG=%s\n' \
        "$PRISM_URL" "$FAKE_URL" "$DIR/prism.log"
}

start() {
    mkdir -p "$DIR"
    install_prism
    if ! alive "$DIR/fake.pid"; then
        python3 "$FAKE" --port "$FAKE_PORT" >"$DIR/fake.log" 2>&1 &
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
    # /plans is public: it answers without a key.
    wait_for "$PRISM_URL/plans?per_page=1" "prism" "$DIR/prism.log"
    env_lines | tee "$DIR/env"
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
    env) env_lines ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
