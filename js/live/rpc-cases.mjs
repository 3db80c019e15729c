// The live RPC suite: the JS RpcClient and Router against the Rust reference server's RPC
// methods (PROTOCOL.md sections 14 and 17), run by the same runners as live/cases.mjs (Node:
// test/live.test.mjs; headless Chromium: live/browser.mjs with live/page.html). A case gets
// `env`: { wsmux (the package), WebSocket (a constructor), url (the server's wsmux endpoint) }
// and throws on failure. Every case opens its own session, on which a Router serves the
// interop.peer.* methods that interop.json.callback calls (the server calling this end).
// The interop.* methods take raw bytes (the raw codec), interop.json.* take JSON values.
import { check, equal, rejectsWithCode, sameBytes, sleep, within } from './check.mjs';

const MiB = 1 << 20;
const utf8 = new TextEncoder();
const bytes = (s) => utf8.encode(s);
const str = (b) => new TextDecoder().decode(b);
/** A request of interop.fail: the code (u16, big-endian), then the text. */
const failRequest = (code, text) => new Uint8Array([code >> 8, code & 0xff, ...bytes(text)]);

/** JSON-comparable values are equal (key order counts, as in the spec's `{"sum":S,"count":N}`). */
function sameJson(actual, expected, what) {
  equal(JSON.stringify(actual), JSON.stringify(expected), what);
}

/** Awaits `promise`, which must reject with an RpcError of `code`; returns the error. */
async function failsWith(env, promise, code, what) {
  const e = await rejectsWithCode(promise, code, what);
  check(e instanceof env.wsmux.RpcError, `${what}: an RpcError, got ${e?.name}: ${e?.message}`);
  return e;
}

/** Resolves once `signal` is aborted, with its reason. */
function aborted(signal) {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

/** Resolves once `cond()` holds; throws after `ms`. */
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: nothing after ${ms} ms`);
    await sleep(5);
  }
}

/** Every answer of a streaming call, to its end (throws the call's RpcError). */
async function collect(call) {
  const got = [];
  for await (const m of call) got.push(m);
  return got;
}

/**
 * The client's side of interop.json.callback: interop.peer.K with JSON values. `seen` records
 * what the handlers saw, by kind.
 */
function peerRouter(env, seen) {
  const { Router, RpcError } = env.wsmux;
  return new Router()
    .unary('interop.peer.unary', async (req, ctx) => {
      seen.unary = { req, timeoutMs: ctx.timeoutMs, headers: ctx.headers.size };
      if (req?.fail) throw new RpcError(req.fail, req.text ?? '');
      if (req?.throw) throw new Error(req.throw);
      if (req?.hang) {
        seen.hangReason = await aborted(ctx.signal);
        return 'too late';
      }
      return { echo: req };
    })
    .serverStreaming('interop.peer.server_streaming', async function* (n, ctx) {
      seen.server_streaming = { timeoutMs: ctx.timeoutMs };
      for (let i = 0; i < n; i++) yield i;
    })
    .clientStreaming('interop.peer.client_streaming', async (requests) => {
      let sum = 0;
      for await (const r of requests) sum += r;
      return sum;
    })
    .bidi('interop.peer.bidi', async function* (requests, ctx) {
      for await (const r of requests) {
        if (r === 'hang') {
          seen.bidiHangReason = await aborted(ctx.signal);
          return;
        }
        yield r.toUpperCase();
      }
    });
}

/**
 * Runs `body(t)` on a fresh session serving the peer methods, with t = { session, client (raw
 * values), jsonClient, seen }; then closes the session and checks that it ended cleanly.
 */
async function withRpc(env, body) {
  const { connect, RpcClient, raw } = env.wsmux;
  const session = await connect(env.url, { WebSocket: env.WebSocket });
  const seen = {};
  const serving = peerRouter(env, seen).serve(session);
  try {
    await body({ session, seen, client: new RpcClient(session, { codec: raw }), jsonClient: new RpcClient(session) });
  } finally {
    session.close();
  }
  await within(10_000, session.closed, 'the session ends cleanly after close()');
  await within(1_000, serving, 'Router.serve() returns once the session ended');
}

export const cases = [
  {
    name: 'rpc: interop.unary answers the same bytes (empty, small, 200 KB)',
    async run(env) {
      await withRpc(env, async ({ client }) => {
        equal(str(await client.unary('interop.unary', bytes('hi'))), 'hi', 'answer to "hi"');
        equal((await client.unary('interop.unary', new Uint8Array(0))).length, 0, 'answer to an empty request');
        const big = Uint8Array.from({ length: 200000 }, (_, i) => i % 251);
        sameBytes(await client.unary('interop.unary', big), big, 'answer to 200000 bytes');
      });
    },
  },
  {
    name: 'rpc: interop.fail gives the code and text asked for; code 0 or a short request is INVALID_ARGUMENT',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        const e = await failsWith(env, client.unary('interop.fail', failRequest(0x0105, 'as asked')), 0x0105, 'application code');
        equal(e.text, 'as asked', 'the STATUS text');
        const nf = await failsWith(env, client.unary('interop.fail', failRequest(5, 'é')), StatusCode.NOT_FOUND, 'NOT_FOUND');
        equal(nf.text, 'é', 'a UTF-8 text');
        await failsWith(env, client.unary('interop.fail', failRequest(0, '')), StatusCode.INVALID_ARGUMENT, 'code 0');
        await failsWith(env, client.unary('interop.fail', new Uint8Array([1])), StatusCode.INVALID_ARGUMENT, 'one byte');
        await failsWith(env, client.unary('interop.fail', new Uint8Array([0, 2, 0xff])), StatusCode.INVALID_ARGUMENT, 'text not UTF-8');
        // A text over 1024 bytes comes cut at a character boundary.
        const long = await failsWith(env, client.unary('interop.fail', failRequest(2, 'é'.repeat(2000))), StatusCode.UNKNOWN, 'a long text');
        equal(long.text, 'é'.repeat(512), 'the long text, cut to 1024 bytes');
      });
    },
  },
  {
    name: 'rpc: interop.header answers the first value of the named call header; NOT_FOUND when absent',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        const headers = [['trace', 'ab'], ['bin', new Uint8Array([0, 1, 255])], ['trace', 'cd']];
        equal(str(await client.unary('interop.header', bytes('trace'), { headers })), 'ab', 'a repeated header: the first');
        sameBytes(await client.unary('interop.header', bytes('bin'), { headers }), new Uint8Array([0, 1, 255]), 'a binary header');
        equal(str(await client.unary('interop.header', bytes('token'), { headers: { token: 'xyz' } })), 'xyz', 'headers as an object');
        await failsWith(env, client.unary('interop.header', bytes('nope'), { headers }), StatusCode.NOT_FOUND, 'a header not sent');
        await failsWith(env, client.unary('interop.header', bytes('trace')), StatusCode.NOT_FOUND, 'no headers');
        await failsWith(env, client.unary('interop.header', bytes('trace'), { headers: { Trace: 'ab' } }), StatusCode.NOT_FOUND, 'names are compared exactly');
      });
    },
  },
  {
    name: 'rpc: interop.hang ends by a deadline: the caller\'s timeout, AbortSignal.timeout(), and the callee\'s STATUS',
    async run(env) {
      const { StatusCode, encodeCallHeader, encodeRpcMessage, decodeRpcMessage } = env.wsmux;
      await withRpc(env, async ({ session, client }) => {
        let started = Date.now();
        await failsWith(env, client.unary('interop.hang', bytes('x'), { timeout: 50 }), StatusCode.DEADLINE_EXCEEDED, 'timeout: 50');
        check(Date.now() - started < 2000, `the deadline fired after ${Date.now() - started} ms`);
        started = Date.now();
        await failsWith(env, client.unary('interop.hang', bytes('x'), { signal: AbortSignal.timeout(50) }), StatusCode.DEADLINE_EXCEEDED, 'AbortSignal.timeout(50)');
        check(Date.now() - started < 2000, `the signal's deadline fired after ${Date.now() - started} ms`);
        // The call header alone (a caller that does not time out itself): the server's STATUS.
        const ch = session.open('interop.hang', {
          metadata: encodeCallHeader({ timeoutMs: 50, headers: [] }),
          message: encodeRpcMessage({ kind: 'data', value: bytes('x') }),
          finish: true,
        });
        const m = decodeRpcMessage(await within(5_000, ch.recv(), 'the callee\'s STATUS'));
        equal(m.kind, 'status', 'the callee\'s message');
        equal(m.code, StatusCode.DEADLINE_EXCEEDED, 'the callee\'s STATUS code');
        equal(await ch.recv(), null, 'FIN after the STATUS');
        equal(str(await client.unary('interop.unary', bytes('still here'))), 'still here', 'a call after the deadlines');
      });
    },
  },
  {
    name: 'rpc: interop.hang ends by an AbortSignal: CANCELLED, and the session goes on',
    async run(env) {
      const { StatusCode, RpcError } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        const ac = new AbortController();
        const call = client.unary('interop.hang', bytes('x'), { signal: ac.signal });
        // A later call's answer comes after the server has taken the hanging call's OPEN.
        equal(str(await client.unary('interop.unary', bytes('after the OPEN'))), 'after the OPEN', 'a call beside the hanging one');
        ac.abort();
        const e = await failsWith(env, call, StatusCode.CANCELLED, 'aborted');
        check(e.cause instanceof Error && e.cause.name === 'AbortError', `the cause is the signal's reason: ${e.cause}`);
        // A signal aborted before the call: it fails at once, and an RpcError reason is kept.
        const before = new AbortController();
        before.abort(new RpcError(StatusCode.ABORTED, 'no longer wanted'));
        const early = await failsWith(env, client.unary('interop.hang', bytes('x'), { signal: before.signal }), StatusCode.ABORTED, 'aborted before');
        equal(early.text, 'no longer wanted', 'the reason\'s text');
        equal(str(await client.unary('interop.unary', bytes('still here'))), 'still here', 'a call after the cancellations');
      });
    },
  },
  {
    name: 'rpc: interop.count streams 0..N-1; a bad count is INVALID_ARGUMENT',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        equal((await collect(client.serverStreaming('interop.count', bytes('5')))).map(str).join(','), '0,1,2,3,4', 'count 5');
        equal((await collect(client.serverStreaming('interop.count', bytes('0')))).length, 0, 'count 0: no answer');
        const many = await collect(client.serverStreaming('interop.count', bytes('10000')));
        equal(many.length, 10000, 'count 10000');
        equal(str(many[9999]), '9999', 'the last answer');
        for (const bad of ['+3', 'three', '65537', ' 3']) {
          await failsWith(env, collect(client.serverStreaming('interop.count', bytes(bad))), StatusCode.INVALID_ARGUMENT, `count ${JSON.stringify(bad)}`);
        }
      });
    },
  },
  {
    name: 'rpc: interop.count ended early: leaving the loop, an AbortSignal and a deadline cancel the stream',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        const call = client.serverStreaming('interop.count', bytes('65536'));
        let n = 0;
        for await (const _ of call) if (++n === 3) break;
        await failsWith(env, call.done, StatusCode.CANCELLED, 'the call after break');

        const ac = new AbortController();
        const got = [];
        const aborting = (async () => {
          for await (const m of client.serverStreaming('interop.count', bytes('65536'), { signal: ac.signal })) {
            got.push(str(m));
            if (got.length === 10) ac.abort();
          }
        })();
        await failsWith(env, aborting, StatusCode.CANCELLED, 'the iteration after abort()');
        equal(got.length, 10, 'answers read before the abort');

        const slow = (async () => {
          for await (const _ of client.serverStreaming('interop.count', bytes('65536'), { timeout: 100 })) await sleep(5);
        })();
        await failsWith(env, within(5_000, slow, 'the deadline'), StatusCode.DEADLINE_EXCEEDED, 'a slow reader past its deadline');
        equal(str(await client.unary('interop.unary', bytes('after'))), 'after', 'a call after the cancellations');
      });
    },
  },
  {
    name: 'rpc: interop.concat joins the requests; exactly 1 MiB is fine, past it OUT_OF_RANGE',
    async run(env) {
      const { StatusCode, RpcError } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        const call = client.clientStreaming('interop.concat');
        await call.send(bytes('ab'));
        await call.send(bytes('cd'));
        equal(str(await call.finish()), 'abcd', 'two requests joined');
        equal((await client.clientStreaming('interop.concat').finish()).length, 0, 'no request: an empty answer');

        const chunk = new Uint8Array(65536);
        const whole = client.clientStreaming('interop.concat');
        for (let i = 0; i < 16; i++) await whole.send(chunk); // exactly 1 MiB: not beyond
        equal((await whole.finish()).length, MiB, 'exactly 1 MiB joined');

        const big = client.clientStreaming('interop.concat');
        try {
          for (let i = 0; i < 17; i++) await big.send(chunk); // 1088 KiB
        } catch (e) {
          check(e instanceof RpcError && e.code === StatusCode.OUT_OF_RANGE, `a send fails with the outcome: ${e}`);
        }
        await failsWith(env, big.finish(), StatusCode.OUT_OF_RANGE, 'past 1 MiB');
        await failsWith(env, big.response, StatusCode.OUT_OF_RANGE, 'response past 1 MiB');

        const oneMore = client.clientStreaming('interop.concat');
        for (let i = 0; i < 16; i++) await oneMore.send(chunk);
        await oneMore.send(new Uint8Array(1)).catch(() => {}); // may already fail with the outcome
        await failsWith(env, oneMore.finish(), StatusCode.OUT_OF_RANGE, '1 MiB and one byte');
      });
    },
  },
  {
    name: 'rpc: interop.concat cancelled: by an AbortSignal, by cancel(), by a deadline before finish()',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        const ac = new AbortController();
        const a = client.clientStreaming('interop.concat', { signal: ac.signal });
        await a.send(bytes('ab'));
        ac.abort();
        await failsWith(env, a.response, StatusCode.CANCELLED, 'aborted');
        await failsWith(env, a.send(bytes('cd')), StatusCode.CANCELLED, 'a send after the abort');

        const b = client.clientStreaming('interop.concat');
        await b.send(bytes('ab'));
        b.cancel();
        await failsWith(env, b.finish(), StatusCode.CANCELLED, 'cancel()');

        const c = client.clientStreaming('interop.concat', { timeout: 50 });
        await c.send(bytes('ab'));
        await failsWith(env, within(5_000, c.response, 'the deadline'), StatusCode.DEADLINE_EXCEEDED, 'timeout: 50 without finish()');
        equal(str(await client.unary('interop.unary', bytes('after'))), 'after', 'a call after the cancellations');
      });
    },
  },
  {
    name: 'rpc: interop.echo (bidi) answers each request as it arrives, then FIN after the caller\'s FIN',
    async run(env) {
      await withRpc(env, async ({ client }) => {
        const call = client.bidi('interop.echo');
        const it = call[Symbol.asyncIterator]();
        await call.send(bytes('x'));
        equal(str((await within(5_000, it.next(), 'the first answer')).value), 'x', 'answered before the next request');
        await call.send(bytes('yz'));
        equal(str((await it.next()).value), 'yz', 'the second answer');
        await call.finish();
        equal((await it.next()).done, true, 'the end after our FIN');
        await call.done;

        // Many requests while reading (reading is what grants credit).
        const many = client.bidi('interop.echo');
        const reading = collect(many);
        const sent = Array.from({ length: 200 }, (_, i) => bytes(`m${i}`.repeat(i + 1)));
        for (const m of sent) await many.send(m);
        await many.finish();
        const got = await reading;
        equal(got.length, sent.length, 'echoed requests');
        got.forEach((m, i) => sameBytes(m, sent[i], `echo ${i}`));
      });
    },
  },
  {
    name: 'rpc: interop.echo (bidi) ended by an AbortSignal, by a deadline and by leaving the loop',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        const ac = new AbortController();
        const a = client.bidi('interop.echo', { signal: ac.signal });
        const ia = a[Symbol.asyncIterator]();
        await a.send(bytes('one'));
        equal(str((await ia.next()).value), 'one', 'an answer before the abort');
        ac.abort();
        await failsWith(env, ia.next(), StatusCode.CANCELLED, 'the iteration after abort()');
        await failsWith(env, a.send(bytes('two')), StatusCode.CANCELLED, 'a send after abort()');
        await failsWith(env, a.done, StatusCode.CANCELLED, 'done after abort()');

        const d = client.bidi('interop.echo', { timeout: 100 });
        const id = d[Symbol.asyncIterator]();
        await d.send(bytes('one'));
        equal(str((await id.next()).value), 'one', 'an answer before the deadline');
        await failsWith(env, within(5_000, id.next(), 'the deadline'), StatusCode.DEADLINE_EXCEEDED, 'an open bidi call past its deadline');

        const l = client.bidi('interop.echo');
        await l.send(bytes('one'));
        for await (const m of l) {
          equal(str(m), 'one', 'the answer');
          break;
        }
        await failsWith(env, l.done, StatusCode.CANCELLED, 'done after break');
        equal(str(await client.unary('interop.unary', bytes('after'))), 'after', 'a call after the cancellations');
      });
    },
  },
  {
    name: 'rpc: an interop method the table does not list is refused: UNIMPLEMENTED',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ client }) => {
        await failsWith(env, client.unary('interop.nope', bytes('x')), StatusCode.UNIMPLEMENTED, 'interop.nope');
        await failsWith(env, collect(client.serverStreaming('interop.nope', bytes('x'))), StatusCode.UNIMPLEMENTED, 'interop.nope, streaming');
      });
    },
  },
  {
    name: 'rpc: interop.json.sum sums an array of integers; not integers is INVALID_ARGUMENT, beyond 2^53-1 OUT_OF_RANGE',
    async run(env) {
      const { StatusCode, json } = env.wsmux;
      await withRpc(env, async ({ client, jsonClient }) => {
        sameJson(await jsonClient.unary('interop.json.sum', [1, 2, 3]), { sum: 6, count: 3 }, '[1,2,3]');
        equal(str(await client.unary('interop.json.sum', json.encode([1, 2, 3]))), '{"sum":6,"count":3}', 'the exact bytes');
        sameJson(await jsonClient.unary('interop.json.sum', []), { sum: 0, count: 0 }, '[]');
        sameJson(await jsonClient.unary('interop.json.sum', [-5, 2]), { sum: -3, count: 2 }, '[-5,2]');
        sameJson(await jsonClient.unary('interop.json.sum', [1, 2], { timeout: 5000 }), { sum: 3, count: 2 }, 'with a deadline');
        await failsWith(env, jsonClient.unary('interop.json.sum', [1.5]), StatusCode.INVALID_ARGUMENT, '[1.5]');
        await failsWith(env, jsonClient.unary('interop.json.sum', {}), StatusCode.INVALID_ARGUMENT, '{}');
        await failsWith(env, jsonClient.unary('interop.json.sum', ['1']), StatusCode.INVALID_ARGUMENT, '["1"]');
        await failsWith(env, client.unary('interop.json.sum', bytes('[1,')), StatusCode.INVALID_ARGUMENT, 'invalid JSON');
        // The reference tells JSON integers from numbers with a fraction or exponent, as
        // JSON.parse cannot.
        for (const text of ['[1.0]', '[1e2]', '[-0]', '\ufeff[1]']) {
          await failsWith(env, client.unary('interop.json.sum', bytes(text)), StatusCode.INVALID_ARGUMENT, JSON.stringify(text));
        }
        sameJson(json.decode(await client.unary('interop.json.sum', bytes(' \n[1] '))), { sum: 1, count: 1 }, 'whitespace around');
        await failsWith(env, jsonClient.unary('interop.json.sum', [Number.MAX_SAFE_INTEGER, 1]), StatusCode.OUT_OF_RANGE, 'a sum past 2^53-1');
        await failsWith(env, jsonClient.unary('interop.json.sum', [-Number.MAX_SAFE_INTEGER, -1]), StatusCode.OUT_OF_RANGE, 'a sum past -(2^53-1)');
        await failsWith(env, client.unary('interop.json.sum', bytes('[9007199254740993]')), StatusCode.OUT_OF_RANGE, 'an integer past 2^53-1');
      });
    },
  },
  {
    name: 'rpc callback: the server calls interop.peer.unary on this end\'s Router',
    async run(env) {
      await withRpc(env, async ({ jsonClient, seen }) => {
        const answer = await jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ a: 1 }] });
        sameJson(answer, { responses: [{ echo: { a: 1 } }] }, 'the callback\'s answer');
        sameJson(seen.unary, { req: { a: 1 }, timeoutMs: 10000, headers: 0 }, 'what the handler saw (default timeout_ms 10 000, no headers)');
        // timeout_ms "at most 60,000": a larger one is cut to it.
        await jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [2], timeout_ms: 60001 });
        equal(seen.unary.timeoutMs, 60000, 'timeout_ms 60001 cut to');
      });
    },
  },
  {
    name: 'rpc callback: the server calls interop.peer.server_streaming on this end',
    async run(env) {
      await withRpc(env, async ({ jsonClient, seen }) => {
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'server_streaming', requests: [4], timeout_ms: 5000 }), { responses: [0, 1, 2, 3] }, 'four answers');
        equal(seen.server_streaming.timeoutMs, 5000, 'the deadline the handler saw');
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'server_streaming', requests: [0] }), { responses: [] }, 'no answer');
        const many = await jsonClient.unary('interop.json.callback', { kind: 'server_streaming', requests: [1024] });
        equal(many.responses.length, 1024, 'the most answers a callback relays');
      });
    },
  },
  {
    name: 'rpc callback: the server calls interop.peer.client_streaming on this end',
    async run(env) {
      await withRpc(env, async ({ jsonClient }) => {
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'client_streaming', requests: [1, 2, 3] }), { responses: [6] }, 'the sum of three');
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'client_streaming', requests: [] }), { responses: [0] }, 'no request');
        const ones = Array.from({ length: 1024 }, () => 1);
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'client_streaming', requests: ones }), { responses: [1024] }, '1024 requests');
      });
    },
  },
  {
    name: 'rpc callback: the server calls interop.peer.bidi on this end',
    async run(env) {
      await withRpc(env, async ({ jsonClient }) => {
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'bidi', requests: ['a', 'b', 'c'] }), { responses: ['A', 'B', 'C'] }, 'three answers');
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'bidi', requests: [] }), { responses: [] }, 'no request');
      });
    },
  },
  {
    name: 'rpc callback: a callee that fails or throws fails the callback with its code and text',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ jsonClient }) => {
        const e = await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ fail: 0x0142, text: 'the peer says no' }] }), 0x0142, 'an RpcError with an application code');
        equal(e.text, 'the peer says no', 'the callee\'s text');
        await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ fail: StatusCode.PERMISSION_DENIED }] }), StatusCode.PERMISSION_DENIED, 'PERMISSION_DENIED');
        const thrown = await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ throw: 'boom' }] }), StatusCode.UNKNOWN, 'a plain Error');
        equal(thrown.text, 'boom', 'the thrown error\'s message');
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'unary', requests: ['fine'] }), { responses: [{ echo: 'fine' }] }, 'a callback after the failures');
      });
    },
  },
  {
    name: 'rpc callback: a callee slower than timeout_ms fails the callback with DEADLINE_EXCEEDED and is aborted',
    async run(env) {
      const { StatusCode, RpcError } = env.wsmux;
      await withRpc(env, async ({ jsonClient, seen }) => {
        await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [{ hang: true }], timeout_ms: 50 }), StatusCode.DEADLINE_EXCEEDED, 'a hanging unary callee');
        equal(seen.unary.timeoutMs, 50, 'the deadline the handler saw');
        await until(() => seen.hangReason !== undefined, 2000, 'the handler\'s abort');
        check(seen.hangReason instanceof RpcError, `the signal's reason is an RpcError: ${seen.hangReason}`);
        // Ours (DEADLINE_EXCEEDED) or the server's cancellation at its own deadline (CANCELLED).
        check([StatusCode.DEADLINE_EXCEEDED, StatusCode.CANCELLED].includes(seen.hangReason.code), `the abort's code: ${seen.hangReason.code}`);

        await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'bidi', requests: ['a', 'hang'], timeout_ms: 100 }), StatusCode.DEADLINE_EXCEEDED, 'a bidi callee that stops answering');
        await until(() => seen.bidiHangReason !== undefined, 2000, 'the bidi handler\'s abort');
        sameJson(await jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [1] }), { responses: [{ echo: 1 }] }, 'a callback after the deadlines');
      });
    },
  },
  {
    name: 'rpc callback: a bad kind, the wrong number of requests or a bad timeout_ms is INVALID_ARGUMENT; timeout_ms 0 is DEADLINE_EXCEEDED',
    async run(env) {
      const { StatusCode } = env.wsmux;
      await withRpc(env, async ({ jsonClient }) => {
        await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'sideways', requests: [1] }), StatusCode.INVALID_ARGUMENT, 'kind "sideways"');
        await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [1, 2] }), StatusCode.INVALID_ARGUMENT, 'unary with two requests');
        await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'server_streaming', requests: [] }), StatusCode.INVALID_ARGUMENT, 'server_streaming with none');
        await failsWith(env, jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [1], timeout_ms: 1.5 }), StatusCode.INVALID_ARGUMENT, 'timeout_ms 1.5');
        // timeout_ms 0 is not "no deadline" here but a deadline already passed: the server
        // fails the call before it opens any callback, so even a callee that answers at once
        // cannot make it succeed.
        const started = Date.now();
        await failsWith(env, within(5_000, jsonClient.unary('interop.json.callback', { kind: 'unary', requests: [1], timeout_ms: 0 }), 'the callback'), StatusCode.DEADLINE_EXCEEDED, 'timeout_ms 0');
        check(Date.now() - started < 1000, `timeout_ms 0 failed after ${Date.now() - started} ms`);
      });
    },
  },
];
