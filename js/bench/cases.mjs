// The JS benchmark's cases, the same in Node and in a browser: each runs over wsmux (one
// session to the reference server) and over a plain WebSocket to the same server's `--plain`
// endpoint doing the same work, so the two figures come from one run of one runtime.
//
// env: { wsmux: the package's module, WebSocket: a constructor, muxUrl, plainUrl, quick,
//        options: session options for connect() }

const MB = 1e6;

const now = () => performance.now();

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A plain WebSocket in `mode` (its first message), open and ready. */
function plain(env, mode) {
  return new Promise((resolve, reject) => {
    const ws = new env.WebSocket(env.plainUrl);
    // The fastest type each runtime offers, as the wsmux transport picks: Node Buffers with
    // the ws package (no copy per message), ArrayBuffers in browsers.
    ws.binaryType = 'nodebuffer';
    if (ws.binaryType !== 'nodebuffer') ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      ws.send(mode);
      resolve(ws);
    };
    ws.onerror = () => reject(new Error(`plain WebSocket to ${env.plainUrl} failed`));
  });
}

/** Resolves with the next message of a plain WebSocket. */
function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    ws.onmessage = (e) => resolve(e.data);
    ws.onclose = () => reject(new Error('plain WebSocket closed'));
  });
}

function connect(env) {
  return env.wsmux.connect(env.muxUrl, { WebSocket: env.WebSocket, ...env.options });
}

const text = (s) => new TextEncoder().encode(s);

// ----- download: the server sends N bytes in 64 KiB messages -----

async function downloadMux(env, bytes) {
  const session = await connect(env);
  const t = now();
  const ch = await session.open('source', { metadata: text(String(bytes)), finish: true });
  let got = 0;
  for (let m = await ch.recv(); m !== null; m = await ch.recv()) got += m.byteLength;
  const s = (now() - t) / 1000;
  session.close();
  if (got !== bytes) throw new Error(`download: ${got} of ${bytes} bytes`);
  return got / MB / s;
}

async function downloadPlain(env, bytes) {
  const t = now();
  const ws = await plain(env, `source ${bytes} 65536`);
  let got = 0;
  await new Promise((resolve) => {
    ws.onmessage = (e) => {
      got += e.data.byteLength;
    };
    ws.onclose = resolve;
  });
  const s = (now() - t) / 1000;
  if (got !== bytes) throw new Error(`plain download: ${got} of ${bytes} bytes`);
  return got / MB / s;
}

// ----- upload: the client sends N bytes in 64 KiB messages, until the server has them -----

async function uploadMux(env, bytes) {
  const session = await connect(env);
  const block = new Uint8Array(65536);
  const t = now();
  const ch = await session.open('discard');
  for (let left = bytes; left > 0; left -= block.length) {
    await ch.send(left >= block.length ? block : block.subarray(0, left));
  }
  await ch.finish();
  // `discard` finishes once it has read everything: the end says the server has it all.
  if ((await ch.recv()) !== null) throw new Error('discard sent data');
  const s = (now() - t) / 1000;
  session.close();
  return bytes / MB / s;
}

async function uploadPlain(env, bytes) {
  const ws = await plain(env, 'discard');
  const block = new Uint8Array(65536);
  const t = now();
  for (let left = bytes; left > 0; left -= block.length) {
    ws.send(left >= block.length ? block : block.subarray(0, left));
    // A plain WebSocket has no backpressure: wait for its buffer, as a careful page would.
    while (ws.bufferedAmount > 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 1));
  }
  const count = nextMessage(ws);
  ws.send('done');
  const got = Number(await count);
  const s = (now() - t) / 1000;
  ws.close();
  if (got !== bytes) throw new Error(`plain upload: the server got ${got} of ${bytes}`);
  return bytes / MB / s;
}

// ----- echo: one 64-byte message at a time, round-trip times -----

async function echoMux(env, samples) {
  const session = await connect(env);
  const ch = await session.open('echo');
  const msg = new Uint8Array(64);
  const times = [];
  for (let i = 0; i < samples + 100; i++) {
    const t = now();
    await ch.send(msg);
    const back = await ch.recv();
    if (back === null || back.byteLength !== 64) throw new Error('echo lost a message');
    if (i >= 100) times.push(now() - t);
  }
  session.close();
  return times.sort((a, b) => a - b);
}

async function echoPlain(env, samples) {
  const ws = await plain(env, 'echo');
  const msg = new Uint8Array(64);
  const times = [];
  for (let i = 0; i < samples + 100; i++) {
    const t = now();
    const back = nextMessage(ws);
    ws.send(msg);
    if ((await back).byteLength !== 64) throw new Error('plain echo lost a message');
    if (i >= 100) times.push(now() - t);
  }
  ws.close();
  return times.sort((a, b) => a - b);
}

// ----- many at once: 100 conversations, each 10 echoes of 1 KiB, from a cold start -----

async function manyMux(env, count) {
  const t = now();
  const session = await connect(env);
  const msg = new Uint8Array(1024);
  await Promise.all(
    Array.from({ length: count }, async () => {
      const ch = await session.open('echo');
      for (let i = 0; i < 10; i++) {
        await ch.send(msg);
        const back = await ch.recv();
        if (back === null || back.byteLength !== 1024) throw new Error('echo lost a message');
      }
      await ch.finish();
      if ((await ch.recv()) !== null) throw new Error('echo sent more');
    }),
  );
  const ms = now() - t;
  session.close();
  return ms;
}

async function manyPlain(env, count) {
  const t = now();
  const msg = new Uint8Array(1024);
  const sockets = await Promise.all(
    Array.from({ length: count }, async () => {
      const ws = await plain(env, 'echo');
      for (let i = 0; i < 10; i++) {
        const back = nextMessage(ws);
        ws.send(msg);
        if ((await back).byteLength !== 1024) throw new Error('plain echo lost a message');
      }
      return ws;
    }),
  );
  const ms = now() - t;
  for (const ws of sockets) ws.close();
  return ms;
}

/**
 * Runs every case, wsmux and plain alternated `rounds` times; returns rows of
 * { case, unit, wsmux, plain, ratio } (medians over the rounds; ratio = wsmux / plain, so
 * above 1 is wsmux ahead for rates and behind for times).
 */
export async function runAll(env, log = () => {}) {
  const quick = Boolean(env.quick);
  const rounds = quick ? 1 : 3;
  const bytes = quick ? 2_000_000 : 50_000_000;
  const samples = quick ? 200 : 2000;
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows = [];
  const rate = async (name, mux, pl) => {
    const a = [];
    const b = [];
    for (let r = 0; r < rounds; r++) {
      a.push(await mux());
      b.push(await pl());
    }
    const row = { case: name, unit: 'MB/s', wsmux: median(a), plain: median(b) };
    row.ratio = row.wsmux / row.plain;
    rows.push(row);
    log(row);
  };
  await rate(`download ${bytes / MB} MB`, () => downloadMux(env, bytes), () => downloadPlain(env, bytes));
  await rate(`upload ${bytes / MB} MB`, () => uploadMux(env, bytes), () => uploadPlain(env, bytes));
  const a = await echoMux(env, samples);
  const b = await echoPlain(env, samples);
  for (const p of [50, 99]) {
    const row = { case: `echo 64 B p${p}`, unit: 'ms', wsmux: percentile(a, p), plain: percentile(b, p) };
    row.ratio = row.wsmux / row.plain;
    rows.push(row);
    log(row);
  }
  const many = quick ? 10 : 100;
  const m = [];
  const p = [];
  for (let r = 0; r < rounds; r++) {
    m.push(await manyMux(env, many));
    p.push(await manyPlain(env, many));
  }
  const row = {
    case: `${many} at once (one session | ${many} sockets)`,
    unit: 'ms',
    wsmux: median(m),
    plain: median(p),
  };
  row.ratio = row.wsmux / row.plain;
  rows.push(row);
  log(row);
  return rows;
}

/** The rows as a table; `ratio` is wsmux / plain (for times, below 1 is wsmux faster). */
export function format(title, rows) {
  const pad = (s, n) => String(s).padEnd(n);
  const num = (x) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
  const lines = [`${title}`, `  ${pad('case', 44)}${pad('wsmux', 12)}${pad('plain', 12)}wsmux/plain`];
  for (const r of rows) {
    lines.push(
      `  ${pad(r.case, 44)}${pad(`${num(r.wsmux)} ${r.unit}`, 12)}${pad(`${num(r.plain)} ${r.unit}`, 12)}${r.ratio.toFixed(2)}x`,
    );
  }
  return lines.join('\n');
}
