#!/usr/bin/env bash
# Stand-in for Google Cloud (Compute Engine v1, GKE container v1, the OAuth token
# endpoint and the price catalogues): the project's stateful fake
# (tests/standins/gcp/fake_gcp.py) behind two Prism 5.14.2 processes in proxy mode,
# one per official spec, so every Compute and GKE request and answer is validated
# against Google's schema.
#
#   scripts/standins/gcp.sh start   # idempotent; prints the exports
#   scripts/standins/gcp.sh stop
#   scripts/standins/gcp.sh env     # the exports again
#
# Ports (127.0.0.1 only), from $BPR_GCP_PRISM_PORT (default 25030):
#   P      Prism with gcp-compute-v1.json   (what the component's compute_endpoint names)
#   P + 1  Prism with gcp-container-v1.json (the component's container_endpoint)
#   P + 2  the fake itself: the Prisms' upstream, the token endpoint (/token), the
#          catalogues (SkyPilot CSV, Cloud Billing SKUs) and the /_fake/* test controls
# Exports for the tests (also written to .standins/gcp/env):
#   BPR_TEST_GCP_COMPUTE_URL    Prism (compute)
#   BPR_TEST_GCP_CONTAINER_URL  Prism (GKE)
#   BPR_TEST_GCP_FAKE_URL       the fake
#   BPR_TEST_GCP_PRISM_LOGS     both Prism logs, colon-separated, scanned for violations
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.standins/gcp"
PRISM_PREFIX="$ROOT/.standins/prism"
PRISM="$PRISM_PREFIX/node_modules/.bin/prism"
PRISM_VERSION="5.14.2"
HERE="$ROOT/tests/standins/gcp"
FAKE="$HERE/fake_gcp.py"
COMPUTE_PORT="${BPR_GCP_PRISM_PORT:-25030}"
CONTAINER_PORT="$((COMPUTE_PORT + 1))"
FAKE_PORT="$((COMPUTE_PORT + 2))"
COMPUTE_URL="http://127.0.0.1:$COMPUTE_PORT"
CONTAINER_URL="http://127.0.0.1:$CONTAINER_PORT"
FAKE_URL="http://127.0.0.1:$FAKE_PORT"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # url, what, log
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null -H 'authorization: Bearer standin' "$1"; then return 0; fi
        sleep 0.1
    done
    echo "gcp stand-in: $2 did not answer on $1 within 30 s; see $3" >&2
    tail -n 20 "$3" >&2 || true
    exit 1
}

# The same Prism install as scripts/standins/digitalocean.sh (shared prefix).
install_prism() {
    if [[ -x "$PRISM" ]] && grep -q "\"version\": \"$PRISM_VERSION\"" \
        "$PRISM_PREFIX/node_modules/@stoplight/prism-cli/package.json" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$PRISM_PREFIX"
    npm install --prefix "$PRISM_PREFIX" --no-audit --no-fund --loglevel=error \
        "@stoplight/prism-cli@$PRISM_VERSION" >"$DIR/npm.log" 2>&1 \
        || { echo "gcp stand-in: npm install of prism failed; see $DIR/npm.log" >&2; exit 1; }
}

print_env() {
    printf 'export BPR_TEST_GCP_COMPUTE_URL=%s\nexport BPR_TEST_GCP_CONTAINER_URL=%s\nexport BPR_TEST_GCP_FAKE_URL=%s\nexport BPR_TEST_GCP_PRISM_LOGS=%s\n' \
        "$COMPUTE_URL" "$CONTAINER_URL" "$FAKE_URL" "$DIR/prism-compute.log:$DIR/prism-container.log"
}

start_prism() { # name, spec, port
    if ! alive "$DIR/prism-$1.pid"; then
        # --errors: a request or answer that violates the spec becomes an error
        # answer (and a log line) instead of a mere `sl-violations` header.
        "$PRISM" proxy --errors -h 127.0.0.1 -p "$3" "$HERE/$2" "$FAKE_URL" \
            >"$DIR/prism-$1.log" 2>&1 &
        echo $! >"$DIR/prism-$1.pid"
    fi
}

start() {
    mkdir -p "$DIR"
    install_prism
    if ! alive "$DIR/fake.pid"; then
        python3 "$FAKE" --port "$FAKE_PORT" --compute-url "$COMPUTE_URL" \
            --container-url "$CONTAINER_URL" >"$DIR/fake.log" 2>&1 &
        echo $! >"$DIR/fake.pid"
    fi
    wait_for "$FAKE_URL/_fake/log" "the fake" "$DIR/fake.log"
    start_prism compute gcp-compute-v1.json "$COMPUTE_PORT"
    start_prism container gcp-container-v1.json "$CONTAINER_PORT"
    wait_for "$COMPUTE_URL/projects/bpr-test/zones/us-central1-a" "prism (compute)" "$DIR/prism-compute.log"
    wait_for "$CONTAINER_URL/v1/projects/bpr-test/locations/us-central1/clusters" "prism (container)" "$DIR/prism-container.log"
    print_env | tee "$DIR/env"
}

stop() {
    for name in prism-compute prism-container fake; do
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
