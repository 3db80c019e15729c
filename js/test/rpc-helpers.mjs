// Shared helpers of the RPC tests (not a test file itself): the RPC exports, the vectors, and
// a pair of JS sessions over real WebSockets (a `ws` WebSocketServer with Session.accept on
// one side, connect() on the other).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, WebSocket } from 'ws';
import * as wsmux from '../dist/index.js';

export const {
  RpcClient,
  Router,
  RpcError,
  RpcHeaders,
  StatusCode,
  statusName,
  encodeCallHeader,
  decodeCallHeader,
  encodeRpcMessage,
  decodeRpcMessage,
  json,
  raw,
  Session,
  connect,
  ErrorCode,
  ResetError,
  decodeFrame,
  encodeFrame,
} = wsmux;

export const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
export const toHex = (b) => Buffer.from(b).toString('hex');
export const bytes = (s) => new TextEncoder().encode(s);
export const str = (b) => new TextDecoder().decode(b);

export const rpcVectors = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../proto/vectors/rpc.json', import.meta.url)), 'utf8'),
);

/** Resolves with the rejection of `promise` (fails if it resolves). */
export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** Resolves once `signal` is aborted, with its reason. */
export function aborted(signal) {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

/**
 * A `ws` WebSocketServer whose connections run Session.accept; `onSession(session)` runs for
 * each. Returns { url, sessions, close() }.
 */
export async function startServer(onSession) {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    handleProtocols: (protocols) => (protocols.has('wsmux.v1') ? 'wsmux.v1' : false),
  });
  const sessions = [];
  wss.on('connection', (socket) => {
    const session = Session.accept(socket, { keepaliveInterval: 0 });
    sessions.push(session);
    onSession(session);
  });
  await new Promise((r) => wss.once('listening', r));
  return {
    url: `ws://127.0.0.1:${wss.address().port}/mux`,
    sessions,
    async close() {
      for (const s of sessions) s.close(ErrorCode.INTERNAL, 'test over');
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}

/** A client session to `url` (keepalive off: tests are short). */
export function connectTo(url, options = {}) {
  return connect(url, { WebSocket, keepaliveInterval: 0, ...options });
}

const MAX_EXACT = Number.MAX_SAFE_INTEGER;
const fatal = new TextDecoder('utf-8', { fatal: true });

/**
 * The reference server's RPC interop methods (PROTOCOL.md section 14), written on this
 * library's Router with the raw codec (interop.json.sum parses its JSON itself, so that its
 * answer has the exact bytes the spec gives).
 */
export function interopRouter(router = new Router({ codec: raw })) {
  const invalid = (why) => new RpcError(StatusCode.INVALID_ARGUMENT, why);
  return router
    .unary('interop.unary', (req) => req)
    .unary('interop.fail', (req) => {
      if (req.length < 2) throw invalid('a code needs two bytes');
      const code = (req[0] << 8) | req[1];
      if (code === 0) throw invalid('code 0 is not a failure');
      let text;
      try {
        text = fatal.decode(req.subarray(2));
      } catch {
        throw invalid('the text is not UTF-8');
      }
      throw new RpcError(code, text);
    })
    .unary('interop.header', (req, ctx) => {
      const value = ctx.headers.get(str(req));
      if (value === undefined) throw new RpcError(StatusCode.NOT_FOUND, `no header ${str(req)}`);
      return value;
    })
    .unary('interop.hang', () => new Promise(() => {}))
    .serverStreaming('interop.count', function* (req) {
      const s = str(req);
      if (!/^[0-9]+$/.test(s) || Number(s) > 65536) throw invalid('not a count');
      for (let i = 0; i < Number(s); i++) yield bytes(String(i));
    })
    .clientStreaming('interop.concat', async (requests) => {
      const parts = [];
      let total = 0;
      for await (const r of requests) {
        total += r.length;
        if (total > 1048576) throw new RpcError(StatusCode.OUT_OF_RANGE, 'more than 1 MiB');
        parts.push(r);
      }
      return Buffer.concat(parts);
    })
    .bidi('interop.echo', async function* (requests) {
      for await (const r of requests) yield r;
    })
    .unary('interop.json.sum', (req) => {
      const values = JSON.parse(str(req));
      if (!Array.isArray(values) || !values.every(Number.isInteger)) throw invalid('not an array of integers');
      let sum = 0;
      for (const v of values) {
        sum += v;
        if (Math.abs(v) > MAX_EXACT || Math.abs(sum) > MAX_EXACT) throw new RpcError(StatusCode.OUT_OF_RANGE, 'beyond 2^53 - 1');
      }
      return bytes(JSON.stringify({ sum, count: values.length }));
    });
}
