// RPC between two JS sessions in one process, over real WebSockets (a `ws` WebSocketServer
// with Session.accept on one side, connect() on the other): every shape, headers, deadlines
// on both sides, cancellation, unknown methods, failing handlers, calls from the server to
// the client, and the broken calls of section 17.3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from './harness.mjs';
import {
  RpcClient,
  Router,
  RpcError,
  StatusCode,
  ErrorCode,
  ResetError,
  encodeCallHeader,
  decodeRpcMessage,
  encodeRpcMessage,
  raw,
  json,
  bytes,
  str,
  startServer,
  connectTo,
  rejection,
  aborted,
} from './rpc-helpers.mjs';

/**
 * A client session connected to a server session. `router` is served on the server's
 * session, `clientRouter` on the client's; `onServer(session)` runs on the server's instead
 * of a router.
 */
async function pair({ router, clientRouter, onServer, clientOptions } = {}) {
  let gotServer;
  const serverSession = new Promise((r) => (gotServer = r));
  const srv = await startServer((s) => {
    gotServer(s);
    if (router) void router.serve(s);
    onServer?.(s);
  });
  const session = await connectTo(srv.url, clientOptions);
  if (clientRouter) void clientRouter.serve(session);
  const server = await serverSession;
  return {
    session,
    server,
    client: new RpcClient(session),
    async close() {
      session.close(ErrorCode.INTERNAL, 'test over');
      await srv.close();
    },
  };
}

/** Asserts that `promise` rejects with an RpcError of `code` (and returns it). */
async function failsWith(promise, code) {
  const e = await rejection(promise);
  assert.ok(e instanceof RpcError, `an RpcError, got ${e}`);
  assert.equal(e.codeName, new RpcError(code).codeName, e.message);
  return e;
}

/** The first channel the peer opens on `session`. */
async function firstIncoming(session) {
  const reader = session.incoming.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return value;
}

test('a unary call carries a JSON request and answer, headers and the deadline', async () => {
  let seen;
  const router = new Router().unary('math.add', ([a, b], ctx) => {
    seen = ctx;
    return { sum: a + b, trace: ctx.headers.getText('trace') };
  });
  const p = await pair({ router });
  const before = Date.now();
  const answer = await p.client.unary('math.add', [2, 3], { timeout: 5000, headers: { trace: 'ab' } });
  assert.deepEqual(answer, { sum: 5, trace: 'ab' });
  assert.equal(seen.method, 'math.add');
  assert.equal(seen.timeoutMs, 5000);
  assert.ok(seen.deadline >= before + 4000 && seen.deadline <= Date.now() + 5000);
  assert.equal(seen.signal.aborted, false);
  assert.equal(seen.channel.route, 'math.add');
  await p.close();
});

test('headers keep their order, repeats and bytes; no header and no deadline is empty metadata', async () => {
  let ctx;
  let metadata;
  const router = new Router().unary('h', (_req, c) => {
    ctx = c;
    metadata = c.channel.metadata;
    return null;
  });
  const p = await pair({ router });
  await p.client.unary('h', 1, { headers: [['a', '1'], ['bin', new Uint8Array([0, 255])], ['a', '2']] });
  assert.deepEqual(ctx.headers.getAll('a').map(str), ['1', '2']);
  assert.equal(ctx.headers.getText('a'), '1');
  assert.deepEqual([...ctx.headers.get('bin')], [0, 255]);
  assert.equal(ctx.headers.getText('bin'), undefined, 'not UTF-8');
  assert.equal(ctx.headers.has('A'), false, 'names are compared exactly');
  assert.deepEqual(ctx.headers.entries().map(([n]) => n), ['a', 'bin', 'a']);
  assert.equal(ctx.timeoutMs, 0);
  assert.equal(ctx.deadline, undefined);
  await p.client.unary('h', 1);
  assert.equal(metadata.length, 0);
  await p.close();
});

test('server streaming yields every answer, then ends cleanly; a STATUS mid-stream fails the iteration', async () => {
  const router = new Router()
    .serverStreaming('count', async function* (n) {
      for (let i = 0; i < n; i++) yield i;
    })
    .serverStreaming('count.fail', function* (n) {
      for (let i = 0; i < n; i++) yield i;
      throw new RpcError(StatusCode.DATA_LOSS, 'the rest is lost');
    });
  const p = await pair({ router });
  const got = [];
  for await (const n of p.client.serverStreaming('count', 5)) got.push(n);
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
  const partial = [];
  const e = await failsWith(
    (async () => {
      for await (const n of p.client.serverStreaming('count.fail', 3)) partial.push(n);
    })(),
    StatusCode.DATA_LOSS,
  );
  assert.equal(e.text, 'the rest is lost');
  assert.deepEqual(partial, [0, 1, 2]);
  await p.close();
});

test('client streaming sends requests and gets one answer at finish()', async () => {
  const router = new Router().clientStreaming('sum', async (requests) => {
    let s = 0;
    for await (const r of requests) s += r;
    return s;
  });
  const p = await pair({ router });
  const call = p.client.clientStreaming('sum');
  for (let i = 1; i <= 10; i++) await call.send(i);
  assert.equal(await call.finish(), 55);
  await p.close();
});

test('a client-streaming callee may answer before the caller finishes; then further sends fail', async () => {
  const router = new Router({ codec: raw }).clientStreaming('first', async (requests) => {
    for await (const r of requests) return r;
    return bytes('none');
  });
  const p = await pair({ router });
  const call = p.client.clientStreaming('first', { codec: raw });
  await call.send(bytes('one'));
  assert.equal(str(await call.response), 'one');
  const e = await rejection(call.send(bytes('two')));
  assert.equal(e.name, 'InvalidStateError', 'the call succeeded: a send after it is a usage error');
  assert.equal(str(await call.finish()), 'one');
  await p.close();
});

test('a bidirectional call answers each request as it arrives', async () => {
  const router = new Router().bidi('upper', async function* (requests) {
    for await (const r of requests) yield r.toUpperCase();
  });
  const p = await pair({ router });
  const call = p.client.bidi('upper');
  const it = call[Symbol.asyncIterator]();
  await call.send('a');
  assert.deepEqual(await it.next(), { done: false, value: 'A' });
  await call.send('b');
  assert.deepEqual(await it.next(), { done: false, value: 'B' });
  await call.finish();
  assert.deepEqual(await it.next(), { done: true, value: undefined });
  await call.done;
  await p.close();
});

test('a handler\'s RpcError gives its code and text; another error gives UNKNOWN with its message', async () => {
  const router = new Router()
    .unary('app', () => {
      throw new RpcError(0x1234, 'application trouble');
    })
    .unary('bug', async () => {
      throw new Error('oops');
    })
    .serverStreaming('bug.stream', () => {
      throw new TypeError('not iterable');
    });
  const p = await pair({ router });
  const e = await failsWith(p.client.unary('app', 0), 0x1234);
  assert.equal(e.code, 0x1234);
  assert.equal(e.text, 'application trouble');
  assert.equal(e.codeName, 'application 0x1234');
  assert.equal((await failsWith(p.client.unary('bug', 0), StatusCode.UNKNOWN)).text, 'oops');
  await failsWith((async () => { for await (const _ of p.client.serverStreaming('bug.stream', 0)); })(), StatusCode.UNKNOWN);
  await p.close();
});

test('an unknown method is answered UNIMPLEMENTED; a route refused with NOT_FOUND reports UNIMPLEMENTED too', async () => {
  const p = await pair({ router: new Router() });
  const e = await failsWith(p.client.unary('no.such', 1), StatusCode.UNIMPLEMENTED);
  assert.match(e.text, /no\.such/);
  await failsWith((async () => { for await (const _ of p.client.bidi('no.such')); })(), StatusCode.UNIMPLEMENTED);
  await p.close();

  const q = await pair({ onServer: async (s) => { for await (const ch of s.incoming) ch.refuse(ErrorCode.NOT_FOUND); } });
  await failsWith(q.client.unary('x', 1), StatusCode.UNIMPLEMENTED);
  await q.close();
});

test('a fallback takes the routes that are not methods', async () => {
  const router = new Router().unary('m', () => 1);
  const p = await pair({
    onServer: (s) => void router.serve(s, { fallback: (ch) => void ch.sendText('plain').then(() => ch.finish()) }),
  });
  assert.equal(await p.client.unary('m', 0), 1);
  const ch = p.session.open('plain.route', { finish: true });
  assert.equal(await ch.recvText(), 'plain');
  await p.close();
});

test('the caller\'s deadline fails the call with DEADLINE_EXCEEDED at once and resets the channel with CANCEL', async () => {
  let callee;
  const p = await pair({ onServer: async (s) => { callee = await firstIncoming(s); } });
  const started = Date.now();
  await failsWith(p.client.unary('slow', 1, { timeout: 50 }), StatusCode.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - started < 1000);
  // The callee (which ignores the deadline) sees the caller's RESET CANCEL.
  await until(() => callee !== undefined && callee.stats().send === 'reset', 2000, 'the RESET');
  const e = await rejection(callee.send(bytes('late')));
  assert.ok(e instanceof ResetError && e.code === ErrorCode.CANCEL && e.origin === 'remote');
  await p.close();
});

test('the callee\'s deadline answers STATUS DEADLINE_EXCEEDED and FIN, and aborts the handler', async () => {
  let reason;
  const router = new Router({ codec: raw }).unary('hang', async (_req, ctx) => {
    reason = await aborted(ctx.signal);
    return bytes('too late');
  });
  const p = await pair({ router });
  // A caller that enforces no deadline itself: the header alone.
  const ch = p.session.open('hang', {
    metadata: encodeCallHeader({ timeoutMs: 40, headers: [] }),
    message: encodeRpcMessage({ kind: 'data', value: bytes('x') }),
    finish: true,
  });
  const m = decodeRpcMessage(await ch.recv());
  assert.equal(m.kind, 'status');
  assert.equal(m.code, StatusCode.DEADLINE_EXCEEDED);
  assert.equal(await ch.recv(), null, 'FIN after the STATUS');
  assert.ok(reason instanceof RpcError && reason.code === StatusCode.DEADLINE_EXCEEDED);
  await p.close();
});

test('a deadline through RpcClient and Router fails the call and aborts the handler', async () => {
  let reason;
  const router = new Router().serverStreaming('ticks', async function* (_req, ctx) {
    yield 1;
    reason = await aborted(ctx.signal);
  });
  const p = await pair({ router });
  const got = [];
  await failsWith(
    (async () => { for await (const x of p.client.serverStreaming('ticks', 0, { timeout: 60 })) got.push(x); })(),
    StatusCode.DEADLINE_EXCEEDED,
  );
  assert.deepEqual(got, [1]);
  await until(() => reason !== undefined, 2000, 'the handler\'s abort');
  assert.ok(reason instanceof RpcError);
  await p.close();
});

test('AbortSignal.timeout() reports DEADLINE_EXCEEDED', async () => {
  const router = new Router().unary('hang', () => new Promise(() => {}));
  const p = await pair({ router });
  await failsWith(p.client.unary('hang', 1, { signal: AbortSignal.timeout(30) }), StatusCode.DEADLINE_EXCEEDED);
  await p.close();
});

/** A router whose handlers wait for their cancellation and report its reason. */
function cancellable() {
  const reasons = {};
  const started = {};
  const wait = (name, ctx) => {
    started[name] = true;
    return aborted(ctx.signal).then((r) => (reasons[name] = r));
  };
  const router = new Router()
    .unary('u', async (_r, ctx) => { await wait('u', ctx); return 0; })
    .serverStreaming('s', async function* (_r, ctx) { yield 0; await wait('s', ctx); })
    .clientStreaming('c', async (_reqs, ctx) => { await wait('c', ctx); return 0; })
    .bidi('b', async function* (reqs, ctx) {
      for await (const r of reqs) { yield r; break; }
      await wait('b', ctx);
    });
  return { router, reasons, started };
}

test('an AbortSignal cancels each shape: CANCELLED for the caller, the handler\'s signal aborted', async () => {
  const { router, reasons, started } = cancellable();
  const p = await pair({ router });
  const cancelled = (name) => until(() => reasons[name] !== undefined, 2000, `${name} aborted`)
    .then(() => assert.equal(reasons[name].code, StatusCode.CANCELLED));

  let ac = new AbortController();
  const u = p.client.unary('u', 0, { signal: ac.signal });
  await until(() => started.u, 2000, 'u started');
  ac.abort();
  await failsWith(u, StatusCode.CANCELLED);
  await cancelled('u');

  ac = new AbortController();
  const s = p.client.serverStreaming('s', 0, { signal: ac.signal });
  const it = s[Symbol.asyncIterator]();
  assert.deepEqual(await it.next(), { done: false, value: 0 });
  ac.abort(new Error('enough'));
  const e = await failsWith(it.next(), StatusCode.CANCELLED);
  assert.equal(e.cause.message, 'enough');
  await cancelled('s');

  ac = new AbortController();
  const c = p.client.clientStreaming('c', { signal: ac.signal });
  await c.send(1);
  await until(() => started.c, 2000, 'c started');
  ac.abort();
  await failsWith(c.response, StatusCode.CANCELLED);
  await failsWith(c.send(2), StatusCode.CANCELLED);
  await cancelled('c');

  ac = new AbortController();
  const b = p.client.bidi('b', { signal: ac.signal });
  await b.send('x');
  const bi = b[Symbol.asyncIterator]();
  assert.deepEqual(await bi.next(), { done: false, value: 'x' });
  ac.abort();
  await failsWith(bi.next(), StatusCode.CANCELLED);
  await failsWith(b.finish(), StatusCode.CANCELLED);
  await cancelled('b');

  // Already aborted: nothing is opened.
  const opened = p.session.stats().channelsOpened;
  await failsWith(p.client.unary('u', 0, { signal: AbortSignal.abort() }), StatusCode.CANCELLED);
  assert.equal(p.session.stats().channelsOpened, opened);
  await p.close();
});

test('leaving the loop of a streaming call early cancels it', async () => {
  const { router, reasons } = cancellable();
  const p = await pair({ router });
  const call = p.client.serverStreaming('s', 0);
  for await (const x of call) {
    assert.equal(x, 0);
    break;
  }
  await failsWith(call.done, StatusCode.CANCELLED);
  await until(() => reasons.s !== undefined, 2000, 'the handler\'s abort');
  assert.equal(reasons.s.code, StatusCode.CANCELLED);
  await p.close();
});

test('the server calls the client: a Router on the connecting side, an RpcClient on the accepting side', async () => {
  const clientRouter = new Router()
    .unary('client.whoami', (_r, ctx) => `client, asked with ${ctx.headers.getText('by')}`)
    .bidi('client.double', async function* (reqs) { for await (const r of reqs) yield r * 2; });
  const p = await pair({ clientRouter });
  const back = new RpcClient(p.server);
  assert.equal(await back.unary('client.whoami', null, { headers: { by: 'server' } }), 'client, asked with server');
  const call = back.bidi('client.double');
  await call.send(1);
  await call.send(21);
  await call.finish();
  const got = [];
  for await (const x of call) got.push(x);
  assert.deepEqual(got, [2, 42]);
  await p.close();
});

test('the loss of the session reports UNAVAILABLE', async () => {
  const router = new Router().unary('hang', () => new Promise(() => {}));
  const p = await pair({ router });
  const call = p.client.unary('hang', 1);
  await until(() => p.server.stats().channels === 1, 2000, 'the call at the server');
  p.server.socket.terminate();
  await failsWith(call, StatusCode.UNAVAILABLE);
  await failsWith(p.client.unary('hang', 1), StatusCode.UNAVAILABLE);
  await p.close();
});

test('a request that does not decode is INVALID_ARGUMENT, and so is a call header that does not parse', async () => {
  const router = new Router().unary('echo', (x) => x);
  const p = await pair({ router });
  // Raw bytes that are not JSON, to a JSON method.
  await failsWith(p.client.unary('echo', bytes('{nope'), { codec: raw }), StatusCode.INVALID_ARGUMENT);
  const ch = p.session.open('echo', { metadata: new Uint8Array([0, 0, 0]), message: encodeRpcMessage({ kind: 'data', value: json.encode(1) }), finish: true });
  const m = decodeRpcMessage(await ch.recv());
  assert.deepEqual([m.kind, m.code], ['status', StatusCode.INVALID_ARGUMENT]);
  assert.equal(await ch.recv(), null);
  await p.close();
});

test('a broken call from the caller (kind byte 2) is reset with PROTOCOL and aborts the handler with INTERNAL', async () => {
  let reason;
  const router = new Router().clientStreaming('c', async (reqs, ctx) => {
    const done = aborted(ctx.signal).then((r) => (reason = r));
    try { for await (const _ of reqs); } catch {}
    await done;
    return 0;
  });
  const p = await pair({ router });
  const ch = p.session.open('c');
  await ch.send(new Uint8Array([2, 1, 2]));
  const e = await rejection(ch.recv());
  assert.ok(e instanceof ResetError && e.code === ErrorCode.PROTOCOL, String(e));
  await until(() => reason !== undefined, 2000, 'the abort');
  assert.equal(reason.code, StatusCode.INTERNAL);
  await p.close();
});

test('a broken answer, no answer, or two answers fail a unary call with INTERNAL', async () => {
  const p = await pair({
    onServer: async (s) => {
      for await (const ch of s.incoming) {
        await ch.recv();
        if (ch.route === 'broken') await ch.send(new Uint8Array([7]));
        if (ch.route === 'two') { await ch.send(encodeRpcMessage({ kind: 'data', value: json.encode(1) })); await ch.send(encodeRpcMessage({ kind: 'data', value: json.encode(2) })); }
        if (ch.route === 'ok-without-data') await ch.send(encodeRpcMessage({ kind: 'status', code: 0, text: '' }));
        await ch.finish().catch(() => {});
      }
    },
  });
  for (const route of ['broken', 'none', 'two', 'ok-without-data']) {
    await failsWith(p.client.unary(route, 0), StatusCode.INTERNAL);
  }
  await p.close();
});

test('past maxConcurrentCalls a call is answered RESOURCE_EXHAUSTED without running', async () => {
  let runs = 0;
  const router = new Router({ maxConcurrentCalls: 1 }).unary('hang', () => { runs++; return new Promise(() => {}); });
  const p = await pair({ router });
  const first = p.client.unary('hang', 0);
  first.catch(() => {});
  await until(() => runs === 1, 2000, 'the first call running');
  await failsWith(p.client.unary('hang', 0), StatusCode.RESOURCE_EXHAUSTED);
  assert.equal(runs, 1);
  await p.close();
});

test('an answer over the caller\'s MAX_MESSAGE_SIZE is RESOURCE_EXHAUSTED', async () => {
  const router = new Router({ codec: raw }).unary('big', () => new Uint8Array(1048576 + 10));
  const p = await pair({ router, clientOptions: { maxMessageSize: 1048576 } });
  await p.session.ready;
  await failsWith(p.client.unary('big', new Uint8Array(0), { codec: raw }), StatusCode.RESOURCE_EXHAUSTED);
  await p.close();
});

test('usage errors throw at once: bad timeouts, headers, values JSON cannot encode', async () => {
  const p = await pair({ router: new Router() });
  await assert.rejects(p.client.unary('m', 1, { timeout: 0 }), RangeError);
  await assert.rejects(p.client.unary('m', 1, { timeout: -5 }), RangeError);
  await assert.rejects(p.client.unary('m', 1, { timeout: 2 ** 32 }), RangeError);
  await assert.rejects(p.client.unary('m', 1, { headers: { '': 'x' } }), RangeError);
  await assert.rejects(p.client.unary('m', undefined), TypeError);
  assert.throws(() => p.client.bidi('m', { timeout: NaN }), RangeError);
  assert.throws(() => new Router().unary('a', () => 1).unary('a', () => 2), /registered already/);
  await p.close();
});
