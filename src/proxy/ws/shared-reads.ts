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
 *
 * Node binds a socket's next read buffer right after each read, so every socket holds its buffer
 * while it is quiet: the buffer's size follows the socket's reads (see ReadSizer), so an idle
 * notification socket holds 2 KiB, not the 64 KiB a live-data socket reads into.
 */
import net from 'node:net';

/** the smallest read buffer: what a quiet socket holds */
export const MIN_READ_BYTES = 2 * 1024;
/** one read's worth at most: libuv reads up to 64 KiB at a time */
export const MAX_READ_BYTES = 64 * 1024;
/** this many reads in a row that used less than a quarter of the buffer halve it */
export const SMALL_READS_TO_SHRINK = 16;

/** The size of a socket's read buffer: doubled by a read that filled it, halved by a run of small reads. */
export class ReadSizer {
  bytes = MIN_READ_BYTES;
  #smallReads = 0;

  /** Notes a read of `bytes`; true when the buffer should be replaced by one of the new size. */
  read(bytes: number): boolean {
    if (bytes >= this.bytes && this.bytes < MAX_READ_BYTES) {
      this.bytes *= 2;
      this.#smallReads = 0;
      return true;
    }
    if (bytes * 4 >= this.bytes || this.bytes === MIN_READ_BYTES) {
      this.#smallReads = 0;
      return false;
    }
    if (++this.#smallReads < SMALL_READS_TO_SHRINK) return false;
    this.bytes /= 2;
    this.#smallReads = 0;
    return true;
  }
}

export class SharedReads {
  /** gets each chunk once the relay took over; returns true when bytes of it may still be referenced (queued writes) */
  sink: ((chunk: Buffer) => boolean) | undefined;
  readonly #size = new ReadSizer();
  // its own memory, not a slice of Node's shared pool (which it would keep alive while quiet)
  #buffer = Buffer.allocUnsafeSlow(MIN_READ_BYTES);
  /** the buffer must not be read into again (still referenced, or to be resized) */
  #replace = false;
  #socket: net.Socket | undefined;

  /** bytes of the buffer the socket will read into next */
  get bufferBytes(): number {
    return this.#buffer.length;
  }

  /** A plain TCP connection whose reads land in the reused buffer. */
  connect(options: net.NetConnectOpts): net.Socket {
    const socket = net.connect({
      ...options,
      onread: {
        // called before every read: the same buffer unless the last chunk is still referenced
        buffer: (): Buffer => {
          if (this.#replace) this.#buffer = Buffer.allocUnsafeSlow(this.#size.bytes);
          this.#replace = false;
          return this.#buffer;
        },
        // the relay pauses the socket itself (back-pressure): never implicitly here
        callback: (bytes: number, buf: Uint8Array): boolean => {
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, bytes);
          const resized = this.#size.read(bytes);
          if (this.sink !== undefined) this.#replace = this.sink(chunk) || resized;
          else {
            this.#socket?.emit('data', Buffer.from(chunk));
            this.#replace = resized;
          }
          return true;
        },
      },
    });
    this.#socket = socket;
    return socket;
  }
}
