import { WebSocket } from 'ws';
import { startReferenceServer } from '../tools/reference-server.mjs';
const server = await startReferenceServer({ plain: true });
for (const size of [16384, 16390, 65536]) for (const bt of ['arraybuffer', 'nodebuffer']) {
  const n = 200_000_000;
  const ws = new WebSocket(server.plainUrl); ws.binaryType = bt;
  await new Promise((r) => ws.once('open', r));
  const t = performance.now(); ws.send(`source ${n} ${size}`);
  let got = 0; await new Promise((r) => { ws.on('message', (d) => { got += d.byteLength; }); ws.once('close', r); });
  console.log(size, bt, (got / 1e6 / ((performance.now() - t) / 1000)).toFixed(0), 'MB/s');
}
server.stop();
