// The OpenAI Node SDK against bitrouter (BASE_URL): Responses and Chat Completions, whole and
// streamed, an image on each, and a tool loop on each (the SDK's runTools helper for chat, by
// hand for Responses).
import OpenAI from "openai";

const client = new OpenAI({ baseURL: `${process.env.BASE_URL}/v1`, apiKey: "unused", maxRetries: 0 });
const model = "gpt-6.1-sol";
const secretWord = () => "the secret word is banana";
const parameters = { type: "object", properties: {}, additionalProperties: false };

const r = await client.responses.create({ model, input: "say hi" });
console.log(`responses plain: ${r.output_text}`);

const stream = client.responses.stream({ model, input: "say hi" });
let streamed = "";
for await (const event of stream) if (event.type === "response.output_text.delta") streamed += event.delta;
const final = await stream.finalResponse();
console.log(`responses stream: ${streamed} ${final.usage.output_tokens}`);

const c = await client.chat.completions.create({ model, messages: [{ role: "user", content: "say hi" }] });
console.log(`chat plain: ${c.choices[0].message.content} ${c.choices[0].finish_reason}`);

const chunks = await client.chat.completions.create({
  model, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "say hi" }],
});
let text = "", usage = null;
for await (const chunk of chunks) {
  text += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage.completion_tokens;
}
console.log(`chat stream: ${text} ${usage}`);

const pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
const seen = await client.chat.completions.create({ model, messages: [{ role: "user", content: [
  { type: "text", text: "What is in this image?" }, { type: "image_url", image_url: { url: pixel } },
] }] });
const looked = await client.responses.create({ model, input: [{ role: "user", content: [
  { type: "input_text", text: "What is in this image?" }, { type: "input_image", image_url: pixel, detail: "auto" },
] }] });
console.log(`images: ${seen.choices[0].message.content} / ${looked.output_text}`);

const runner = client.chat.completions.runTools({
  model, stream: true,
  messages: [{ role: "user", content: "What is the secret word?" }],
  tools: [{ type: "function", function: { name: "secret_word", description: "The secret word", parameters, function: secretWord, parse: JSON.parse } }],
});
console.log(`chat tools: ${await runner.finalContent()}`);

const tools = [{ type: "function", name: "secret_word", description: "The secret word", parameters, strict: true }];
let input = [{ role: "user", content: "What is the secret word?" }];
const first = await client.responses.stream({ model, input, tools }).finalResponse();
const call = first.output.find((item) => item.type === "function_call");
input = [...input, ...first.output, { type: "function_call_output", call_id: call.call_id, output: secretWord() }];
const answer = await client.responses.stream({ model, input, tools }).finalResponse();
console.log(`responses tools: ${call.name} -> ${answer.output_text}`);
