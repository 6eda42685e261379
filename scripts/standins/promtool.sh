#!/usr/bin/env bash
# Not a server: Prometheus's own `promtool`, to check `bpr serve`'s /metrics
# output (`promtool check metrics`) in the tests. Taken from Debian's
# `prometheus` package by extracting the .deb (nothing is installed, no
# Prometheus server is started).
#
#   scripts/standins/promtool.sh start   # idempotent; prints BPR_TEST_PROMTOOL
#   scripts/standins/promtool.sh stop    # nothing to stop
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.standins/promtool"
BIN="$DIR/root/usr/bin/promtool"

start() {
    if [[ ! -x "$BIN" ]]; then
        if command -v promtool >/dev/null; then
            BIN="$(command -v promtool)"
        else
            mkdir -p "$DIR"
            (cd "$DIR" && { apt-get download prometheus >/dev/null 2>&1 \
                || { apt-get update -q >/dev/null && apt-get download prometheus >/dev/null; }; }) \
                || { echo "promtool: apt-get download prometheus failed" >&2; exit 1; }
            dpkg-deb -x "$DIR"/prometheus_*.deb "$DIR/root"
            rm -f "$DIR"/prometheus_*.deb "$DIR/root/usr/bin/prometheus"
        fi
    fi
    "$BIN" --version >/dev/null 2>&1 || { echo "promtool: $BIN does not run" >&2; exit 1; }
    mkdir -p "$DIR"
    echo "BPR_TEST_PROMTOOL=$BIN" >"$DIR/env"
    echo "export BPR_TEST_PROMTOOL=$BIN"
}

case "${1:-}" in
    start) start ;;
    stop) ;;
    env) [[ -f "$DIR/env" ]] && sed 's/^/export /' "$DIR/env" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
