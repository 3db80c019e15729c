// RPC against the Rust reference server (PROTOCOL.md section 14): every interop method with
// the raw codec, the JSON methods with the JSON codec, and interop.json.callback in each
// shape, served by a Router on this (connecting) end. The server is started by
// tools/reference-server.mjs (built with cargo when missing).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startReferenceServer } from '../tools/reference-server.mjs';
import { until } from './harness.mjs';
import {
  RpcClient,
  Router,
  RpcError,
  StatusCode,
  connect,
  encodeCallHeader,
  encodeRpcMessage,
  decodeRpcMessage,
  raw,
  json,
  bytes,
  str,
  rejection,
  aborted,
} from './rpc-helpers.mjs';

let server;
let session;
let client; // raw values
let jsonClient;
/** What the interop.peer.* handlers saw, by kind. */
const peerSeen = {};

/** The client's side of interop.json.callback: interop.peer.K with JSON values. */
const peers = new Router()
  .unary('interop.peer.unary', async (req, ctx) => {
    peerSeen.unary = { req, timeoutMs: ctx.timeoutMs, headers: ctx.headers.size };
    if (req?.fail) throw new RpcError(req.fail, req.text ?? '');
    if (req?.hang) {
      peerSeen.hangReason = await aborted(ctx.signal);
      return 'too late';
    }
    return { echo: req };
  })
  .serverStreaming('interop.peer.server_streaming', async function* (n, ctx) {
    peerSeen.server_streaming = { timeoutMs: ctx.timeoutMs };
    for (let i = 0; i < n; i++) yield i;
  })
  .clientStreaming('interop.peer.client_streaming', async (requests) => {
    let sum = 0;
    for await (const r of requests) sum += r;
    return sum;
  })
  .bidi('interop.peer.bidi', async function* (requests) {
    for await (const r of requests) yield r.toUpperCase();
  });

before(async () => {
  server = await startReferenceServer();
  session = await connect(server.url, { WebSocket });
  void peers.serve(session);
  client = new RpcClient(session, { codec: raw });
  jsonClient = new RpcClient(session);
});

after(async () => {
  await session?.close();
  server?.stop();
});

/** Asserts that `promise` rejects with an RpcError of `code`; returns it. */
async function failsWith(promise, code) {
  const e = await rejection(promise);
  assert.ok(e instanceof RpcError, `an RpcError, got ${e}`);
  assert.equal(e.code, code, e.message);
  return e;
}

const u16 = (code, text) => new Uint8Array([code >> 8, code & 0xff, ...bytes(text)]);

test('interop.unary answers the same bytes', async () => {
  assert.equal(str(await client.unary('interop.unary', bytes('hi'))), 'hi');
  assert.equal((await client.unary('interop.unary', new Uint8Array(0))).length, 0);
  const big = Uint8Array.from({ length: 200000 }, (_, i) => i % 251);
  assert.deepEqual(await client.unary('interop.unary', big), big);
});

test('interop.fail answers the code and text asked for; code 0 or a short request is INVALID_ARGUMENT', async () => {
  const e = await failsWith(client.unary('interop.fail', u16(0x0105, 'as asked')), 0x0105);
  assert.equal(e.text, 'as asked');
  assert.equal((await failsWith(client.unary('interop.fail', u16(5, 'é')), StatusCode.NOT_FOUND)).text, 'é');
  await failsWith(client.unary('interop.fail', u16(0, '')), StatusCode.INVALID_ARGUMENT);
  await failsWith(client.unary('interop.fail', new Uint8Array([1])), StatusCode.INVALID_ARGUMENT);
  await failsWith(client.unary('interop.fail', new Uint8Array([0, 2, 0xff])), StatusCode.INVALID_ARGUMENT);
  // A text over 1024 bytes comes cut at a character boundary.
  const long = await failsWith(client.unary('interop.fail', u16(2, 'é'.repeat(2000))), StatusCode.UNKNOWN);
  assert.equal(long.text, 'é'.repeat(512));
});

test('interop.header answers the first value of the named header; NOT_FOUND when absent', async () => {
  const headers = [['trace', 'ab'], ['bin', new Uint8Array([0, 1, 255])], ['trace', 'cd']];
  assert.equal(str(await client.unary('interop.header', bytes('trace'), { headers })), 'ab');
  assert.deepEqual([...(await client.unary('interop.header', bytes('bin'), { headers }))], [0, 1, 255]);
  await failsWith(client.unary('interop.header', bytes('nope'), { headers }), StatusCode.NOT_FOUND);
  await failsWith(client.unary('interop.header', bytes('trace')), StatusCode.NOT_FOUND);
  await failsWith(client.unary('interop.header', bytes('trace'), { headers: { Trace: 'ab' } }), StatusCode.NOT_FOUND, 'names are compared exactly');
});

test('interop.hang ends by the deadline: the caller\'s, and the callee\'s STATUS', async () => {
  const started = Date.now();
  await failsWith(client.unary('interop.hang', bytes('x'), { timeout: 50 }), StatusCode.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - started < 2000);
  // The call header alone (a caller that does not time out itself): the server's STATUS.
  const ch = session.open('interop.hang', {
    metadata: encodeCallHeader({ timeoutMs: 50, headers: [] }),
    message: encodeRpcMessage({ kind: 'data', value: bytes('x') }),
    finish: true,
  });
  const m = decodeRpcMessage(await ch.recv());
  assert.deepEqual([m.kind, m.code], ['status', StatusCode.DEADLINE_EXCEEDED]);
  assert.equal(await ch.recv(), null);
});

test('interop.hang ends by an AbortSignal: CANCELLED, and the session goes on', async () => {
  const ac = new AbortController();
  const call = client.unary('interop.hang', bytes('x'), { signal: ac.signal });
  // A later call's answer comes after the server has taken the hanging call's OPEN.
  assert.equal(str(await client.unary('interop.unary', bytes('after the OPEN'))), 'after the OPEN');
  ac.abort();
  await failsWith(call, StatusCode.CANCELLED);
  assert.equal(str(await client.unary('interop.unary', bytes('still here'))), 'still here');
});

test('interop.count streams 0..N-1; a bad count is INVALID_ARGUMENT; leaving early cancels', async () => {
  const got = [];
  for await (const m of client.serverStreaming('interop.count', bytes('5'))) got.push(str(m));
  assert.deepEqual(got, ['0', '1', '2', '3', '4']);
  for await (const _ of client.serverStreaming('interop.count', bytes('0'))) assert.fail('no answer expected');
  for (const bad of ['+3', 'three', '65537', ' 3']) {
    await failsWith((async () => { for await (const _ of client.serverStreaming('interop.count', bytes(bad))); })(), StatusCode.INVALID_ARGUMENT);
  }
  const call = client.serverStreaming('interop.count', bytes('65536'));
  let n = 0;
  for await (const _ of call) if (++n === 3) break;
  await failsWith(call.done, StatusCode.CANCELLED);
  assert.equal(str(await client.unary('interop.unary', bytes('after'))), 'after');
});

test('interop.concat joins the requests; past 1 MiB in all it is OUT_OF_RANGE', async () => {
  const call = client.clientStreaming('interop.concat');
  await call.send(bytes('ab'));
  await call.send(bytes('cd'));
  assert.equal(str(await call.finish()), 'abcd');
  assert.equal((await client.clientStreaming('interop.concat').finish()).length, 0);

  const chunk = new Uint8Array(65536);
  const whole = client.clientStreaming('interop.concat');
  for (let i = 0; i < 16; i++) await whole.send(chunk); // exactly 1 MiB: not beyond
  assert.equal((await whole.finish()).length, 1048576);

  const big = client.clientStreaming('interop.concat');
  try {
    for (let i = 0; i < 17; i++) await big.send(chunk); // 1088 KiB
  } catch (e) {
    assert.ok(e instanceof RpcError && e.code === StatusCode.OUT_OF_RANGE, `a send fails with the outcome: ${e}`);
  }
  await failsWith(big.finish(), StatusCode.OUT_OF_RANGE);
});

test('interop.echo answers each request as it arrives, then FIN after the caller\'s FIN', async () => {
  const call = client.bidi('interop.echo');
  const it = call[Symbol.asyncIterator]();
  await call.send(bytes('x'));
  assert.equal(str((await it.next()).value), 'x', 'answered before the next request');
  await call.send(bytes('yz'));
  assert.equal(str((await it.next()).value), 'yz');
  await call.finish();
  assert.equal((await it.next()).done, true);
  await call.done;
});

test('an interop route the table does not list is refused: UNIMPLEMENTED', async () => {
  await failsWith(client.unary('interop.nope', bytes('x')), StatusCode.UNIMPLEMENTED);
});

test('interop.json.sum sums an array of integers; not integers is INVALID_ARGUMENT, beyond 2^53-1 OUT_OF_RANGE', async () => {
  assert.deepEqual(await jsonClient.unary('interop.json.sum', [1, 2, 3]), { sum: 6, count: 3 });
  assert.equal(str(await client.unary('interop.json.sum', json.encode([1, 2, 3]))), '{"sum":6,"count":3}');
  assert.deepEqual(await jsonClient.unary('interop.json.sum', []), { sum: 0, count: 0 });
  assert.deepEqual(await jsonClient.unary('interop.json.sum', [-5, 2]), { sum: -3, count: 2 });
  await failsWith(jsonClient.unary('interop.json.sum', [1.5]), StatusCode.INVALID_ARGUMENT);
  await failsWith(jsonClient.unary('interop.json.sum', {}), StatusCode.INVALID_ARGUMENT);
  await failsWith(client.unary('interop.json.sum', bytes('[1,')), StatusCode.INVALID_ARGUMENT);
  // The reference tells JSON integers from numbers with a fraction or exponent, as
  // JSON.parse cannot.
  await failsWith(client.unary('interop.json.sum', bytes('[1.0]')), StatusCode.INVALID_ARGUMENT);
  assert.deepEqual(json.decode(await client.unary('interop.json.sum', bytes(' \n[1] '))), { sum: 1, count: 1 });
  await failsWith(jsonClient.unary('interop.json.sum', [Number.MAX_SAFE_INTEGER, 1]), StatusCode.OUT_OF_RANGE);
  await failsWith(jsonClient.unary('interop.json.sum', [-Number.MAX_SAFE_INTEGER, -1]), StatusCode.OUT_OF_RANGE);
  await failsWith(client.unary('interop.json.sum', bytes('[9007199254740993]')), StatusCode.OUT_OF_RANGE);
});

test('interop.json.callback calls interop.peer.unary on this end', async () => {
  const answer = await jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ a: 1 }] });
  assert.deepEqual(answer, { responses: [{ echo: { a: 1 } }] });
  assert.deepEqual(peerSeen.unary, { req: { a: 1 }, timeoutMs: 10000, headers: 0 });
  // timeout_ms "at most 60,000": a larger one is cut to it.
  await jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [2], timeout_ms: 60001 });
  assert.equal(peerSeen.unary.timeoutMs, 60000);
});

test('interop.json.callback calls interop.peer.server_streaming', async () => {
  const answer = await jsonClient.unary('interop.json.callback', { kind: 'server_streaming', requests: [4], timeout_ms: 5000 });
  assert.deepEqual(answer, { responses: [0, 1, 2, 3] });
  assert.equal(peerSeen.server_streaming.timeoutMs, 5000);
});

test('interop.json.callback calls interop.peer.client_streaming', async () => {
  assert.deepEqual(await jsonClient.unary('interop.json.callback', { kind: 'client_streaming', requests: [1, 2, 3] }), { responses: [6] });
  assert.deepEqual(await jsonClient.unary('interop.json.callback', { kind: 'client_streaming', requests: [] }), { responses: [0] });
});

test('interop.json.callback calls interop.peer.bidi', async () => {
  assert.deepEqual(await jsonClient.unary('interop.json.callback', { kind: 'bidi', requests: ['a', 'b', 'c'] }), { responses: ['A', 'B', 'C'] });
});

test('a failing callee fails the callback with its code and text', async () => {
  const e = await failsWith(
    jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ fail: 0x0142, text: 'the peer says no' }] }),
    0x0142,
  );
  assert.equal(e.text, 'the peer says no');
  await failsWith(
    jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ fail: StatusCode.PERMISSION_DENIED }] }),
    StatusCode.PERMISSION_DENIED,
  );
});

test('a callee slower than timeout_ms fails the callback with DEADLINE_EXCEEDED and is aborted', async () => {
  peerSeen.hangReason = undefined;
  await failsWith(
    jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ hang: true }], timeout_ms: 50 }),
    StatusCode.DEADLINE_EXCEEDED,
  );
  assert.equal(peerSeen.unary.timeoutMs, 50);
  await until(() => peerSeen.hangReason !== undefined, 2000, 'the handler\'s abort');
  assert.ok(peerSeen.hangReason instanceof RpcError);
  // Ours (DEADLINE_EXCEEDED) or the server's cancellation at its own deadline (CANCELLED).
  assert.ok([StatusCode.DEADLINE_EXCEEDED, StatusCode.CANCELLED].includes(peerSeen.hangReason.code));
});

test('interop.json.callback with a bad kind or the wrong number of requests is INVALID_ARGUMENT', async () => {
  await failsWith(jsonClient.unary('interop.json.callback', { kind: 'sideways', requests: [1] }), StatusCode.INVALID_ARGUMENT);
  await failsWith(jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [1, 2] }), StatusCode.INVALID_ARGUMENT);
  await failsWith(jsonClient.unary('interop.json.callback', { kind: 'server_streaming', requests: [] }), StatusCode.INVALID_ARGUMENT);
});
