#!/usr/bin/env bash
# Runs the real OpenAI SDKs against a freshly started server.
#   conformance/sdk/run.sh                      # on a temporary SQLite file
#   conformance/sdk/run.sh postgres://…/test    # on a new database next to that one
# Installs the pinned SDK versions into target/sdk/ on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# Each toolchain is (re)installed when its pinned manifest differs from the one installed.
venv=target/sdk/python
if ! cmp -s conformance/sdk/python/requirements.txt "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r conformance/sdk/python/requirements.txt
    cp conformance/sdk/python/requirements.txt "$venv/"
fi
node_dir=target/sdk/node
if ! cmp -s conformance/sdk/node/package.json "$node_dir/package.json"; then
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp conformance/sdk/node/package.json "$node_dir/"
    npm install --silent --no-audit --no-fund --prefix "$node_dir" > /dev/null
fi
# The same feature set as `cargo test --workspace`, so this reuses its build.
cargo build --quiet --workspace --bins

work=$(mktemp -d)
database_url="sqlite://$work/ingram.db?mode=rwc"
pg_database=""
if [ $# -gt 0 ]; then
    pg_database="ingram_sdk_$$_$RANDOM"
    psql -q "$1" -c "CREATE DATABASE $pg_database"
    database_url="${1%/*}/$pg_database"
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="tha_live_sdk$RANDOM$RANDOM"

INGRAM_ADMIN_TOKEN="$token" INGRAM_DATA_DIR="$work" INGRAM_OFFLINE_TOKEN_DELAY_MS=0 INGRAM_LOG=warn \
    target/debug/ingram --database-url "$database_url" serve --listen "127.0.0.1:$port" > "$work/server.log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    if [ -n "$pg_database" ]; then psql -q "$1" -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" || true; fi
    rm -rf "$work"
}
trap 'cleanup "${1:-}"' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$port/healthz" > /dev/null || { cat "$work/server.log"; exit 1; }

export INGRAM_BASE_URL="http://127.0.0.1:$port/v1" INGRAM_TOKEN="$token"
status=0
"$venv/bin/pytest" -q -p no:cacheprovider conformance/sdk/python || status=1
NODE_PATH="$root/$node_dir/node_modules" node --test --test-reporter=tap conformance/sdk/node/ || status=1
exit $status
