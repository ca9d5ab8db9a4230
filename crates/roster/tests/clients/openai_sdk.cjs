// The official `openai` npm package, unmodified, against a running Roster.
// Run by `e2e_openai.rs`: argv = node_modules dir, base URL, API key, agent.
// Same fake model as openai_sdk.py. Prints "ok" last, or throws.
const path = require("node:path");
const assert = require("node:assert/strict");

const [modules, url, key, agent] = process.argv.slice(2);
const { default: OpenAI, NotFoundError, BadRequestError } = require(path.join(modules, "openai"));
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
const WEATHER = [{
  type: "function", name: "get_weather", strict: false,
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}];

async function rejects(kind, call) {
  try { await call(); } catch (e) { assert.ok(e instanceof kind, `${e}`); return e; }
  throw new Error(`expected ${kind.name}`);
}

(async () => {
  const first = await client.responses.create({ model: agent, input: "hello node" });
  assert.equal(first.output_text, "echo: hello node");
  const next = await client.responses.create({ model: agent, input: "what did I say", previous_response_id: first.id });
  assert.equal(next.output_text, "you said: hello node | what did I say");
  await rejects(NotFoundError, () => client.responses.create({ model: "no-such-agent", input: "x" }));

  const events = [];
  for await (const e of await client.responses.create({ model: agent, input: "stream node", stream: true })) events.push(e);
  assert.equal(events[0].type, "response.created");
  assert.equal(events.at(-1).type, "response.completed");
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  assert.equal(events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""), "echo: stream node");

  const stream = client.responses.stream({ model: agent, input: "helper node" });
  let text = "";
  stream.on("response.output_text.delta", (e) => { text += e.delta; });
  const final = await stream.finalResponse();
  assert.equal(text, "echo: helper node");
  assert.equal(final.output_text, "echo: helper node");

  const resumed = [];
  for await (const e of await client.responses.retrieve(events.at(-1).response.id, { stream: true, starting_after: 3 })) resumed.push(e);
  assert.deepEqual(resumed.map((e) => e.sequence_number), events.slice(4).map((e) => e.sequence_number));

  const asked = await client.responses.create({ model: agent, input: "weather in Oslo?", tools: WEATHER });
  const call = asked.output.find((o) => o.type === "function_call");
  assert.equal(call.name, "get_weather");
  const answered = await client.responses.create({
    model: agent, previous_response_id: asked.id, tools: WEATHER,
    input: [{ type: "function_call_output", call_id: call.call_id, output: "drizzle" }],
  });
  assert.equal(answered.output_text, "It rains: drizzle");

  const conversation = await client.conversations.create({ metadata: { from: "node" } });
  await client.responses.create({ model: agent, input: "first", conversation: conversation.id });
  await client.responses.create({ model: agent, input: "what did I say", conversation: conversation.id });
  const seen = [];
  for await (const item of client.conversations.items.list(conversation.id, { limit: 1 })) seen.push(item.content[0].text);
  assert.deepEqual(seen, ["you said: first | what did I say", "what did I say", "echo: first", "first"]);

  const slow = await client.responses.create({ model: agent, input: "slow", background: true });
  const cancelled = await client.responses.cancel(slow.id);
  assert.equal(cancelled.status, "cancelled");

  const chat = await client.chat.completions.create({ model: agent, messages: [{ role: "user", content: "hi node" }] });
  assert.equal(chat.choices[0].message.content, "echo: hi node");
  let chunks = "";
  for await (const c of await client.chat.completions.create({ model: agent, stream: true, messages: [{ role: "user", content: "node stream" }] })) {
    chunks += c.choices[0]?.delta?.content ?? "";
  }
  assert.equal(chunks, "echo: node stream");
  await rejects(BadRequestError, () => client.responses.create({ model: agent, input: [{ role: "robot", content: "x" }] }));
  console.log("ok");
})().catch((e) => { console.error(e); process.exit(1); });
