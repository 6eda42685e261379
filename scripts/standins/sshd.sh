#!/usr/bin/env bash
# Stand-in SSH host for the `ssh` provider tests: Debian's openssh-server on
# 127.0.0.1:${BPR_SSHD_PORT:-2222}, throwaway host key, user `deploy` with
# key-only login, plus recording `docker` and `systemctl` shims first in the
# deploy user's PATH (no container engine or systemd runs on CI machines);
# `docker logs NAME` answers the lines a test wrote to ~/.bpr-shim/logs/NAME.
#
# Usage: sshd.sh start|stop   (idempotent; run as root)
# Files under /work/main/.standins/sshd (override with BPR_TEST_SSHD_DIR):
#   host_ed25519(.pub)   server host key        client_ed25519   accepted key
#   wrong_ed25519        a key the server refuses
#   port                 the port sshd listens on
#   sshd.pid, sshd.log   daemon pid and log
# Shims record each call to /home/deploy/.bpr-shim/<name>.log: every argument
# followed by \x1f, every call ended by \x1e.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
D="${BPR_TEST_SSHD_DIR:-$ROOT/.standins/sshd}"
PORT="${BPR_SSHD_PORT:-2222}"
USER_NAME=deploy
HOME_DIR=/home/$USER_NAME
SHIM_DIR=$HOME_DIR/.bpr-shim
# Each stand-in (one per checkout, by port) has its own copy of the shims, so a
# checkout whose script is older cannot replace them under a running test; the
# state they record ($SHIM_DIR/*.log, containers/, logs/) is shared.
SHIM_BIN=$SHIM_DIR/bin-$PORT

running() { [[ -f $D/sshd.pid ]] && kill -0 "$(cat "$D/sshd.pid")" 2>/dev/null; }

install_shims() {
  install -d -m755 -o $USER_NAME -g $USER_NAME "$SHIM_DIR" "$SHIM_BIN" "$SHIM_DIR/logs"
  # docker: records argv, keeps a tiny container table (name -> state) so
  # create/get/list/delete see each other, prints what the real CLI prints.
  cat > "$SHIM_BIN/docker" <<'EOF'
#!/bin/sh
S="$HOME/.bpr-shim"; T="$S/containers"; mkdir -p "$T"
{ for a in "$@"; do printf '%s\037' "$a"; done; printf '\036'; } >> "$S/docker.log"
case "$1" in
  --version|version) echo "Docker version 27.3.1, build shim"; exit 0 ;;
  run)
    name=""; labels=""; prev=""
    for a in "$@"; do
      case "$prev" in --name) name="$a" ;; --label) labels="$labels$a
" ;; esac
      prev="$a"
    done
    [ -n "$name" ] || { echo "shim: run needs --name" >&2; exit 125; }
    [ -e "$T/$name" ] && { echo "docker: Error response from daemon: Conflict. The container name \"/$name\" is already in use." >&2; exit 125; }
    printf '%s' "$labels" > "$T/$name"
    id=$(printf '%s' "$name" | sha256sum | cut -c1-64); echo "$id"; exit 0 ;;
  inspect)
    name=""; for a in "$@"; do name="$a"; done
    [ -e "$T/$name" ] || { echo "Error: No such object: $name" >&2; exit 1; }
    echo "running"; exit 0 ;;
  ps)
    # ps -a --filter label=K=V --format {{.Names}}
    want=""; prev=""
    for a in "$@"; do [ "$prev" = "--filter" ] && want="${a#label=}"; prev="$a"; done
    for f in "$T"/*; do
      [ -e "$f" ] || continue
      if [ -z "$want" ] || grep -qxF "$want" "$f"; then basename "$f"; fi
    done; exit 0 ;;
  logs)
    # logs [--timestamps] [--tail N] [--since TS] NAME: the lines a test seeded in
    # $S/logs/NAME, one "<RFC 3339 timestamp, fixed nanoseconds> <text>" each.
    name=""; tail=""; since=""; ts=""; prev=""
    for a in "$@"; do
      case "$prev" in --tail) tail="$a" ;; --since) since="$a" ;; esac
      [ "$a" = --timestamps ] && ts=1
      prev="$a"; name="$a"
    done
    [ -e "$T/$name" ] || { echo "Error response from daemon: No such container: $name" >&2; exit 1; }
    f="$S/logs/$name"; [ -f "$f" ] || exit 0
    awk -v s="$since" 's == "" || $1 > s' "$f" \
      | { if [ -n "$tail" ]; then tail -n "$tail"; else cat; fi; } \
      | { if [ -n "$ts" ]; then cat; else cut -d' ' -f2-; fi; }
    exit 0 ;;
  rm)
    name=""; for a in "$@"; do name="$a"; done
    if [ -e "$T/$name" ]; then rm -f "$T/$name"; echo "$name"; exit 0; fi
    echo "Error response from daemon: No such container: $name" >&2; exit 1 ;;
  *) exit 0 ;;
esac
EOF
  # systemctl: records argv; `is-active` answers active for installed units.
  cat > "$SHIM_BIN/systemctl" <<'EOF'
#!/bin/sh
S="$HOME/.bpr-shim"
{ for a in "$@"; do printf '%s\037' "$a"; done; printf '\036'; } >> "$S/systemctl.log"
for a in "$@"; do case "$a" in is-active) echo active; exit 0 ;; esac; done
exit 0
EOF
  chmod 755 "$SHIM_BIN/docker" "$SHIM_BIN/systemctl"
  chown -R $USER_NAME:$USER_NAME "$SHIM_DIR"
}

start() {
  # The shims are shared by every checkout's stand-in: refresh them even when
  # this one already runs (a newer script may answer more commands).
  if running; then install_shims; echo "sshd stand-in already running (pid $(cat "$D/sshd.pid"), port $(cat "$D/port"))"; return; fi
  # openssh-server, plus what the tests use on the "remote" side: curl for
  # downloads, systemd-analyze (package systemd; nothing is started) to
  # verify the units the component writes.
  local missing=()
  [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
  command -v curl >/dev/null || missing+=(curl)
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
  mkdir -p "$D" /run/sshd
  [[ -f $D/host_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C bpr-standin-host -f "$D/host_ed25519"
  [[ -f $D/client_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C bpr-standin-client -f "$D/client_ed25519"
  [[ -f $D/wrong_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C bpr-standin-wrong -f "$D/wrong_ed25519"
  # Tests run as root and read the keys; sshd wants the host key private.
  chmod 600 "$D/host_ed25519"
  if ! id $USER_NAME >/dev/null 2>&1; then useradd -m -s /bin/bash $USER_NAME; fi
  usermod -p '*' $USER_NAME # a '!'-locked account is refused even with a key
  install -d -m700 -o $USER_NAME -g $USER_NAME $HOME_DIR/.ssh
  # Append, never replace: several checkouts may run their own stand-in on
  # other ports with other client keys, all logging in as the same user.
  touch $HOME_DIR/.ssh/authorized_keys
  grep -qxF "$(cat "$D/client_ed25519.pub")" $HOME_DIR/.ssh/authorized_keys \
    || cat "$D/client_ed25519.pub" >> $HOME_DIR/.ssh/authorized_keys
  chown $USER_NAME:$USER_NAME $HOME_DIR/.ssh/authorized_keys
  chmod 600 $HOME_DIR/.ssh/authorized_keys
  install_shims
  cat > "$D/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $PORT
HostKey $D/host_ed25519
PidFile $D/sshd.pid
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
AllowUsers $USER_NAME
Subsystem sftp internal-sftp
MaxSessions 10
SetEnv PATH=$SHIM_BIN:/usr/local/bin:/usr/bin:/bin
EOF
  echo "$PORT" > "$D/port"
  /usr/sbin/sshd -t -f "$D/sshd_config"
  /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
  for _ in $(seq 50); do running && break; sleep 0.1; done
  running || { echo "sshd stand-in did not start; see $D/sshd.log" >&2; exit 1; }
  echo "sshd stand-in on 127.0.0.1:$PORT (pid $(cat "$D/sshd.pid")), files in $D"
}

stop() {
  if running; then
    kill "$(cat "$D/sshd.pid")"
    echo "sshd stand-in stopped"
  fi
  rm -f "$D/sshd.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
