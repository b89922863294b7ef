// The official openai Node SDK's Responses API against the Ingram server.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { randomUUID } = require("node:crypto");
const OpenAI = require("openai");

const client = new OpenAI({ baseURL: process.env.INGRAM_BASE_URL, apiKey: process.env.INGRAM_TOKEN, maxRetries: 0 });
const model = "ingram/offline";
const freshUser = () => `node-${randomUUID()}`;
const said = (text) => `Hello! I am the built-in offline model. You said: "${text}".`;
const weather = [{ type: "function", name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }];

test("non-stream and server-held history", async () => {
  const first = await client.responses.create({ model, user: freshUser(), input: "First" });
  assert.equal(first.output_text, said("First"));
  assert.match(first._request_id, /^req_/);
  const second = await client.responses.create({ model, previous_response_id: first.id, input: "Second" });
  assert.match(second.output_text, /message 2 of our conversation; it began with "First"/);
});

test("stream events", async () => {
  const stream = await client.responses.create({ model, user: freshUser(), input: "Stream it", stream: true });
  const events = [];
  for await (const event of stream) events.push(event);
  assert.equal(events[0].type, "response.created");
  assert.equal(events.at(-1).type, "response.completed");
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const text = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
  assert.equal(text, said("Stream it"));
});

test("image input", async () => {
  const pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
  const response = await client.responses.create({
    model, user: freshUser(),
    input: [{ role: "user", content: [{ type: "input_text", text: "Look" }, { type: "input_image", image_url: `data:image/png;base64,${pixel}`, detail: "auto" }] }],
  });
  assert.equal(response.output_text, `${said("Look")} I see an image (image/png, ${Buffer.from(pixel, "base64").length} bytes).`);
});

test("stream helper's final response", async () => {
  const stream = client.responses.stream({ model, user: freshUser(), input: "Helper" });
  const final = await stream.finalResponse();
  assert.equal(final.output_text, said("Helper"));
});

test("function call round trip", async () => {
  const first = await client.responses.create({ model, user: freshUser(), input: '/tool weather {"city":"Paris"}', tools: weather });
  const call = first.output[0];
  assert.equal(call.type, "function_call");
  const second = await client.responses.create({
    model, previous_response_id: first.id, tools: weather,
    input: [{ type: "function_call_output", call_id: call.call_id, output: "21C" }],
  });
  assert.equal(second.output_text, "The tool weather returned: 21C");
});

test("errors raise the matching exception with our code", async () => {
  await assert.rejects(
    client.responses.create({ model: "gpt-4o", user: freshUser(), input: "x" }),
    (err) => err instanceof OpenAI.BadRequestError && err.code === "model_key_missing" && /^req_/.test(err.requestID),
  );
});
