"""An MCP server written with the official MCP Python SDK, for the conformance suite.

    server.py --token SECRET [--era dual|legacy]

Serves Streamable HTTP at /mcp on a free port of 127.0.0.1 and prints the port on its first
line of output. Every request must carry `Authorization: Bearer SECRET` (else 401 with a
challenge). `--era legacy` answers requests of the 2026-07-28 era as a server from before it
would (400), so clients must fall back to `initialize` and sessions; `dual` (the SDK's own
behaviour) serves both eras. GET /requests lists what reached /mcp (JSON-RPC method, protocol
version header, session id, tool name and arguments), so tests can tell what was called and
over which era.
"""

import argparse
import json
import logging
import socket
import sys

import anyio
import uvicorn
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

HANDSHAKE_ERA = {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}

mcp = MCPServer("ingram-conformance")
REQUESTS: list[dict] = []


@mcp.tool()
def forecast(city: str) -> str:
    """The weather forecast for a city."""
    return f"Sunny in {city}, 21 degrees."


@mcp.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@mcp.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(reason)


async def respond(send, status: int, body: bytes, content_type: bytes = b"application/json", extra=()):
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def guarded(app, token: str, era: str):
    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        if scope["path"] == "/requests":
            return await respond(send, 200, json.dumps(REQUESTS).encode())
        if headers.get("authorization") != f"Bearer {token}":
            challenge = (b"www-authenticate", b'Bearer realm="conformance"')
            return await respond(send, 401, b'{"error":"unauthorized"}', extra=[challenge])
        if scope["method"] != "POST":
            return await app(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        version = headers.get("mcp-protocol-version")
        try:
            message = json.loads(body)
        except ValueError:
            message = {}
        params = message.get("params") or {}
        REQUESTS.append(
            {
                "method": message.get("method"),
                "protocol_version": version,
                "session_id": headers.get("mcp-session-id"),
                "tool": params.get("name") if message.get("method") == "tools/call" else None,
                "arguments": params.get("arguments") if message.get("method") == "tools/call" else None,
            }
        )
        if era == "legacy" and version is not None and version not in HANDSHAKE_ERA:
            error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Bad Request: Unsupported protocol version"}}
            return await respond(send, 400, json.dumps(error).encode())
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await app(scope, replay, send)

    return middleware


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--era", choices=["dual", "legacy"], default="dual")
    args = parser.parse_args()
    logging.getLogger("mcp").setLevel(logging.WARNING)
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = guarded(mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=security), args.token, args.era)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    anyio.run(server.serve, [sock])


if __name__ == "__main__":
    sys.exit(main())
