/**
 * REAPI cache throughput: hearth's gRPC cache (`startCacheServer` over a `LocalDiskStore`) measured
 * with the generated gRPC clients, the way Bazel talks to it.
 *
 *   node --import tsx bench/cache.ts [--gib 1] [--blob-mib 1] [--concurrency 8] [--chunk-kib 16]
 *                                    [--fmb-digests 10000] [--fmb-calls 5] [--out DIR]
 *
 * The server runs in a child process (as it does in `hearth up`, apart from the client), so client
 * and server do not share one event loop. Measured:
 *   - CAS write: `--gib` of `--blob-mib` blobs with ByteStream.Write (in `--chunk-kib` messages, like
 *     Bazel's 16 KiB upload chunks) and, with a second set of distinct blobs, BatchUpdateBlobs;
 *   - CAS read of the same blobs with ByteStream.Read and BatchReadBlobs;
 *   - FindMissingBlobs latency for `--fmb-digests` digests, half of them present (median of
 *     `--fmb-calls` calls after one untimed warm-up call).
 * Digests are computed before the clock starts (a client like Bazel already knows them); the server's
 * own verification (SHA-256 of every write) and fsync are part of what is measured.
 * Writes bench/results/cache-<timestamp>.md/.json and cache-latest.md/.json.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type ServiceError, credentials } from '@grpc/grpc-js';
import type { Digest } from '@hearth/blobstore';
import {
  type BatchReadBlobsResponse,
  type BatchUpdateBlobsResponse,
  CapabilitiesClient,
  ContentAddressableStorageClient,
  DigestFunction_Value,
  type FindMissingBlobsResponse,
  type ServerCapabilities,
} from '../packages/cache/src/gen/build/bazel/remote/execution/v2/remote_execution.ts';
import { ByteStreamClient, type ReadResponse, WriteRequest, type WriteResponse } from '../packages/cache/src/gen/google/bytestream/bytestream.ts';
import {
  REPO_ROOT,
  commandLine,
  fileTimestamp,
  fmtBytes,
  machineFacts,
  median,
  onCleanup,
  progress,
  removeTree,
  runMain,
  summarize,
  type MachineFacts,
  type Summary,
  writeResults,
} from './util.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const USAGE = `usage: node --import tsx bench/cache.ts [--gib 1] [--blob-mib 1] [--concurrency 8] [--chunk-kib 16] [--fmb-digests 10000] [--fmb-calls 5] [--out DIR]
`;

interface CacheBenchOptions {
  gib: number;
  blobBytes: number;
  blobs: number;
  concurrency: number;
  chunkBytes: number;
  fmbDigests: number;
  fmbCalls: number;
  outDir: string;
}

interface ThroughputResult {
  id: string;
  operation: 'write' | 'read';
  api: string;
  blobs: number;
  bytes: number;
  ms: number;
  mibPerSec: number;
  blobsPerSec: number;
  /** How requests were shaped. */
  shape: string;
}

interface CacheBenchReport {
  kind: 'hearth-cache-bench';
  schemaVersion: 1;
  startedAt: string;
  finishedAt: string;
  command: string;
  options: CacheBenchOptions;
  machine: MachineFacts;
  loadAverageAtEnd: number[];
  throughput: ThroughputResult[];
  findMissingBlobs: { digests: number; present: number; callsMs: number[]; summaryMs: Summary | null; method: string };
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Server mode: `cache.ts --serve DIR` (run by the bench itself in a child process)

async function serve(dir: string, maxBytes: number): Promise<number> {
  const { LocalDiskStore } = await import('@hearth/blobstore');
  const { startCacheServer } = await import('@hearth/cache');
  const store = await LocalDiskStore.open({ rootDir: path.join(dir, 'cas'), maxBytes });
  const server = await startCacheServer({ store, uploads: { spoolDir: dir } });
  process.stdout.write(`READY ${server.address}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
    // The parent holds our stdin: if it dies, stdin ends and we stop too.
    process.stdin.on('end', resolve);
    process.stdin.on('error', resolve);
    process.stdin.resume();
  });
  await server.close();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Blobs: set s, index i = a shared random buffer with (s, i) written into its first bytes.

class BlobSet {
  readonly digests: Digest[] = [];
  constructor(
    readonly base: Buffer,
    readonly set: number,
    count: number,
  ) {
    for (let i = 0; i < count; i++) this.digests.push(this.digestOf(this.bytes(i)));
  }
  bytes(i: number): Buffer {
    const b = Buffer.from(this.base);
    b.writeUInt32BE(this.set, 0);
    b.writeUInt32BE(i, 4);
    b.writeUInt32BE(0x68656172, 8); // "hear"
    return b;
  }
  private digestOf(b: Buffer): Digest {
    return { hash: createHash('sha256').update(b).digest('hex'), sizeBytes: b.length };
  }
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
function call<Res>(invoke: (cb: Callback<Res>) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => invoke((err, res) => (err ? reject(err) : resolve(res))));
}

/** Runs `task(i)` for i in [0, n) with at most `limit` in flight. */
async function pool(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

function chunked<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

function throughput(id: string, operation: 'write' | 'read', api: string, shape: string, blobs: number, bytes: number, ms: number): ThroughputResult {
  return { id, operation, api, shape, blobs, bytes, ms, mibPerSec: bytes / MiB / (ms / 1000), blobsPerSec: blobs / (ms / 1000) };
}

// ---------------------------------------------------------------------------------------------

function parseOptions(argv: string[]): CacheBenchOptions | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      gib: { type: 'string' },
      'blob-mib': { type: 'string' },
      concurrency: { type: 'string' },
      'chunk-kib': { type: 'string' },
      'fmb-digests': { type: 'string' },
      'fmb-calls': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) return 'help';
  const num = (name: string, raw: string | undefined, dflt: number, min: number) => {
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const gib = num('gib', v.gib, 1, 0.001);
  const blobBytes = Math.round(num('blob-mib', v['blob-mib'], 1, 0.001) * MiB);
  return {
    gib,
    blobBytes,
    blobs: Math.max(1, Math.round((gib * GiB) / blobBytes)),
    concurrency: Math.floor(num('concurrency', v.concurrency, 8, 1)),
    chunkBytes: Math.round(num('chunk-kib', v['chunk-kib'], 16, 1) * 1024),
    fmbDigests: Math.floor(num('fmb-digests', v['fmb-digests'], 10_000, 2)),
    fmbCalls: Math.floor(num('fmb-calls', v['fmb-calls'], 5, 1)),
    outDir: path.resolve(v.out ?? path.join(REPO_ROOT, 'bench', 'results')),
  };
}

async function main(signal: AbortSignal): Promise<number> {
  const argv = process.argv.slice(2);
  let opts: CacheBenchOptions | 'help';
  try {
    opts = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench/cache: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const startedAt = new Date();
  const machine = await machineFacts();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hearth-cache-bench-'));
  onCleanup('remove the temp dir', () => removeTree(dir));

  // --- the server, in a child process
  const maxBytes = Math.max(10 * GiB, Math.ceil(3 * opts.gib * GiB));
  const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, '--serve', dir, String(maxBytes)], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const childExited = once(child, 'exit');
  onCleanup('stop the cache server', async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await childExited;
      clearTimeout(t);
    }
  });
  let out = '';
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (b) => {
      out += b;
      const m = /READY grpc:\/\/(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`cache server exited (${code}) before it was ready: ${out}`)));
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  progress(`cache server (child process) at grpc://${address}; store in ${dir}`);

  const chOpts = { 'grpc.max_receive_message_length': 64 * MiB, 'grpc.max_send_message_length': 64 * MiB };
  const cas = new ContentAddressableStorageClient(address, credentials.createInsecure(), chOpts);
  const bs = new ByteStreamClient(address, credentials.createInsecure(), chOpts);
  const caps = new CapabilitiesClient(address, credentials.createInsecure(), chOpts);
  onCleanup('close gRPC clients', () => {
    cas.close();
    bs.close();
    caps.close();
  });
  const capabilities = await call<ServerCapabilities>((cb) => caps.getCapabilities({ instanceName: '' }, cb));
  const maxBatch = capabilities.cacheCapabilities?.maxBatchTotalSizeBytes || 4 * MiB;
  // Leave room for the request's own framing (digests, field tags) inside the advertised limit.
  const perBatch = Math.max(1, Math.floor((maxBatch - 64 * 1024) / opts.blobBytes));
  const batchable = opts.blobBytes <= maxBatch - 64 * 1024;

  // --- blobs (digests computed before timing)
  progress(`preparing 2 × ${opts.blobs} blobs of ${fmtBytes(opts.blobBytes)} (hashing, untimed)`);
  const base = randomBytes(opts.blobBytes);
  const setA = new BlobSet(base, 1, opts.blobs);
  const setB = batchable ? new BlobSet(base, 2, opts.blobs) : null;
  const total = opts.blobs * opts.blobBytes;
  const results: ThroughputResult[] = [];
  const notes: string[] = [];

  // --- CAS write: ByteStream.Write
  {
    const t = performance.now();
    await pool(opts.blobs, opts.concurrency, async (i) => {
      signal.throwIfAborted();
      const d = setA.digests[i]!;
      const data = setA.bytes(i);
      const res = await new Promise<WriteResponse>((resolve, reject) => {
        const s = bs.write((err, r) => (err ? reject(err) : resolve(r)));
        (async () => {
          const name = `uploads/${randomUUID()}/blobs/${d.hash}/${d.sizeBytes}`;
          for (let off = 0; off < data.length || off === 0; off += opts.chunkBytes) {
            const end = Math.min(off + opts.chunkBytes, data.length);
            const msg = WriteRequest.fromPartial({ resourceName: off === 0 ? name : '', writeOffset: off, finishWrite: end >= data.length, data: data.subarray(off, end) });
            if (!s.write(msg)) await once(s, 'drain');
            if (end >= data.length) break;
          }
          s.end();
        })().catch(reject);
      });
      if (Number(res.committedSize) !== d.sizeBytes) throw new Error(`ByteStream.Write committed ${res.committedSize} of ${d.sizeBytes} bytes`);
    });
    const ms = performance.now() - t;
    results.push(throughput('cas-write-bytestream', 'write', 'ByteStream.Write', `${fmtBytes(opts.chunkBytes)} messages, ${opts.concurrency} streams in flight`, opts.blobs, total, ms));
    progress(`ByteStream.Write: ${fmtBytes(total)} in ${(ms / 1000).toFixed(2)} s`);
  }

  // --- CAS write: BatchUpdateBlobs (a second set, so nothing is deduplicated)
  if (setB) {
    const batches = chunked([...setB.digests.keys()], perBatch);
    const t = performance.now();
    await pool(batches.length, opts.concurrency, async (k) => {
      signal.throwIfAborted();
      const idx = batches[k]!;
      const res = await call<BatchUpdateBlobsResponse>((cb) =>
        cas.batchUpdateBlobs(
          { instanceName: '', digestFunction: DigestFunction_Value.SHA256, requests: idx.map((i) => ({ digest: setB.digests[i]!, data: setB.bytes(i), compressor: 0 })) },
          cb,
        ),
      );
      const bad = res.responses.filter((r) => (r.status?.code ?? 0) !== 0);
      if (bad.length) throw new Error(`BatchUpdateBlobs: ${bad.length} blob(s) failed: ${bad[0]!.status?.message}`);
    });
    const ms = performance.now() - t;
    results.push(throughput('cas-write-batch', 'write', 'BatchUpdateBlobs', `${perBatch} blob(s) per request (≤ ${fmtBytes(maxBatch)}), ${opts.concurrency} requests in flight`, opts.blobs, total, ms));
    progress(`BatchUpdateBlobs: ${fmtBytes(total)} in ${(ms / 1000).toFixed(2)} s`);
  } else {
    notes.push(`BatchUpdateBlobs/BatchReadBlobs skipped: a ${fmtBytes(opts.blobBytes)} blob does not fit the server's ${fmtBytes(maxBatch)} batch limit.`);
  }

  // --- everything written is there (untimed)
  for (const set of [setA, setB]) {
    if (!set) continue;
    for (const part of chunked(set.digests, 5000)) {
      const r = await call<FindMissingBlobsResponse>((cb) => cas.findMissingBlobs({ instanceName: '', blobDigests: part, digestFunction: DigestFunction_Value.SHA256 }, cb));
      if (r.missingBlobDigests.length) throw new Error(`${r.missingBlobDigests.length} written blob(s) are missing from the CAS`);
    }
  }

  // --- CAS read: ByteStream.Read
  {
    const t = performance.now();
    let bytes = 0;
    await pool(opts.blobs, opts.concurrency, async (i) => {
      signal.throwIfAborted();
      const d = setA.digests[i]!;
      const n = await new Promise<number>((resolve, reject) => {
        let got = 0;
        const s = bs.read({ resourceName: `blobs/${d.hash}/${d.sizeBytes}`, readOffset: 0, readLimit: 0 });
        s.on('data', (m: ReadResponse) => (got += m.data.length));
        s.on('error', reject);
        s.on('end', () => resolve(got));
      });
      if (n !== d.sizeBytes) throw new Error(`ByteStream.Read returned ${n} of ${d.sizeBytes} bytes`);
      bytes += n;
    });
    const ms = performance.now() - t;
    results.push(throughput('cas-read-bytestream', 'read', 'ByteStream.Read', `server sends ≤ 1 MiB messages, ${opts.concurrency} streams in flight`, opts.blobs, bytes, ms));
    progress(`ByteStream.Read: ${fmtBytes(bytes)} in ${(ms / 1000).toFixed(2)} s`);
  }

  // --- CAS read: BatchReadBlobs
  if (setB) {
    const batches = chunked(setB.digests, perBatch);
    const t = performance.now();
    let bytes = 0;
    await pool(batches.length, opts.concurrency, async (k) => {
      signal.throwIfAborted();
      const res = await call<BatchReadBlobsResponse>((cb) =>
        cas.batchReadBlobs({ instanceName: '', digests: batches[k]!, acceptableCompressors: [], digestFunction: DigestFunction_Value.SHA256 }, cb),
      );
      for (const r of res.responses) {
        if ((r.status?.code ?? 0) !== 0 || r.data.length !== r.digest?.sizeBytes) throw new Error(`BatchReadBlobs: ${r.status?.message ?? 'size mismatch'}`);
        bytes += r.data.length;
      }
    });
    const ms = performance.now() - t;
    results.push(throughput('cas-read-batch', 'read', 'BatchReadBlobs', `${perBatch} blob(s) per request, ${opts.concurrency} requests in flight`, opts.blobs, bytes, ms));
    progress(`BatchReadBlobs: ${fmtBytes(bytes)} in ${(ms / 1000).toFixed(2)} s`);
  }

  // --- FindMissingBlobs: half present (small blobs uploaded untimed), half absent, shuffled
  const present = Math.floor(opts.fmbDigests / 2);
  const absent = opts.fmbDigests - present;
  progress(`FindMissingBlobs: uploading ${present} small blobs (untimed)`);
  const small = Array.from({ length: present }, (_, i) => Buffer.from(`hearth cache bench small blob ${i} ${base.subarray(0, 8).toString('hex')}`));
  const smallDigests: Digest[] = small.map((b) => ({ hash: createHash('sha256').update(b).digest('hex'), sizeBytes: b.length }));
  for (const part of chunked([...small.keys()], 1000)) {
    const res = await call<BatchUpdateBlobsResponse>((cb) =>
      cas.batchUpdateBlobs({ instanceName: '', digestFunction: DigestFunction_Value.SHA256, requests: part.map((i) => ({ digest: smallDigests[i]!, data: small[i]!, compressor: 0 })) }, cb),
    );
    if (res.responses.some((r) => (r.status?.code ?? 0) !== 0)) throw new Error('uploading the FindMissingBlobs fixtures failed');
  }
  const absentDigests: Digest[] = Array.from({ length: absent }, () => ({ hash: randomBytes(32).toString('hex'), sizeBytes: 1 + Math.floor(Math.random() * 100_000) }));
  const all = [...smallDigests, ...absentDigests];
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const fmb = async () => {
    const t = performance.now();
    const r = await call<FindMissingBlobsResponse>((cb) => cas.findMissingBlobs({ instanceName: '', blobDigests: all, digestFunction: DigestFunction_Value.SHA256 }, cb));
    const ms = performance.now() - t;
    if (r.missingBlobDigests.length !== absent) throw new Error(`FindMissingBlobs reported ${r.missingBlobDigests.length} missing, expected ${absent}`);
    return ms;
  };
  await fmb(); // warm-up, untimed
  const callsMs: number[] = [];
  for (let i = 0; i < opts.fmbCalls; i++) {
    signal.throwIfAborted();
    callsMs.push(await fmb());
  }
  progress(`FindMissingBlobs(${opts.fmbDigests}): median ${median(callsMs).toFixed(1)} ms`);

  const report: CacheBenchReport = {
    kind: 'hearth-cache-bench',
    schemaVersion: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command: commandLine(null),
    options: opts,
    machine,
    loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    throughput: results,
    findMissingBlobs: {
      digests: opts.fmbDigests,
      present,
      callsMs,
      summaryMs: summarize(callsMs),
      method: `one FindMissingBlobs call with all ${opts.fmbDigests} digests (shuffled; ${present} present, ${absent} absent), timed on the client from the call to its response; one untimed warm-up call first`,
    },
    notes: [
      'Server: startCacheServer over a LocalDiskStore (fsync on every blob, SHA-256 verified on write) in a child process on the same machine; client: one gRPC channel (one HTTP/2 connection) from this process, plaintext over loopback.',
      'Read throughput includes no client-side hash verification (sizes are checked); the store verifies blobs up to 1 MiB on read.',
      'The blobs just written are likely still in the page cache, so reads measure the server and gRPC more than the disk.',
      ...notes,
    ],
  };
  const md = renderCacheMarkdown(report);
  const files = await writeResults(opts.outDir, `cache-${fileTimestamp(startedAt)}`, 'cache-latest', md, report);
  process.stdout.write(`${md}\n`);
  progress(`wrote ${files.md} and ${files.json} (also cache-latest.md/json)`);
  return 0;
}

function renderCacheMarkdown(r: CacheBenchReport): string {
  const m = r.machine;
  const o = r.options;
  const L: string[] = [];
  L.push(`# hearth REAPI cache throughput — ${r.startedAt}`, '');
  L.push(`Command: \`${r.command}\``, '');
  L.push(
    `Machine: ${m.cores} cores (${m.cpuModel}), ${fmtBytes(m.memoryBytes)} RAM, ${m.os}, node ${m.node}; load average ${m.loadAverageAtStart.join(' / ')} at start, ${r.loadAverageAtEnd.join(' / ')} at end.`,
    '',
  );
  L.push(`Data: ${o.blobs} blobs × ${fmtBytes(o.blobBytes)} = ${fmtBytes(o.blobs * o.blobBytes)} per set; ${o.concurrency} calls in flight.`, '');
  L.push('| operation | API | request shape | blobs | bytes | time | throughput | blobs/s |', '|---|---|---|---|---|---|---|---|');
  for (const t of r.throughput) {
    L.push(`| CAS ${t.operation} | ${t.api} | ${t.shape} | ${t.blobs} | ${fmtBytes(t.bytes)} | ${(t.ms / 1000).toFixed(2)} s | ${t.mibPerSec.toFixed(1)} MiB/s | ${t.blobsPerSec.toFixed(0)} |`);
  }
  const f = r.findMissingBlobs;
  L.push('');
  L.push('| FindMissingBlobs | digests | present | calls | median | min | max |', '|---|---|---|---|---|---|---|');
  const ms = (x: number | undefined) => (x === undefined ? '–' : `${x.toFixed(1)} ms`);
  L.push(`| latency | ${f.digests} | ${f.present} | ${f.callsMs.length} | ${ms(f.summaryMs?.median)} | ${ms(f.summaryMs?.min)} | ${ms(f.summaryMs?.max)} |`);
  L.push('', `FindMissingBlobs: ${f.method}.`, '');
  L.push('## Notes', '');
  for (const n of r.notes) L.push(`- ${n}`);
  L.push('');
  return L.join('\n');
}

if (process.argv[2] === '--serve') {
  // The child process: no cleanup machinery, it stops on SIGTERM/SIGINT or when the parent goes away.
  serve(process.argv[3]!, Number(process.argv[4])).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`bench/cache server: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
} else {
  runMain(main);
}
