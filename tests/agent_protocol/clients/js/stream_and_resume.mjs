// Driven by test_js_sdk.py: a streamed run and an interrupt answered with Command({resume}) through the
// official JavaScript client; prints one JSON object of what it saw.
import { Client } from "@langchain/langgraph-sdk";

const [apiUrl, apiKey] = process.argv.slice(2);
const client = new Client({ apiUrl, apiKey });

const thread = await client.threads.create();
const events = [];
let text = "";
for await (const chunk of client.runs.stream(thread.thread_id, "writer", {
  input: { messages: [{ role: "user", content: "my name is Ada" }] },
  streamMode: ["messages-tuple", "values"],
})) {
  events.push(chunk.event);
  if (chunk.event === "messages") text += chunk.data[0].content ?? "";
}

const gated = await client.threads.create();
const paused = await client.runs.wait(gated.thread_id, "gated", {
  input: { messages: [{ role: "user", content: 'use calculator {"expression": "6*7"}' }] },
});
const interrupts = paused.__interrupt__ ?? [];
const status = (await client.threads.get(gated.thread_id)).status;
let last = null;
for await (const chunk of client.runs.stream(gated.thread_id, "gated", {
  command: { resume: { decisions: [{ type: "approve" }] } },
  streamMode: "values",
})) {
  if (chunk.event === "values") last = chunk.data;
}
const tools = (last?.messages ?? []).filter((m) => m.type === "tool").map((m) => m.content);
console.log(JSON.stringify({ events, text, interrupts: interrupts.length, status, tools }));
