// A same-origin home for browser tests: serves static files from `root` and hands WebSocket
// upgrades on `/mux` to the wsmux server at `upstream` (a raw TCP pipe: the request head goes
// through unchanged, so the server sees the page's own Host and Origin and its default
// same-host Origin policy admits the page). No dependencies: node:http, node:net, node:fs.
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
};

/**
 * Starts the page server on 127.0.0.1 (a free port).
 * @param {{ root: string, upstream?: { host: string, port: number }, routes?: Record<string, string> }} options
 *   `routes` maps URL paths to files (for example `/` to the test page); without `upstream`,
 *   upgrades are refused.
 * @returns {Promise<{ port: number, url: string, close(): Promise<void> }>}
 */
export async function startPageServer({ root, upstream, routes = {} }) {
  const sockets = new Set();
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = routes[path] ?? join(root, normalize(path).replace(/^([/\\])+/, ''));
    if (!file.startsWith(root) && !(path in routes)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
        // Cross-origin isolation: the page's performance.now() then has a resolution of
        // microseconds, not Chromium's 100 µs (the bench times 64-byte echoes). WebSockets are
        // not subject to it.
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no ${path}\n`);
    }
  });
  server.on('upgrade', (req, socket, head) => {
    if (!upstream) {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const up = connect(upstream.port, upstream.host, () => {
      let raw = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      }
      up.write(raw + '\r\n');
      if (head.length) up.write(head);
      socket.pipe(up).pipe(socket);
    });
    for (const s of [socket, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { socket.destroy(); up.destroy(); });
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
