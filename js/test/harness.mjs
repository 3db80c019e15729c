// Shared helpers of the unit tests (not a test file itself): hex, a scripted in-memory
// WebSocket, and a pair of sockets joined back to back.
import { Session, decodeMessage, encodeFrame, encodePack, ErrorCode } from '../dist/index.js';

export const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
export const toHex = (b) => Buffer.from(b).toString('hex');
export const text = (s) => new TextEncoder().encode(s);
export const str = (b) => new TextDecoder().decode(b);

/** Lets every queued microtask and one macrotask turn run. */
export const tick = () => new Promise((r) => setImmediate(r));
export async function ticks(n = 5) {
  for (let i = 0; i < n; i++) await tick();
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `cond()` is true (checked each macrotask turn), or fails after `ms`. */
export async function until(cond, ms = 2000, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

/**
 * A WebSocket whose other end is the test: `receive()` delivers a binary message to the
 * session, `sent` holds what the session wrote, `frames()` decodes it. close() records the
 * code and fires the close event on the next turn, as a real close handshake would.
 */
export class FakeSocket {
  binaryType = 'blob';
  bufferedAmount = 0;
  readyState = 1;
  protocol = 'wsmux.v1';
  sent = [];
  closeCode = undefined;
  closeReason = undefined;
  #listeners = new Map();
  #read = 0;

  addEventListener(type, fn) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(fn);
  }
  removeEventListener(type, fn) {
    this.#listeners.get(type)?.delete(fn);
  }
  #emit(type, event) {
    for (const fn of [...(this.#listeners.get(type) ?? [])]) fn(event);
  }
  send(data) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(Uint8Array.from(data));
  }
  close(code, reason) {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.closeCode = code;
    this.closeReason = reason;
    setImmediate(() => this.fireClose(code ?? 1005, reason ?? ''));
  }
  /** The peer's message (bytes, a hex string, or a frame object). */
  receive(message) {
    const bytes = typeof message === 'string' ? hex(message) : message instanceof Uint8Array ? message : encodeFrame(message);
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    this.#emit('message', { data: buf });
  }
  /** Several frames (objects or bytes) in one PACK. */
  receivePack(frames) {
    this.receive(encodePack(frames.map((f) => (f instanceof Uint8Array ? f : encodeFrame(f)))));
  }
  receiveText(s) {
    this.#emit('message', { data: s });
  }
  fireClose(code = 1006, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.#emit('close', { code, reason });
  }
  /** Every frame the session sent so far, PACKs unpacked. */
  frames() {
    return this.sent.flatMap((m) => decodeMessage(m));
  }
  /** The frames sent since the last call. */
  take() {
    const out = this.sent.slice(this.#read).flatMap((m) => decodeMessage(m));
    this.#read = this.sent.length;
    return out;
  }
}

/** The reference SETTINGS a peer sends, as a frame object. */
export function settingsFrame(over = {}) {
  return {
    type: 'SETTINGS',
    settings: {
      version: 1,
      initialWindow: 262144,
      maxFramePayload: 16384,
      maxMessageSize: 16777216,
      maxChannels: 256,
      sessionWindow: 262144,
      ...over,
    },
  };
}

/**
 * A session of `role` over a FakeSocket, with the test as its peer. `settings`: the peer's
 * SETTINGS to deliver at once (false: none). Keepalive is off unless options say otherwise.
 */
export function scripted(role, options = {}, settings = {}) {
  const socket = new FakeSocket();
  const session =
    role === 'server'
      ? Session.accept(socket, { keepaliveInterval: 0, ...options })
      : Session.client(socket, { keepaliveInterval: 0, ...options });
  if (settings !== false) socket.receive(settingsFrame(settings));
  return { socket, session };
}

/** Two FakeSockets joined back to back: what one sends, the other receives on a later turn. */
export function socketPair() {
  const a = new FakeSocket();
  const b = new FakeSocket();
  const link = (from, to) => {
    from.send = (data) => {
      if (from.readyState !== 1) return;
      const copy = Uint8Array.from(data);
      from.sent.push(copy);
      setImmediate(() => {
        if (to.readyState === 1) to.receive(copy);
      });
    };
    from.close = (code, reason) => {
      if (from.readyState >= 2) return;
      from.readyState = 2;
      from.closeCode = code;
      // The close handshake: both ends see the close once the frames before it are delivered.
      setImmediate(() =>
        setImmediate(() => {
          from.fireClose(code ?? 1005, reason ?? '');
          to.fireClose(code ?? 1005, reason ?? '');
        }),
      );
    };
  };
  link(a, b);
  link(b, a);
  return [a, b];
}

/** A client and a server session joined in memory. */
export function sessionPair(clientOptions = {}, serverOptions = clientOptions) {
  const [a, b] = socketPair();
  const client = Session.client(a, { keepaliveInterval: 0, ...clientOptions });
  const server = Session.accept(b, { keepaliveInterval: 0, ...serverOptions });
  return { client, server, clientSocket: a, serverSocket: b };
}

/** Drops a session at the end of a test: the transport goes away, every timer stops. */
export function kill(...sockets) {
  for (const s of sockets) s.fireClose(1006, 'test over');
}

export { ErrorCode };

/** Awaits `promise` while keeping the event loop alive (a session's own timers are unref'd,
 * and a FakeSocket holds nothing open). */
export async function settle(promise, ms = 5000) {
  const keep = setTimeout(() => {}, ms);
  try {
    return await promise;
  } finally {
    clearTimeout(keep);
  }
}
