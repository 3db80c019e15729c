// Channel.closed: fulfils when both directions end cleanly, rejects at the first failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResetError, SessionError, StopError } from '../dist/index.js';
import { ErrorCode, kill, sessionPair, settle, text } from './harness.mjs';

async function accepted(server) {
  const reader = server.incoming.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return value;
}

test('closed fulfils once FIN went both ways, not before', async () => {
  const { client, server, clientSocket } = sessionPair();
  const ch = client.open('r', { message: text('hi'), finish: true });
  const peer = await settle(accepted(server));
  let settled = false;
  ch.closed.then(() => (settled = true));
  assert.equal(await settle(peer.recvText()), 'hi');
  assert.equal(await settle(peer.recv()), null);
  await settle(new Promise((r) => setTimeout(r, 10)));
  assert.equal(settled, false, 'only our FIN went: the channel is not over');
  await peer.finish();
  await settle(Promise.all([ch.closed, peer.closed]));
  assert.equal(await ch.recv(), null);
  kill(clientSocket);
});

test('closed rejects with the ResetError of a reset by the peer, even after our FIN', async () => {
  const { client, server, clientSocket } = sessionPair();
  const ch = client.open('r', { finish: true });
  const peer = await settle(accepted(server));
  peer.reset(ErrorCode.CANCEL, 'no');
  await assert.rejects(settle(ch.closed), (e) => e instanceof ResetError && e.code === ErrorCode.CANCEL && e.reason === 'no');
  await assert.rejects(settle(peer.closed), (e) => e instanceof ResetError && e.origin === 'local');
  kill(clientSocket);
});

test('closed rejects with a StopError when the peer stops reading, and at the end of the session', async () => {
  const { client, server, clientSocket } = sessionPair();
  const ch = client.open('r');
  await ch.sendText('x');
  const peer = await settle(accepted(server));
  peer.stopReceiving(ErrorCode.CANCEL, 'enough');
  await assert.rejects(settle(ch.closed), (e) => e instanceof StopError && e.code === ErrorCode.CANCEL);
  const other = client.open('r');
  await other.sendText('y');
  kill(clientSocket);
  await assert.rejects(settle(other.closed), (e) => e instanceof SessionError);
});
