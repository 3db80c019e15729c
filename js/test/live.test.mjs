// The live suite (live/cases.mjs and the RPC cases of live/rpc-cases.mjs) in Node, against
// the Rust reference server, which this file starts (and builds with cargo when needed, see
// tools/reference-server.mjs).
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import * as wsmux from '../dist/index.js';
import { cases } from '../live/cases.mjs';
import { cases as rpcCases } from '../live/rpc-cases.mjs';
import { startReferenceServer } from '../tools/reference-server.mjs';

let server;
before(async () => {
  server = await startReferenceServer();
});
after(() => server?.stop());

for (const c of [...cases, ...rpcCases]) {
  test(c.name, { timeout: 60_000 }, () => c.run({ wsmux, WebSocket, url: server.url }));
}
