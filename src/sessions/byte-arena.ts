/**
 * Bytes kept outside the JavaScript heap, for data every user has (the credentials kept for the
 * logout): a few large buffers carved into blocks, instead of a dozen strings and objects per
 * user. The garbage collector neither scans nor copies what is in here, and a freed block is
 * reused by the next block of the same size class, so the arena stays as large as what it holds
 * plus a bounded slack.
 *
 * A block is named by a handle, a small integer (chunk × CHUNK_BYTES + offset). The arena does not
 * know who holds a handle: its owner frees it exactly once (see credential-set.ts).
 */

const CHUNK_BITS = 20;
/** 1 MiB per chunk; a block never spans chunks (a larger block gets a chunk of its own) */
export const CHUNK_BYTES = 1 << CHUNK_BITS;
const OFFSET_MASK = CHUNK_BYTES - 1;
/** blocks are sized in steps of GRAIN bytes; each step is one size class with its own free list */
const GRAIN = 8;

export class ByteArena {
  readonly #chunks: Buffer[] = [];
  /** where the next new block starts in the last chunk */
  #top = CHUNK_BYTES;
  /** free blocks by size (a multiple of GRAIN) */
  readonly #free = new Map<number, number[]>();
  #usedBytes = 0;

  /** Bytes in blocks currently handed out (their size classes), for the bench and tests. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Bytes the arena's buffers take. */
  get reservedBytes(): number {
    let total = 0;
    for (const c of this.#chunks) total += c.length;
    return total;
  }

  /** A block of at least `bytes` bytes (contents undefined). */
  alloc(bytes: number): number {
    const size = sizeClass(bytes);
    this.#usedBytes += size;
    const reused = this.#free.get(size)?.pop();
    if (reused !== undefined) return reused;
    if (size > CHUNK_BYTES - this.#top) {
      // the rest of the current chunk stays unused (at most one block's size)
      this.#chunks.push(Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, size)));
      this.#top = 0;
    }
    const handle = (this.#chunks.length - 1) * CHUNK_BYTES + this.#top;
    this.#top = size > CHUNK_BYTES ? CHUNK_BYTES : this.#top + size;
    return handle;
  }

  /** Gives back a block `alloc(bytes)` returned (same `bytes`). */
  free(handle: number, bytes: number): void {
    const size = sizeClass(bytes);
    this.#usedBytes -= size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, (list = []));
    list.push(handle);
  }

  /** The buffer holding the block. */
  chunk(handle: number): Buffer {
    return this.#chunks[Math.floor(handle / CHUNK_BYTES)]!;
  }

  /** Where the block starts in its chunk. */
  offset(handle: number): number {
    return handle & OFFSET_MASK;
  }
}

function sizeClass(bytes: number): number {
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) throw new RangeError(`cannot allocate ${bytes} bytes`);
  return Math.ceil(bytes / GRAIN) * GRAIN;
}
