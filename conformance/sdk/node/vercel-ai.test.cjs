// The Vercel AI SDK (`ai` + `@ai-sdk/openai`) against the Ingram server, through both its
// default Responses model and `.chat()`. A smith token is the smith, so no `user` is needed.
const { test, before } = require("node:test");
const assert = require("node:assert/strict");
const { randomUUID } = require("node:crypto");
const { generateText, streamText, tool, stepCountIs, APICallError } = require("ai");
const { createOpenAI } = require("@ai-sdk/openai");
const { z } = require("zod");

const baseURL = process.env.INGRAM_BASE_URL;
const said = (text) => `Hello! I am the built-in offline model. You said: "${text}".`;
let ingram;

async function post(path, body) {
  const response = await fetch(baseURL + path, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.INGRAM_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.json();
}

before(async () => {
  const smith = await post("/smiths", { external_id: `vercel-${randomUUID()}` });
  const token = await post("/tenant/tokens", { kind: "smith", smith_id: smith.id });
  ingram = createOpenAI({ baseURL, apiKey: token.token });
});

const models = () => [["responses", ingram("ingram/offline")], ["chat", ingram.chat("ingram/offline")]];

test("generateText", async () => {
  for (const [name, model] of models()) {
    const result = await generateText({ model, prompt: "Say hello" });
    assert.equal(result.text, said("Say hello"), name);
    assert.ok(result.usage.inputTokens > 0 && result.usage.outputTokens > 0, name);
    assert.match(result.response.headers["x-request-id"], /^req_/, name);
  }
});

test("multi-turn held by the SDK's messages", async () => {
  for (const [name, model] of models()) {
    const first = await generateText({ model, prompt: "First" });
    const second = await generateText({
      model,
      messages: [{ role: "user", content: "First" }, ...first.response.messages, { role: "user", content: "Second" }],
    });
    assert.match(second.text, /message 2 of our conversation; it began with "First"/, name);
  }
});

test("an image part", async () => {
  const pixel = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");
  for (const [name, model] of models()) {
    const result = await generateText({
      model,
      messages: [{ role: "user", content: [{ type: "text", text: "Look" }, { type: "file", data: pixel, mediaType: "image/png" }] }],
    });
    assert.equal(result.text, `${said("Look")} I see an image (image/png, ${pixel.length} bytes).`, name);
  }
});

test("streamText", async () => {
  for (const [name, model] of models()) {
    const result = streamText({ model, prompt: "Stream it" });
    let text = "";
    for await (const delta of result.textStream) text += delta;
    assert.equal(text, said("Stream it"), name);
    assert.equal(await result.text, said("Stream it"), `${name}: the accumulated text`);
    assert.equal(await result.finishReason, "stop", name);
  }
});

test("a tool round trip the SDK runs itself", async () => {
  for (const [name, model] of models()) {
    const result = await generateText({
      model,
      prompt: '/tool weather {"city":"Paris"}',
      tools: { weather: tool({ description: "Weather", inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => `21C in ${city}` }) },
      stopWhen: stepCountIs(3),
    });
    assert.equal(result.steps[0].toolCalls[0].toolName, "weather", name);
    assert.match(result.text, /^The tool weather returned: .*21C in Paris/, name);
  }
});

test("errors carry our status and code", async () => {
  for (const [name] of models()) {
    const model = name === "chat" ? ingram.chat("gpt-4o") : ingram("gpt-4o");
    await assert.rejects(generateText({ model, prompt: "x", maxRetries: 0 }), (err) => {
      assert.ok(APICallError.isInstance(err), `${name}: ${err}`);
      assert.equal(err.statusCode, 400, name);
      assert.match(err.responseBody, /model_key_missing/, name);
      return true;
    });
  }
});
