#!/usr/bin/env bash
# Installs the pinned official MCP Python SDK into target/mcp/python (once per change of
# requirements.txt); the conformance suite's MCP tests run conformance/mcp/server.py with it.
# Safe to call from several processes at once.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/target/mcp/python"
mkdir -p "$root/target/mcp"
exec 9> "$root/target/mcp/.lock"
flock 9
if ! cmp -s "$root/conformance/mcp/requirements.txt" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/conformance/mcp/requirements.txt"
    cp "$root/conformance/mcp/requirements.txt" "$venv/"
fi
echo "$venv/bin/python"
