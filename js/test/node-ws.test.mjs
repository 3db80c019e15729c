// Node to Node over real WebSockets: connect() to a `ws` WebSocketServer whose connection
// handler runs Session.accept; echo traffic both ways, channels opened by both ends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, WebSocket } from 'ws';
import { Session, connect, ErrorCode, ResetError, SessionError, messageLimit, resolveConfig } from '../dist/index.js';
import { text, str } from './harness.mjs';

let wss;
let url;
const serverSessions = [];

/** The server: `echo` sends every message back and finishes after the peer; `ask` makes the
 * server open a channel to the client and report what came back. */
async function serve(session) {
  for await (const ch of session.incoming) {
    if (ch.route === 'echo') {
      (async () => {
        for await (const m of ch) await ch.send(m);
        await ch.finish();
      })().catch(() => {});
    } else if (ch.route === 'ask') {
      (async () => {
        const question = await ch.recvText();
        const back = session.open('client.upper', { message: text(question), finish: true });
        const answer = await back.recvText();
        await ch.sendText(`client said ${answer}`);
        await ch.finish();
      })().catch(() => {});
    } else {
      ch.refuse(ErrorCode.NOT_FOUND, `no route ${ch.route}`);
    }
  }
}

before(async () => {
  wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    maxPayload: messageLimit(resolveConfig()),
    handleProtocols: (protocols) => (protocols.has('wsmux.v1') ? 'wsmux.v1' : false),
  });
  wss.on('connection', (socket) => {
    const session = Session.accept(socket);
    serverSessions.push(session);
    serve(session).catch(() => {});
  });
  await new Promise((r) => wss.once('listening', r));
  url = `ws://127.0.0.1:${wss.address().port}/mux`;
});

after(async () => {
  await new Promise((r) => wss.close(r));
});

test('connect, echo, both ends open channels, clean close', async () => {
  const session = await connect(url, { WebSocket });
  assert.equal(session.role, 'client');
  assert.equal(session.protocol, 'wsmux.v1');
  await session.ready;

  // The client serves `client.upper` for the server.
  const serving = (async () => {
    for await (const ch of session.incoming) {
      assert.equal(ch.route, 'client.upper');
      assert.equal(ch.id % 2, 0, 'server-opened ids are even');
      const m = await ch.recvText();
      await ch.sendText(m.toUpperCase());
      await ch.finish();
    }
  })();

  const echo = session.open('echo');
  assert.equal(echo.id, 1);
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  await Promise.all([echo.sendText('hello'), echo.send(big), echo.send(new Uint8Array(0))]);
  assert.equal(await echo.recvText(), 'hello');
  assert.deepEqual(await echo.recv(), big);
  assert.equal((await echo.recv()).length, 0, 'an empty message');
  await echo.finish();
  assert.equal(await echo.recv(), null, 'clean end after the peer finished');

  const ask = session.open('ask', { message: text('ping'), finish: true });
  assert.equal(await ask.recvText(), 'client said PING');
  assert.equal(await ask.recv(), null);

  // Many channels at once, each a unary request.
  const answers = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const ch = session.open('echo', { message: text(`m${i}`), finish: true });
      const m = await ch.recvText();
      assert.equal(await ch.recv(), null);
      return m;
    }),
  );
  assert.deepEqual(answers, Array.from({ length: 50 }, (_, i) => `m${i}`));

  const missing = session.open('nowhere');
  await assert.rejects(missing.recv(), (e) => e instanceof ResetError && e.code === ErrorCode.NOT_FOUND);

  const rtt = await session.ping();
  assert.ok(rtt >= 0);
  assert.ok(session.stats().rtt >= 0);

  await session.close();
  await session.closed;
  await serving;
  const server = serverSessions.at(-1);
  await server.closed; // the server's session ends cleanly too
});

test('streams over a real WebSocket', async () => {
  const session = await connect(url, { WebSocket });
  const ch = session.open('echo');
  const writer = ch.writable.getWriter();
  const reader = ch.readable.getReader();
  await writer.write(text('one'));
  await writer.write(text('two'));
  await writer.close();
  const got = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    got.push(str(value));
  }
  assert.deepEqual(got, ['one', 'two']);
  await session.close();
});

test('a server that does not select wsmux.v1 is refused', async () => {
  const other = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'other' });
  await new Promise((r) => other.once('listening', r));
  const u = `ws://127.0.0.1:${other.address().port}/`;
  // ws itself rejects a subprotocol that was not offered; offering both lets the check be ours.
  await assert.rejects(connect(u, { WebSocket, protocols: ['wsmux.v1', 'other'] }), /subprotocol "other", not wsmux.v1/);
  await assert.rejects(connect(u, { WebSocket }), /failed/);
  await new Promise((r) => other.close(r));
});

test('a session error of the server reaches the client with its code', async () => {
  const session = await connect(url, { WebSocket });
  await session.ready;
  const server = serverSessions.at(-1);
  server.close(0x1234, 'application says bye');
  await assert.rejects(session.closed, (e) => e instanceof SessionError && e.code === 0x1234 && e.origin === 'remote');
  await assert.rejects(server.closed, (e) => e instanceof SessionError && e.code === 0x1234 && e.origin === 'local');
});

test('connect() fails cleanly without a server and with an aborted signal', async () => {
  await assert.rejects(connect('ws://127.0.0.1:1/mux', { WebSocket }), /failed|closed/);
  const ac = new AbortController();
  const p = connect(url, { WebSocket, signal: ac.signal });
  ac.abort(new Error('never mind'));
  await assert.rejects(p, /never mind/);
  await assert.rejects(connect(url, {}), TypeError, 'Node 20 has no global WebSocket');
});
