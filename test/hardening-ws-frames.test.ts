/**
 * Hardening, group 3a: invalid WebSocket frames, sent after a real handshake by a raw socket (the
 * client side) or by a raw upstream. Each must close that one connection with the status RFC 6455
 * gives for the fault, close its partner too, and leave the proxy relaying for everyone else.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { closeCodeIn, frame, OPCODE, rawUpgrade } from './helpers/raw-ws.js';
import { startProxy, waitFor, type ProxyUnderTest } from './helpers/proxy-under-test.js';
import { startUpstream, type TestUpstream, type WsCloseSeen } from './helpers/upstream.js';

const MAX_MESSAGE_BYTES = 1024;
let upstream: TestUpstream;
let proxy: ProxyUnderTest;
const upstreamCloses: WsCloseSeen[] = [];

t.before(async () => {
  upstream = await startUpstream();
  upstream.events.on('ws-close', (seen: WsCloseSeen) => upstreamCloses.push(seen));
  proxy = await startProxy(upstream.url, { env: { PROXY_WS_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) }, hooks: { onUpgrade: () => ({ user: 'frames' }) } });
});
t.teardown(async () => {
  await proxy.close();
  await upstream.close();
});

/** A normal client still gets its echo through the proxy. */
async function echoWorks(t: Test, label: string): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws/echo`);
  await once(ws, 'open');
  const reply = once(ws, 'message');
  ws.send('still there?');
  t.equal(String((await reply)[0]), 'still there?', `${label}: the proxy still relays for others`);
  ws.close();
  await once(ws, 'close');
}

const utf8Bad = Buffer.from([0x68, 0x69, 0xff, 0xfe, 0xfd]);
const closePayload = (code: number, reason: Buffer = Buffer.alloc(0)) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, reason]);
};

const CLIENT_FAULTS: Array<{ name: string; bytes: () => Buffer; code: number; farEnd?: boolean }> = [
  { name: 'reserved data opcode 0x3', bytes: () => frame(0x3, Buffer.from('x')), code: 1002 },
  { name: 'reserved control opcode 0xB', bytes: () => frame(0xb, Buffer.from('x')), code: 1002 },
  { name: 'unmasked client frame', bytes: () => frame(OPCODE.text, Buffer.from('hello'), { masked: false }), code: 1002 },
  { name: 'RSV1 set without an extension', bytes: () => frame(OPCODE.text, Buffer.from('x'), { rsv: 4 }), code: 1002 },
  // text payloads pass undecoded (the byte relay): the upstream itself refuses them, as it would
  // without the proxy, and its 1007 reaches the client
  { name: 'invalid UTF-8 in a text message', bytes: () => frame(OPCODE.text, utf8Bad), code: 1007, farEnd: true },
  { name: 'invalid UTF-8 split over fragments', bytes: () => Buffer.concat([frame(OPCODE.text, utf8Bad.subarray(0, 3), { fin: false }), frame(OPCODE.continuation, utf8Bad.subarray(3))]), code: 1007, farEnd: true },
  { name: 'fragmented ping', bytes: () => frame(OPCODE.ping, Buffer.from('p'), { fin: false }), code: 1002 },
  { name: 'ping longer than 125 bytes', bytes: () => frame(OPCODE.ping, Buffer.alloc(126)), code: 1002 },
  { name: 'continuation without a message', bytes: () => frame(OPCODE.continuation, Buffer.from('x')), code: 1002 },
  { name: 'new message inside a fragmented one', bytes: () => Buffer.concat([frame(OPCODE.text, Buffer.from('a'), { fin: false }), frame(OPCODE.text, Buffer.from('b'))]), code: 1002 },
  { name: 'close code 999', bytes: () => frame(OPCODE.close, closePayload(999)), code: 1002 },
  { name: 'close code 1005 (reserved)', bytes: () => frame(OPCODE.close, closePayload(1005)), code: 1002 },
  { name: 'one-byte close payload', bytes: () => frame(OPCODE.close, Buffer.from([3])), code: 1002 },
  { name: 'close reason in invalid UTF-8', bytes: () => frame(OPCODE.close, closePayload(1000, utf8Bad)), code: 1007 },
  { name: 'announced length 2^63-1', bytes: () => frame(OPCODE.binary, Buffer.alloc(0), { announcedLength: 2n ** 63n - 1n }), code: 1009 },
  { name: `one message over ${MAX_MESSAGE_BYTES} bytes`, bytes: () => frame(OPCODE.binary, Buffer.alloc(MAX_MESSAGE_BYTES + 1)), code: 1009 },
  { name: `fragments adding up to over ${MAX_MESSAGE_BYTES} bytes`, bytes: () => Buffer.concat([frame(OPCODE.binary, Buffer.alloc(200), { fin: false }), ...Array.from({ length: 5 }, () => frame(OPCODE.continuation, Buffer.alloc(200), { fin: false })), frame(OPCODE.continuation, Buffer.alloc(200))]), code: 1009 },
];

t.test('invalid frames from a client close that connection with the right code', async (t) => {
  for (const fault of CLIENT_FAULTS) {
    const pairsBefore = proxy.registry.size;
    const closesBefore = upstreamCloses.length;
    const client = await rawUpgrade(proxy.port, '/ws/echo');
    await waitFor(() => proxy.registry.size === pairsBefore + 1, 5000, 'pair registered');
    client.socket.write(fault.bytes());
    await client.ended;
    t.equal(closeCodeIn(client.received()), fault.code, `${fault.name}: closed with ${fault.code}`);
    await waitFor(() => upstreamCloses.length > closesBefore, 5000, `${fault.name}: upstream side closed`);
    if (fault.farEnd !== true) t.equal(upstreamCloses.at(-1)!.code, fault.code, `${fault.name}: the upstream was told ${fault.code} too`);
    await waitFor(() => proxy.registry.size === pairsBefore, 5000, `${fault.name}: pair unregistered`);
  }
  await echoWorks(t, 'after client faults');
  t.comment(`group 3a: ${CLIENT_FAULTS.length} invalid client frames`);
});

t.test('a client that pings without ever reading the pongs is cut off, not buffered for', async (t) => {
  const pairsBefore = proxy.registry.size;
  const client = await rawUpgrade(proxy.port, '/ws/echo');
  await waitFor(() => proxy.registry.size === pairsBefore + 1, 5000, 'pair registered');
  client.socket.pause(); // never read a pong
  const burst = Buffer.concat(Array.from({ length: 1000 }, () => frame(OPCODE.ping, Buffer.alloc(125, 1))));
  let sentBytes = 0;
  let closed = false;
  void client.ended.then(() => { closed = true; });
  // count only what left this process: wait for each full write buffer to drain (the proxy read
  // it), or for the close; a proxy that neither reads nor closes for 10 s fails the check below
  let stalled = false;
  client.socket.on('error', () => { closed = true; }); // EPIPE: the proxy closed while pings were in flight
  while (!closed && !client.socket.destroyed && !stalled && sentBytes < 256 * 1024 * 1024) {
    const flushed = client.socket.write(burst);
    sentBytes += burst.length;
    if (flushed) continue;
    const outcome = await Promise.race([
      once(client.socket, 'drain').then(() => 'drained' as const, () => 'closed' as const), // rejects on EPIPE
      client.ended.then(() => 'closed' as const),
      new Promise<'stalled'>((resolve) => setTimeout(() => resolve('stalled'), 10_000).unref()),
    ]);
    stalled = outcome === 'stalled';
  }
  // a paused socket never sees the proxy's FIN: read again now (the pongs have been ignored all
  // along) and give the proxy its closing grace to finish cutting the connection
  client.socket.resume();
  await Promise.race([client.ended, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  t.ok(closed, `the proxy dropped the connection (${(sentBytes / 1024 / 1024).toFixed(1)} MiB of pings written${stalled ? '; it had stopped reading' : ''})`);
  await waitFor(() => proxy.registry.size === pairsBefore, 5000, 'pair unregistered');
  await echoWorks(t, 'after the ping flood');
  t.comment(`group 3a: ${Math.round(sentBytes / burst.length) * 1000} pings from a client that never read`);
});

/** An upstream that completes any handshake, then sends `bytes` as its first frame(s). */
async function rawUpstream(bytes: Buffer): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', (chunk: Buffer) => {
      const key = /sec-websocket-key:\s*(\S+)/i.exec(chunk.toString('latin1'))?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      setTimeout(() => socket.write(bytes), 50);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const UPSTREAM_FAULTS: Array<{ name: string; bytes: Buffer; code: number; farEnd?: boolean }> = [
  { name: 'masked server frame', bytes: frame(OPCODE.text, Buffer.from('x'), { masked: true }), code: 1002 },
  { name: 'reserved opcode', bytes: frame(0x3, Buffer.from('x'), { masked: false }), code: 1002 },
  // passes the byte relay undecoded: the client refuses it itself, as it would without the proxy
  { name: 'invalid UTF-8 text', bytes: frame(OPCODE.text, utf8Bad, { masked: false }), code: 1007, farEnd: true },
  { name: 'announced length 2^63-1', bytes: frame(OPCODE.binary, Buffer.alloc(0), { masked: false, announcedLength: 2n ** 63n - 1n }), code: 1009 },
  { name: 'not a frame at all', bytes: Buffer.from('HTTP/1.1 500 Oops\r\n\r\n'), code: 1002 },
];

t.test('invalid frames from the upstream close the client with the matching code', async (t) => {
  for (const fault of UPSTREAM_FAULTS) {
    const bad = await rawUpstream(fault.bytes);
    const relay = await startProxy(bad.url);
    const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/anything`);
    // invalid UTF-8 passes the byte relay undecoded: the client refuses it itself (error, then 1007)
    ws.on('error', () => undefined);
    const closed = new Promise<[number]>((resolve) => ws.on('close', (code) => resolve([code])));
    const [code] = await closed;
    if (fault.farEnd !== true) t.equal(code, fault.code, `${fault.name}: the client was closed with ${fault.code}`);
    else t.not(code, 1000, `${fault.name}: the client refused it (${code})`);
    await waitFor(() => relay.registry.size === 0, 5000, `${fault.name}: nothing left registered`);
    await relay.close();
    await bad.close();
  }
  await echoWorks(t, 'after upstream faults');
  t.comment(`group 3a: ${UPSTREAM_FAULTS.length} invalid upstream frames`);
});
