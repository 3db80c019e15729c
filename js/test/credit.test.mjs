// Flow control (PROTOCOL.md section 8), messages and fragmentation (section 5), scheduling
// (section 8, last rule) and local backpressure (DESIGN.md section 10).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, ResetError, MessageTooLargeError } from '../dist/index.js';
import { scripted, sessionPair, text, ticks, kill, sleep, settle } from './harness.mjs';

const byType = (frames, type) => frames.filter((f) => f.type === type);
const open = (id, extra = {}) => ({ type: 'OPEN', id, fin: false, eom: false, route: 'r', metadata: new Uint8Array(0), payload: new Uint8Array(0), ...extra });
const data = (id, n, { eom = true, fin = false, fill = 0 } = {}) => ({ type: 'DATA', id, fin, eom, payload: new Uint8Array(n).fill(fill) });

async function accepted(session) {
  const { value } = await session.incoming[Symbol.asyncIterator]().next();
  return value.accept();
}

describe('receiving: credit goes back as the application reads', () => {
  test('nothing is returned until read; then WINDOW per quarter window, channel and session', async () => {
    const { socket, session } = scripted('server');
    socket.receive(open(1));
    for (let i = 0; i < 15; i++) socket.receive(data(1, 16384));
    const ch = await accepted(session);
    await ticks(2);
    // No credit for unread parts; but the peer is short of session credit (less than a
    // quarter left after 12 parts), so the session window doubles once (section 8, first case).
    const early = byType(socket.take(), 'WINDOW').map((f) => [f.id, f.increment]);
    assert.deepEqual(early, [[0, 262144]], 'only the session window\'s growth');
    assert.equal(session.stats().sessionWindow, 524288);
    assert.equal(ch.stats().unreadMessages, 15);
    assert.equal(ch.stats().peerCredit, 262144 - 15 * 16448);
    for (let i = 0; i < 3; i++) await ch.recv();
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'WINDOW'), [], '3 × 16448 is under a quarter of 262144');
    await ch.recv();
    await ticks(2);
    const windows = byType(socket.take(), 'WINDOW').map((f) => [f.id, f.increment]);
    assert.deepEqual(windows, [[1, 4 * 16448]], 'the channel\'s quarter; the session\'s is 131072 now');
    assert.equal(ch.stats().peerCredit, 262144 - 11 * 16448);
    for (let i = 0; i < 4; i++) await ch.recv();
    await ticks(2);
    const session8 = byType(socket.take(), 'WINDOW').filter((f) => f.id === 0);
    assert.deepEqual(session8.map((f) => f.increment), [8 * 16448], 'the session\'s quarter, after 8 reads');
    kill(socket);
  });

  test('a part over the channel credit is FLOW_CONTROL; empty messages cost 64 each', async () => {
    const { socket, session } = scripted('server', { initialWindow: 65536, sessionWindow: 1 << 20 });
    socket.receive(open(1));
    for (let i = 0; i < 1024; i++) socket.receive(data(1, 0)); // 1024 × 64 = 65536: all of it
    await ticks(1);
    assert.equal(session.stats().state, 'open');
    socket.receive(data(1, 0));
    await assert.rejects(session.closed, (e) => e.code === ErrorCode.FLOW_CONTROL);
  });

  test('a reader that waits gets a message larger than the window: reassembly counts as read', async () => {
    const { client, server, clientSocket } = sessionPair({ initialWindow: 65536, sessionWindow: 65536, maxSessionWindow: 65536 });
    const ch = client.open('r');
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 7) % 256);
    const sending = ch.send(big);
    const sc = await accepted(server);
    const got = await sc.recv();
    await sending;
    assert.deepEqual(got, big);
    kill(clientSocket);
  });

  test('a stalled reader holds at most one channel window; the sender waits for credit', async () => {
    const { client, server, clientSocket } = sessionPair({ initialWindow: 65536, sessionWindow: 1 << 20 });
    const ch = client.open('r');
    const sc = await accepted(server);
    let sent = 0;
    const sender = (async () => {
      for (let i = 0; i < 40; i++) {
        await ch.send(new Uint8Array(10000));
        sent++;
      }
    })();
    await sleep(20);
    const held = sc.stats();
    assert.ok(held.unreadBytes <= 65536, `unread ${held.unreadBytes} within one window`);
    assert.ok(sent < 40, 'the sender is held back');
    assert.ok(ch.stats().sendCredit < 10064, 'by its credit');
    for (let i = 0; i < 40; i++) await sc.recv();
    await sender;
    kill(clientSocket);
  });

  test('reassembly up to MAX_MESSAGE_SIZE; one byte more resets with LIMIT', async () => {
    const big = 1 << 21;
    const { socket, session } = scripted('server', { maxMessageSize: 1 << 20, initialWindow: big * 2, sessionWindow: big * 2 });
    socket.receive(open(1));
    const ch = await accepted(session);
    const reading = ch.recv();
    for (let i = 0; i < 64; i++) socket.receive(data(1, 16384, { eom: i === 63, fill: i }));
    const m = await reading;
    assert.equal(m.length, 1 << 20);
    assert.equal(m[16384 * 5], 5);
    for (let i = 0; i < 64; i++) socket.receive(data(1, 16384, { eom: false }));
    socket.receive(data(1, 1, { eom: true }));
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'RESET').map((f) => [f.id, f.code]), [[1, ErrorCode.LIMIT]]);
    kill(socket);
  });
});

/** Answers the session's PING once the clock (advanced by `advance`) says 10 ms later. */
async function measureRtt(socket, session, advance) {
  const rtt = session.ping();
  await ticks(2);
  const [ping] = byType(socket.take(), 'PING');
  const now = advance();
  socket.receive({ type: 'PING', ack: true, data: ping.data });
  assert.equal(await rtt, 10);
  return now;
}

describe('session window growth', () => {
  test('the peer short of session credit: the window doubles before anything is read', async () => {
    const { socket, session } = scripted('server', { sessionWindow: 65536, maxSessionWindow: 1 << 20, initialWindow: 1 << 20 });
    socket.receive(open(1));
    for (let i = 0; i < 4; i++) socket.receive(data(1, 16320)); // 4 × (16320 + 64) = 65536
    const ch = await accepted(session);
    await ticks(2);
    const growth = byType(socket.take(), 'WINDOW').filter((f) => f.id === 0);
    assert.deepEqual(growth.map((f) => f.increment), [65536], 'the growth alone: nothing was read');
    assert.equal(session.stats().sessionWindow, 131072);
    await Promise.all([ch.recv(), ch.recv(), ch.recv(), ch.recv()]);
    await ticks(2);
    const back = byType(socket.take(), 'WINDOW').filter((f) => f.id === 0);
    assert.deepEqual(back.map((f) => f.increment), [65536], 'then what was read');
    assert.equal(session.stats().peerCredit, 131072);
    kill(socket);
  });

  test('a whole window read within two round trips: the window doubles though the peer is not short', async () => {
    let t = 0;
    const { socket, session } = scripted('server', { sessionWindow: 65536, maxSessionWindow: 1 << 20, initialWindow: 1 << 20, now: () => t });
    t = await measureRtt(socket, session, () => (t = 10));
    socket.receive(open(1));
    socket.receive(data(1, 16320));
    socket.receive(data(1, 16320)); // 32768 of 65536: half left, not short
    const ch = await accepted(session);
    await Promise.all([ch.recv(), ch.recv()]);
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'WINDOW').filter((f) => f.id === 0).map((f) => f.increment), [32768]);
    // The rest of a window (the first read only started the measure), read 5 ms later: under
    // 2 × 10 ms. The peer keeps a quarter of its credit: it is not short.
    t = 15;
    for (let i = 0; i < 3; i++) socket.receive(data(1, 16320));
    for (let i = 0; i < 3; i++) await ch.recv();
    await ticks(2);
    const grown = byType(socket.take(), 'WINDOW').filter((f) => f.id === 0);
    assert.equal(grown.reduce((a, f) => a + f.increment, 0), 3 * 16384 + 65536, 'what was read plus the growth');
    assert.equal(session.stats().sessionWindow, 131072);
    kill(socket);
  });

  test('a channel window read within two round trips doubles up to maxChannelWindow, and only then', async () => {
    let t = 0;
    const { socket, session } = scripted('server', { initialWindow: 65536, maxChannelWindow: 131072, sessionWindow: 1 << 20, now: () => t });
    t = await measureRtt(socket, session, () => (t = 10));
    socket.receive(open(1));
    const ch = await accepted(session);
    const round = async (at) => {
      t = at;
      for (let i = 0; i < 4; i++) socket.receive(data(1, 16320)); // a whole window: 65536
      for (let i = 0; i < 4; i++) await ch.recv();
      await ticks(2);
      return byType(socket.take(), 'WINDOW').filter((f) => f.id === 1).map((f) => f.increment);
    };
    const quarters = [16384, 16384, 16384, 16384];
    assert.deepEqual(await round(10), quarters, 'the first read starts the measure');
    assert.deepEqual(await round(100), quarters, 'a window read in 90 ms, nine round trips: no growth');
    // The next window completes 5 ms later, at its first read: the window doubles to 131072,
    // the growth goes out with that read's credit, and the quarters are 32768 from then on
    // (the last read's 16384 waits for the next).
    const grown = await round(105);
    assert.deepEqual(grown, [16384 + 65536, 32768], 'the growth, then a quarter of the new window');
    kill(socket);
  });

  test('no growth beyond maxSessionWindow (the sessions.json config)', async () => {
    const { socket, session } = scripted('server', { sessionWindow: 65536, maxSessionWindow: 65536, initialWindow: 1 << 20 });
    socket.receive(open(1));
    for (let i = 0; i < 4; i++) socket.receive(data(1, 16320));
    const ch = await accepted(session);
    await Promise.all([ch.recv(), ch.recv(), ch.recv(), ch.recv()]);
    await ticks(2);
    const windows = byType(socket.take(), 'WINDOW').filter((f) => f.id === 0);
    assert.equal(windows.reduce((n, f) => n + f.increment, 0), 65536);
    assert.equal(session.stats().sessionWindow, 65536);
    kill(socket);
  });
});

describe('sending', () => {
  test('a message larger than MAX_FRAME_PAYLOAD goes in frames of 16384, EOM on the last', async () => {
    const { socket, session } = scripted('client');
    const ch = session.open('r');
    await ch.send(new Uint8Array(40000));
    const parts = [...byType(socket.take(), 'OPEN'), ...byType(socket.frames(), 'DATA')];
    assert.deepEqual(parts.map((f) => [f.type, f.payload.length, f.eom]), [
      ['OPEN', 16384, false],
      ['DATA', 16384, false],
      ['DATA', 7232, true],
    ]);
    assert.equal(ch.stats().sendCredit, 262144 - 40000 - 3 * 64);
    kill(socket);
  });

  test('the sender waits for credit and goes on at the WINDOW; never a sliver below 1024 bytes', async () => {
    const { socket, session } = scripted('client', {}, { initialWindow: 65536, sessionWindow: 1 << 24 });
    const ch = session.open('r');
    let done = false;
    const sending = ch.send(new Uint8Array(70000)).then(() => (done = true));
    await ticks(3);
    const first = socket.take().filter((f) => f.type === 'OPEN' || f.type === 'DATA');
    const bytes = first.reduce((n, f) => n + f.payload.length, 0);
    assert.equal(bytes, 65536 - first.length * 64, 'exactly the credit, charges included');
    assert.equal(done, false);
    socket.receive({ type: 'WINDOW', id: 1, increment: 500 }); // 500 - 64 < 1024: wait
    await ticks(3);
    assert.deepEqual(byType(socket.take(), 'DATA'), []);
    socket.receive({ type: 'WINDOW', id: 1, increment: 70000 });
    await sending;
    const rest = byType(socket.take(), 'DATA').reduce((n, f) => n + f.payload.length, 0);
    assert.equal(bytes + rest, 70000);
    kill(socket);
  });

  test('the peer SETTINGS grow the credit of channels opened before them', async () => {
    const { socket, session } = scripted('client', {}, false);
    const ch = session.open('r');
    assert.equal(ch.stats().sendCredit, 65536);
    socket.receive({ type: 'SETTINGS', settings: { version: 1, initialWindow: 100000, maxFramePayload: 16384, maxMessageSize: 1 << 20, maxChannels: 10, sessionWindow: 200000 } });
    assert.equal(ch.stats().sendCredit, 100000);
    assert.equal(session.stats().sendCredit, 200000);
    kill(socket);
  });

  test('channels take turns: one frame each, round-robin', async () => {
    const { socket, session } = scripted('client', {}, { initialWindow: 1 << 20, sessionWindow: 1 << 22 });
    const a = session.open('a');
    const b = session.open('b');
    await ticks(2);
    socket.take();
    await Promise.all([a.send(new Uint8Array(65536)), b.send(new Uint8Array(65536))]);
    const ids = byType(socket.take(), 'DATA').map((f) => f.id);
    assert.deepEqual(ids, [1, 3, 1, 3, 1, 3, 1, 3]);
    kill(socket);
  });

  test('a small message is not stuck behind a bulk one', async () => {
    const { socket, session } = scripted('client', {}, { initialWindow: 1 << 22, sessionWindow: 1 << 22 });
    const bulk = session.open('bulk');
    const small = session.open('small');
    await ticks(2);
    socket.take();
    const p = bulk.send(new Uint8Array(1 << 20));
    await small.sendText('urgent');
    const ids = byType(socket.take(), 'DATA').map((f) => f.id);
    assert.ok(ids.indexOf(3) <= 1, `the small message went within the first frames: ${ids.slice(0, 4)}`);
    await p;
    kill(socket);
  });

  test('send() waits while bufferedAmount is at the high-water mark', async () => {
    const { socket, session } = scripted('client', { highWaterMark: 1000 });
    const ch = session.open('r');
    await ch.sendText('first');
    socket.take();
    socket.bufferedAmount = 5000;
    let done = false;
    const p = ch.send(new Uint8Array(100)).then(() => (done = true));
    await sleep(10);
    assert.equal(done, false);
    assert.deepEqual(byType(socket.take(), 'DATA'), [], 'nothing written into a full buffer');
    socket.bufferedAmount = 0;
    await settle(p);
    assert.equal(byType(socket.take(), 'DATA').length, 1);
    kill(socket);
  });

  test('a message over the peer MAX_MESSAGE_SIZE is refused locally; the direction then ends with RESET LIMIT', async () => {
    const { socket, session } = scripted('client', {}, { maxMessageSize: 1 << 20 });
    const ch = session.open('r');
    await ch.sendText('fine');
    await assert.rejects(ch.send(new Uint8Array((1 << 20) + 1)), (e) => e instanceof MessageTooLargeError && e.size === (1 << 20) + 1 && e.limit === 1 << 20);
    await ch.sendText('still fine');
    await assert.rejects(ch.finish(), (e) => e instanceof ResetError && e.code === ErrorCode.LIMIT);
    await ticks(2);
    const sent = socket.take();
    assert.deepEqual(byType(sent, 'RESET').map((f) => [f.id, f.code]), [[1, ErrorCode.LIMIT]]);
    assert.ok(byType(sent, 'DATA').every((f) => !f.fin), 'never a clean FIN');
    kill(socket);
  });

  test('before the peer SETTINGS a large send waits for its MAX_MESSAGE_SIZE, in order', async () => {
    const { socket, session } = scripted('client', {}, false);
    const ch = session.open('r');
    const big = ch.send(new Uint8Array(2 << 20));
    const small = ch.sendText('after');
    const fin = ch.finish();
    await ticks(2);
    socket.receive({ type: 'SETTINGS', settings: { version: 1, initialWindow: 1 << 23, maxFramePayload: 16384, maxMessageSize: 1 << 24, maxChannels: 10, sessionWindow: 1 << 23 } });
    await settle(Promise.all([big, small, fin]));
    const parts = byType(socket.frames(), 'DATA');
    const last = parts.at(-1);
    assert.equal(last.fin, true);
    assert.equal(new TextDecoder().decode(last.payload), 'after');
    kill(socket);
  });
});
