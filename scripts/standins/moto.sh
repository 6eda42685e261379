#!/usr/bin/env bash
# Stand-in for AWS EC2/EKS: moto 5.2.5 `moto_server` (../shared/testing/stand-ins.md §1).
#
#   scripts/standins/moto.sh start   # idempotent; installs moto into a venv on first use
#   scripts/standins/moto.sh stop
#
# Listens on 127.0.0.1:$MOTO_PORT (default 5000). Instance type, AMI and key pair
# validation are on, as real EC2 behaves. SigV4 checking is off at start; the AWS
# tests switch it on themselves through /moto-api/reset-auth after creating an IAM
# access key inside moto. Export for the tests (also in .standins/moto/env):
#   BPR_TEST_MOTO_URL=http://127.0.0.1:$MOTO_PORT
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.standins/moto"
VENV="$DIR/venv"
MOTO_VERSION="5.2.5"
PORT="${MOTO_PORT:-5000}"
URL="http://127.0.0.1:$PORT"

alive() { [[ -f "$DIR/moto.pid" ]] && kill -0 "$(cat "$DIR/moto.pid")" 2>/dev/null; }

install() {
    if [[ -x "$VENV/bin/moto_server" ]] \
        && "$VENV/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
        return 0
    fi
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
        >"$DIR/pip.log" 2>&1 \
        || { echo "moto stand-in: pip install failed; see $DIR/pip.log" >&2; exit 1; }
}

start() {
    mkdir -p "$DIR"
    install
    if ! alive; then
        MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION=1 \
        MOTO_ENABLE_AMI_VALIDATION=1 \
        MOTO_ENABLE_KEYPAIR_VALIDATION=1 \
            "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$DIR/moto.log" 2>&1 &
        echo $! >"$DIR/moto.pid"
    fi
    for _ in $(seq 1 300); do
        if curl -sf -o /dev/null "$URL/moto-api/"; then
            echo "BPR_TEST_MOTO_URL=$URL" >"$DIR/env"
            echo "export BPR_TEST_MOTO_URL=$URL"
            return 0
        fi
        if ! alive; then break; fi
        sleep 0.1
    done
    echo "moto stand-in: moto_server did not answer on $URL within 30 s; see $DIR/moto.log" >&2
    tail -n 20 "$DIR/moto.log" >&2 || true
    exit 1
}

stop() {
    if alive; then
        kill "$(cat "$DIR/moto.pid")"
        for _ in $(seq 1 50); do alive || break; sleep 0.1; done
    fi
    rm -f "$DIR/moto.pid" "$DIR/env"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
