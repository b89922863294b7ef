"""Records the requests the pinned openai Python SDK sends, into conformance/fixtures/openai-sdk-wire.json.

Run with the SDK's virtualenv: target/sdk/python/bin/python conformance/sdk/python/record_wire.py
A local recorder answers every call with a 400 envelope, so nothing leaves the machine and the
SDK does not retry; only what it sent is kept.
"""

import json
import pathlib
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import openai
from openai import OpenAI

recorded = []


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        recorded.append({"method": "POST", "path": self.path, "body": body})
        reply = json.dumps({"error": {"message": "recorded", "type": "invalid_request_error", "param": None, "code": "recorded"}}).encode()
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Recorder)
threading.Thread(target=server.serve_forever, daemon=True).start()
client = OpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="recorder", max_retries=0)
MODEL, USER = "ingram/offline", "sdk-wire"
CHAT_TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
NOTES = "YnV5IG1pbGs="  # "buy milk"
RESPONSE_TOOLS = [{"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]

calls = {
    "chat non-stream": lambda: client.chat.completions.create(
        model=MODEL, user=USER, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]),
    "chat stream with usage": lambda: client.chat.completions.create(
        model=MODEL, user=USER, messages=[{"role": "user", "content": "Stream it"}], stream=True, stream_options={"include_usage": True}),
    "chat tool call": lambda: client.chat.completions.create(
        model=MODEL, user=USER, tools=CHAT_TOOLS, tool_choice="auto", messages=[{"role": "user", "content": '/tool weather {"city":"Paris"}'}]),
    "chat tool result": lambda: client.chat.completions.create(model=MODEL, user=USER, tools=CHAT_TOOLS, messages=[
        {"role": "user", "content": '/tool weather {"city":"Paris"}'},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21C"}]),
    "chat image and file": lambda: client.chat.completions.create(model=MODEL, user=USER, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}},
        {"type": "file", "file": {"file_data": NOTES, "filename": "notes.txt"}}]}]),
    "responses non-stream": lambda: client.responses.create(model=MODEL, user=USER, input="Say hello", instructions="Be brief."),
    "responses stream": lambda: client.responses.create(model=MODEL, user=USER, input=[{"role": "user", "content": "Stream it"}], stream=True),
    "responses tool call": lambda: client.responses.create(model=MODEL, user=USER, tools=RESPONSE_TOOLS, input='/tool weather {"city":"Oslo"}'),
    "responses image and file": lambda: client.responses.create(model=MODEL, user=USER, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": PIXEL, "detail": "auto"},
        {"type": "input_file", "file_data": "data:text/plain;base64," + NOTES, "filename": "notes.txt"}]}]),
}
fixtures = []
for name, call in calls.items():
    try:
        call()
    except openai.BadRequestError:
        pass
    fixtures.append({"name": name, **recorded.pop()})

out = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "openai-sdk-wire.json"
out.write_text(json.dumps({"sdk": f"openai-python {openai.__version__}", "exchanges": fixtures}, indent=2) + "\n")
print(f"recorded {len(fixtures)} requests into {out}")
