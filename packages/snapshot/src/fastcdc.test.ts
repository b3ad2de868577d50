import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { FASTCDC_DEFAULTS, FastCdcChunker, GEAR, chunkBuffer, chunkStream, fastCdcParams, type Chunk } from './fastcdc.ts';

/** xorshift32: a deterministic pseudo-random byte stream (same bytes on every machine). */
function prng(seed: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i += 4) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    b.writeUInt32LE(s, i);
  }
  return b;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const offsets = (cs: Chunk[]) => cs.map((c) => c.offset);
const INPUT = prng(0x9e3779b9, 4 * 1024 * 1024);

describe('FastCDC golden vectors', () => {
  // Hard-coded: any change to the gear table, masks, skipping or boundary rule changes these, and would
  // silently break dedup against every stored snapshot. Change them only with a new FASTCDC_ALGORITHM.
  it('gear table', () => {
    assert.equal(GEAR[0], -1068055040);
    assert.equal(GEAR[255], -347302827);
    const be = Buffer.alloc(1024);
    GEAR.forEach((v, i) => be.writeInt32BE(v, i * 4));
    assert.equal(sha(be), '6c5ff80a390ab341957d343d3c40b3fb0a58ab45033285123ccb3279d2ce01d2');
    assert.equal(new Set(GEAR).size, 256);
  });

  it('4 MiB pseudo-random input, default parameters (64 KiB / 256 KiB / 1 MiB)', () => {
    assert.deepEqual(
      offsets(chunkBuffer(INPUT)),
      [0, 276377, 547866, 849822, 1127182, 1463121, 1726151, 2106408, 2485738, 2808134, 3096866, 3385207, 3660348, 3752771, 4063156],
    );
  });

  it('small parameters (2 KiB / 8 KiB / 64 KiB)', () => {
    const cs = chunkBuffer(INPUT, { minSizeBytes: 2048, avgSizeBytes: 8192, maxSizeBytes: 65536 });
    assert.deepEqual(offsets(cs.slice(0, 12)), [0, 11179, 20289, 29342, 31552, 41738, 52215, 61280, 64927, 74641, 82896, 86028]);
  });
});

describe('FastCDC', () => {
  it('chunks cover the input exactly, within the size bounds', () => {
    for (const opts of [{}, { minSizeBytes: 2048, avgSizeBytes: 8192, maxSizeBytes: 65536 }]) {
      const p = fastCdcParams(opts);
      const cs = chunkBuffer(INPUT, opts);
      assert.ok(Buffer.concat(cs.map((c) => c.data)).equals(INPUT), 'chunks reassemble the input');
      let pos = 0;
      for (const [i, c] of cs.entries()) {
        assert.equal(c.offset, pos);
        pos += c.data.length;
        assert.ok(c.data.length <= p.maxSizeBytes, `chunk ${i} is ${c.data.length} bytes`);
        if (i < cs.length - 1) assert.ok(c.data.length >= p.minSizeBytes, `chunk ${i} is ${c.data.length} bytes`);
      }
      const mean = INPUT.length / cs.length;
      assert.ok(mean > p.avgSizeBytes * 0.7 && mean < p.avgSizeBytes * 1.6, `mean chunk ${mean}`);
    }
  });

  it('boundaries do not depend on how the stream is split into buffers', async () => {
    const opts = { minSizeBytes: 2048, avgSizeBytes: 8192, maxSizeBytes: 65536 };
    const data = INPUT.subarray(0, 512 * 1024);
    const want = chunkBuffer(data, opts).map((c) => [c.offset, sha(c.data)]);
    const rnd = prng(7, 4096);
    const split = (pieceMax: number) => {
      const pieces: Buffer[] = [];
      for (let i = 0, j = 0; i < data.length; j++) {
        const n = pieceMax === 1 ? 1 : 1 + (rnd.readUInt16LE((j * 2) % 4094) % pieceMax);
        pieces.push(data.subarray(i, i + n));
        i += n;
      }
      return pieces;
    };
    for (const pieceMax of [1, 13, 4096, 70_000]) {
      const chunker = new FastCdcChunker(opts);
      const got: [number, string][] = [];
      for (const piece of split(pieceMax)) for (const c of chunker.push(piece)) got.push([c.offset, sha(c.data)]);
      const last = chunker.end();
      if (last) got.push([last.offset, sha(last.data)]);
      assert.deepEqual(got, want, `pieces up to ${pieceMax} bytes`);
    }
    // The same through chunkStream over a Readable.
    const got: [number, string][] = [];
    for await (const c of chunkStream(Readable.from(split(4096)), opts)) got.push([c.offset, sha(c.data)]);
    assert.deepEqual(got, want, 'chunkStream over a Readable');
  });

  it('an insertion near the start changes only the first one or two chunks', () => {
    const orig = chunkBuffer(INPUT).map((c) => sha(c.data));
    for (const at of [0, 1000, 70_000]) {
      const edited = Buffer.concat([INPUT.subarray(0, at), prng(42, 100), INPUT.subarray(at)]);
      const got = chunkBuffer(edited).map((c) => sha(c.data));
      const origSet = new Set(orig);
      const changed = got.filter((h) => !origSet.has(h)).length;
      assert.ok(changed >= 1 && changed <= 2, `insert at ${at}: ${changed} chunks changed`);
      // Everything after the edited chunks is identical, in order.
      assert.deepEqual(got.slice(changed), orig.slice(orig.length - (got.length - changed)));
      assert.ok(got.length - changed >= orig.length - 2, `insert at ${at}: only ${got.length - changed} chunks kept`);
    }
  });

  it('a deletion in the middle changes only the chunks around it', () => {
    const orig = chunkBuffer(INPUT).map((c) => sha(c.data));
    const edited = Buffer.concat([INPUT.subarray(0, 2_000_000), INPUT.subarray(2_000_100)]);
    const got = chunkBuffer(edited).map((c) => sha(c.data));
    const origSet = new Set(orig);
    const changed = got.filter((h) => !origSet.has(h)).length;
    assert.ok(changed <= 2, `${changed} chunks changed`);
  });

  it('long zero runs become max-size chunks', () => {
    const cs = chunkBuffer(Buffer.alloc(3 * 1024 * 1024 + 5));
    assert.deepEqual(cs.map((c) => c.data.length), [1048576, 1048576, 1048576, 5]);
  });

  it('empty and tiny inputs', () => {
    assert.deepEqual(chunkBuffer(Buffer.alloc(0)), []);
    const cs = chunkBuffer(Buffer.from('hello'));
    assert.equal(cs.length, 1);
    assert.equal(cs[0]!.data.toString(), 'hello');
    const ch = new FastCdcChunker();
    assert.deepEqual(ch.push(Buffer.from('x')), []);
    assert.equal(ch.end()!.data.toString(), 'x');
    assert.equal(ch.end(), null);
    assert.throws(() => ch.push(Buffer.from('y')));
  });

  it('validates parameters', () => {
    assert.deepEqual(fastCdcParams(), { ...FASTCDC_DEFAULTS });
    assert.throws(() => fastCdcParams({ minSizeBytes: 0 }), RangeError);
    assert.throws(() => fastCdcParams({ minSizeBytes: 2 ** 20, avgSizeBytes: 2 ** 18 }), RangeError);
    assert.throws(() => fastCdcParams({ avgSizeBytes: 4, minSizeBytes: 1, maxSizeBytes: 8, normalizationLevel: 3 }), RangeError);
  });

  it('chunkStream honours an abort signal', async () => {
    const ac = new AbortController();
    const source = (async function* () {
      for (let i = 0; ; i++) {
        if (i === 3) ac.abort(new Error('stop'));
        yield INPUT.subarray(0, 1 << 20);
      }
    })();
    await assert.rejects(async () => {
      for await (const _ of chunkStream(source, {}, ac.signal)) void _;
    }, /stop/);
  });

  it('throughput (reported, loosely asserted)', () => {
    const data = prng(1, 64 * 1024 * 1024);
    let bestMBps = 0;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      chunkBuffer(data);
      bestMBps = Math.max(bestMBps, data.length / 1e6 / ((performance.now() - t0) / 1000));
    }
    const t0 = performance.now();
    for (const c of chunkBuffer(data)) sha(c.data);
    const withHashMBps = data.length / 1e6 / ((performance.now() - t0) / 1000);
    console.log(`# FastCDC throughput: ${bestMBps.toFixed(0)} MB/s chunking, ${withHashMBps.toFixed(0)} MB/s chunking + SHA-256`);
    assert.ok(bestMBps > 20, `FastCDC is unexpectedly slow: ${bestMBps.toFixed(1)} MB/s`);
  });
});
