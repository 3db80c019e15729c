// `node bench/cpu.mjs`: where the CPU goes while headless Chromium downloads 100 MB from the
// reference server, over wsmux and over a plain WebSocket (alternated twice): each process's
// share of one core (from /proc, Linux only), beside the rate. On a small machine the
// browser's own processes are the ceiling for both; this shows it.
import { chromium } from 'playwright-core';
import { readFileSync, readdirSync } from 'node:fs';
import { startReferenceServer } from '../tools/reference-server.mjs';
import { startPageServer } from '../tools/page-server.mjs';
const page = await startPageServer({ root: process.cwd() });
const server = await startReferenceServer({ plain: true, args: ['--allow-origin', page.url] });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const tab = await browser.newPage();
await tab.goto(`${page.url}/live/page.html?only=nothing`);
await tab.evaluate(() => window.results);
function cpu() {
  const out = {};
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const type = /--type=(\w+)/.exec(cmd)?.[1] ?? comm;
      const key = comm === 'server' ? 'server' : /chrom/.test(comm) ? `chromium:${type}` : null;
      if (key) out[key] = (out[key] ?? 0) + Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return out;
}
for (const mode of ['mux', 'plain', 'mux', 'plain']) {
  const before = cpu(); const t = Date.now();
  const r = await tab.evaluate(async ({ url, plainUrl, mode }) => {
    const n = 100e6; const t = performance.now();
    if (mode === 'mux') {
      const wsmux = await import('/dist/index.js');
      const s = await wsmux.connect(url);
      const ch = s.open('source', { metadata: new TextEncoder().encode(String(n)), finish: true });
      for (let m = await ch.recv(); m !== null; m = await ch.recv());
      s.close();
    } else {
      const ws = new WebSocket(plainUrl); ws.binaryType = 'arraybuffer';
      await new Promise((r) => (ws.onopen = r)); ws.send(`source ${n} 65536`);
      await new Promise((r) => { ws.onmessage = () => {}; ws.onclose = r; });
    }
    return (n / 1e6 / ((performance.now() - t) / 1000)).toFixed(0);
  }, { url: server.url, plainUrl: server.plainUrl, mode });
  const after = cpu(); const wall = (Date.now() - t) / 10; // in clock ticks (100/s)
  const use = Object.fromEntries(Object.keys(after).map((k) => [k, `${Math.round((100 * (after[k] - (before[k] ?? 0))) / wall)}%`]));
  console.log(mode, r, 'MB/s', JSON.stringify(use));
}
await browser.close(); await page.close(); server.stop();
