// The real Codex CLI (`@openai/codex`, its shipped binary) against spool,
// in its default configuration apart from one [model_providers.spool]
// block: a plain turn, a shell tool call and its output, `exec resume`;
// and, with `supports_websockets = true` in that block, turns over
// WebSocket mode; and, as the built-in OpenAI provider pointed at spool,
// auto-compaction (a `compaction_trigger` request).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startUpstream, startSpool, textScript, callScript } from './harness.mjs';

const codexBin = join(dirname(fileURLToPath(import.meta.url)), 'node_modules/.bin/codex');
let upstream, spool, home, work;

before(async () => {
  upstream = await startUpstream();
  spool = await startSpool(upstream);
  home = mkdtempSync(join(tmpdir(), 'codex-home-'));
  work = mkdtempSync(join(tmpdir(), 'codex-work-'));
  writeFileSync(
    join(home, 'config.toml'),
    `model = "up-model"\nmodel_provider = "spool"\n\n[model_providers.spool]\nname = "spool"\n` +
      `base_url = "${spool.base}"\nwire_api = "responses"\n`,
  );
});

after(() => {
  spool?.close();
  upstream?.close();
});

/** Runs `codex exec --json …args`; its JSONL events (and its log lines in
 * `logs`, if given). Spawned, not run synchronously: the scripted upstream
 * lives in this process. */
async function codex(args, { codexHome = home, logs, extraEnv = {} } = {}) {
  const env = { ...process.env, CODEX_HOME: codexHome, ...extraEnv };
  if (logs) env.RUST_LOG = 'codex_api=debug';
  const proc = spawn(codexBin, ['exec', '--json', '--skip-git-repo-check', ...args], {
    cwd: work,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => proc.kill(), 90000);
  const code = await new Promise((r) => proc.on('close', r));
  clearTimeout(timer);
  assert.equal(code, 0, `codex exited ${code}: ${out.slice(-1500)} ${err.slice(-1500)}`);
  if (logs) logs.push(...err.split('\n'));
  return out
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l));
}

const messages = (events) =>
  events.filter((e) => e.type === 'item.completed' && e.item.type === 'agent_message').map((e) => e.item.text);

let threadId;

test('a plain turn, its tools offered as spool maps them', async () => {
  upstream.push(textScript('Hello from spool'));
  const events = await codex(['say hi']);
  assert.deepEqual(messages(events), ['Hello from spool']);
  assert.ok(events.some((e) => e.type === 'turn.completed'));
  threadId = events.find((e) => e.type === 'thread.started').thread_id;
  const offered = upstream.requests.at(-1).tools.map((t) => t.function.name);
  assert.ok(offered.includes('exec_command'), offered.join());
  assert.ok(offered.some((n) => n.startsWith('multi_agent_v1__')), offered.join());
});

test('a shell tool call runs in Codex and its output continues the turn', async () => {
  const before = upstream.requests.length;
  upstream.push(callScript('call_sh', 'exec_command', JSON.stringify({ cmd: 'echo spool-was-here' })));
  upstream.push(textScript('The command printed spool-was-here.'));
  const events = await codex(['run echo']);
  assert.deepEqual(messages(events), ['The command printed spool-was-here.']);
  const continued = upstream.requests.slice(before).at(-1).messages;
  const result = continued.find((m) => m.role === 'tool' && m.tool_call_id === 'call_sh');
  assert.ok(result, JSON.stringify(continued).slice(-2000));
  assert.match(result.content, /spool-was-here/);
});

test('exec resume continues the first session', async () => {
  assert.ok(threadId, 'the first test ran');
  upstream.push(textScript('Resumed.'));
  const events = await codex(['resume', threadId, 'and again']);
  assert.deepEqual(messages(events), ['Resumed.']);
  const history = JSON.stringify(upstream.requests.at(-1).messages);
  assert.match(history, /say hi/);
  assert.match(history, /Hello from spool/);
});

test('with supports_websockets, turns run over WebSocket mode', async () => {
  const wsHome = mkdtempSync(join(tmpdir(), 'codex-ws-home-'));
  writeFileSync(
    join(wsHome, 'config.toml'),
    `model = "up-model"\nmodel_provider = "spool"\n\n[model_providers.spool]\nname = "spool"\n` +
      `base_url = "${spool.base}"\nwire_api = "responses"\nsupports_websockets = true\n`,
  );
  const before = upstream.requests.length;
  upstream.push(callScript('call_ws', 'exec_command', JSON.stringify({ cmd: 'echo over-the-socket' })));
  upstream.push(textScript('Done over the socket.'));
  const logs = [];
  const events = await codex(['run it over ws'], { codexHome: wsHome, logs });
  assert.deepEqual(messages(events), ['Done over the socket.']);
  assert.ok(
    logs.some((l) => l.includes('successfully connected to Responses WebSocket')),
    'Codex used WebSocket mode',
  );
  const continued = upstream.requests.slice(before).at(-1).messages;
  const result = continued.find((m) => m.role === 'tool' && m.tool_call_id === 'call_ws');
  assert.match(result?.content ?? '', /over-the-socket/);
});

test('as the built-in OpenAI provider, auto-compaction compacts on spool and continues with the summary', async () => {
  // The built-in provider is the one Codex compacts remotely with: it sends
  // the history with a `compaction_trigger` and expects one sealed
  // `compaction` item back, which later turns send in its place.
  const openaiHome = mkdtempSync(join(tmpdir(), 'codex-openai-home-'));
  writeFileSync(
    join(openaiHome, 'config.toml'),
    `model = "up-model"\nmodel_auto_compact_token_limit = 5\nopenai_base_url = "${spool.base}"\n`,
  );
  const extraEnv = { CODEX_API_KEY: 'sk-unused' };
  const before = upstream.requests.length;
  upstream.push(textScript('Tea is Ann\'s favourite.'));
  const first = await codex(['I am Ann and I like tea'], { codexHome: openaiHome, extraEnv });
  assert.deepEqual(messages(first), ["Tea is Ann's favourite."]);
  const thread = first.find((e) => e.type === 'thread.started').thread_id;
  upstream.push(textScript('SUMMARY: Ann likes tea.'));
  upstream.push(textScript('You like tea.'));
  const second = await codex(['resume', thread, 'what do I like?'], { codexHome: openaiHome, extraEnv });
  assert.deepEqual(messages(second), ['You like tea.']);
  const asked = upstream.requests.slice(before);
  assert.equal(asked.length, 3, 'answer, summary, answer');
  assert.match(JSON.stringify(asked[1].messages), /Summarize the conversation/);
  const last = JSON.stringify(asked[2].messages);
  assert.match(last, /SUMMARY: Ann likes tea\./);
  assert.doesNotMatch(last, /Tea is Ann's favourite/, 'the compacted answer is gone');
});
