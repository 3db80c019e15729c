// Every vector of proto/vectors/{frames,invalid,packs,sessions}.json (PROTOCOL.md section 16).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  Session,
  ErrorCode,
  FrameDecodeError,
  decodeFrame,
  decodeMessage,
  encodeFrame,
  encodePack,
  splitPack,
} from '../dist/index.js';
import { FakeSocket, hex, toHex, ticks } from './harness.mjs';

const load = (name) =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`../../proto/vectors/${name}.json`, import.meta.url)), 'utf8'));

/** Our decoded frame in the vectors' JSON shape. */
function toJson(f) {
  switch (f.type) {
    case 'DATA':
      return { type: f.type, id: f.id, eom: f.eom, fin: f.fin, payload_hex: toHex(f.payload) };
    case 'OPEN':
      return {
        type: f.type,
        id: f.id,
        eom: f.eom,
        fin: f.fin,
        route: f.route,
        metadata_hex: toHex(f.metadata),
        payload_hex: toHex(f.payload),
      };
    case 'WINDOW':
      return { type: f.type, id: f.id, increment: f.increment };
    case 'RESET':
    case 'STOP':
      return { type: f.type, id: f.id, code: f.code, reason: f.reason };
    case 'PING':
      return { type: f.type, ack: f.ack, payload_hex: toHex(f.data) };
    case 'GOAWAY':
      return { type: f.type, last_id: f.lastId, code: f.code, reason: f.reason };
    case 'SETTINGS': {
      const s = f.settings;
      return {
        type: f.type,
        version: s.version,
        initial_window: s.initialWindow,
        max_frame_payload: s.maxFramePayload,
        max_message_size: s.maxMessageSize,
        max_channels: s.maxChannels,
        session_window: s.sessionWindow,
      };
    }
    case 'EXTENSION':
      return { type: f.type, kind: f.kind, id: f.id };
  }
}

/** A vector's JSON frame as our frame object (for encoding). */
function fromJson(j) {
  const b = (h) => hex(h ?? '');
  switch (j.type) {
    case 'DATA':
      return { type: 'DATA', id: j.id, eom: j.eom, fin: j.fin, payload: b(j.payload_hex) };
    case 'OPEN':
      return {
        type: 'OPEN',
        id: j.id,
        eom: j.eom,
        fin: j.fin,
        route: j.route,
        metadata: b(j.metadata_hex),
        payload: b(j.payload_hex),
      };
    case 'WINDOW':
      return { type: 'WINDOW', id: j.id, increment: j.increment };
    case 'RESET':
    case 'STOP':
      return { type: j.type, id: j.id, code: j.code, reason: j.reason };
    case 'PING':
      return { type: 'PING', ack: j.ack, data: b(j.payload_hex) };
    case 'GOAWAY':
      return { type: 'GOAWAY', lastId: j.last_id, code: j.code, reason: j.reason };
    case 'SETTINGS':
      return {
        type: 'SETTINGS',
        settings: {
          version: j.version,
          initialWindow: j.initial_window,
          maxFramePayload: j.max_frame_payload,
          maxMessageSize: j.max_message_size,
          maxChannels: j.max_channels,
          sessionWindow: j.session_window,
        },
      };
    case 'EXTENSION':
      return { type: 'EXTENSION', kind: j.kind, flags: 0, id: j.id, payload: new Uint8Array(0) };
  }
  throw new Error(`unknown vector frame type ${j.type}`);
}

describe('frames.json', () => {
  for (const v of load('frames')) {
    test(v.name, () => {
      const frame = decodeFrame(hex(v.hex));
      assert.deepEqual(toJson(frame), v.frame, v.meaning);
      // Decoding whole messages gives the same one frame.
      assert.deepEqual(decodeMessage(hex(v.hex)).map(toJson), [v.frame]);
      if (v.reencodes !== false) {
        assert.equal(toHex(encodeFrame(fromJson(v.frame))), v.hex, 'encoding the frame gives the hex again');
        assert.equal(toHex(encodeFrame(frame)), v.hex, 're-encoding the decoded frame');
      }
    });
  }
});

describe('invalid.json', () => {
  for (const v of load('invalid')) {
    test(`${v.name} (${v.error})`, () => {
      assert.equal(v.code, 'PROTOCOL');
      assert.throws(
        () => decodeMessage(hex(v.hex)),
        (e) => {
          assert.ok(e instanceof FrameDecodeError, `a FrameDecodeError, got ${e}`);
          assert.equal(e.kind, v.error);
          assert.equal(e.code, ErrorCode.PROTOCOL);
          return true;
        },
      );
    });
  }
});

describe('packs.json', () => {
  for (const v of load('packs')) {
    test(v.name, () => {
      const entries = [...splitPack(hex(v.hex))].map(toHex);
      assert.deepEqual(entries, v.frames, v.meaning);
      for (const f of v.frames) decodeFrame(hex(f), true); // each decodes by itself
      assert.equal(toHex(encodePack(v.frames.map(hex))), v.hex, 'packing the frames gives the hex again');
    });
  }
});

describe('sessions.json', () => {
  for (const v of load('sessions')) {
    test(v.name, async () => {
      const socket = new FakeSocket();
      // A fixed clock: the budgets' token buckets refill nothing while the frames arrive.
      const options = { now: () => 0 };
      if (v.config?.session_window !== undefined) options.sessionWindow = v.config.session_window;
      if (v.config?.max_session_window !== undefined) options.maxSessionWindow = v.config.max_session_window;
      const session = v.side === 'server' ? Session.accept(socket, options) : Session.client(socket, options);
      let ended = null;
      session.closed.then(
        () => (ended = 'clean'),
        (e) => (ended = e),
      );
      // All at the same instant, before the session has transmitted anything.
      assert.equal(socket.sent.length, 0);
      for (const f of v.peer_frames) socket.receive(hex(f));
      await ticks(3);
      const sent = socket.frames();
      assert.equal(sent[0]?.type, 'SETTINGS', 'the first frame is SETTINGS');
      const goaways = sent.filter((f) => f.type === 'GOAWAY');
      const resets = sent.filter((f) => f.type === 'RESET');
      const e = v.expect;
      if (e.goaway !== undefined) {
        assert.equal(goaways.length, 1, 'one GOAWAY');
        assert.equal(goaways[0].code, ErrorCode[e.goaway], `GOAWAY ${e.goaway}`);
        assert.ok(ended !== null, 'the session is closed');
        assert.notEqual(socket.closeCode, undefined, 'the WebSocket was closed');
        assert.equal(ended.code, ErrorCode[e.goaway]);
      } else {
        assert.equal(goaways.length, 0, `no GOAWAY, got ${JSON.stringify(goaways)}`);
        assert.equal(ended, null, 'the session lives');
        assert.equal(socket.closeCode, undefined);
        if (e.reset !== undefined) {
          assert.deepEqual(
            resets.map((r) => [r.id, r.code]),
            [[e.reset.id, ErrorCode[e.reset.code]]],
            `one RESET ${e.reset.code} for channel ${e.reset.id}`,
          );
        } else {
          assert.ok(e.ignored);
          assert.deepEqual(resets, [], 'no RESET');
        }
      }
      if (e.ping_acks !== undefined) {
        assert.equal(sent.filter((f) => f.type === 'PING' && f.ack).length, e.ping_acks, 'PING ACKs');
      }
      socket.fireClose(1006, 'test over');
      await ticks(1);
    });
  }
});
