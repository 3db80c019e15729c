// Every vector of proto/vectors/rpc.json (PROTOCOL.md sections 16 and 17): call headers and
// messages decode and re-encode exactly, invalid ones are refused with the spec's code, the
// worked-example frames carry them, and the interop calls replay against this library's own
// callee (and its caller writes the worked example byte for byte).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { scripted, until, kill } from './harness.mjs';
import {
  RpcClient,
  RpcError,
  StatusCode,
  encodeCallHeader,
  decodeCallHeader,
  encodeRpcMessage,
  decodeRpcMessage,
  decodeFrame,
  encodeFrame,
  interopRouter,
  raw,
  hex,
  toHex,
  rpcVectors as V,
  rejection,
} from './rpc-helpers.mjs';

describe('call headers', () => {
  for (const v of V.headers) {
    test(`decodes and re-encodes ${v.name}`, () => {
      const h = decodeCallHeader(hex(v.hex));
      assert.equal(h.timeoutMs, v.timeout_ms);
      assert.deepEqual(
        h.headers.map(([n, value]) => [n, toHex(value)]),
        v.headers,
      );
      const headers = v.headers.map(([n, value]) => [n, hex(value)]);
      assert.equal(toHex(encodeCallHeader({ timeoutMs: v.timeout_ms, headers })), v.hex);
    });
  }
  for (const v of V.invalid_headers) {
    test(`refuses ${v.name} with INVALID_ARGUMENT`, () => {
      assert.throws(
        () => decodeCallHeader(hex(v.hex)),
        (e) => e instanceof RpcError && e.code === StatusCode.INVALID_ARGUMENT,
      );
    });
  }
  test('encoding refuses what the header cannot carry', () => {
    const h = (headers, timeoutMs = 0) => () => encodeCallHeader({ timeoutMs, headers });
    assert.throws(h([['', new Uint8Array()]]), RangeError);
    assert.throws(h([['x'.repeat(256), new Uint8Array()]]), RangeError);
    assert.throws(h([['x', new Uint8Array(65536)]]), RangeError);
    assert.throws(h(Array.from({ length: 65 }, () => ['z', new Uint8Array()])), RangeError);
    assert.throws(h([], 2 ** 32), RangeError);
    assert.throws(h([], 1.5), RangeError);
    assert.equal(encodeCallHeader({ timeoutMs: 0, headers: Array.from({ length: 64 }, () => ['z', new Uint8Array()]) }).length, 4 + 64 * 4);
  });
});

describe('call messages', () => {
  for (const v of V.messages) {
    test(`decodes and re-encodes ${v.name}`, () => {
      const m = decodeRpcMessage(hex(v.hex));
      if (v.kind === 'DATA') {
        assert.equal(m.kind, 'data');
        assert.equal(toHex(m.value), v.value_hex);
      } else {
        assert.equal(m.kind, 'status');
        assert.equal(m.code, v.code);
        assert.equal(m.text, v.text);
      }
      assert.equal(toHex(encodeRpcMessage(m)), v.hex);
    });
  }
  for (const v of V.invalid_messages) {
    test(`refuses ${v.name} as a broken call (INTERNAL)`, () => {
      assert.throws(
        () => decodeRpcMessage(hex(v.hex)),
        (e) => e instanceof RpcError && e.code === StatusCode.INTERNAL,
      );
    });
  }
  test('a STATUS text is cut to 1024 bytes at a character boundary; a longer one is accepted', () => {
    const m = encodeRpcMessage({ kind: 'status', code: 2, text: 'é'.repeat(600) });
    assert.equal(m.length, 3 + 1024);
    const long = new Uint8Array(3 + 3000).fill(0x61);
    long.set([1, 0, 2]);
    assert.equal(decodeRpcMessage(long).text.length, 3000);
    const odd = encodeRpcMessage({ kind: 'status', code: 2, text: 'a' + 'é'.repeat(600) });
    assert.equal(odd.length, 3 + 1023, 'the last é would be cut in two: left out');
  });
});

describe('worked-example frames', () => {
  const frame = (name) => decodeFrame(hex(V.frames.find((f) => f.name === name).hex));
  test('unary-request: OPEN EOM|FIN, kv.get, 250 ms + trace=ab, DATA 016b', () => {
    const f = frame('unary-request');
    assert.deepEqual([f.type, f.id, f.eom, f.fin, f.route], ['OPEN', 1, true, true, 'kv.get']);
    const h = decodeCallHeader(f.metadata);
    assert.equal(h.timeoutMs, 250);
    assert.deepEqual(h.headers.map(([n, v]) => [n, toHex(v)]), [['trace', '6162']]);
    assert.deepEqual(decodeRpcMessage(f.payload), { kind: 'data', value: hex('016b') });
  });
  test('unary-answer: DATA EOM|FIN, value 07', () => {
    const f = frame('unary-answer');
    assert.deepEqual([f.type, f.id, f.eom, f.fin], ['DATA', 1, true, true]);
    assert.deepEqual(decodeRpcMessage(f.payload), { kind: 'data', value: hex('07') });
  });
  test('unary-failure: DATA EOM|FIN, STATUS NOT_FOUND "no such key"', () => {
    const f = frame('unary-failure');
    assert.deepEqual(decodeRpcMessage(f.payload), { kind: 'status', code: 5, text: 'no such key' });
  });
});

/** The messages a session sent on channel `id`, the RESET if any, and whether FIN came. */
function channelOutput(socket, id) {
  const out = { messages: [], fin: false, reset: null, frames: [] };
  let partial = [];
  for (const f of socket.frames()) {
    if (f.id !== id) continue;
    out.frames.push(f);
    if (f.type === 'RESET') out.reset = f.code;
    if (f.type !== 'DATA' && f.type !== 'OPEN') continue;
    partial.push(f.payload);
    if (f.eom) {
      out.messages.push(Buffer.concat(partial));
      partial = [];
    }
    if (f.fin) out.fin = true;
  }
  return out;
}

describe('interop calls against this library\'s callee (the interop methods on a Router)', () => {
  for (const v of V.interop) {
    test(v.name, async () => {
      const { socket, session } = scripted('server');
      void interopRouter().serve(session);
      for (const r of v.requests) socket.receive(r);
      await until(() => channelOutput(socket, 1).fin || channelOutput(socket, 1).reset !== null, 2000, 'the answer');
      const out = channelOutput(socket, 1);
      assert.equal(out.reset, null, 'no RESET');
      const expected = v.answers.slice();
      if (v.status !== undefined) {
        const last = decodeRpcMessage(out.messages.at(-1));
        assert.equal(last.kind, 'status');
        assert.equal(last.code, v.status);
        if (v.status_text !== undefined) assert.equal(last.text, v.status_text);
        out.messages.pop();
      }
      assert.deepEqual(out.messages.map(toHex), expected);
      if (v.answer_frame !== undefined) {
        assert.equal(out.frames.length, 1);
        assert.equal(toHex(encodeFrame(out.frames[0])), v.answer_frame);
      }
      if (v.status === undefined && v.answers.length <= 1 && v.requests.length === 1) {
        assert.equal(out.frames.length, 1, 'a unary answer is one frame with EOM|FIN');
      }
      kill(socket);
    });
  }
});

describe('the caller writes the worked example', () => {
  test('a unary call is one OPEN frame with the call header and the request; the answer resolves it', async () => {
    const { socket, session } = scripted('client');
    const client = new RpcClient(session, { codec: raw });
    const answer = client.unary('kv.get', hex('016b'), { timeout: 250, headers: [['trace', 'ab']] });
    await until(() => socket.frames().some((f) => f.type === 'OPEN'), 2000, 'the OPEN');
    const open = socket.frames().find((f) => f.type === 'OPEN');
    assert.equal(toHex(encodeFrame(open)), V.frames.find((f) => f.name === 'unary-request').hex);
    socket.receive(V.frames.find((f) => f.name === 'unary-answer').hex);
    assert.deepEqual(await answer, hex('07'));
    kill(socket);
  });
  test('the failure frame rejects with NOT_FOUND and its text', async () => {
    const { socket, session } = scripted('client');
    const client = new RpcClient(session, { codec: raw });
    const answer = client.unary('kv.get', hex('016b'));
    await until(() => socket.frames().some((f) => f.type === 'OPEN'), 2000, 'the OPEN');
    socket.receive(V.frames.find((f) => f.name === 'unary-failure').hex);
    const e = await rejection(answer);
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, StatusCode.NOT_FOUND);
    assert.equal(e.codeName, 'NOT_FOUND');
    assert.equal(e.text, 'no such key');
    kill(socket);
  });
  test('interop requests of the vectors are what the caller sends', async () => {
    const { socket, session } = scripted('client');
    const client = new RpcClient(session, { codec: raw });
    void client.unary('interop.unary', new TextEncoder().encode('hi')).catch(() => {});
    await until(() => socket.frames().some((f) => f.type === 'OPEN'), 2000, 'the OPEN');
    const open = socket.frames().find((f) => f.type === 'OPEN');
    assert.equal(toHex(encodeFrame(open)), V.interop.find((v) => v.name === 'interop-unary').requests[0]);
    kill(socket);
  });
});
