import { WebSocket } from 'ws';
import * as wsmux from '/work/main/js/dist/index.js';
import { startReferenceServer } from '/work/main/js/tools/reference-server.mjs';
const server = await startReferenceServer({ args: (process.env.SERVER_ARGS ?? '').split(' ').filter(Boolean) });
const s = await wsmux.connect(server.url, { WebSocket, ...JSON.parse(process.argv[3] ?? "{}") });
const mode = process.argv[2] ?? 'down';
const n = 300_000_000;
const t = performance.now();
if (mode === 'down') {
  const ch = s.open('source', { metadata: new TextEncoder().encode(String(n)), finish: true });
  let got = 0; for (let m = await ch.recv(); m !== null; m = await ch.recv()) got += m.length;
} else {
  const ch = s.open('discard'); const b = new Uint8Array(65536);
  for (let left = n; left > 0; left -= b.length) await ch.send(b);
  await ch.finish(); await ch.recv();
}
console.log(JSON.stringify(s.stats()));
console.log(mode, (n / 1e6 / ((performance.now() - t) / 1000)).toFixed(0), 'MB/s');
s.close(); await s.closed; server.stop();
