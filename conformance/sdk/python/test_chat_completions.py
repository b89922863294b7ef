"""The official openai Python SDK against the Ingram server: nothing changed but base_url and the key."""

import base64
import json
import os
import urllib.request
import uuid

import openai
import pytest
from openai import OpenAI

BASE_URL = os.environ["INGRAM_BASE_URL"]
TOKEN = os.environ["INGRAM_TOKEN"]
MODEL = "ingram/offline"
client = OpenAI(base_url=BASE_URL, api_key=TOKEN, max_retries=0)

WEATHER = [{
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}]


def fresh_user():
    return f"py-{uuid.uuid4()}"


def said(text):
    return f'Hello! I am the built-in offline model. You said: "{text}".'


PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_non_stream():
    completion = client.chat.completions.create(model=MODEL, user=fresh_user(), messages=[{"role": "user", "content": "Say hello"}])
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == said("Say hello")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert completion._request_id.startswith("req_")


def test_stream_with_usage():
    chunks = list(client.chat.completions.create(
        model=MODEL, user=fresh_user(), messages=[{"role": "user", "content": "Stream it"}],
        stream=True, stream_options={"include_usage": True},
    ))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == said("Stream it")
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_stream_helper_accumulates_the_final_completion():
    with client.chat.completions.stream(model=MODEL, user=fresh_user(), messages=[{"role": "user", "content": "Helper"}]) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == said("Helper")
    assert final.choices[0].message.content == said("Helper")
    assert final.choices[0].message.role == "assistant"
    assert final.choices[0].finish_reason == "stop"


def test_tool_call_round_trip():
    user = fresh_user()
    messages = [{"role": "user", "content": '/tool weather {"city":"Paris"}'}]
    first = client.chat.completions.create(model=MODEL, user=user, messages=messages, tools=WEATHER)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.type == "function" and call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "21C"})
    second = client.chat.completions.create(model=MODEL, user=user, messages=messages, tools=WEATHER)
    assert second.choices[0].message.content == "The tool weather returned: 21C"


def test_stream_helper_accumulates_tool_calls():
    with client.chat.completions.stream(
        model=MODEL, user=fresh_user(), messages=[{"role": "user", "content": '/tool weather {"city":"Oslo"}'}], tools=WEATHER,
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.id and call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert final.choices[0].finish_reason == "tool_calls"


def test_multi_turn_is_held_by_the_client():
    user = fresh_user()
    messages = [{"role": "user", "content": "First"}]
    first = client.chat.completions.create(model=MODEL, user=user, messages=messages)
    messages += [{"role": "assistant", "content": first.choices[0].message.content}, {"role": "user", "content": "Second"}]
    second = client.chat.completions.create(model=MODEL, user=user, messages=messages)
    assert 'message 2 of our conversation; it began with "First"' in second.choices[0].message.content
    alone = client.chat.completions.create(model=MODEL, user=user, messages=[{"role": "user", "content": "Third"}])
    assert "conversation" not in alone.choices[0].message.content


def test_errors_raise_the_matching_exception_with_our_code():
    with pytest.raises(openai.BadRequestError) as missing_key:
        client.chat.completions.create(model="gpt-4o", user=fresh_user(), messages=[{"role": "user", "content": "x"}])
    assert missing_key.value.code == "model_key_missing"
    assert missing_key.value.request_id.startswith("req_")

    with pytest.raises(openai.BadRequestError) as no_smith:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert no_smith.value.code == "smith_required"

    wrong = OpenAI(base_url=BASE_URL, api_key="tha_live_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        wrong.chat.completions.create(model=MODEL, user=fresh_user(), messages=[{"role": "user", "content": "x"}])
    assert unauthenticated.value.code == "invalid_token"
    assert unauthenticated.value.type == "authentication_error"


def test_image_and_file_parts_reach_the_model_and_are_stored():
    image = "data:image/png;base64," + base64.b64encode(PIXEL).decode()
    notes = base64.b64encode(b"buy milk").decode()
    completion = client.chat.completions.create(model=MODEL, user=fresh_user(), messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
        {"type": "file", "file": {"file_data": notes, "filename": "notes.txt"}},
    ]}])
    assert completion.choices[0].message.content == said("What is this?") + (
        f" I see an image (image/png, {len(PIXEL)} bytes) and a file notes.txt (text/plain, 8 bytes).")
    # The run names the stored image, which the files endpoints serve as it came in.
    run_id = completion.id.removeprefix("chatcmpl-")
    run = next(r for r in _get("/runs?limit=100")["data"] if r["id"] == run_id)
    file_id = run["input"][0]["content"][1]["image_url"]["file_id"]
    assert _get(f"/files/{file_id}")["bytes"] == len(PIXEL)
    assert client.files.content(file_id).content == PIXEL


def _get(path):
    request = urllib.request.Request(BASE_URL + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def _post(path, body):
    request = urllib.request.Request(
        BASE_URL + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_a_smith_token_is_the_smith():
    smith = _post("/smiths", {"external_id": fresh_user()})
    token = _post("/tenant/tokens", {"kind": "smith", "smith_id": smith["id"]})["token"]
    as_smith = OpenAI(base_url=BASE_URL, api_key=token, max_retries=0)
    completion = as_smith.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "from a browser"}])
    assert completion.choices[0].message.content == said("from a browser")
