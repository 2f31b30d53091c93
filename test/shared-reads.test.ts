import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { MAX_READ_BYTES, MIN_READ_BYTES, ReadSizer, SharedReads, SMALL_READS_TO_SHRINK } from '../src/proxy/ws/shared-reads.js';

t.test('a read buffer grows with reads that fill it and shrinks after a run of small ones', async (t) => {
  const size = new ReadSizer();
  t.equal(size.bytes, MIN_READ_BYTES);
  t.notOk(size.read(100), 'a small read on the smallest buffer changes nothing');
  const grown: number[] = [];
  while (size.read(size.bytes)) grown.push(size.bytes);
  t.same(grown, [4096, 8192, 16384, 32768, 65536], 'doubles up to one read of libuv');
  t.equal(size.bytes, MAX_READ_BYTES);
  t.notOk(size.read(MAX_READ_BYTES), 'no larger than that');
  for (let i = 1; i < SMALL_READS_TO_SHRINK; i++) t.notOk(size.read(100));
  t.notOk(size.read(MAX_READ_BYTES / 2), 'a read of half the buffer breaks the run');
  for (let i = 1; i < SMALL_READS_TO_SHRINK; i++) size.read(100);
  t.ok(size.read(100), `${SMALL_READS_TO_SHRINK} small reads in a row halve it`);
  t.equal(size.bytes, MAX_READ_BYTES / 2);
});

t.test('an upstream socket reads into a buffer sized by its traffic, every byte intact', async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const accepted = once(server, 'connection');
  const reads = new SharedReads();
  const socket = reads.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  t.teardown(() => socket.destroy());
  const [peer] = (await accepted) as [net.Socket];
  let received: Buffer[] = [];
  let waiting: { bytes: number; resolve: () => void } | undefined;
  reads.sink = (chunk) => {
    received.push(Buffer.from(chunk)); // kept past the call: copied, as the relay does
    const total = received.reduce((n, b) => n + b.length, 0);
    if (waiting && total >= waiting.bytes) waiting.resolve();
    return false;
  };
  const expect = (bytes: number) => new Promise<void>((resolve) => (waiting = { bytes, resolve }));

  const small = Buffer.from('{"TimeoutNotification":{"minutesUntilTimeout":2}}');
  let arrived = expect(small.length);
  peer.write(small);
  await arrived;
  t.same(Buffer.concat(received), small);
  t.equal(reads.bufferBytes, MIN_READ_BYTES, 'a quiet socket holds the smallest buffer');

  received = [];
  const burst = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < burst.length; i++) burst[i] = (i * 7919) & 0xff;
  arrived = expect(burst.length);
  peer.write(burst);
  await arrived;
  t.ok(Buffer.concat(received).equals(burst), '4 MiB arrive byte for byte while the buffer grows');
  t.ok(reads.bufferBytes > MIN_READ_BYTES, `the buffer grew under load (${reads.bufferBytes} bytes)`);

  for (let i = 0; i < 6 * SMALL_READS_TO_SHRINK; i++) {
    received = [];
    arrived = expect(small.length);
    peer.write(small);
    await arrived;
  }
  t.equal(reads.bufferBytes, MIN_READ_BYTES, 'and shrank back once the traffic was small again');
});
