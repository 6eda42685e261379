#!/usr/bin/env bash
# Stand-in PostgreSQL for the store's second backend (issue 17): Debian's
# PostgreSQL 15, a throwaway cluster owned by an unprivileged user (the
# `postgres` system user when run as root, else the caller), listening on
# 127.0.0.1:${BPR_PG_PORT:-5433} only (no Unix socket), scram-sha-256 password
# auth for the superuser `bpr` with a random password made at first start.
# TLS is on (plain connections are still accepted): a throwaway CA made with
# the openssl CLI at first start signs the server's certificate for
# 127.0.0.1 and localhost; the tests check `[database] tls` against it.
#
# Usage: postgres.sh install|start|stop|env   (idempotent)
#   install   apt-get installs postgresql when initdb/pg_ctl are missing
#   start     installs, creates the cluster on first use, starts it, prints
#             `export ...` lines to eval
#   env       prints the same `export ...` lines for a running cluster
#   stop      pg_ctl stop -m fast (the postmaster's PID from its pid file)
# Files under <project>/.standins/postgres (override with BPR_TEST_PG_DIR):
#   data/       the cluster (owned by the unprivileged user; under
#               /var/tmp/bpr-postgres-<hash> when that user cannot reach here)
#   password    the `bpr` password (mode 600)
#   tls-ca.pem  the throwaway CA's certificate (its key is deleted once it signed)
#   port, pg.log, env
# Exports: BPR_PG_PORT, BPR_TEST_DATABASE_URL (with the password inline: a
# test-only URL; the tests hand the password to bpr through password_env),
# BPR_TEST_DATABASE_PASSWORD_FILE, BPR_TEST_PG_CA_FILE (tls-ca.pem). Each test
# creates its own database in it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
D="${BPR_TEST_PG_DIR:-$ROOT/.standins/postgres}"
PORT="${BPR_PG_PORT:-5433}"
PG_USER=bpr

bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
    done
    d="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
    return 1
}

install_pg() {
    bindir >/dev/null && return 0
    # No default cluster on 5432: the tests make their own.
    mkdir -p /etc/postgresql-common
    [[ -f /etc/postgresql-common/createcluster.conf ]] \
        || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
    bindir >/dev/null || { echo "postgres stand-in: initdb/pg_ctl not found after installing postgresql" >&2; exit 1; }
}

# Runs a PostgreSQL binary as the cluster's owner: the server refuses root.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

owner() { if [[ $EUID -eq 0 ]]; then echo postgres; else id -un; fi; }

# Where the server's own files go: $D, unless the unprivileged owner cannot
# reach it (a checkout under /root); then a directory under /var/tmp named
# after $D.
pg_base() {
    if [[ $EUID -ne 0 ]] || ! id postgres >/dev/null 2>&1 \
        || runuser -u postgres -- test -x "$D" 2>/dev/null; then
        echo "$D"
    else
        echo "/var/tmp/bpr-postgres-$(printf '%s' "$D" | sha256sum | cut -c1-12)"
    fi
}

running() {
    local bin
    bin="$(bindir)" || return 1
    DATA="$(pg_base)/data"
    [[ -f "$DATA/postmaster.pid" ]] && as_owner "$bin/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

exports() {
    local port pw
    port="$(cat "$D/port")"
    pw="$(cat "$D/password")"
    cat <<EOF
export BPR_PG_PORT=$port
export BPR_TEST_DATABASE_URL=postgres://$PG_USER:$pw@127.0.0.1:$port/postgres
export BPR_TEST_DATABASE_PASSWORD_FILE=$D/password
export BPR_TEST_PG_CA_FILE=$D/tls-ca.pem
EOF
}

init_cluster() {
    local bin="$1" tmp
    if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
    fi
    BASE="$(pg_base)"
    DATA="$BASE/data"
    LOG="$BASE/pg.log"
    mkdir -p "$BASE"
    chmod 755 "$BASE"
    [[ -f "$DATA/PG_VERSION" ]] && return 0
    umask 077
    [[ -f "$D/password" ]] || head -c 18 /dev/urandom | base64 | tr '+/' 'Az' > "$D/password"
    chmod 600 "$D/password"
    rm -rf "$DATA"
    install -d -m700 -o "$(owner)" "$DATA"
    # initdb reads the password from a file its user can read; gone right after.
    tmp="$(mktemp "$BASE/pwfile.XXXXXX")"
    cp "$D/password" "$tmp"
    chown "$(owner)" "$tmp"
    as_owner "$bin/initdb" -D "$DATA" -U "$PG_USER" --pwfile="$tmp" \
        --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$D/initdb.log" 2>&1 \
        || { rm -f "$tmp"; echo "postgres stand-in: initdb failed; see $D/initdb.log" >&2; exit 1; }
    rm -f "$tmp"
    # A throwaway test cluster: durability off (speed), loopback TCP only, room
    # for many tests' connection pools at once.
    cat >> "$DATA/postgresql.conf" <<'EOF'
# bpr stand-in
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 400
EOF
    cat > "$DATA/pg_hba.conf" <<'EOF'
# bpr stand-in: TCP on loopback, scram passwords only
host all all 127.0.0.1/32 scram-sha-256
EOF
}

# The server's certificate and key (owned by the server's user, mode 600) in
# $BASE/tls, signed by a CA made here whose certificate goes to $D/tls-ca.pem.
make_tls() {
    local dir="$BASE/tls" tmp
    [[ -f "$dir/server.crt" && -f "$dir/server.key" && -f "$D/tls-ca.pem" ]] && return 0
    command -v openssl >/dev/null || { echo "postgres stand-in: openssl is needed for the TLS certificates" >&2; exit 1; }
    tmp="$(mktemp -d)"
    (
        cd "$tmp"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
            -keyout ca.key -out ca.pem -subj "/CN=bpr stand-in PostgreSQL CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout server.key -out server.csr -subj "/CN=localhost"
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile ext -out server.crt
    ) >"$D/tls.log" 2>&1 || { echo "postgres stand-in: making the TLS certificates failed; see $D/tls.log" >&2; rm -rf "$tmp"; exit 1; }
    install -d -m700 -o "$(owner)" "$dir"
    install -m600 -o "$(owner)" "$tmp/server.key" "$dir/server.key"
    install -m644 -o "$(owner)" "$tmp/server.crt" "$dir/server.crt"
    install -m644 "$tmp/ca.pem" "$D/tls-ca.pem"
    rm -rf "$tmp"
}

start() {
    install_pg
    local bin
    bin="$(bindir)"
    mkdir -p "$D"
    chmod 755 "$D"
    if running; then
        echo "postgres stand-in already running on port $(cat "$D/port")"
        exports | tee "$D/env"
        return 0
    fi
    init_cluster "$bin"
    echo "$PORT" > "$D/port"
    touch "$LOG"
    chown "$(owner)" "$LOG"
    make_tls
    as_owner "$bin/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-p $PORT -c ssl=on -c ssl_cert_file=$BASE/tls/server.crt -c ssl_key_file=$BASE/tls/server.key" >/dev/null \
        || { echo "postgres stand-in: did not start on 127.0.0.1:$PORT; see $LOG" >&2; tail -n 20 "$LOG" >&2; exit 1; }
    echo "postgres stand-in on 127.0.0.1:$PORT (pid $(head -n1 "$DATA/postmaster.pid")), files in $D"
    exports | tee "$D/env"
}

env_() {
    running || { echo "postgres stand-in is not running; run $0 start" >&2; exit 1; }
    exports
}

stop() {
    if running; then
        as_owner "$(bindir)/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
        echo "postgres stand-in stopped"
    fi
    rm -f "$D/env"
}

case "${1:-}" in
    install) install_pg ;;
    start) start ;;
    env) env_ ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
