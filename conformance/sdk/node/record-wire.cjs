// Records the requests the pinned openai Node SDK and Vercel AI SDK send, into
// conformance/fixtures/{openai-node,vercel-ai}-wire.json. A local recorder answers every call
// with a 400 envelope, so nothing leaves the machine and no client retries.
// Run: NODE_PATH=target/sdk/node/node_modules node conformance/sdk/node/record-wire.cjs
const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");
const OpenAI = require("openai");
const { generateText, streamText } = require("ai");
const { createOpenAI } = require("@ai-sdk/openai");

const recorded = [];
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    recorded.push({ method: req.method, path: req.url, body: JSON.parse(body) });
    res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: "recorded", type: "invalid_request_error", param: null, code: "recorded" } }));
  });
});

async function record(name, call) {
  try {
    await call();
  } catch {}
  return { name, ...recorded.pop() };
}

async function main() {
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseURL = `http://127.0.0.1:${server.address().port}/v1`;
  const model = "ingram/offline";
  const user = "sdk-wire";
  const openai = new OpenAI({ baseURL, apiKey: "recorder", maxRetries: 0 });
  const pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
  const weather = { type: "function", function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } } };
  const node = [
    await record("chat non-stream", () => openai.chat.completions.create({ model, user, messages: [{ role: "user", content: "Say hello" }] })),
    await record("chat stream", async () => {
      const stream = await openai.chat.completions.create({ model, user, messages: [{ role: "user", content: "Stream it" }], stream: true, stream_options: { include_usage: true } });
      for await (const _ of stream) {}
    }),
    await record("chat tool call", () => openai.chat.completions.create({ model, user, tools: [weather], messages: [{ role: "user", content: '/tool weather {"city":"Paris"}' }] })),
    await record("chat image", () => openai.chat.completions.create({ model, user, messages: [{ role: "user", content: [
      { type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: `data:image/png;base64,${pixel}` } }] }] })),
    await record("responses non-stream", () => openai.responses.create({ model, user, input: "Say hello" })),
    await record("responses stream", async () => {
      const stream = await openai.responses.create({ model, user, input: "Stream it", stream: true });
      for await (const _ of stream) {}
    }),
  ];
  const ingram = createOpenAI({ baseURL, apiKey: "recorder" });
  const vercel = [];
  for (const [name, m] of [["responses", ingram(model)], ["chat", ingram.chat(model)]]) {
    vercel.push(await record(`${name} generateText`, () => generateText({ model: m, prompt: "Say hello", maxRetries: 0, providerOptions: { openai: { user } } })));
    vercel.push(await record(`${name} streamText`, async () => {
      const result = streamText({ model: m, prompt: "Stream it", maxRetries: 0, providerOptions: { openai: { user } }, onError: () => {} });
      for await (const _ of result.fullStream) {}
    }));
    const image = [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "file", data: Buffer.from(pixel, "base64"), mediaType: "image/png" }] }];
    vercel.push(await record(`${name} image`, () => generateText({ model: m, messages: image, maxRetries: 0, providerOptions: { openai: { user } } })));
  }
  server.close();
  const fixtures = path.resolve(__dirname, "../../fixtures");
  const pins = require("./package.json").dependencies;
  const version = (name) => pins[name];
  fs.writeFileSync(path.join(fixtures, "openai-node-wire.json"), JSON.stringify({ sdk: `openai-node ${version("openai")}`, exchanges: node }, null, 2) + "\n");
  fs.writeFileSync(path.join(fixtures, "vercel-ai-wire.json"), JSON.stringify({ sdk: `ai ${version("ai")} + @ai-sdk/openai ${version("@ai-sdk/openai")}`, exchanges: vercel }, null, 2) + "\n");
  console.log(`recorded ${node.length} openai-node and ${vercel.length} Vercel requests`);
}

main();
