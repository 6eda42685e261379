#!/usr/bin/env bash
# kmock stand-in for the Kubernetes API server (see shared/testing/stand-ins.md §4, §5).
#
#   scripts/standins/kmock.sh install   venv with kmock==0.8 + kubernetes-validate (idempotent)
#   scripts/standins/kmock.sh start     start tests/standins/kmock/shim.py on 127.0.0.1:$BPR_KMOCK_PORT (6443)
#   scripts/standins/kmock.sh stop      stop it by its saved PID
#   scripts/standins/kmock.sh env       print the exports the Kubernetes tests read
#
# The venv lives in .standins/k8s/venv; PID file and log in .standins/kmock/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.standins/k8s/venv"
STATE="$ROOT/.standins/kmock"
PORT="${BPR_KMOCK_PORT:-6443}"
PIDFILE="$STATE/kmock.pid"
LOG="$STATE/kmock.log"
SHIM="$ROOT/tests/standins/kmock/shim.py"
# Pinned: the shim touches kmock internals, and kmock is v0 (its README warns of API changes).
KMOCK_VERSION="0.8"
VALIDATE_VERSION="1.37.0"

install() {
  if [ -x "$VENV/bin/kubernetes-validate" ] && "$VENV/bin/python" -c 'import kmock' 2>/dev/null; then
    return 0
  fi
  mkdir -p "$(dirname "$VENV")"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "kmock==$KMOCK_VERSION" "kubernetes-validate==$VALIDATE_VERSION"
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
  install
  mkdir -p "$STATE"
  if running; then
    echo "kmock already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    return 0
  fi
  "$VENV/bin/python" "$SHIM" "$PORT" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$PORT/version"; then
      echo "kmock up (pid $(cat "$PIDFILE")) on http://127.0.0.1:$PORT"
      return 0
    fi
    if ! running; then
      echo "kmock exited during start; log: $LOG" >&2
      tail -20 "$LOG" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  echo "kmock did not answer on 127.0.0.1:$PORT within 10 s; log: $LOG" >&2
  return 1
}

stop() {
  if running; then
    kill "$(cat "$PIDFILE")"
    for _ in $(seq 1 50); do running || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env)
    echo "export BPR_TEST_KMOCK_URL=http://127.0.0.1:$PORT"
    echo "export BPR_K8S_VALIDATE=$VENV/bin/kubernetes-validate"
    ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
