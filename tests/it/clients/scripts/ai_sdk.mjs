// The Vercel AI SDK against bitrouter (BASE_URL) through each of its providers that can reach
// it: @ai-sdk/openai on Responses and on Chat Completions, @ai-sdk/openai-compatible, and
// @ai-sdk/anthropic on Messages. Each streams a plain answer and a tool loop, sends an image,
// and asks for structured output.
import { generateText, streamText, tool, jsonSchema, stepCountIs, Output } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { createAnthropic } from "@ai-sdk/anthropic";

globalThis.AI_SDK_LOG_WARNINGS = false;
const base = `${process.env.BASE_URL}/v1`;
const openai = createOpenAI({ baseURL: base, apiKey: "unused" });
// The Codex backend supports JSON-schema output; without the flag the package asks for
// `json_object` only.
const compatible = createOpenAICompatible({
  name: "bitrouter", baseURL: base, apiKey: "unused", includeUsage: true, supportsStructuredOutputs: true,
});
const anthropic = createAnthropic({ baseURL: base, apiKey: "unused" });
const model = "gpt-6.1-sol";
const models = {
  "openai-responses": openai(model),
  // @ai-sdk/openai (4.0.126) refuses function tools with gpt-6.1-sol on Chat Completions before
  // sending anything: its model table says that API cannot combine them with the model's
  // reasoning. bitrouter's provider-prefixed id is not in the table, and bitrouter sends the
  // request on as Responses, where they combine.
  "openai-chat": openai.chat(`openai-codex:${model}`),
  "openai-compatible": compatible(model),
  anthropic: anthropic(model),
};
const pixel = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);
const wordSchema = jsonSchema({
  type: "object", properties: { word: { type: "string" } }, required: ["word"], additionalProperties: false,
});
const secretWord = tool({
  description: "The secret word",
  inputSchema: jsonSchema({ type: "object", properties: {}, additionalProperties: false }),
  execute: async () => "the secret word is banana",
});

for (const [name, m] of Object.entries(models)) {
  const plain = streamText({ model: m, prompt: "say hi", maxOutputTokens: 1000, maxRetries: 0 });
  let text = "";
  for await (const delta of plain.textStream) text += delta;
  console.log(`${name} plain: ${text} ${(await plain.usage).outputTokens}`);

  const loop = streamText({
    model: m, prompt: "What is the secret word?", tools: { secret_word: secretWord },
    stopWhen: stepCountIs(3), maxOutputTokens: 2000, maxRetries: 0,
    // Anthropic returns reasoning (thinking blocks) only when thinking is on.
    providerOptions: { anthropic: { thinking: { type: "enabled", budgetTokens: 1024 } } },
  });
  let final = "";
  for await (const delta of loop.textStream) final += delta;
  const steps = await loop.steps;
  const calls = steps.flatMap((step) => step.toolCalls.map((c) => c.toolName));
  console.log(`${name} tools: ${calls.join(",")} -> ${final}`);
  console.log(`${name} reasoning: ${steps[0].reasoningText ?? ""}`);

  const seen = await generateText({
    model: m, maxOutputTokens: 1000, maxRetries: 0,
    messages: [{ role: "user", content: [
      { type: "text", text: "What is in this image?" },
      { type: "image", image: pixel, mediaType: "image/png" },
    ] }],
  });
  console.log(`${name} image: ${seen.text}`);

  const structured = await generateText({
    model: m, maxOutputTokens: 1000, maxRetries: 0, prompt: "Say a word.",
    output: Output.object({ schema: wordSchema }),
  });
  console.log(`${name} object: ${JSON.stringify(structured.output)}`);
}
