#!/usr/bin/env bash
# The test command: starts every local stand-in the tests need (installing
# them on first use: moto from PyPI, Prism from npm, openssh-server from apt,
# kmock + kubernetes-validate from PyPI, PostgreSQL from apt), runs the whole
# test suite, and stops the stand-ins by PID whatever happens. Extra arguments
# go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

standins=()
for s in moto digitalocean azure gcp vultr sshd kmock promtool postgres; do
    [[ -x "scripts/standins/$s.sh" ]] && standins+=("$s")
done

stop_all() {
    # BPR_KEEP_STANDINS=1 leaves them running (for repeated local runs).
    [[ "${BPR_KEEP_STANDINS:-}" == 1 ]] && return
    for s in "${standins[@]}"; do
        "scripts/standins/$s.sh" stop >/dev/null 2>&1 || true
    done
}
trap stop_all EXIT

for s in "${standins[@]}"; do
    echo "== starting stand-in: $s"
    out="$("scripts/standins/$s.sh" start)"
    # Scripts print `export NAME=value` lines on start, or through `env`.
    if ! grep -q '^export ' <<<"$out" && grep -q '^ *env)' "scripts/standins/$s.sh"; then
        out="$("scripts/standins/$s.sh" env)"
    fi
    grep -v '^export ' <<<"$out" || true
    eval "$(grep '^export ' <<<"$out" || true)"
done
export BPR_TEST_SSHD_DIR="$PWD/.standins/sshd"

echo "== cargo test (host: unit, integration against the stand-ins, doc)"
cargo test "$@"
if [[ $# -eq 0 ]]; then
    echo "== example: Blueprint Manager's event loop on the embedding API, against moto"
    cargo run -p blueprint-remote-providers --example manager_loop
    echo "== cargo test (provider components' own unit tests, native)"
    guests=()
    for manifest in components/*/Cargo.toml; do
        guests+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n1)")
    done
    cargo test "${guests[@]}"
fi
