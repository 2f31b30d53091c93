/**
 * Reads of a relayed upstream connection into a reused buffer (net's `onread`) instead of a
 * fresh Buffer per read: on a busy live-data socket the per-read allocations are what drives
 * V8's garbage collector (every read is an ArrayBuffer, counted as external memory), and those
 * collections cost more CPU than the relay itself.
 *
 * A chunk handed to `sink` is valid during the call; whoever keeps bytes past it copies them.
 * Writes are the exception: when the sink says bytes of the chunk may still be queued (a write
 * that did not go out at once), the next read goes into a fresh buffer and the old one is left
 * to them. Before a sink is set (the HTTP upgrade handshake) every chunk is copied and emitted as
 * an ordinary 'data' event, so node:http reads the 101 as usual.
 */
import net from 'node:net';

/** one read's worth: libuv reads up to 64 KiB at a time */
const READ_BUFFER_BYTES = 64 * 1024;

export class SharedReads {
  /** gets each chunk once the relay took over; returns true when bytes of it may still be referenced (queued writes) */
  sink: ((chunk: Buffer) => boolean) | undefined;
  #buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  #retained = false;
  #socket: net.Socket | undefined;

  /** A plain TCP connection whose reads land in the reused buffer. */
  connect(options: net.NetConnectOpts): net.Socket {
    const socket = net.connect({
      ...options,
      onread: {
        // called before every read: the same buffer unless the last chunk is still referenced
        buffer: (): Buffer => {
          if (this.#retained) this.#buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
          this.#retained = false;
          return this.#buffer;
        },
        // the relay pauses the socket itself (back-pressure): never implicitly here
        callback: (bytes: number, buf: Uint8Array): boolean => {
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, bytes);
          if (this.sink !== undefined) this.#retained = this.sink(chunk);
          else this.#socket?.emit('data', Buffer.from(chunk));
          return true;
        },
      },
    });
    this.#socket = socket;
    return socket;
  }
}
