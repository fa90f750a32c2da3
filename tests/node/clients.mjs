// The official `openai` npm package against a running Tiergate: chat, a chat stream, the
// Responses API (JSON and stream). Reads TIERGATE_BASE_URL and TIERGATE_KEY; prints one JSON
// object with what it saw, for tests/integration/test_node_client.py to check.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.TIERGATE_BASE_URL,
  apiKey: process.env.TIERGATE_KEY,
  maxRetries: 0,
});
const messages = [{ role: "user", content: "What is the capital of France?" }];

const chat = await client.chat.completions.create({ model: "fast", messages });

let streamed = "";
let usage = null;
const stream = await client.chat.completions.create({
  model: "fast",
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}

const response = await client.responses.create({
  model: "fast",
  input: "What is the capital of France?",
  instructions: "Be brief.",
});
const again = await client.responses.retrieve(response.id);

const kinds = [];
let deltas = "";
let completed = null;
const events = await client.responses.create({ model: "fast", input: "Count to five", stream: true });
for await (const event of events) {
  kinds.push(event.type);
  if (event.type === "response.output_text.delta") deltas += event.delta;
  if (event.type === "response.completed") completed = event.response;
}

console.log(
  JSON.stringify({
    chat: chat.choices[0].message.content,
    chat_stream: streamed,
    chat_stream_usage: usage,
    response_id: response.id,
    response_text: response.output_text,
    response_usage: response.usage,
    retrieved_text: again.output_text,
    stream_kinds: kinds,
    stream_text: deltas,
    stream_completed_text: completed?.output_text ?? completed?.output?.[0]?.content?.[0]?.text,
  }),
);
