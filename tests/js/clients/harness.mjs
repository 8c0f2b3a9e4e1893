// A scripted OpenAI-compatible upstream, spool in front of it, and the
// test MCP server (tests/python/mcp_server.py, run by MCP_PYTHON): what the
// client tests drive. SPOOL_BIN names the spool binary.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const here = dirname(fileURLToPath(import.meta.url));

export function textScript(text) {
  return { deltas: [{ content: text }], finish: 'stop' };
}

export function callScript(id, name, args) {
  return {
    deltas: [{ tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: args } }] }],
    finish: 'tool_calls',
  };
}

export function errorScript(status, message) {
  return { status, body: { error: { message, type: 'server_error' } } };
}

/** The scripted upstream: each chat-completions request takes the next script. */
export async function startUpstream() {
  const scripts = [];
  const requests = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push(JSON.parse(body || '{}'));
      const script = scripts.shift() ?? textScript('Hello from upstream');
      if (script.status) {
        res.writeHead(script.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(script.body));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta, finish) =>
        `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm',
          choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      for (const delta of script.deltas) res.write(chunk(delta, null));
      res.write(chunk({}, script.finish));
      res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm',
        choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/v1`,
    push: (s) => scripts.push(s),
    requests,
    close: () => server.close(),
  };
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor(url, what) {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not start`);
}

/** The MCP test server over streamable HTTP; its URL. */
export async function startMcp() {
  const python = process.env.MCP_PYTHON ?? 'python3';
  const port = await freePort();
  const proc = spawn(python, [join(here, '../../python/mcp_server.py'), 'http', String(port)], {
    stdio: 'ignore',
  });
  await waitFor(`http://127.0.0.1:${port}/`, 'the MCP server');
  return { url: `http://127.0.0.1:${port}/mcp`, close: () => proc.kill() };
}

/** spool in front of `upstream`, allowing the MCP server at `mcpUrl`. */
export async function startSpool(upstream, mcpUrl) {
  const bin = process.env.SPOOL_BIN ?? join(here, '../../../target/debug/spool');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'spool-js-'));
  const proc = spawn(bin, ['serve'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      SPOOL_ADDR: `127.0.0.1:${port}`,
      SPOOL_DATABASE_URL: `sqlite://${dir}/spool.db`,
      SPOOL_UPSTREAM_URL: upstream.url,
      SPOOL_MCP_ALLOWED_URLS: mcpUrl ?? '',
      SPOOL_LOG: process.env.SPOOL_LOG ?? 'warn',
    },
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/healthz`, 'spool');
  return { base: `${base}/v1`, close: () => proc.kill() };
}
