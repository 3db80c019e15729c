// The other direction: the Rust client (examples/client.rs) against a Node server that speaks
// wsmux through Session.accept (examples/node-server.mjs). The Rust client times echoes, pulls
// N bytes from `source` and pushes N to `discard`; both ends' counts must agree.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startNodeServer } from '../examples/node-server.mjs';
import { rustBinary } from '../tools/reference-server.mjs';

let server;
before(async () => {
  server = await startNodeServer();
});
after(() => server?.close());

function run(binary, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

test('the Rust client runs echo, source and discard against a Node server (Session.accept)', { timeout: 120_000 }, async () => {
  const bytes = 20_000_000;
  const { code, out, err } = await run(rustBinary('client'), ['--url', server.url, '--bytes', String(bytes), '--echoes', '500']);
  assert.equal(code, 0, `the Rust client failed:\n${out}\n${err}`);
  assert.match(out, /echo +500 round trips/);
  assert.match(out, new RegExp(`source +${bytes} bytes`), 'the Rust client received every byte of the Node source');
  assert.match(out, new RegExp(`discard +${bytes} bytes`));
  assert.equal(server.counts.sourced, bytes, 'the Node source sent');
  assert.equal(server.counts.discarded, bytes, 'the Node discard received every byte the Rust client sent');
  assert.equal(server.counts.echoed, Buffer.byteLength(Array.from({ length: 500 }, (_, i) => `ping ${i}`).join('')));
  console.log(out.trim().replace(/^/gm, '# '));
});
