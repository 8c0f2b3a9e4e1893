// The Vercel AI SDK (`ai`, `@ai-sdk/openai` responses model) against
// spool: its strict schemas must accept every object spool sends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, streamText, tool, jsonSchema, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { startUpstream, startSpool, startMcp, textScript, callScript, errorScript } from './harness.mjs';

let upstream, spool, mcp, model, openai;

before(async () => {
  upstream = await startUpstream();
  mcp = await startMcp();
  spool = await startSpool(upstream, mcp.url);
  openai = createOpenAI({ baseURL: spool.base, apiKey: 'unused' });
  model = openai.responses('up-model');
});

after(() => {
  spool?.close();
  mcp?.close();
  upstream?.close();
});

test('generateText reads a plain answer', async () => {
  upstream.push(textScript('Hi there'));
  const result = await generateText({ model, prompt: 'Say hi' });
  assert.equal(result.text, 'Hi there');
  assert.equal(result.finishReason, 'stop');
});

test('streamText streams the answer', async () => {
  upstream.push({ deltas: [{ content: 'one ' }, { content: 'two' }], finish: 'stop' });
  const result = streamText({ model, prompt: 'Count' });
  let text = '';
  for await (const part of result.textStream) text += part;
  assert.equal(text, 'one two');
  assert.equal(await result.finishReason, 'stop');
});

test('a function tool is called and its result continues the run', async () => {
  upstream.push(callScript('call_w', 'weather', '{"city":"Oslo"}'));
  upstream.push(textScript('It is cold in Oslo.'));
  const seen = [];
  const result = await generateText({
    model,
    prompt: 'Weather in Oslo?',
    stopWhen: stepCountIs(3),
    tools: {
      weather: tool({
        description: 'The weather in a city',
        inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
        execute: async ({ city }) => {
          seen.push(city);
          return `cold in ${city}`;
        },
      }),
    },
  });
  assert.deepEqual(seen, ['Oslo']);
  assert.equal(result.text, 'It is cold in Oslo.');
  const last = upstream.requests.at(-1).messages;
  assert.ok(last.some((m) => m.role === 'tool' && m.content.includes('cold in Oslo')), JSON.stringify(last));
});

test('an MCP tool runs inside spool and the SDK reads its items', async () => {
  upstream.push(callScript('call_add', 'add', '{"a":2,"b":3}'));
  upstream.push(textScript('2 + 3 = 5'));
  const result = await generateText({
    model,
    prompt: 'Add 2 and 3',
    tools: { calc: openai.tools.mcp({ serverLabel: 'calc', serverUrl: mcp.url, requireApproval: 'never' }) },
  });
  assert.equal(result.text, '2 + 3 = 5');
  const toolResults = result.steps.flatMap((s) => s.content).filter((c) => c.type === 'tool-result');
  assert.ok(toolResults.some((r) => JSON.stringify(r).includes('"5"')), JSON.stringify(toolResults));
});

test('a failed run is an error with its message', async () => {
  upstream.push(errorScript(500, 'model crashed'));
  await assert.rejects(generateText({ model, prompt: 'x', maxRetries: 0 }), (e) => {
    assert.match(String(e.message ?? e), /model crashed/);
    return true;
  });
});
