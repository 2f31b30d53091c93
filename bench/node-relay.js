/**
 * The floor for any byte relay written in Node, in its own process: a plain TCP relay (no
 * Fastify, no WebSocket code, no inspection) that passes every byte of a connection, the
 * WebSocket handshake included, to BENCH_UPSTREAM and back — one write per read in each
 * direction, with back-pressure. Section 4a runs it beside the proxy: what it costs per message
 * is what Node's reads and writes cost, so the proxy's CPU per message above it is the relay's
 * own work.
 */
import net from 'node:net';
import { serve, failed } from './lib/ipc.js';

const upstream = new URL(process.env.BENCH_UPSTREAM ?? '');

const server = net.createServer((down) => {
  const up = net.connect({ host: upstream.hostname, port: Number(upstream.port) });
  for (const s of [down, up]) s.setNoDelay(true);
  // pipe: one write per read, and a side whose partner is backed up is paused
  down.pipe(up);
  up.pipe(down);
  const end = () => {
    down.destroy();
    up.destroy();
  };
  for (const s of [down, up]) {
    s.on('close', end);
    s.on('error', end);
  }
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  serve(async (msg) => {
    throw new Error(`unknown command ${msg.cmd}`);
  }, { url: `http://127.0.0.1:${port}`, port }, () => new Promise((resolve) => server.close(resolve)));
}).on('error', failed);
