// `npm run test:browser`: the live suite (live/cases.mjs and live/rpc-cases.mjs) in headless
// Chromium. The page and its WebSocket share one origin: tools/page-server.mjs serves the page
// and proxies /mux to the Rust reference server, whose default Origin policy (same host only)
// then admits it.
// Chromium: $CHROMIUM or /usr/bin/chromium, driven by playwright-core. Exit status 1 on any
// failure. `--only TEXT` runs the cases whose name contains TEXT.
import { chromium } from 'playwright-core';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPageServer } from '../tools/page-server.mjs';
import { startReferenceServer } from '../tools/reference-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt > 0 ? process.argv[onlyAt + 1] : '';

const server = await startReferenceServer();
const page = await startPageServer({ root, upstream: { host: '127.0.0.1', port: server.port } });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
let failed = 0;
try {
  const tab = await browser.newPage();
  tab.on('pageerror', (e) => console.error('page error:', e));
  tab.on('console', (m) => m.type() === 'error' && console.error('page console:', m.text()));
  const version = await tab.evaluate(() => navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0]);
  await tab.goto(`${page.url}/live/page.html${only ? `?only=${encodeURIComponent(only)}` : ''}`);
  const started = Date.now();
  const results = await tab.evaluate(() => window.results);
  for (const r of results) {
    console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name} (${r.ms.toFixed(0)} ms)`);
    if (!r.ok) {
      failed++;
      console.log(`     ${r.error.replace(/\n/g, '\n     ')}`);
    }
  }
  console.log(`\nChromium ${version} (headless), page and WebSocket on ${page.url}: ${results.length - failed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (results.length === 0) failed = 1;
} finally {
  await browser.close();
  await page.close();
  server.stop();
}
process.exit(failed ? 1 : 0);
