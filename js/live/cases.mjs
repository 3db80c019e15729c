// The live suite: the JS client against the Rust reference server (PROTOCOL.md section 14),
// written once and run both by Node (test/live.test.mjs) and by a page in headless Chromium
// (live/browser.mjs). A case gets `env`: { wsmux (the package), WebSocket (a constructor),
// url (the server's wsmux endpoint) } and throws on failure. Every case opens its own session.
import { check, equal, fnv1a, pattern, rejectsWithCode, sameBytes, sleep, within } from './check.mjs';

const MiB = 1 << 20;
const utf8 = new TextEncoder();

function connect(env, options = {}) {
  return env.wsmux.connect(env.url, { WebSocket: env.WebSocket, ...options });
}

/** Runs `body(session)` on a fresh session, then closes it and checks that it ended cleanly. */
async function withSession(env, options, body) {
  const session = await connect(env, options);
  try {
    await body(session);
  } finally {
    session.close();
  }
  await within(10_000, session.closed, 'the session ends cleanly after close()');
}

/** Reads a channel to its end: every message, in order. */
async function readAll(ch) {
  const messages = [];
  for (;;) {
    const m = await ch.recv();
    if (m === null) return messages;
    messages.push(m);
  }
}

/** Sends every message on `echo` while reading the answers (reading is what grants credit). */
async function echo(ch, messages) {
  const answers = readAll(ch);
  for (const m of messages) await ch.send(m);
  await ch.finish();
  return answers;
}

async function drainSource(ch, onMessage = () => {}) {
  let total = 0;
  let count = 0;
  for (;;) {
    const m = await ch.recv();
    if (m === null) return { total, count };
    onMessage(m, count);
    total += m.length;
    count++;
  }
}

export const cases = [
  {
    name: 'echo returns every message size from 0 B to 4 MiB unchanged, in order, then FIN',
    async run(env) {
      const sizes = [0, 1, 100, 16383, 16384, 16385, 65536, 262143, 262144, MiB, 4 * MiB];
      await withSession(env, {}, async (session) => {
        const sent = sizes.map((n, i) => pattern(n, i + 1));
        const answers = await echo(session.open('echo'), sent);
        equal(answers.length, sent.length, 'answers');
        answers.forEach((a, i) => sameBytes(a, sent[i], `answer ${i} (${sizes[i]} bytes)`));
      });
    },
  },
  {
    name: 'source sends 50 MB in messages of 64 KiB (all full but the last), then FIN',
    async run(env) {
      await withSession(env, {}, async (session) => {
        const n = 50_000_000;
        const ch = session.open('source', { metadata: utf8.encode(String(n)), finish: true });
        const last = Math.ceil(n / 65536) - 1;
        const { total, count } = await drainSource(ch, (m, i) => {
          if (i < last) equal(m.length, 65536, `message ${i}`);
        });
        equal(total, n, 'bytes received');
        equal(count, last + 1, 'messages received');
        const stats = ch.stats();
        equal(stats.bytesReceived, n, 'channel stats: bytesReceived');
      });
    },
  },
  {
    name: 'a reader that does not read holds at most one channel window: credit is returned only as messages are read',
    async run(env) {
      const window = 65536;
      await withSession(env, { initialWindow: window }, async (session) => {
        const n = 8 * MiB;
        const ch = session.open('source', { metadata: utf8.encode(String(n)), finish: true });
        await sleep(300);
        const held = ch.stats().bytesReceived;
        check(held > 0, 'the source started sending');
        check(held <= window, `unread bytes ${held} exceed the window of ${window} the client granted`);
        const { total } = await drainSource(ch);
        equal(total, n, 'bytes received once read');
      });
    },
  },
  {
    name: 'discard takes 50 MB in 64 KiB messages within the credit it grants, then FIN after ours',
    async run(env) {
      await withSession(env, {}, async (session) => {
        const ch = session.open('discard');
        const chunk = pattern(65536, 7);
        let sent = 0;
        while (sent < 50_000_000) {
          const n = Math.min(chunk.length, 50_000_000 - sent);
          await ch.send(n === chunk.length ? chunk : chunk.subarray(0, n));
          sent += n;
          check(ch.stats().sendCredit >= 0, 'send credit never goes below zero');
        }
        await ch.finish();
        equal(await within(10_000, ch.recv(), 'discard finishes'), null, 'discard ends with FIN');
        equal(ch.stats().bytesSent, 50_000_000, 'channel stats: bytesSent');
      });
    },
  },
  {
    name: '100 channels at once on one session, each with its own checksum',
    async run(env) {
      await withSession(env, {}, async (session) => {
        const ids = new Set();
        await Promise.all(
          Array.from({ length: 100 }, async (_, c) => {
            const ch = session.open('echo');
            const sent = Array.from({ length: 10 }, (_, i) => pattern(((c * 131 + i * 977) % 20000) + 1, c * 10 + i + 1));
            const answers = await echo(ch, sent);
            ids.add(ch.id);
            equal(answers.length, 10, `channel ${c}: answers`);
            equal(fnv1a(answers), fnv1a(sent), `channel ${c}: checksum`);
          }),
        );
        equal(ids.size, 100, 'distinct channel ids');
        check([...ids].every((id) => id % 2 === 1), 'the client opens odd ids');
      });
    },
  },
  {
    name: 'refusals: an unknown route is NOT_FOUND, a source count that is not a number is PROTOCOL; the session goes on',
    async run(env) {
      const { ErrorCode } = env.wsmux;
      await withSession(env, {}, async (session) => {
        const missing = session.open('no-such-route');
        await rejectsWithCode(missing.recv(), ErrorCode.NOT_FOUND, 'unknown route');
        const bad = session.open('source', { metadata: utf8.encode('lots'), finish: true });
        await rejectsWithCode(bad.recv(), ErrorCode.PROTOCOL, 'source with metadata "lots"');
        const answers = await echo(session.open('echo'), [utf8.encode('still here')]);
        equal(new TextDecoder().decode(answers[0]), 'still here', 'echo after the refusals');
      });
    },
  },
  {
    name: 'message limits: too large for the server rejects the send; an echo too large for us resets with LIMIT',
    async run(env) {
      const { ErrorCode } = env.wsmux;
      await withSession(env, { maxMessageSize: MiB }, async (session) => {
        const ch = session.open('echo');
        const answer = ch.recv();
        await ch.send(pattern(2 * MiB, 3));
        await rejectsWithCode(answer, ErrorCode.LIMIT, 'an answer over our MAX_MESSAGE_SIZE');
        const big = session.open('discard');
        let error;
        await big.send(new Uint8Array(16 * MiB + 1)).catch((e) => (error = e));
        check(error instanceof env.wsmux.MessageTooLargeError, `over the server's 16 MiB: ${error}`);
        // The direction lost a message, so it cannot end cleanly: finish() ends it with RESET
        // LIMIT (section 5), which `discard` sees as a reset and the session does not wait on.
        await big.finish().catch(() => {});
        await rejectsWithCode(big.recv(), ErrorCode.LIMIT, 'the channel after a refused message');
        const answers = await echo(session.open('echo'), [utf8.encode('ok')]);
        equal(answers.length, 1, 'echo after the limits');
      });
    },
  },
  {
    name: 'text helpers round-trip UTF-8 through echo',
    async run(env) {
      await withSession(env, {}, async (session) => {
        const ch = session.open('echo');
        const text = 'héllo, wörld: 多路复用 🚀';
        await ch.sendText(text);
        await ch.finish();
        equal(await ch.recvText(), text, 'echoed text');
        equal(await ch.recvText(), null, 'then the end');
      });
    },
  },
  {
    name: 'streams: pipe a ReadableStream into channel.writable and read channel.readable',
    async run(env) {
      await withSession(env, {}, async (session) => {
        const ch = session.open('echo');
        const sent = Array.from({ length: 50 }, (_, i) => pattern(1000 + i * 500, i + 11));
        const source = new ReadableStream({
          start(controller) {
            for (const m of sent) controller.enqueue(m);
            controller.close();
          },
        });
        const piped = source.pipeTo(ch.writable);
        const got = [];
        const reader = ch.readable.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          got.push(value);
        }
        await piped;
        equal(got.length, sent.length, 'messages through the streams');
        equal(fnv1a(got), fnv1a(sent), 'checksum through the streams');
      });
    },
  },
  {
    name: 'an AbortSignal resets the channel with CANCEL; other channels and the session go on',
    async run(env) {
      const { ErrorCode } = env.wsmux;
      await withSession(env, {}, async (session) => {
        const abort = new AbortController();
        const ch = session.open('source', { metadata: utf8.encode('50000000'), finish: true, signal: abort.signal });
        check((await ch.recv()).length > 0, 'the source started');
        abort.abort();
        const error = await rejectsWithCode(drainSource(ch), ErrorCode.CANCEL, 'reading after abort');
        check(error instanceof env.wsmux.ResetError, `a ResetError, got ${error.name}`);
        const answers = await echo(session.open('echo'), [utf8.encode('after')]);
        equal(answers.length, 1, 'echo after the abort');
      });
    },
  },
  {
    name: 'close() drains: the channel in flight completes, new opens fail, closed fulfils',
    async run(env) {
      const session = await connect(env);
      const n = 4 * MiB;
      const ch = session.open('source', { metadata: utf8.encode(String(n)), finish: true });
      const drained = drainSource(ch);
      session.close();
      let refused = null;
      try {
        const late = session.open('echo');
        await late.recv();
      } catch (e) {
        refused = e;
      }
      check(refused !== null, 'open after close() fails');
      const { total } = await within(10_000, drained, 'the source drains after GOAWAY');
      equal(total, n, 'bytes of the channel in flight');
      await within(10_000, session.closed, 'the session ends cleanly once drained');
    },
  },
  {
    name: 'keepalive: PINGs on the interval measure the RTT; ping() answers',
    async run(env) {
      await withSession(env, { keepaliveInterval: 100 }, async (session) => {
        await session.ready;
        const rtt = await within(5_000, session.ping(), 'ping()');
        check(typeof rtt === 'number' && rtt >= 0 && rtt < 5_000, `ping() RTT ${rtt}`);
        await sleep(350);
        const stats = session.stats();
        check(typeof stats.rtt === 'number' && stats.rtt >= 0, `stats().rtt after keepalive: ${stats.rtt}`);
      });
    },
  },
  {
    name: 'one session and many kinds of traffic at once: source, discard and echo side by side',
    async run(env) {
      await withSession(env, {}, async (session) => {
        const down = drainSource(session.open('source', { metadata: utf8.encode('8000000'), finish: true }));
        const up = (async () => {
          const ch = session.open('discard');
          const chunk = pattern(65536, 5);
          for (let sent = 0; sent < 8_000_000; sent += chunk.length) await ch.send(chunk);
          await ch.finish();
          return ch.recv();
        })();
        const pings = (async () => {
          const ch = session.open('echo');
          const r = readAll(ch);
          for (let i = 0; i < 50; i++) await ch.send(utf8.encode(`ping ${i}`));
          await ch.finish();
          return r;
        })();
        const [d, u, p] = await Promise.all([down, up, pings]);
        equal(d.total, 8_000_000, 'source bytes');
        equal(u, null, 'discard ends');
        equal(p.length, 50, 'echoes beside the bulk');
      });
    },
  },
];
