import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ServiceError, credentials, status } from '@grpc/grpc-js';
import { type Digest, EMPTY_DIGEST, LocalDiskStore, digestOf } from '@hearth/blobstore';
import { type CacheServer, startCacheServer } from './index.ts';
import {
  ActionCacheClient,
  ActionResult,
  type BatchReadBlobsRequest,
  type BatchReadBlobsResponse,
  type BatchUpdateBlobsRequest,
  type BatchUpdateBlobsResponse,
  CapabilitiesClient,
  ContentAddressableStorageClient,
  DigestFunction_Value,
  Directory,
  type FindMissingBlobsRequest,
  type FindMissingBlobsResponse,
  type GetActionResultRequest,
  type GetCapabilitiesRequest,
  type GetTreeResponse,
  type ServerCapabilities,
  Tree,
  type UpdateActionResultRequest,
} from './gen/build/bazel/remote/execution/v2/remote_execution.ts';
import {
  ByteStreamClient,
  type QueryWriteStatusRequest,
  type QueryWriteStatusResponse,
  type ReadResponse,
  WriteRequest,
  type WriteResponse,
} from './gen/google/bytestream/bytestream.ts';

const MiB = 1024 * 1024;

let dir: string;
let store: LocalDiskStore;
let server: CacheServer;
let cas: ContentAddressableStorageClient;
let ac: ActionCacheClient;
let caps: CapabilitiesClient;
let bs: ByteStreamClient;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hearth-cache-test-'));
  store = await LocalDiskStore.open({ rootDir: path.join(dir, 'cas') });
  server = await startCacheServer({
    store,
    uploads: { spoolDir: dir, memoryBytesPerUpload: 1 * MiB },
  });
  const target = server.address.replace('grpc://', '');
  const opts = { 'grpc.max_receive_message_length': 64 * MiB, 'grpc.max_send_message_length': 64 * MiB };
  cas = new ContentAddressableStorageClient(target, credentials.createInsecure(), opts);
  ac = new ActionCacheClient(target, credentials.createInsecure(), opts);
  caps = new CapabilitiesClient(target, credentials.createInsecure(), opts);
  bs = new ByteStreamClient(target, credentials.createInsecure(), opts);
});

after(async () => {
  for (const c of [cas, ac, caps, bs]) c?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
function call<Res>(invoke: (cb: Callback<Res>) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => invoke((err, res) => (err ? reject(err) : resolve(res))));
}

/** Promise wrappers over the generated grpc-js clients. */
const rpc = {
  getCapabilities: (r: GetCapabilitiesRequest) => call<ServerCapabilities>((cb) => caps.getCapabilities(r, cb)),
  findMissingBlobs: (r: FindMissingBlobsRequest) => call<FindMissingBlobsResponse>((cb) => cas.findMissingBlobs(r, cb)),
  batchUpdateBlobs: (r: BatchUpdateBlobsRequest) => call<BatchUpdateBlobsResponse>((cb) => cas.batchUpdateBlobs(r, cb)),
  batchReadBlobs: (r: BatchReadBlobsRequest) => call<BatchReadBlobsResponse>((cb) => cas.batchReadBlobs(r, cb)),
  getActionResult: (r: GetActionResultRequest) => call<ActionResult>((cb) => ac.getActionResult(r, cb)),
  updateActionResult: (r: UpdateActionResultRequest) => call<ActionResult>((cb) => ac.updateActionResult(r, cb)),
  queryWriteStatus: (r: QueryWriteStatusRequest) => call<QueryWriteStatusResponse>((cb) => bs.queryWriteStatus(r, cb)),
};

function readAll(req: { resourceName: string; readOffset?: number; readLimit?: number }): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = bs.read({ resourceName: req.resourceName, readOffset: req.readOffset ?? 0, readLimit: req.readLimit ?? 0 });
    s.on('data', (m: ReadResponse) => chunks.push(m.data));
    s.on('error', reject);
    s.on('end', () => resolve(chunks));
  });
}

function write(reqs: Partial<WriteRequest>[]): Promise<WriteResponse> {
  return new Promise((resolve, reject) => {
    const s = bs.write((err, res) => (err ? reject(err) : resolve(res!)));
    for (const r of reqs) s.write(WriteRequest.fromPartial(r));
    s.end();
  });
}

const uploadName = (d: Digest, instance = '') =>
  `${instance ? `${instance}/` : ''}uploads/${randomUUID()}/blobs/${d.hash}/${d.sizeBytes}`;
const blobName = (d: Digest, instance = '') => `${instance ? `${instance}/` : ''}blobs/${d.hash}/${d.sizeBytes}`;

async function putBlob(data: Buffer): Promise<Digest> {
  const d = digestOf(data);
  await store.put(d, data);
  return d;
}

describe('cache server', () => {
  test('Capabilities: SHA-256, 4 MiB batches, AC updates, API 2.0', async () => {
    const c = await rpc.getCapabilities({ instanceName: '' });
    assert.deepEqual(c.cacheCapabilities?.digestFunctions, [DigestFunction_Value.SHA256]);
    assert.equal(c.cacheCapabilities?.maxBatchTotalSizeBytes, 4 * MiB);
    assert.equal(c.cacheCapabilities?.actionCacheUpdateCapabilities?.updateEnabled, true);
    assert.deepEqual(c.lowApiVersion, { major: 2, minor: 0, patch: 0, prerelease: '' });
    assert.deepEqual(c.highApiVersion, { major: 2, minor: 0, patch: 0, prerelease: '' });
    assert.equal(c.executionCapabilities, undefined);
  });

  test('FindMissingBlobs on a mix of present, absent and empty blobs', async () => {
    const present = await putBlob(Buffer.from('present'));
    const absent = digestOf(Buffer.from('absent'));
    const res = await rpc.findMissingBlobs({
      instanceName: 'any/instance',
      blobDigests: [present, absent, EMPTY_DIGEST, absent],
      digestFunction: DigestFunction_Value.UNKNOWN,
    });
    assert.deepEqual(res.missingBlobDigests, [absent]);
    await assert.rejects(
      rpc.findMissingBlobs({ instanceName: '', blobDigests: [{ hash: 'nope', sizeBytes: 1 }], digestFunction: 0 }),
      { code: status.INVALID_ARGUMENT },
    );
    await assert.rejects(
      rpc.findMissingBlobs({ instanceName: '', blobDigests: [present], digestFunction: DigestFunction_Value.BLAKE3 }),
      { code: status.INVALID_ARGUMENT },
    );
  });

  test('BatchUpdateBlobs rejects a digest mismatch per blob; BatchReadBlobs reports NOT_FOUND per blob', async () => {
    const good = Buffer.from('good blob');
    const dGood = digestOf(good);
    const dBad = digestOf(Buffer.from('what the digest says'));
    const res = await rpc.batchUpdateBlobs({
      instanceName: '',
      requests: [
        { digest: dGood, data: good, compressor: 0 },
        { digest: dBad, data: Buffer.from('something else'), compressor: 0 },
      ],
      digestFunction: 0,
    });
    assert.deepEqual(
      res.responses.map((r) => [r.digest?.hash, r.status?.code]),
      [
        [dGood.hash, status.OK],
        [dBad.hash, status.INVALID_ARGUMENT],
      ],
    );
    assert.deepEqual(await store.findMissing([dGood, dBad]), [dBad]);

    const read = await rpc.batchReadBlobs({
      instanceName: '',
      digests: [dGood, dBad, EMPTY_DIGEST],
      acceptableCompressors: [],
      digestFunction: 0,
    });
    assert.deepEqual(
      read.responses.map((r) => [r.digest?.hash, r.status?.code, r.data.toString()]),
      [
        [dGood.hash, status.OK, 'good blob'],
        [dBad.hash, status.NOT_FOUND, ''],
        [EMPTY_DIGEST.hash, status.OK, ''],
      ],
    );
  });

  test('ByteStream: a 6 MiB blob reads back in chunks of at most 1 MiB; offset and limit are honoured', async () => {
    const data = randomBytes(6 * MiB + 123);
    const d = await putBlob(data);
    const chunks = await readAll({ resourceName: blobName(d, 'ci/main') });
    assert.ok(chunks.length >= 7, `got ${chunks.length} chunks`);
    assert.ok(chunks.every((c) => c.length <= MiB && c.length > 0));
    assert.ok(Buffer.concat(chunks).equals(data));
    const part = Buffer.concat(await readAll({ resourceName: blobName(d), readOffset: 5 * MiB, readLimit: 1000 }));
    assert.ok(part.equals(data.subarray(5 * MiB, 5 * MiB + 1000)));
    await assert.rejects(readAll({ resourceName: blobName(d), readOffset: d.sizeBytes + 1 }), { code: status.OUT_OF_RANGE });
    await assert.rejects(readAll({ resourceName: blobName(digestOf(Buffer.from('nope'))) }), { code: status.NOT_FOUND });
    await assert.rejects(readAll({ resourceName: `compressed-blobs/zstd/${d.hash}/${d.sizeBytes}` }), {
      code: status.INVALID_ARGUMENT,
    });
    assert.deepEqual(await readAll({ resourceName: blobName(EMPTY_DIGEST) }), []);
  });

  test('ByteStream: resumable write (end early, QueryWriteStatus, continue from committed_size)', async () => {
    const data = randomBytes(3 * MiB + 77); // larger than the 1 MiB in-memory limit: spills to disk
    const d = digestOf(data);
    const name = uploadName(d, 'ci/main');
    const chunk = 512 * 1024;
    // First stream: 4 chunks (2 MiB), then the client ends the stream without finish_write.
    const first = await write(
      [0, 1, 2, 3].map((i) => ({
        resourceName: i === 0 ? name : '',
        writeOffset: i * chunk,
        data: data.subarray(i * chunk, (i + 1) * chunk),
      })),
    );
    assert.equal(first.committedSize, 4 * chunk);
    const q = await rpc.queryWriteStatus({ resourceName: name });
    assert.deepEqual(q, { committedSize: 4 * chunk, complete: false });
    assert.deepEqual(await store.findMissing([d]), [d], 'nothing visible before finish_write');
    // A wrong offset is refused, and does not disturb the upload.
    await assert.rejects(write([{ resourceName: name, writeOffset: 1000, data: data.subarray(1000, 2000) }]), {
      code: status.INVALID_ARGUMENT,
    });
    // Second stream continues at committed_size and finishes.
    const reqs: Partial<WriteRequest>[] = [];
    for (let off = q.committedSize; off < data.length; off += chunk) {
      const end = Math.min(off + chunk, data.length);
      reqs.push({ resourceName: name, writeOffset: off, data: data.subarray(off, end), finishWrite: end === data.length });
    }
    const second = await write(reqs);
    assert.equal(second.committedSize, d.sizeBytes);
    assert.deepEqual(await rpc.queryWriteStatus({ resourceName: name }), {
      committedSize: d.sizeBytes,
      complete: true,
    });
    assert.ok(Buffer.concat(await readAll({ resourceName: blobName(d) })).equals(data));
  });

  test('ByteStream: a cancelled Write keeps its committed bytes for a resumed Write', async () => {
    const data = randomBytes(2 * MiB);
    const d = digestOf(data);
    const name = uploadName(d);
    const chunk = 256 * 1024;
    await new Promise<void>((resolve) => {
      const s = bs.write(() => resolve()); // resolves with CANCELLED
      for (let i = 0; i < 3; i++) {
        s.write(WriteRequest.fromPartial({ resourceName: i === 0 ? name : '', writeOffset: i * chunk, data: data.subarray(i * chunk, (i + 1) * chunk) }));
      }
      setTimeout(() => s.cancel(), 200);
    });
    const q = await rpc.queryWriteStatus({ resourceName: name });
    assert.equal(q.complete, false);
    assert.ok(q.committedSize % chunk === 0 && q.committedSize <= 3 * chunk, `committed ${q.committedSize}`);
    const rest = data.subarray(q.committedSize);
    const res = await write([{ resourceName: name, writeOffset: q.committedSize, data: rest, finishWrite: true }]);
    assert.equal(res.committedSize, d.sizeBytes);
    assert.ok((await store.get(d))?.equals(data));
  });

  test('ByteStream: Write of a blob that already exists returns early while the client is still sending', async () => {
    const data = randomBytes(8 * MiB);
    const d = await putBlob(data);
    const chunk = 64 * 1024;
    const res = await new Promise<WriteResponse>((resolve, reject) => {
      const s = bs.write((err, r) => (err ? reject(err) : resolve(r!)));
      const name = uploadName(d);
      let off = 0;
      const pump = () => {
        while (off < data.length) {
          const end = Math.min(off + chunk, data.length);
          const ok = s.write(WriteRequest.fromPartial({ resourceName: off === 0 ? name : '', writeOffset: off, data: data.subarray(off, end), finishWrite: end === data.length }));
          off = end;
          if (!ok) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    assert.equal(res.committedSize, d.sizeBytes);
  });

  test('ByteStream: mismatching upload is INVALID_ARGUMENT and not stored; existing blob returns early', async () => {
    const claimed = digestOf(Buffer.from('claimed content!'));
    await assert.rejects(
      write([{ resourceName: uploadName(claimed), writeOffset: 0, data: Buffer.from('actual content!!'), finishWrite: true }]),
      { code: status.INVALID_ARGUMENT },
    );
    await assert.rejects(
      write([{ resourceName: uploadName(claimed), writeOffset: 0, data: Buffer.from('short'), finishWrite: true }]),
      { code: status.INVALID_ARGUMENT },
    );
    assert.deepEqual(await store.findMissing([claimed]), [claimed]);

    const existing = await putBlob(randomBytes(2 * MiB));
    const res = await write([{ resourceName: uploadName(existing), writeOffset: 0, data: Buffer.alloc(1000) }]);
    assert.equal(res.committedSize, existing.sizeBytes);
    // Unknown upload: committed_size 0.
    const fresh = digestOf(Buffer.from('never uploaded'));
    assert.deepEqual(await rpc.queryWriteStatus({ resourceName: uploadName(fresh) }), {
      committedSize: 0,
      complete: false,
    });
  });

  test('ActionCache: hit while outputs exist, miss once an output blob is gone; per-instance namespaces', async () => {
    const out = await putBlob(Buffer.from('output file'));
    const stdout = await putBlob(Buffer.from('stdout text'));
    const inTree = await putBlob(Buffer.from('file inside an output directory'));
    const tree = Buffer.from(
      Tree.encode({
        root: Directory.fromPartial({ files: [{ name: 'f', digest: inTree, isExecutable: false }] }),
        children: [],
      }).finish(),
    );
    const treeDigest = await putBlob(tree);
    const actionDigest = digestOf(Buffer.from('an action'));
    const result = ActionResult.fromPartial({
      outputFiles: [{ path: 'bazel-out/k8/bin/out', digest: out, isExecutable: true }],
      outputDirectories: [{ path: 'bazel-out/k8/bin/dir', treeDigest }],
      exitCode: 0,
      stdoutDigest: stdout,
      stderrDigest: EMPTY_DIGEST,
      executionMetadata: { worker: 'hearth-test' },
    });
    await rpc.updateActionResult({
      instanceName: 'team-a',
      actionDigest,
      actionResult: result,
      resultsCachePolicy: undefined,
      digestFunction: 0,
    });
    const get = (instanceName: string) =>
      rpc.getActionResult({
        instanceName,
        actionDigest,
        inlineStdout: false,
        inlineStderr: false,
        inlineOutputFiles: [],
        digestFunction: 0,
      });
    const hit = await get('team-a');
    assert.deepEqual(hit, result);
    await assert.rejects(get('team-b'), { code: status.NOT_FOUND });

    // A file inside the output directory's tree is evicted → miss.
    await store.delete(inTree);
    await assert.rejects(get('team-a'), { code: status.NOT_FOUND });
    await store.put(inTree, Buffer.from('file inside an output directory'));
    assert.ok(await get('team-a'));
    // An output file is evicted → miss.
    await store.delete(out);
    await assert.rejects(get('team-a'), { code: status.NOT_FOUND });
    assert.ok(server.stats().acStaleMisses >= 2);
  });

  test('GetTree streams every directory in pages and resumes from a page token', async () => {
    const leaf = Buffer.from(Directory.encode(Directory.fromPartial({ files: [{ name: 'x', digest: EMPTY_DIGEST }] })).finish());
    const dLeaf = await putBlob(leaf);
    const mid = Buffer.from(Directory.encode(Directory.fromPartial({ directories: [{ name: 'leaf', digest: dLeaf }] })).finish());
    const dMid = await putBlob(mid);
    const other = Buffer.from(Directory.encode(Directory.fromPartial({ symlinks: [{ name: 's', target: '../x' }] })).finish());
    const dOther = await putBlob(other);
    const root = Buffer.from(
      Directory.encode(
        Directory.fromPartial({
          directories: [
            { name: 'a', digest: dMid },
            { name: 'b', digest: dOther },
            { name: 'c', digest: dMid }, // duplicate subtree: returned once
          ],
        }),
      ).finish(),
    );
    const dRoot = await putBlob(root);
    const getTree = (pageSize: number, pageToken = '') =>
      new Promise<GetTreeResponse[]>((resolve, reject) => {
        const pages: GetTreeResponse[] = [];
        const s = cas.getTree({ instanceName: '', rootDigest: dRoot, pageSize, pageToken, digestFunction: 0 });
        s.on('data', (p: GetTreeResponse) => pages.push(p));
        s.on('error', reject);
        s.on('end', () => resolve(pages));
      });
    const all = await getTree(0);
    const encoded = all.flatMap((p) => p.directories.map((x) => Buffer.from(Directory.encode(x).finish())));
    assert.deepEqual(encoded, [root, mid, other, leaf]);
    const paged = await getTree(3);
    assert.deepEqual(paged.map((p) => p.directories.length), [3, 1]);
    assert.notEqual(paged[0]!.nextPageToken, '');
    assert.equal(paged[1]!.nextPageToken, '');
    const resumed = await getTree(10, paged[0]!.nextPageToken);
    assert.deepEqual(resumed.flatMap((p) => p.directories.map((x) => Buffer.from(Directory.encode(x).finish()))), [leaf]);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = cas.getTree({ instanceName: '', rootDigest: digestOf(Buffer.from('no such dir')), pageSize: 0, pageToken: '', digestFunction: 0 });
        s.on('data', () => {});
        s.on('error', reject);
        s.on('end', resolve);
      }),
      { code: status.NOT_FOUND },
    );
  });
});
