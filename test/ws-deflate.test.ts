/**
 * permessage-deflate through the byte relay: negotiated end to end between client and upstream
 * (the proxy passes the offer and the answer, and the compressed frames, unchanged).
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { startProxy } from './helpers/proxy-under-test.js';

t.test('permessage-deflate is negotiated end to end and compressed messages pass unchanged', async (t) => {
  const server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: { threshold: 0 } });
  const upstreamExtensions: string[] = [];
  wss.on('connection', (ws) => {
    upstreamExtensions.push(ws.extensions);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => { wss.close(); server.close(); });
  const proxy = await startProxy(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  t.teardown(() => proxy.close());

  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws/deflate`, { perMessageDeflate: { threshold: 0 } });
  await once(ws, 'open');
  t.match(ws.extensions, /permessage-deflate/, 'the client negotiated permessage-deflate');
  t.match(upstreamExtensions[0], /permessage-deflate/, 'with the upstream itself');
  const big = 'live data '.repeat(10_000);
  const echoes: string[] = [];
  ws.on('message', (data) => echoes.push(String(data)));
  ws.send(big);
  ws.send('small');
  await new Promise<void>((resolve) => { const check = () => (echoes.length === 2 ? resolve() : setTimeout(check, 10)); check(); });
  t.same(echoes, [big, 'small'], 'compressed messages travel both ways intact');
  ws.close();
});
