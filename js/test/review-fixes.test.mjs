// Defects a review found, each pinned: abuse of the accept backlog, keepalive timers that
// multiplied, session credit held by unread parts of ended channels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../dist/index.js';
import { scripted, ticks, kill, settle } from './harness.mjs';

const byType = (frames, type) => frames.filter((f) => f.type === type);
const open = (id, extra = {}) => ({ type: 'OPEN', id, fin: false, eom: false, route: 'r', metadata: new Uint8Array(0), payload: new Uint8Array(0), ...extra });

test('opens the peer resets before the application asks are not queued for it; a later one is handed on', async () => {
  const { socket, session } = scripted('server');
  for (let i = 0; i < 300; i++) {
    const id = 2 * i + 1;
    socket.receive(open(id, { metadata: new Uint8Array(1024) }));
    socket.receive({ type: 'RESET', id, code: ErrorCode.CANCEL, reason: '' });
  }
  socket.receive(open(601));
  await ticks(2);
  assert.equal(session.stats().state, 'open');
  const { value } = await settle(session.incoming[Symbol.asyncIterator]().next());
  assert.equal(value.id, 601, 'the reset ones were skipped, the live one delivered first');
  kill(socket);
});

test('answered ping() calls re-arm the one keepalive timer, they do not add timers', async () => {
  const { socket, session } = scripted('server', { keepaliveInterval: 40 });
  const answer = async () => {
    for (let i = 0; i < 20; i++) {
      await ticks(1);
      for (const p of byType(socket.take(), 'PING').filter((f) => !f.ack)) {
        socket.receive({ type: 'PING', ack: true, data: p.data });
        return 1;
      }
    }
    return 0;
  };
  for (let i = 0; i < 10; i++) {
    const rtt = session.ping();
    await answer();
    await settle(rtt);
    await settle(new Promise((r) => setTimeout(r, 4))); // staggered, as a page showing the RTT
  }
  // Over the next 200 ms (five intervals) count the keepalive PINGs, answering each.
  let pings = 0;
  const end = Date.now() + 200;
  while (Date.now() < end) {
    await settle(new Promise((r) => setTimeout(r, 5)));
    for (const p of byType(socket.take(), 'PING').filter((f) => !f.ack)) {
      pings++;
      socket.receive({ type: 'PING', ack: true, data: p.data });
    }
  }
  // One chain gives at most ~5 (timers only run late, never early); the bug gave 32.
  assert.ok(pings >= 1 && pings <= 7, `about one PING per 40 ms interval, got ${pings} in 200 ms`);
  kill(socket);
});

test('unread parts of a channel over on the wire give their session credit back, stay readable, and are not credited twice', async () => {
  const { socket, session } = scripted('server', { sessionWindow: 65536, maxSessionWindow: 65536, initialWindow: 65536 });
  socket.receive(open(1, { eom: true, payload: new Uint8Array(16000).fill(7) }));
  socket.receive({ type: 'DATA', id: 1, eom: true, fin: true, payload: new Uint8Array(16000).fill(8) });
  const { value: ch } = await settle(session.incoming[Symbol.asyncIterator]().next());
  ch.accept();
  await ticks(2);
  assert.deepEqual(byType(socket.take(), 'WINDOW'), [], 'nothing back while the channel lives unread');
  await settle(ch.finish()); // FIN both ways: the channel is over on the wire
  await ticks(2);
  const back = byType(socket.take(), 'WINDOW').map((f) => [f.id, f.increment]);
  assert.deepEqual(back, [[0, 2 * 16064]], 'the session credit of the two unread messages');
  assert.equal(session.stats().peerCredit, 65536);
  assert.equal((await settle(ch.recv())).length, 16000, 'still readable');
  assert.equal((await settle(ch.recv()))[0], 8);
  assert.equal(await settle(ch.recv()), null);
  await ticks(2);
  assert.deepEqual(byType(socket.take(), 'WINDOW'), [], 'reading it returns nothing more');
  assert.equal(session.stats().peerCredit, 65536);
  kill(socket);
});

test('done of a stream nobody iterates settles when the callee resets or the session is lost', async () => {
  const { Router, RpcClient, StatusCode } = await import('../dist/index.js');
  const { startServer, connectTo } = await import('./rpc-helpers.mjs');
  const server = await startServer((session) => {
    new Router()
      .serverStreaming('never', async function* (_req, ctx) {
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      })
      .serve(session);
  });
  try {
    const session = await connectTo(server.url);
    const client = new RpcClient(session);
    const call = client.serverStreaming('never', 1);
    const bidi = client.bidi('never');
    await settle(new Promise((r) => setTimeout(r, 50)));
    for (const s of server.sessions) s.close(ErrorCode.INTERNAL, 'server going down');
    await assert.rejects(settle(call.done), (e) => e.code === StatusCode.UNAVAILABLE || e.code === StatusCode.UNKNOWN || e.code === StatusCode.CANCELLED);
    await assert.rejects(settle(bidi.done));
  } finally {
    await server.close();
  }
});

test('opens stopped after a whole request stay in the backlog until taken: past it the peer is refused', async () => {
  const { socket, session } = scripted('server', { acceptBacklog: 8 });
  for (let i = 0; i < 20; i++) {
    const id = 2 * i + 1;
    socket.receive(open(id, { eom: true, fin: true, payload: new Uint8Array(100) }));
    socket.receive({ type: 'STOP', id, code: ErrorCode.CANCEL, reason: '' });
  }
  await ticks(2);
  const refused = byType(socket.take(), 'RESET').filter((f) => f.code === ErrorCode.REFUSED);
  assert.equal(refused.length, 12, 'eight wait to be taken; the other twelve are refused');
  const { value } = await settle(session.incoming[Symbol.asyncIterator]().next());
  assert.equal((await settle(value.recv())).length, 100, 'a waiting request is still readable');
  kill(socket);
});
