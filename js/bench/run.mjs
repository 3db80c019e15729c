// `npm run bench`: the JS client against the Rust reference server, beside a plain WebSocket
// to the same server, in Node and in headless Chromium; then the bundle's size.
// Flags: --quick (tiny sizes, a smoke test), --node or --browser (one of the two).
// Chromium: $CHROMIUM or /usr/bin/chromium, driven by playwright-core.
import { WebSocket as NodeWebSocket } from 'ws';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startReferenceServer } from '../tools/reference-server.mjs';
import { startPageServer } from '../tools/page-server.mjs';
import { runAll, format } from './cases.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const only = args.has('--node') ? 'node' : args.has('--browser') ? 'browser' : 'both';
// $WSMUX_OPTIONS: session options (JSON) for the wsmux side, to try settings.
const options = JSON.parse(process.env.WSMUX_OPTIONS ?? '{}');
const serverArgs = (process.env.WSMUX_SERVER_ARGS ?? '').split(' ').filter(Boolean);

async function inNode() {
  const server = await startReferenceServer({ plain: true, args: serverArgs });
  try {
    const wsmux = await import('../dist/index.js');
    const env = { wsmux, WebSocket: NodeWebSocket, muxUrl: server.url, plainUrl: server.plainUrl, quick, options };
    const rows = await runAll(env);
    console.log(format(`Node ${process.version} (the ws package), both against the Rust reference server`, rows));
  } finally {
    server.stop();
  }
}

async function inChromium() {
  const { chromium } = await import('playwright-core');
  const page = await startPageServer({ root });
  // The page talks to the server directly (no proxy in the way of either system): the server
  // admits the page's origin by its allow-list.
  const server = await startReferenceServer({ plain: true, args: ['--allow-origin', page.url, ...serverArgs] });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  try {
    const tab = await browser.newPage();
    tab.on('pageerror', (e) => console.error('page error:', e));
    const q = new URLSearchParams({ mux: server.url, plain: server.plainUrl, quick: quick ? '1' : '', options: JSON.stringify(options) });
    await tab.goto(`${page.url}/bench/page.html?${q}`);
    const rows = await tab.evaluate(() => window.bench);
    const version = await tab.evaluate(() => navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0]);
    const isolated = await tab.evaluate(() => crossOriginIsolated);
    console.log(format(`Chromium (${version}, headless${isolated ? ', cross-origin isolated: fine timers' : ''}), both against the Rust reference server`, rows));
  } finally {
    await browser.close();
    await page.close();
    server.stop();
  }
}

async function bundleSize() {
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [join(root, 'dist', 'index.js')],
    bundle: true,
    minify: true,
    format: 'esm',
    write: false,
    target: 'es2022',
  });
  const code = out.outputFiles[0].contents;
  console.log(`bundle: ${code.length} bytes minified, ${gzipSync(code, { level: 9 }).length} bytes minified+gzipped (esbuild, dist/index.js)`);
}

if (only !== 'browser') await inNode();
if (only !== 'node') await inChromium();
await bundleSize();
