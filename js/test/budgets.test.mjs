// The limits and abuse budgets of PROTOCOL.md section 12 (and the refusals of section 7.2).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SessionError } from '../dist/index.js';
import { scripted, ticks, kill, settle } from './harness.mjs';

const byType = (frames, type) => frames.filter((f) => f.type === type);
const open = (id, extra = {}) => ({ type: 'OPEN', id, fin: false, eom: false, route: 'r', metadata: new Uint8Array(0), payload: new Uint8Array(0), ...extra });
const resetsSent = (socket) => byType(socket.take(), 'RESET').map((f) => [f.id, f.code]);
const endsWith = (session, code) => assert.rejects(session.closed, (e) => e instanceof SessionError && e.code === code && e.origin === 'local');

describe('remote reset budget (RESET and STOP received)', () => {
  test('burst spent: session error LIMIT; the budget refills over time', async () => {
    let t = 0;
    const { socket, session } = scripted('server', { remoteResetBurst: 3, remoteResetRefill: 1, now: () => t });
    for (let id = 1; id <= 5; id += 2) socket.receive(open(id));
    socket.receive({ type: 'RESET', id: 1, code: 5, reason: '' });
    socket.receive({ type: 'STOP', id: 3, code: 5, reason: '' });
    socket.receive({ type: 'RESET', id: 3, code: 5, reason: '' });
    t = 1000; // one token back
    socket.receive({ type: 'RESET', id: 5, code: 5, reason: '' });
    await ticks(1);
    assert.equal(session.stats().state, 'open');
    socket.receive({ type: 'RESET', id: 5, code: 5, reason: '' }); // dropped, but it counts
    await endsWith(session, ErrorCode.LIMIT);
    assert.equal(socket.closeCode, 1008);
  });
});

describe('local reset budget (refusals and resets the peer provoked)', () => {
  test('refused opens past the burst: LIMIT', async () => {
    const { socket, session } = scripted('server', { localResetBurst: 3, now: () => 0, maxMetadata: 0 });
    for (let id = 1; id <= 7; id += 2) socket.receive(open(id, { metadata: new Uint8Array(1) }));
    await endsWith(session, ErrorCode.LIMIT);
  });

  test('channel resets for violations count too', async () => {
    const { socket, session } = scripted('server', { localResetBurst: 2, now: () => 0 });
    for (let id = 1; id <= 5; id += 2) {
      socket.receive(open(id, { fin: true }));
      socket.receive({ type: 'DATA', id, fin: false, eom: true, payload: new Uint8Array(1) }); // after FIN
    }
    await endsWith(session, ErrorCode.LIMIT);
  });
});

describe('empty DATA frames in a row', () => {
  test('the count is per session, restarted by a frame with bytes; empty messages do not count', async () => {
    const { socket, session } = scripted('server', { maxEmptyFrames: 5 });
    socket.receive(open(1));
    socket.receive(open(3));
    for (let i = 0; i < 3; i++) socket.receive({ type: 'DATA', id: 1, fin: false, eom: false, payload: new Uint8Array(0) });
    socket.receive({ type: 'DATA', id: 3, fin: false, eom: false, payload: new Uint8Array(1) });
    for (let i = 0; i < 5; i++) socket.receive({ type: 'DATA', id: 3, fin: false, eom: false, payload: new Uint8Array(0) });
    for (let i = 0; i < 10; i++) socket.receive({ type: 'DATA', id: 1, fin: false, eom: true, payload: new Uint8Array(0) });
    await ticks(1);
    assert.equal(session.stats().state, 'open');
    socket.receive({ type: 'DATA', id: 1, fin: false, eom: false, payload: new Uint8Array(0) });
    await endsWith(session, ErrorCode.LIMIT);
  });
});

describe('control queue', () => {
  test('provoked RESETs piling up for a peer that does not read: LIMIT', async () => {
    const { socket, session } = scripted('server', { controlQueueLimit: 3, maxMetadata: 0, highWaterMark: 1000 });
    await ticks(2);
    socket.bufferedAmount = 1 << 20; // the peer stopped reading
    for (let id = 1; id <= 7; id += 2) {
      socket.receive(open(id, { metadata: new Uint8Array(1) }));
      await ticks(1);
    }
    await settle(endsWith(session, ErrorCode.LIMIT));
  });

  test('the queue drains when the peer reads again', async () => {
    const { socket, session } = scripted('server', { controlQueueLimit: 3, maxMetadata: 0, highWaterMark: 1000 });
    await ticks(2);
    socket.take();
    socket.bufferedAmount = 1 << 20;
    for (let id = 1; id <= 5; id += 2) socket.receive(open(id, { metadata: new Uint8Array(1) }));
    await ticks(2);
    assert.deepEqual(resetsSent(socket), []);
    socket.bufferedAmount = 0;
    await settle(new Promise((r) => setTimeout(r, 20)));
    assert.deepEqual(resetsSent(socket), [[1, ErrorCode.LIMIT], [3, ErrorCode.LIMIT], [5, ErrorCode.LIMIT]]);
    assert.equal(session.stats().state, 'open');
    kill(socket);
  });
});

describe('messages held for whole-message readers', () => {
  test('a part that passes the session bound resets its channel with LIMIT', async () => {
    const { socket, session } = scripted('server', { maxHeldBytes: 20000 });
    socket.receive(open(1));
    const { value: ch } = await session.incoming[Symbol.asyncIterator]().next();
    const reading = ch.recv();
    socket.receive({ type: 'DATA', id: 1, fin: false, eom: false, payload: new Uint8Array(16384) });
    socket.receive({ type: 'DATA', id: 1, fin: false, eom: false, payload: new Uint8Array(16384) });
    await assert.rejects(reading, (e) => e.code === ErrorCode.LIMIT);
    await ticks(2);
    assert.deepEqual(resetsSent(socket), [[1, ErrorCode.LIMIT]]);
    assert.equal(session.stats().state, 'open');
    kill(socket);
  });
});

describe('refusals of section 7.2', () => {
  test('accept backlog full: REFUSED; accepting makes room', async () => {
    const { socket, session } = scripted('server', { acceptBacklog: 2 });
    socket.receive(open(1));
    socket.receive(open(3));
    socket.receive(open(5));
    await ticks(2);
    assert.deepEqual(resetsSent(socket), [[5, ErrorCode.REFUSED]]);
    const it = session.incoming[Symbol.asyncIterator]();
    (await it.next()).value.accept();
    socket.receive(open(7));
    await ticks(2);
    assert.deepEqual(resetsSent(socket), []);
    kill(socket);
  });

  test('metadata over the limit: LIMIT (the limit itself is fine)', async () => {
    const { socket } = scripted('server', { maxMetadata: 10 });
    socket.receive(open(1, { metadata: new Uint8Array(10) }));
    socket.receive(open(3, { metadata: new Uint8Array(11) }));
    await ticks(2);
    assert.deepEqual(resetsSent(socket), [[3, ErrorCode.LIMIT]]);
    kill(socket);
  });

  test('beyond MAX_CHANNELS: LIMIT; a channel over on the wire frees its place', async () => {
    const { socket, session } = scripted('server', { maxChannels: 1 });
    socket.receive(open(1, { fin: true }));
    socket.receive(open(3));
    await ticks(2);
    assert.deepEqual(resetsSent(socket), [[3, ErrorCode.LIMIT]]);
    const { value: ch } = await session.incoming[Symbol.asyncIterator]().next();
    await ch.finish();
    socket.receive(open(5));
    await ticks(2);
    assert.deepEqual(resetsSent(socket), []);
    kill(socket);
  });

  test('the checks go in order: going away, metadata, channel count, backlog', async () => {
    const { socket, session } = scripted('server', { maxMetadata: 0, maxChannels: 0, acceptBacklog: 0 });
    socket.receive(open(1, { metadata: new Uint8Array(1) }));
    socket.receive(open(3));
    await ticks(2);
    assert.deepEqual(resetsSent(socket), [[1, ErrorCode.LIMIT], [3, ErrorCode.LIMIT]]);
    session.close();
    socket.receive(open(5, { metadata: new Uint8Array(1) }));
    await ticks(2);
    assert.deepEqual(resetsSent(socket), [[5, ErrorCode.REFUSED]]);
    kill(socket);
  });
});
