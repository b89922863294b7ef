"""The official openai Python SDK's Responses API against the Ingram server: history held on the server."""

import base64
import json
import os
import uuid

import openai
import pytest
from openai import OpenAI

client = OpenAI(base_url=os.environ["INGRAM_BASE_URL"], api_key=os.environ["INGRAM_TOKEN"], max_retries=0)
MODEL = "ingram/offline"
WEATHER = [{"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def fresh_user():
    return f"py-{uuid.uuid4()}"


def said(text):
    return f'Hello! I am the built-in offline model. You said: "{text}".'


def test_non_stream():
    response = client.responses.create(model=MODEL, user=fresh_user(), input="Say hello")
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == said("Say hello")
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response._request_id.startswith("req_")


def test_history_is_held_by_the_server():
    first = client.responses.create(model=MODEL, user=fresh_user(), input="First")
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input="Second")
    assert 'message 2 of our conversation; it began with "First"' in second.output_text
    assert second.previous_response_id == first.id


def test_a_conversation_names_the_thread():
    user, conversation = fresh_user(), f"conv-{uuid.uuid4()}"
    client.responses.create(model=MODEL, user=user, conversation=conversation, input="One")
    second = client.responses.create(model=MODEL, user=user, conversation=conversation, input="Two")
    assert "message 2 of our conversation" in second.output_text


def test_stream_events_and_the_helpers_final_response():
    events = list(client.responses.create(model=MODEL, user=fresh_user(), input="Stream it", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == said("Stream it")

    with client.responses.stream(model=MODEL, user=fresh_user(), input="Helper") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == said("Helper")


def test_function_call_round_trip():
    first = client.responses.create(model=MODEL, user=fresh_user(), input='/tool weather {"city":"Paris"}', tools=WEATHER)
    call = first.output[0]
    assert call.type == "function_call" and call.name == "weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, tools=WEATHER,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "21C"}],
    )
    assert second.output_text == "The tool weather returned: 21C"

    with client.responses.stream(model=MODEL, user=fresh_user(), input='/tool weather {"city":"Oslo"}', tools=WEATHER) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call"
    assert json.loads(final.output[0].arguments) == {"city": "Oslo"}


def test_image_and_file_inputs_reach_the_model():
    pixel = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    response = client.responses.create(model=MODEL, user=fresh_user(), input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Look"},
        {"type": "input_image", "image_url": "data:image/png;base64," + base64.b64encode(pixel).decode(), "detail": "auto"},
        {"type": "input_file", "filename": "notes.txt", "file_data": "data:text/plain;base64," + base64.b64encode(b"buy milk").decode()},
    ]}])
    assert response.output_text == said("Look") + (
        f" I see an image (image/png, {len(pixel)} bytes) and a file notes.txt (text/plain, 8 bytes).")


def test_errors_raise_the_matching_exception_with_our_code():
    with pytest.raises(openai.BadRequestError) as missing_key:
        client.responses.create(model="gpt-4o", user=fresh_user(), input="x")
    assert missing_key.value.code == "model_key_missing"
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model=MODEL, previous_response_id="resp_nope", input="x")
    assert unknown.value.code == "response_not_found"
