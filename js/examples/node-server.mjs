// A wsmux server in Node: the `ws` package upgrades the HTTP request, Session.accept speaks
// wsmux over it, and the routes of PROTOCOL.md section 14 (echo, discard, source) run on the
// channels the client opens. Run it and point any client at it, the Rust one for example:
//
//   node examples/node-server.mjs --listen 127.0.0.1:9100
//   cargo run --release --example client -- --url ws://127.0.0.1:9100/mux
//
// Imported, `startNodeServer()` returns the server and what its routes counted (the tests
// check the Rust client against it).
import { WebSocketServer } from 'ws';
import { ErrorCode, Session, messageLimit, resolveConfig } from '../dist/index.js';

const SUBPROTOCOL = 'wsmux.v1';
const SOURCE_MESSAGE = 64 * 1024;

/** Serves one session's channels until it ends. `counts` collects bytes per route. */
export async function serve(session, counts = { echoed: 0, discarded: 0, sourced: 0 }) {
  for await (const ch of session.incoming) {
    const route = routes[ch.route];
    if (route === undefined) {
      ch.refuse(ErrorCode.NOT_FOUND, `no route ${JSON.stringify(ch.route)}`);
      continue;
    }
    // Each channel runs on its own; one failing (a reset by the peer) leaves the others be.
    route(ch, counts).catch(() => {});
  }
  return counts;
}

const routes = {
  async echo(ch, counts) {
    for await (const m of ch) {
      await ch.send(m);
      counts.echoed += m.length;
    }
    await ch.finish();
  },
  async discard(ch, counts) {
    for await (const m of ch) counts.discarded += m.length;
    await ch.finish();
  },
  async source(ch, counts) {
    const text = new TextDecoder().decode(ch.metadata).trim();
    if (!/^\d+$/.test(text)) {
      ch.refuse(ErrorCode.PROTOCOL, 'source: the metadata is not a byte count');
      return;
    }
    const block = new Uint8Array(SOURCE_MESSAGE).map((_, i) => i % 251);
    let left = Number(text);
    while (left > 0) {
      const n = Math.min(left, block.length);
      await ch.send(n === block.length ? block : block.subarray(0, n));
      counts.sourced += n;
      left -= n;
    }
    await ch.finish();
  },
};

/**
 * Listens on `host:port` (port 0: a free one) at path `/mux`.
 * @returns {Promise<{ url: string, counts: object, sessions: Set, close(): Promise<void> }>}
 */
export async function startNodeServer({ host = '127.0.0.1', port = 0, options = {} } = {}) {
  const counts = { echoed: 0, discarded: 0, sourced: 0 };
  const sessions = new Set();
  const wss = new WebSocketServer({
    host,
    port,
    path: '/mux',
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    // The largest message a wsmux peer may send under these options (82183 bytes by
    // default): ws refuses larger ones before buffering them (its own default is 100 MiB).
    maxPayload: messageLimit(resolveConfig(options)),
  });
  wss.on('connection', (socket) => {
    let session;
    try {
      session = Session.accept(socket, options);
    } catch (e) {
      // A client that did not offer wsmux.v1: accept() closed the socket with 1002.
      console.error(`refused a connection: ${e.message}`);
      return;
    }
    sessions.add(session);
    session.closed.catch(() => {}).finally(() => sessions.delete(session));
    serve(session, counts).catch(() => {});
  });
  await new Promise((resolve, reject) => wss.once('listening', resolve).once('error', reject));
  const address = wss.address();
  return {
    url: `ws://${address.address}:${address.port}/mux`,
    counts,
    sessions,
    close: () =>
      new Promise((resolve) => {
        for (const s of sessions) s.close();
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf('--listen');
  const [host, port] = (at > 0 ? process.argv[at + 1] : '127.0.0.1:9100').split(':');
  const server = await startNodeServer({ host, port: Number(port) });
  console.log(`wsmux Node server on ${server.url} (routes echo, discard, source)`);
}
