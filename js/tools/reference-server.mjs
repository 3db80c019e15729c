// Starts the Rust reference server (examples/server.rs) for tests and benchmarks: the binary
// from $WSMUX_SERVER, else ../target/release/examples/server, built with cargo if missing
// (rustBinary does the same for the other examples).
// Listens on free 127.0.0.1 ports; stops with the process or with `stop()`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The path of a release build of the Rust example `name` (`server`, `client`), building it
 * with cargo if missing; $WSMUX_SERVER / $WSMUX_CLIENT name a binary to use instead.
 */
export function rustBinary(name) {
  const override = process.env[`WSMUX_${name.toUpperCase()}`];
  if (override) return override;
  const path = join(repo, 'target', 'release', 'examples', name);
  if (!existsSync(path)) {
    const built = spawnSync('cargo', ['build', '--release', '--example', name], {
      cwd: repo,
      stdio: 'inherit',
    });
    if (built.status !== 0) throw new Error(`cargo build --release --example ${name} failed`);
  }
  return path;
}

/** The path of the reference server binary, building it if needed. */
export const serverBinary = () => rustBinary('server');

/** A free TCP port on 127.0.0.1 (free when asked: another process may take it after). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the reference server.
 * @param {{ args?: string[], plain?: boolean }} options extra arguments (`--any-origin`,
 *   `--allow-origin ORIGIN`); `plain` also serves the plain WebSocket baseline (`--plain`).
 * @returns {Promise<{ url: string, plainUrl?: string, port: number, stop(): void }>}
 */
export async function startReferenceServer({ args = [], plain = false } = {}) {
  const port = await freePort();
  const plainPort = plain ? await freePort() : undefined;
  const argv = ['--listen', `127.0.0.1:${port}`, ...args];
  if (plainPort) argv.push('--plain', `127.0.0.1:${plainPort}`);
  const child = spawn(serverBinary(), argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () => child.kill();
  process.once('exit', stop);
  // Ready once it printed the wsmux line (after the plain one, when asked for); then drain
  // stdout so that its log lines never fill the pipe.
  await new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk) => {
      seen += chunk;
      if (seen.includes('wsmux server on')) {
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve();
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`reference server exited (${code}): ${seen}`)));
  });
  child.stdout.on('data', () => {});
  return {
    port,
    url: `ws://127.0.0.1:${port}/mux`,
    plainUrl: plainPort ? `ws://127.0.0.1:${plainPort}/` : undefined,
    stop,
  };
}
