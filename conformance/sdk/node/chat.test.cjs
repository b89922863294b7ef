// The official openai Node SDK against the Ingram server: nothing changed but baseURL and the key.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { randomUUID } = require("node:crypto");
const OpenAI = require("openai");

const baseURL = process.env.INGRAM_BASE_URL;
const apiKey = process.env.INGRAM_TOKEN;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const model = "ingram/offline";
const weather = [{ type: "function", function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
const freshUser = () => `node-${randomUUID()}`;
const said = (text) => `Hello! I am the built-in offline model. You said: "${text}".`;

test("non-stream", async () => {
  const completion = await client.chat.completions.create({ model, user: freshUser(), messages: [{ role: "user", content: "Say hello" }] });
  assert.equal(completion.object, "chat.completion");
  assert.equal(completion.choices[0].message.content, said("Say hello"));
  assert.equal(completion.choices[0].finish_reason, "stop");
  assert.match(completion._request_id, /^req_/);
});

test("stream with usage", async () => {
  const stream = await client.chat.completions.create({
    model, user: freshUser(), messages: [{ role: "user", content: "Stream it" }], stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let usage;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, said("Stream it"));
  assert.ok(usage.total_tokens > 0);
});

test("stream helper accumulates the final completion", async () => {
  const stream = client.chat.completions.stream({ model, user: freshUser(), messages: [{ role: "user", content: "Helper" }] });
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].message.content, said("Helper"));
  assert.equal(final.choices[0].message.role, "assistant");
});

test("tool call round trip, and the stream helper accumulates tool calls", async () => {
  const user = freshUser();
  const messages = [{ role: "user", content: '/tool weather {"city":"Paris"}' }];
  const first = await client.chat.completions.create({ model, user, messages, tools: weather });
  assert.equal(first.choices[0].finish_reason, "tool_calls");
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "weather");
  messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "21C" });
  const second = await client.chat.completions.create({ model, user, messages, tools: weather });
  assert.equal(second.choices[0].message.content, "The tool weather returned: 21C");

  const stream = client.chat.completions.stream({ model, user, messages: [{ role: "user", content: '/tool weather {"city":"Oslo"}' }], tools: weather });
  const final = await stream.finalChatCompletion();
  assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { city: "Oslo" });
});

test("multi-turn is held by the client", async () => {
  const user = freshUser();
  const first = await client.chat.completions.create({ model, user, messages: [{ role: "user", content: "First" }] });
  const second = await client.chat.completions.create({
    model, user,
    messages: [{ role: "user", content: "First" }, { role: "assistant", content: first.choices[0].message.content }, { role: "user", content: "Second" }],
  });
  assert.match(second.choices[0].message.content, /message 2 of our conversation; it began with "First"/);
});

test("image and file parts reach the model and are stored", async () => {
  const pixel = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");
  const completion = await client.chat.completions.create({
    model, user: freshUser(), messages: [{ role: "user", content: [
      { type: "text", text: "What is this?" },
      { type: "image_url", image_url: { url: `data:image/png;base64,${pixel.toString("base64")}` } },
      { type: "file", file: { file_data: Buffer.from("buy milk").toString("base64"), filename: "notes.txt" } },
    ] }],
  });
  assert.equal(completion.choices[0].message.content,
    `${said("What is this?")} I see an image (image/png, ${pixel.length} bytes) and a file notes.txt (text/plain, 8 bytes).`);
  const runs = await (await fetch(`${baseURL}/runs?limit=100`, { headers: { authorization: `Bearer ${apiKey}` } })).json();
  const run = runs.data.find((r) => r.id === completion.id.replace("chatcmpl-", ""));
  const fileId = run.input[0].content[1].image_url.file_id;
  const content = await client.files.content(fileId);
  assert.deepEqual(Buffer.from(await content.arrayBuffer()), pixel);
});

test("errors raise the matching exception with our code", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-4o", user: freshUser(), messages: [{ role: "user", content: "x" }] }),
    (err) => err instanceof OpenAI.BadRequestError && err.code === "model_key_missing" && /^req_/.test(err.requestID),
  );
  const wrong = new OpenAI({ baseURL, apiKey: "tha_live_wrong", maxRetries: 0 });
  await assert.rejects(
    wrong.chat.completions.create({ model, user: freshUser(), messages: [{ role: "user", content: "x" }] }),
    (err) => err instanceof OpenAI.AuthenticationError && err.code === "invalid_token",
  );
});
