/**
 * FastCDC content-defined chunking (Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking
 * Approach for Data Deduplication", USENIX ATC 2016), in plain TypeScript.
 *
 * - Gear rolling hash over 32-bit integers: `h = (h << 1) + GEAR[byte]`. The 32-bit state means a byte
 *   stops influencing the hash 32 bytes later, so the window is 32 bytes and boundaries depend only on
 *   nearby content: inserting bytes moves the boundaries around the edit and nowhere else.
 * - The 256-entry gear table is generated deterministically in code (SHA-256 of a fixed seed string per
 *   entry), so any implementation can reproduce it and snapshots chunk the same way everywhere.
 * - Normalized chunking (level 2 by default): between `minSizeBytes` and `avgSizeBytes` a boundary needs
 *   `bits + level` zero bits (harder), after `avgSizeBytes` only `bits - level` (easier), where
 *   `bits = log2(avgSizeBytes)`. Sizes concentrate around the average. A chunk never exceeds
 *   `maxSizeBytes`; the first `minSizeBytes` of a chunk are skipped without hashing (cut-point skipping).
 * - Boundary condition: the top mask bits of the hash are all zero (the high bits of a gear hash mix the
 *   whole 32-byte window; the low bits only the last few bytes).
 *
 * Changing anything here (table seed, masks, skipping, the boundary rule) changes every chunk boundary and
 * so breaks dedup against existing snapshots: bump `FASTCDC_ALGORITHM` and the golden test together.
 */
import { createHash } from 'node:crypto';

/** Names this exact algorithm in manifests. */
export const FASTCDC_ALGORITHM = 'fastcdc-gear32-v1';

export interface FastCdcOptions {
  /** Default 64 KiB. */
  minSizeBytes?: number;
  /** Default 256 KiB. Rounded to the nearest power of two for the masks. */
  avgSizeBytes?: number;
  /** Default 1 MiB. */
  maxSizeBytes?: number;
  /** Normalization level (mask bits added before / removed after the average). Default 2. */
  normalizationLevel?: number;
}

export interface FastCdcParams {
  algorithm: string;
  minSizeBytes: number;
  avgSizeBytes: number;
  maxSizeBytes: number;
  normalizationLevel: number;
}

export const FASTCDC_DEFAULTS: Readonly<FastCdcParams> = Object.freeze({
  algorithm: FASTCDC_ALGORITHM,
  minSizeBytes: 64 * 1024,
  avgSizeBytes: 256 * 1024,
  maxSizeBytes: 1024 * 1024,
  normalizationLevel: 2,
});

export interface Chunk {
  /** Offset of the chunk in the whole stream. */
  offset: number;
  /**
   * The chunk's bytes. May be a view of an input buffer (no copy): callers must not modify input buffers
   * after pushing them.
   */
  data: Buffer;
}

/** The gear table: entry i = first 4 bytes (big-endian) of SHA-256("hearth-fastcdc-gear-v1/<i>"). */
export const GEAR: Int32Array = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    t[i] = createHash('sha256').update(`hearth-fastcdc-gear-v1/${i}`).digest().readInt32BE(0);
  }
  return t;
})();

/** Validates options and fills in defaults. */
export function fastCdcParams(options: FastCdcOptions = {}): FastCdcParams {
  const p: FastCdcParams = {
    algorithm: FASTCDC_ALGORITHM,
    minSizeBytes: options.minSizeBytes ?? FASTCDC_DEFAULTS.minSizeBytes,
    avgSizeBytes: options.avgSizeBytes ?? FASTCDC_DEFAULTS.avgSizeBytes,
    maxSizeBytes: options.maxSizeBytes ?? FASTCDC_DEFAULTS.maxSizeBytes,
    normalizationLevel: options.normalizationLevel ?? FASTCDC_DEFAULTS.normalizationLevel,
  };
  const { minSizeBytes: min, avgSizeBytes: avg, maxSizeBytes: max, normalizationLevel: level } = p;
  for (const [name, v] of Object.entries({ min, avg, max })) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`FastCDC ${name} size must be a positive integer, got ${v}`);
  }
  if (!(min <= avg && avg <= max)) {
    throw new RangeError(`FastCDC sizes must satisfy min ≤ avg ≤ max, got ${min} / ${avg} / ${max}`);
  }
  if (max > 2 ** 30) throw new RangeError(`FastCDC max size must be at most 1 GiB, got ${max}`);
  const bits = Math.round(Math.log2(avg));
  if (!Number.isInteger(level) || level < 0 || bits - level < 1 || bits + level > 31) {
    throw new RangeError(`FastCDC normalization level ${level} does not fit an average of ${avg} bytes`);
  }
  return p;
}

/** A mask of the top `bits` bits of a 32-bit word, as a signed int32. */
function topBits(bits: number): number {
  return (0xffffffff << (32 - bits)) | 0;
}

/** The hash after the last `scan` (a module variable: returning a pair would allocate). */
let scanHash = 0;

/**
 * Rolls the gear hash over buf[pos, stop) starting from `h`; returns the index just after the first
 * boundary, or -1 if there is none. Leaves the final hash in `scanHash`. Kept small and monomorphic so
 * V8 optimizes the hot loop.
 */
function scan(buf: Uint8Array, pos: number, stop: number, h: number, mask: number): number {
  const gear = GEAR;
  for (let i = pos; i < stop; i++) {
    h = ((h << 1) + gear[buf[i]!]!) | 0;
    if ((h & mask) === 0) {
      scanHash = h;
      return i + 1;
    }
  }
  scanHash = h;
  return -1;
}

/**
 * Incremental chunker: `push` buffers as they arrive, `end` at the end of the stream. Holds at most one
 * partial chunk (< maxSizeBytes) between calls, as views of the pushed buffers.
 */
export class FastCdcChunker {
  readonly params: FastCdcParams;
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  private readonly maskS: number;
  private readonly maskL: number;
  /** Pieces of the current (incomplete) chunk. */
  private pieces: Buffer[] = [];
  /** Bytes in the current chunk so far. */
  private len = 0;
  private h = 0;
  /** Stream offset of the current chunk's start. */
  private offset = 0;
  private ended = false;

  constructor(options: FastCdcOptions = {}) {
    this.params = fastCdcParams(options);
    this.min = this.params.minSizeBytes;
    this.avg = this.params.avgSizeBytes;
    this.max = this.params.maxSizeBytes;
    const bits = Math.round(Math.log2(this.avg));
    this.maskS = topBits(bits + this.params.normalizationLevel);
    this.maskL = topBits(bits - this.params.normalizationLevel);
  }

  /** Feeds bytes; returns the chunks completed by them (possibly none). */
  push(input: Uint8Array): Chunk[] {
    if (this.ended) throw new Error('FastCdcChunker: push after end');
    const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const out: Chunk[] = [];
    const n = buf.length;
    let pos = 0;
    /** Start, within buf, of the current chunk's part in this buffer. */
    let start = 0;
    while (pos < n) {
      if (this.len < this.min) {
        // Cut-point skipping: no boundary can fall in the first min bytes, so don't hash them.
        const skip = Math.min(this.min - this.len, n - pos);
        this.len += skip;
        pos += skip;
        if (this.len < this.min) break;
      }
      let mask: number;
      let limit: number;
      if (this.len < this.avg) {
        mask = this.maskS;
        limit = this.avg;
      } else {
        mask = this.maskL;
        limit = this.max;
      }
      const stop = pos + Math.min(limit - this.len, n - pos);
      const cut = scan(buf, pos, stop, this.h, mask);
      this.h = scanHash;
      const end = cut >= 0 ? cut : stop;
      this.len += end - pos;
      pos = end;
      if (cut >= 0 || this.len === this.max) {
        out.push(this.take(buf.subarray(start, end)));
        start = end;
      }
    }
    if (start < n) this.pieces.push(buf.subarray(start));
    return out;
  }

  /** Ends the stream; returns the last (short) chunk, or null if nothing is pending. */
  end(): Chunk | null {
    if (this.ended) return null;
    this.ended = true;
    if (this.len === 0) return null;
    return this.take(Buffer.alloc(0));
  }

  private take(last: Buffer): Chunk {
    const parts = this.pieces;
    let data: Buffer;
    if (parts.length === 0) data = last;
    else {
      if (last.length > 0) parts.push(last);
      data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.len);
    }
    const chunk = { offset: this.offset, data };
    this.offset += this.len;
    this.pieces = [];
    this.len = 0;
    this.h = 0;
    return chunk;
  }
}

/**
 * Chunks a stream (a Readable, or any async iterable of byte buffers) without holding it in memory:
 * at most one partial chunk plus the current input buffer are held at a time.
 */
export async function* chunkStream(
  source: AsyncIterable<Uint8Array>,
  options: FastCdcOptions = {},
  signal?: AbortSignal,
): AsyncGenerator<Chunk> {
  const chunker = new FastCdcChunker(options);
  signal?.throwIfAborted();
  for await (const buf of source) {
    signal?.throwIfAborted();
    for (const c of chunker.push(buf)) yield c;
  }
  signal?.throwIfAborted();
  const last = chunker.end();
  if (last) yield last;
}

/** Chunks a whole in-memory buffer. */
export function chunkBuffer(data: Uint8Array, options: FastCdcOptions = {}): Chunk[] {
  const chunker = new FastCdcChunker(options);
  const out = chunker.push(data);
  const last = chunker.end();
  if (last) out.push(last);
  return out;
}
