// Session behaviour over scripted and in-memory transports: opening, accepting, refusing,
// half-close, RESET and STOP, GOAWAY both ways, keepalive, session errors and close codes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  Session,
  ErrorCode,
  ResetError,
  StopError,
  SessionError,
  InvalidStateError,
  encodeFrame,
} from '../dist/index.js';
import { FakeSocket, scripted, sessionPair, settingsFrame, text, str, ticks, until, kill, sleep, settle } from './harness.mjs';

const byType = (frames, type) => frames.filter((f) => f.type === type);

describe('session start', () => {
  test('SETTINGS is the first frame, the first keepalive PING follows, ready waits for the peer', async () => {
    const { socket, session } = scripted('client', { keepaliveInterval: 1000 }, false);
    let ready = false;
    session.ready.then(() => (ready = true));
    await ticks(2);
    const sent = socket.take();
    assert.equal(sent[0].type, 'SETTINGS');
    assert.deepEqual(sent[0].settings, {
      version: 1,
      initialWindow: 262144,
      maxFramePayload: 16384,
      maxMessageSize: 16777216,
      maxChannels: 256,
      sessionWindow: 262144,
    });
    assert.equal(sent[1].type, 'PING');
    assert.equal(sent[1].ack, false);
    assert.equal(ready, false);
    socket.receive(settingsFrame({ maxChannels: 7 }));
    await ticks(1);
    assert.equal(ready, true);
    assert.equal(session.stats().peerSettings.maxChannels, 7);
    kill(socket);
  });

  test('accept() and client() refuse a socket without wsmux.v1, closing it with 1002', () => {
    const socket = new FakeSocket();
    socket.protocol = '';
    assert.throws(() => Session.accept(socket), /subprotocol none, not wsmux.v1/);
    assert.equal(socket.closeCode, 1002);
    const other = new FakeSocket();
    other.protocol = 'chat';
    assert.throws(() => Session.client(other), /"chat"/);
  });

  test('the session ends before SETTINGS: ready and closed reject with connection lost', async () => {
    const { socket, session } = scripted('client', {}, false);
    socket.fireClose(1006);
    await assert.rejects(session.ready, SessionError);
    await assert.rejects(session.closed, (e) => e instanceof SessionError && e.origin === 'transport' && e.closeCode === 1006);
  });
});

describe('channels', () => {
  test('open sends OPEN with route, metadata, the first message and FIN in one frame', async () => {
    const { socket, session } = scripted('client');
    const ch = session.open('kv.get', { metadata: text('m'), message: text('hi'), finish: true });
    assert.equal(ch.id, 1);
    assert.equal(ch.initiator, 'local');
    await ticks(2);
    const opens = byType(socket.take(), 'OPEN');
    assert.equal(opens.length, 1);
    assert.deepEqual(
      { id: opens[0].id, route: opens[0].route, meta: str(opens[0].metadata), data: str(opens[0].payload), eom: opens[0].eom, fin: opens[0].fin },
      { id: 1, route: 'kv.get', meta: 'm', data: 'hi', eom: true, fin: true },
    );
    assert.equal(session.open('x').id, 3, 'client ids are odd and increase');
    kill(socket);
  });

  test('the server accepts, reads the unary request and answers with EOM|FIN', async () => {
    const { socket, session } = scripted('server');
    socket.receive({ type: 'OPEN', id: 1, fin: true, eom: true, route: 'echo', metadata: text('md'), payload: text('hi') });
    const iterator = session.incoming[Symbol.asyncIterator]();
    const { value: ch } = await iterator.next();
    assert.equal(ch.route, 'echo');
    assert.equal(str(ch.metadata), 'md');
    assert.equal(ch.initiator, 'remote');
    assert.equal(await ch.recvText(), 'hi');
    assert.equal(await ch.recv(), null, 'the peer finished');
    await ch.sendText('hi');
    await ch.finish();
    const data = byType(socket.take(), 'DATA');
    assert.deepEqual(data.map((f) => [f.id, str(f.payload), f.eom, f.fin]), [[1, 'hi', true, false], [1, '', false, true]]);
    assert.equal(session.stats().channels, 0, 'both directions over: the channel is freed');
    kill(socket);
  });

  test('a message sent together with finish() carries the FIN in its own frame', async () => {
    const { socket, session } = scripted('server');
    socket.receive({ type: 'OPEN', id: 1, fin: true, eom: true, route: 'echo', metadata: new Uint8Array(0), payload: text('hi') });
    const { value: ch } = await session.incoming[Symbol.asyncIterator]().next();
    await Promise.all([ch.sendText('answer'), ch.finish()]);
    const data = byType(socket.take(), 'DATA');
    assert.deepEqual(data.map((f) => [str(f.payload), f.eom, f.fin]), [['answer', true, true]]);
    kill(socket);
  });

  test('refuse() sends RESET with the code; the opener sees a ResetError with it', async () => {
    const { client, server, clientSocket } = sessionPair();
    const ch = client.open('nowhere', { message: text('x'), finish: true });
    (async () => {
      for await (const c of server.incoming) c.refuse(ErrorCode.NOT_FOUND, 'no such route');
    })();
    await assert.rejects(ch.recv(), (e) => e instanceof ResetError && e.code === ErrorCode.NOT_FOUND && e.reason === 'no such route' && e.origin === 'remote');
    kill(clientSocket);
  });

  test('half-close: after our FIN the peer still sends; its FIN ends the channel', async () => {
    const { client, server, clientSocket } = sessionPair();
    const ch = client.open('r');
    await ch.sendText('question');
    await ch.finish();
    await assert.rejects(ch.sendText('late'), InvalidStateError, 'no send after finish()');
    const { value: sc } = await server.incoming[Symbol.asyncIterator]().next();
    assert.equal(await sc.recvText(), 'question');
    assert.equal(await sc.recv(), null);
    for (let i = 0; i < 3; i++) await sc.sendText(`answer ${i}`);
    await sc.finish();
    const got = [];
    for await (const m of ch) got.push(str(m));
    assert.deepEqual(got, ['answer 0', 'answer 1', 'answer 2']);
    assert.equal(ch.stats().send, 'finished');
    assert.equal(ch.stats().recv, 'finished');
    kill(clientSocket);
  });

  test('RESET from the peer fails both directions with its code and reason', async () => {
    const { socket, session } = scripted('client');
    const ch = session.open('r');
    await ch.sendText('x');
    const reading = ch.recv();
    socket.receive({ type: 'RESET', id: 1, code: 0x1234, reason: 'gone' });
    await assert.rejects(reading, (e) => e instanceof ResetError && e.code === 0x1234 && e.reason === 'gone');
    await assert.rejects(ch.sendText('y'), (e) => e instanceof ResetError && e.code === 0x1234);
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'RESET'), [], 'no answer to a RESET');
    kill(socket);
  });

  test('a RESET after the peer FIN keeps its data readable, then a clean end', async () => {
    const { socket, session } = scripted('client');
    const ch = session.open('source');
    await ch.sendText('go');
    socket.receive({ type: 'DATA', id: 1, fin: false, eom: true, payload: text('one') });
    socket.receive({ type: 'DATA', id: 1, fin: true, eom: true, payload: text('two') });
    socket.receive({ type: 'RESET', id: 1, code: ErrorCode.CANCEL, reason: '' });
    assert.equal(await ch.recvText(), 'one');
    assert.equal(await ch.recvText(), 'two');
    assert.equal(await ch.recv(), null);
    await assert.rejects(ch.sendText('more'), (e) => e instanceof ResetError && e.code === ErrorCode.CANCEL);
    kill(socket);
  });

  test('reset() sends RESET and fails local reads; unread data is dropped and its session credit returned', async () => {
    const { socket, session } = scripted('client', { sessionWindow: 65536, initialWindow: 65536 });
    const ch = session.open('r');
    await ch.sendText('x');
    socket.take();
    for (let i = 0; i < 2; i++) socket.receive({ type: 'DATA', id: 1, fin: false, eom: true, payload: new Uint8Array(10000) });
    ch.reset(0x777, 'bye');
    await assert.rejects(ch.recv(), (e) => e instanceof ResetError && e.code === 0x777 && e.origin === 'local');
    await ticks(2);
    const sent = socket.take();
    assert.deepEqual(byType(sent, 'RESET').map((f) => [f.id, f.code, f.reason]), [[1, 0x777, 'bye']]);
    // 2 × 10064 of session credit dropped: over a quarter of 65536, so a session WINDOW goes back.
    assert.deepEqual(byType(sent, 'WINDOW').map((f) => [f.id, f.increment]), [[0, 20128]]);
    kill(socket);
  });

  test('STOP from the peer ends our sending direction only', async () => {
    const { socket, session } = scripted('client');
    const ch = session.open('r');
    await ch.sendText('x');
    socket.receive({ type: 'STOP', id: 1, code: 0x300, reason: 'enough' });
    await assert.rejects(ch.sendText('y'), (e) => e instanceof StopError && e.code === 0x300 && e.origin === 'remote');
    socket.receive({ type: 'DATA', id: 1, fin: true, eom: true, payload: text('still') });
    assert.equal(await ch.recvText(), 'still');
    assert.equal(await ch.recv(), null);
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'RESET'), []);
    assert.equal(session.stats().channels, 0, 'STOP ended the direction on the wire');
    kill(socket);
  });

  test('stopReceiving() sends STOP; later DATA is dropped and its session credit returned', async () => {
    const { socket, session } = scripted('client', { sessionWindow: 65536, initialWindow: 65536 });
    const ch = session.open('r');
    await ch.sendText('x');
    socket.take();
    ch.stopReceiving(0x42, 'no more');
    await assert.rejects(ch.recv(), (e) => e instanceof StopError && e.code === 0x42 && e.origin === 'local');
    for (let i = 0; i < 2; i++) socket.receive({ type: 'DATA', id: 1, fin: false, eom: true, payload: new Uint8Array(10000) });
    socket.receive({ type: 'DATA', id: 1, fin: true, eom: false, payload: new Uint8Array(0) });
    await ch.sendText('our direction goes on');
    await ticks(2);
    const sent = socket.take();
    assert.deepEqual(byType(sent, 'STOP').map((f) => [f.id, f.code, f.reason]), [[1, 0x42, 'no more']]);
    assert.deepEqual(byType(sent, 'WINDOW').map((f) => [f.id, f.increment]), [[0, 20128]]);
    assert.equal(byType(sent, 'DATA').length, 1);
    assert.deepEqual(byType(sent, 'RESET'), []);
    kill(socket);
  });

  test('readable.cancel(code) sends STOP; writable.abort(code) sends RESET; writable.close() finishes', async () => {
    const { socket, session } = scripted('client');
    const a = session.open('a');
    const b = session.open('b');
    const c = session.open('c');
    await a.readable.cancel({ code: 0x501 });
    await b.writable.abort(0x502);
    const w = c.writable.getWriter();
    await w.write(text('m'));
    await w.close();
    await ticks(2);
    const sent = socket.take();
    assert.deepEqual(byType(sent, 'STOP').map((f) => [f.id, f.code]), [[1, 0x501]]);
    assert.deepEqual(byType(sent, 'RESET').map((f) => [f.id, f.code]), [[3, 0x502]]);
    assert.deepEqual(byType(sent, 'DATA').filter((f) => f.id === 5).map((f) => [str(f.payload), f.eom, f.fin]), [['m', true, false], ['', false, true]]);
    kill(socket);
  });

  test('an AbortSignal resets the channel with CANCEL', async () => {
    const { socket, session } = scripted('client');
    const ac = new AbortController();
    const ch = session.open('r', { signal: ac.signal });
    await ch.sendText('x');
    const reading = ch.recv();
    ac.abort();
    await assert.rejects(reading, (e) => e instanceof ResetError && e.code === ErrorCode.CANCEL);
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'RESET').map((f) => [f.id, f.code]), [[1, ErrorCode.CANCEL]]);
    kill(socket);
  });

  test('a reset before the OPEN went out sends nothing at all', async () => {
    const { socket, session } = scripted('client', {}, false);
    const first = session.open('a'); // goes out (one channel before the peer's SETTINGS)
    const second = session.open('b'); // waits for the SETTINGS
    second.reset();
    await ticks(2);
    const sent = socket.take();
    assert.deepEqual(byType(sent, 'OPEN').map((f) => f.id), [1]);
    assert.deepEqual(byType(sent, 'RESET'), []);
    assert.equal(first.id, 1);
    kill(socket);
  });

  test('only one channel opens before the peer SETTINGS; MAX_CHANNELS bounds the rest', async () => {
    const { socket, session } = scripted('client', {}, false);
    const chans = [session.open('a'), session.open('b'), session.open('c')];
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'OPEN').map((f) => f.id), [1]);
    socket.receive(settingsFrame({ maxChannels: 2 }));
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'OPEN').map((f) => f.id), [3]);
    // Channel 1 ends on the wire both ways: channel 5 may open.
    await chans[0].finish();
    socket.receive({ type: 'DATA', id: 1, fin: true, eom: false, payload: new Uint8Array(0) });
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'OPEN').map((f) => f.id), [5]);
    kill(socket);
  });

  test('session.incoming cancelled: later opens are refused with REFUSED', async () => {
    const { socket, session } = scripted('server');
    await session.incoming.cancel();
    socket.receive({ type: 'OPEN', id: 1, fin: false, eom: false, route: 'r', metadata: new Uint8Array(0), payload: new Uint8Array(0) });
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'RESET').map((f) => [f.id, f.code]), [[1, ErrorCode.REFUSED]]);
    kill(socket);
  });
});

describe('GOAWAY', () => {
  test('close() drains both ways: the open channel completes, new opens fail, both end cleanly with 1000', async () => {
    const { client, server, clientSocket, serverSocket } = sessionPair();
    const ch = client.open('r');
    await ch.sendText('first');
    const { value: sc } = await server.incoming[Symbol.asyncIterator]().next();
    assert.equal(await sc.recvText(), 'first');
    const closing = client.close();
    assert.throws(() => client.open('late'), InvalidStateError);
    await until(() => server.stats().state === 'closing', 1000, 'the server sees the GOAWAY');
    assert.throws(() => server.open('late'), InvalidStateError, 'no opens after a GOAWAY received either');
    // The channel in flight finishes normally, both ways.
    await sc.sendText('answer');
    await sc.finish();
    assert.equal(await ch.recvText(), 'answer');
    assert.equal(await ch.recv(), null);
    await ch.sendText('last');
    await ch.finish();
    assert.equal(await sc.recvText(), 'last');
    assert.equal(await sc.recv(), null);
    await closing;
    await client.closed;
    await server.closed;
    assert.equal(clientSocket.closeCode, 1000);
    assert.equal(serverSocket.closeCode, 1000);
  });

  test('close() refuses incoming channels not accepted yet with REFUSED', async () => {
    const { socket, session } = scripted('server');
    socket.receive({ type: 'OPEN', id: 1, fin: false, eom: false, route: 'r', metadata: new Uint8Array(0), payload: new Uint8Array(0) });
    await ticks(1);
    session.close();
    await ticks(2);
    const sent = socket.take();
    const goaway = byType(sent, 'GOAWAY');
    assert.deepEqual(goaway.map((f) => [f.code, f.lastId]), [[ErrorCode.NO_ERROR, 1]]);
    assert.deepEqual(byType(sent, 'RESET').map((f) => [f.id, f.code]), [[1, ErrorCode.REFUSED]]);
    await session.closed;
    assert.equal(socket.closeCode, 1000);
  });

  test('a GOAWAY with last_id fails our later opens as REFUSED; the earlier ones go on', async () => {
    const { socket, session } = scripted('client');
    const one = session.open('a');
    const three = session.open('b');
    await one.sendText('x');
    await three.sendText('y');
    socket.receive({ type: 'GOAWAY', lastId: 1, code: ErrorCode.NO_ERROR, reason: '' });
    await assert.rejects(three.recv(), (e) => e instanceof ResetError && e.code === ErrorCode.REFUSED);
    socket.receive({ type: 'DATA', id: 1, fin: true, eom: true, payload: text('ok') });
    assert.equal(await one.recvText(), 'ok');
    assert.equal(await one.recv(), null);
    await one.finish();
    await session.closed; // drained: clean end
    assert.equal(socket.closeCode, 1000);
    assert.deepEqual(byType(socket.frames(), 'GOAWAY'), [], 'a GOAWAY is not answered');
  });

  test('the peer GOAWAY code is how the session ended, whatever the close code', async () => {
    const { socket, session } = scripted('client');
    socket.receive({ type: 'GOAWAY', lastId: 0, code: ErrorCode.INTERNAL, reason: 'oops' });
    socket.fireClose(4008, '');
    await assert.rejects(session.closed, (e) => e instanceof SessionError && e.code === ErrorCode.INTERNAL && e.origin === 'remote' && e.reason === 'oops');
  });

  test('the drain deadline cuts channels still open', async () => {
    const { socket, session } = scripted('client', { drainTimeout: 30 });
    const ch = session.open('r');
    await ch.sendText('x');
    session.close();
    await settle(assert.rejects(ch.recv(), SessionError));
    await session.closed;
    assert.equal(socket.closeCode, 1000);
  });

  test('an OPEN arriving after our GOAWAY is refused with REFUSED', async () => {
    const { socket, session } = scripted('server');
    socket.receive({ type: 'OPEN', id: 1, fin: false, eom: false, route: 'r', metadata: new Uint8Array(0), payload: new Uint8Array(0) });
    const { value: ch } = await session.incoming[Symbol.asyncIterator]().next();
    ch.accept();
    session.close();
    socket.receive({ type: 'OPEN', id: 3, fin: false, eom: false, route: 'r', metadata: new Uint8Array(0), payload: new Uint8Array(0) });
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'RESET').map((f) => [f.id, f.code]), [[3, ErrorCode.REFUSED]]);
    kill(socket);
  });
});

describe('session errors and close codes', () => {
  const cases = [
    ['a text message is PROTOCOL, close 1002', (s) => s.receiveText('hello'), ErrorCode.PROTOCOL, 1002],
    ['a reserved frame type is PROTOCOL, close 1002', (s) => s.receive('090000000000'), ErrorCode.PROTOCOL, 1002],
    ['a WINDOW overflow is FLOW_CONTROL, close 1002', (s) => s.receive('020000000000ffffffff'), ErrorCode.FLOW_CONTROL, 1002],
    ['a message over the WebSocket limit is LIMIT, close 1009', (s) => s.receive(new Uint8Array(82184)), ErrorCode.LIMIT, 1009],
    [
      'the empty-frame budget is LIMIT, close 1008',
      (s) => {
        s.receive({ type: 'OPEN', id: 1, fin: false, eom: false, route: 'r', metadata: new Uint8Array(0), payload: new Uint8Array(0) });
        for (let i = 0; i < 1001; i++) s.receive('000000000001');
      },
      ErrorCode.LIMIT,
      1008,
    ],
  ];
  for (const [name, provoke, code, closeCode] of cases) {
    test(name, async () => {
      const { socket, session } = scripted('server');
      provoke(socket);
      await assert.rejects(session.closed, (e) => e instanceof SessionError && e.code === code && e.origin === 'local');
      const goaways = byType(socket.frames(), 'GOAWAY');
      assert.deepEqual(goaways.map((f) => f.code), [code]);
      assert.equal(socket.closeCode, closeCode);
    });
  }

  test('close(code) with an error code is a session error with that code (1011 for application codes)', async () => {
    const { socket, session } = scripted('client');
    const ch = session.open('r');
    session.close(0x1000, 'app');
    await assert.rejects(session.closed, (e) => e.code === 0x1000);
    await assert.rejects(ch.recv(), (e) => e instanceof SessionError && e.code === 0x1000);
    assert.equal(socket.closeCode, 1011);
  });

  test('a browser that refuses 1002 closes with 4000 + code instead', async () => {
    const { socket, session } = scripted('server');
    const close = socket.close.bind(socket);
    socket.close = (code, reason) => {
      if (code !== 1000 && (code < 3000 || code > 4999)) throw new Error('InvalidAccessError');
      close(code, reason);
    };
    socket.receiveText('x');
    await assert.rejects(session.closed);
    assert.equal(socket.closeCode, 4001);
  });

  test('a transport close without GOAWAY is connection lost; finished directions stay readable', async () => {
    const { socket, session } = scripted('client');
    const done = session.open('a');
    const cut = session.open('b');
    await done.sendText('x');
    await cut.sendText('y');
    socket.receive({ type: 'DATA', id: 1, fin: true, eom: true, payload: text('complete') });
    socket.receive({ type: 'DATA', id: 3, fin: false, eom: false, payload: text('partial') });
    socket.fireClose(1006);
    await assert.rejects(session.closed, (e) => e instanceof SessionError && e.origin === 'transport' && e.closeCode === 1006);
    assert.equal(await done.recvText(), 'complete');
    assert.equal(await done.recv(), null);
    await assert.rejects(cut.recv(), SessionError);
  });

  test('a request that arrived complete stays readable after the session ends', async () => {
    const { socket, session } = scripted('server');
    socket.receive({ type: 'OPEN', id: 1, fin: true, eom: true, route: 'r', metadata: new Uint8Array(0), payload: text('req') });
    socket.fireClose(1006);
    await assert.rejects(session.closed);
    const got = [];
    for await (const ch of session.incoming) got.push(await ch.recvText());
    assert.deepEqual(got, ['req']);
  });

  test('extension frames after SETTINGS are ignored', async () => {
    const { socket, session } = scripted('client');
    socket.receive('ffa500000001616e797468696e67');
    socket.receive({ type: 'EXTENSION', kind: 0x80, flags: 0, id: 0, payload: new Uint8Array(3) });
    await ticks(2);
    assert.deepEqual(byType(socket.take(), 'GOAWAY'), []);
    assert.equal(session.stats().state, 'open');
    kill(socket);
  });
});

describe('keepalive', () => {
  test('PING answered: RTT from the injected clock, smoothed, next PING one interval after the last', async () => {
    let t = 0;
    const { socket, session } = scripted('client', { keepaliveInterval: 20, keepaliveTimeout: 1000, now: () => t });
    await ticks(2);
    const [ping] = byType(socket.take(), 'PING');
    assert.equal(ping.ack, false);
    t = 42;
    socket.receive({ type: 'PING', ack: true, data: new Uint8Array(8) }); // not ours: ignored
    assert.equal(session.stats().rtt, undefined);
    socket.receive({ type: 'PING', ack: true, data: ping.data });
    assert.equal(session.stats().rtt, 42);
    assert.equal(session.stats().srtt, 42);
    await sleep(40);
    const [next] = byType(socket.take(), 'PING');
    assert.ok(next !== undefined, 'the next keepalive PING went out');
    assert.notDeepEqual(next.data, ping.data, 'a fresh 8 bytes');
    t = 50;
    socket.receive({ type: 'PING', ack: true, data: next.data });
    assert.equal(session.stats().rtt, 8);
    assert.equal(session.stats().srtt, (7 * 42) / 8 + 8 / 8);
    kill(socket);
  });

  test('a PING from the peer is answered with the same bytes; a flood gets one answer', async () => {
    const { socket, session } = scripted('server');
    for (let i = 0; i < 10; i++) socket.receive({ type: 'PING', ack: false, data: new Uint8Array(8).fill(i) });
    await ticks(2);
    const acks = byType(socket.take(), 'PING').filter((f) => f.ack);
    assert.equal(acks.length, 1);
    assert.deepEqual([...acks[0].data], new Array(8).fill(9));
    kill(socket);
    void session;
  });

  test('an unanswered PING ends the session with TIMEOUT (close 1011)', async () => {
    const { socket, session } = scripted('client', { keepaliveInterval: 10, keepaliveTimeout: 30 });
    await settle(assert.rejects(session.closed, (e) => e instanceof SessionError && e.code === ErrorCode.TIMEOUT));
    assert.deepEqual(byType(socket.frames(), 'GOAWAY').map((f) => f.code), [ErrorCode.TIMEOUT]);
    assert.equal(socket.closeCode, 1011);
  });

  test('the timeout runs from when the PING was due, even if it could not be written', async () => {
    const { socket, session } = scripted('client', { keepaliveInterval: 10, keepaliveTimeout: 30, highWaterMark: 1 });
    socket.bufferedAmount = 1 << 30; // the peer reads nothing
    await settle(assert.rejects(session.closed, (e) => e.code === ErrorCode.TIMEOUT));
  });

  test('ping() resolves with the RTT', async () => {
    const { client, clientSocket } = sessionPair();
    const rtt = await client.ping();
    assert.ok(rtt >= 0);
    assert.equal(client.stats().rtt, rtt);
    kill(clientSocket);
  });
});
