// The official openai Node SDK against aiproxy in Envoy. Driven by
// tests/e2e/envoy/test_envoy_node_sdk.py, which passes a JSON job on argv[2]:
//   {"baseURL", "apiKey", "task": "embeddings" | "stream_tool" | "zod_parse" | "zod_tool",
//    "model", "input"?, "prompt"?}
// and reads one JSON result from stdout.
import OpenAI from 'openai';
import { zodFunction, zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';

const job = JSON.parse(process.argv[2]);
const client = new OpenAI({ baseURL: job.baseURL, apiKey: job.apiKey, maxRetries: 0, timeout: 20000 });

async function embeddings() {
  // No encoding_format: the SDK asks for base64 and decodes it into float arrays.
  const res = await client.embeddings.create({ model: job.model, input: job.input });
  const floats = await client.embeddings.create({ model: job.model, input: job.input, encoding_format: 'float' });
  return {
    vectors: res.data.map((d) => Array.from(d.embedding)),
    floatVectors: floats.data.map((d) => Array.from(d.embedding)),
  };
}

async function streamTool() {
  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Current weather in a city.',
        strict: true,
        parameters: {
          type: 'object',
          properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
          required: ['city', 'unit'],
          additionalProperties: false,
        },
      },
    },
  ];
  const runner = client.chat.completions.stream({
    model: job.model,
    messages: [{ role: 'user', content: job.prompt }],
    tools,
    stream_options: { include_usage: true },
  });
  const pieces = [];
  const chunks = [];
  runner.on('chunk', (chunk) => {
    chunks.push(chunk);
    for (const choice of chunk.choices) for (const tc of choice.delta.tool_calls ?? []) pieces.push(tc);
  });
  const final = await runner.finalChatCompletion();
  const call = final.choices[0].message.tool_calls[0];
  return {
    pieces,
    finishReason: final.choices[0].finish_reason,
    call: { id: call.id, name: call.function.name, arguments: JSON.parse(call.function.arguments) },
    lastChunk: chunks[chunks.length - 1],
  };
}

// The same shapes as the pydantic models of test_envoy_agents.py.
const Answer = z.object({ title: z.string(), score: z.number().int(), tags: z.array(z.string()) });
const GetWeather = z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']) });

async function zodParse() {
  // zodResponseFormat: a strict json_schema response_format; parse() validates the reply with zod.
  const completion = await client.chat.completions.parse({
    model: job.model,
    messages: [{ role: 'user', content: job.prompt }],
    response_format: zodResponseFormat(Answer, 'answer'),
  });
  const message = completion.choices[0].message;
  return { parsed: message.parsed, content: message.content, finishReason: completion.choices[0].finish_reason };
}

async function zodTool() {
  // zodFunction: a strict function tool; parse() fills parsed_arguments from the zod schema.
  const completion = await client.chat.completions.parse({
    model: job.model,
    messages: [{ role: 'user', content: job.prompt }],
    tools: [zodFunction({ name: 'get_weather', description: 'Current weather in a city.', parameters: GetWeather })],
  });
  const call = completion.choices[0].message.tool_calls[0];
  return {
    finishReason: completion.choices[0].finish_reason,
    id: call.id,
    name: call.function.name,
    parsedArguments: call.function.parsed_arguments,
  };
}

const tasks = { embeddings, stream_tool: streamTool, zod_parse: zodParse, zod_tool: zodTool };
try {
  const result = await tasks[job.task]();
  process.stdout.write(JSON.stringify({ ok: true, result }));
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack ? err.stack : err) }));
  process.exitCode = 1;
}
