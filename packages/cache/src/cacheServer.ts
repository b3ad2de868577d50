/**
 * A REAPI v2 remote cache over gRPC (Capabilities, ContentAddressableStorage, ActionCache and
 * ByteStream) backed by a BlobStore. Bazel uses it with `--remote_cache=grpc://host:port`.
 *
 * - CAS blobs are shared by all instance names; Action Cache entries are namespaced per instance.
 * - An Action Cache hit is only returned if every blob it references is still in the CAS (output
 *   files, stdout/stderr, output directory trees and the files inside them); otherwise it is a miss,
 *   so Bazel re-runs the action instead of failing a download.
 * - ByteStream reads are sent in chunks of at most 1 MiB (Bazel rejects messages over 4 MiB) with
 *   backpressure; writes are resumable (QueryWriteStatus) and verified before they become visible.
 */
import { type EventEmitter, once } from 'node:events';
import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServerReadableStream,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { type BlobStore, type Digest, assertValidDigest, digestKey } from '@hearth/blobstore';
import { type ActionCacheStore, MemoryActionCacheStore, actionCacheKey } from './actionCacheStore.ts';
import {
  ActionCacheService,
  ActionResult,
  BatchReadBlobsResponse,
  BatchUpdateBlobsResponse,
  CapabilitiesService,
  Compressor_Value,
  ContentAddressableStorageService,
  DigestFunction_Value,
  Directory,
  type BatchReadBlobsRequest,
  type BatchUpdateBlobsRequest,
  type FindMissingBlobsRequest,
  FindMissingBlobsResponse,
  type GetActionResultRequest,
  type GetCapabilitiesRequest,
  type GetTreeRequest,
  RequestMetadata,
  ServerCapabilities,
  SymlinkAbsolutePathStrategy_Value,
  Tree,
  type UpdateActionResultRequest,
} from './gen/build/bazel/remote/execution/v2/remote_execution.ts';
import {
  ByteStreamService,
  type QueryWriteStatusRequest,
  QueryWriteStatusResponse,
  type ReadRequest,
  type WriteRequest,
  WriteResponse,
} from './gen/google/bytestream/bytestream.ts';
import type { Status } from './gen/google/rpc/status.ts';
import { GrpcError, grpcCodeOf, invalidArgument, notFound, outOfRange, toServiceError } from './grpcErrors.ts';
import { parseReadResource, parseWriteResource } from './resourceName.ts';
import { UploadManager, type UploadManagerOptions } from './uploads.ts';

export const REQUEST_METADATA_HEADER = 'build.bazel.remote.execution.v2.requestmetadata-bin';
const MiB = 1024 * 1024;

/** pino-compatible subset. */
export interface CacheLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface CacheServerOptions {
  store: BlobStore;
  /** Where Action Cache entries live. Default: in memory (lost on restart). */
  acStore?: ActionCacheStore;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** Largest single blob accepted (RESOURCE_EXHAUSTED above). Default: no limit beyond the store's. */
  maxBlobBytes?: number;
  /** Advertised in Capabilities; default 4 MiB. */
  maxBatchTotalSizeBytes?: number;
  /** gRPC max receive/send message length; default 32 MiB (must stay ≥ 16 MiB). */
  maxMessageBytes?: number;
  /** Largest ByteStream ReadResponse chunk; default 1 MiB. */
  readChunkBytes?: number;
  /** Largest GetTree page in directories; default (and cap) 10 000. */
  maxTreePageSize?: number;
  uploads?: UploadManagerOptions;
  logger?: CacheLogger;
}

export interface CacheServerStats {
  acHits: number;
  acMisses: number;
  /** Misses because an entry referenced blobs no longer in the CAS. */
  acStaleMisses: number;
  acUpdates: number;
  casBlobsUploaded: number;
  casBytesUploaded: number;
  casBytesDownloaded: number;
}

export interface CacheServer {
  /** `grpc://host:port`, ready for `--remote_cache=`. */
  address: string;
  port: number;
  stats(): CacheServerStats;
  close(): Promise<void>;
}

/** A GetTree page whose directories are the raw bytes stored in the CAS (re-encoding could change them). */
interface RawGetTreeResponse {
  directories: Buffer[];
  nextPageToken: string;
}

function encodeRawGetTreeResponse(v: RawGetTreeResponse): Buffer {
  const w = new BinaryWriter();
  for (const d of v.directories) w.uint32((1 << 3) | 2).bytes(d);
  if (v.nextPageToken) w.uint32((2 << 3) | 2).string(v.nextPageToken);
  return Buffer.from(w.finish());
}

const ContentAddressableStorageRawService = {
  ...ContentAddressableStorageService,
  getTree: { ...ContentAddressableStorageService.getTree, responseSerialize: encodeRawGetTreeResponse },
};

export async function startCacheServer(options: CacheServerOptions): Promise<CacheServer> {
  const host = options.host ?? '127.0.0.1';
  const maxMessageBytes = options.maxMessageBytes ?? 32 * MiB;
  const server = new Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  });
  const impl = new CacheServiceImpl(options, maxMessageBytes);
  server.addService(CapabilitiesService, { getCapabilities: impl.unary('GetCapabilities', impl.getCapabilities) });
  server.addService(ActionCacheService, {
    getActionResult: impl.unary('GetActionResult', impl.getActionResult),
    updateActionResult: impl.unary('UpdateActionResult', impl.updateActionResult),
  });
  server.addService(ContentAddressableStorageRawService as unknown as ServiceDefinition, {
    findMissingBlobs: impl.unary('FindMissingBlobs', impl.findMissingBlobs),
    batchUpdateBlobs: impl.unary('BatchUpdateBlobs', impl.batchUpdateBlobs),
    batchReadBlobs: impl.unary('BatchReadBlobs', impl.batchReadBlobs),
    getTree: impl.serverStreaming('GetTree', impl.getTree),
  });
  server.addService(ByteStreamService, {
    read: impl.serverStreaming('Read', impl.read),
    write: impl.write,
    queryWriteStatus: impl.unary('QueryWriteStatus', impl.queryWriteStatus),
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${options.port ?? 0}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  const address = `grpc://${host.includes(':') ? `[${host}]` : host}:${port}`;
  options.logger?.debug({ address }, 'cache server listening');

  return {
    address,
    port,
    stats: () => ({ ...impl.counters }),
    async close() {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await impl.uploads.close();
    },
  };
}

/** An AbortSignal that fires when the client cancels the call (or its deadline passes). */
function callSignal(call: EventEmitter): AbortSignal {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort(new GrpcError(status.CANCELLED, 'call cancelled by the client')));
  return ac.signal;
}

function requestMetadata(md: Metadata): RequestMetadata | undefined {
  const v = md.get(REQUEST_METADATA_HEADER)[0];
  if (!Buffer.isBuffer(v)) return undefined;
  try {
    return RequestMetadata.decode(v);
  } catch {
    return undefined;
  }
}

const OK: Status = { code: status.OK, message: '', details: [] };
const rpcStatus = (code: status, message: string): Status => ({ code, message, details: [] });

function checkDigestFunction(fn: DigestFunction_Value | undefined): void {
  if (fn !== undefined && fn !== DigestFunction_Value.UNKNOWN && fn !== DigestFunction_Value.SHA256) {
    throw invalidArgument(`digest function ${DigestFunction_Value[fn] ?? fn} is not supported (SHA-256 only)`);
  }
}

function requireDigest(d: Digest | undefined, what: string): Digest {
  if (!d) throw invalidArgument(`${what} is required`);
  try {
    assertValidDigest(d);
  } catch (err) {
    throw invalidArgument(`${what}: ${(err as Error).message}`);
  }
  return d;
}

const cleanDigest = (d: Digest): Digest => ({ hash: d.hash, sizeBytes: d.sizeBytes });

class CacheServiceImpl {
  readonly store: BlobStore;
  readonly acStore: ActionCacheStore;
  readonly uploads: UploadManager;
  readonly counters: CacheServerStats = {
    acHits: 0,
    acMisses: 0,
    acStaleMisses: 0,
    acUpdates: 0,
    casBlobsUploaded: 0,
    casBytesUploaded: 0,
    casBytesDownloaded: 0,
  };
  private readonly maxBlobBytes: number;
  private readonly maxBatchTotalSizeBytes: number;
  private readonly readChunkBytes: number;
  private readonly maxTreePageSize: number;
  private readonly maxBatchReadBytes: number;
  private readonly logger: CacheLogger | undefined;

  constructor(options: CacheServerOptions, maxMessageBytes: number) {
    this.store = options.store;
    this.acStore = options.acStore ?? new MemoryActionCacheStore();
    this.uploads = new UploadManager(options.uploads);
    this.maxBlobBytes = options.maxBlobBytes ?? Number.MAX_SAFE_INTEGER;
    this.maxBatchTotalSizeBytes = options.maxBatchTotalSizeBytes ?? 4 * MiB;
    this.readChunkBytes = Math.min(options.readChunkBytes ?? MiB, MiB);
    this.maxTreePageSize = options.maxTreePageSize ?? 10_000;
    this.maxBatchReadBytes = maxMessageBytes - MiB; // room for framing and per-blob overhead
    this.logger = options.logger;
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing

  unary<Req, Res>(
    name: string,
    fn: (this: CacheServiceImpl, req: Req, signal: AbortSignal) => Promise<Res>,
  ): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
    return (call, callback) => {
      const signal = callSignal(call);
      fn.call(this, call.request, signal).then(
        (res) => callback(null, res),
        (err: unknown) => {
          this.logError(name, call.metadata, err);
          callback(toServiceError(err));
        },
      );
    };
  }

  serverStreaming<Req, Res>(
    name: string,
    fn: (this: CacheServiceImpl, req: Req, call: ServerWritableStream<Req, Res>, signal: AbortSignal) => Promise<void>,
  ): (call: ServerWritableStream<Req, Res>) => void {
    return (call) => {
      const signal = callSignal(call);
      fn.call(this, call.request, call, signal).then(
        () => call.end(),
        (err: unknown) => {
          this.logError(name, call.metadata, err);
          if (!signal.aborted) call.emit('error', toServiceError(err));
        },
      );
    };
  }

  private logError(rpc: string, md: Metadata, err: unknown): void {
    if (!this.logger) return;
    const code = grpcCodeOf(err);
    const meta = requestMetadata(md);
    const fields = {
      rpc,
      code: status[code],
      err: err instanceof Error ? err.message : String(err),
      toolInvocationId: meta?.toolInvocationId,
      actionId: meta?.actionId,
      mnemonic: meta?.actionMnemonic,
      target: meta?.targetId,
    };
    if (code === status.INTERNAL || code === status.UNKNOWN) this.logger.warn(fields, 'cache rpc failed');
    else this.logger.debug(fields, 'cache rpc error');
  }

  /** Writes a message, waiting for 'drain' when grpc-js buffers (backpressure). */
  private async send<T>(call: ServerWritableStream<unknown, T>, msg: T, signal: AbortSignal): Promise<void> {
    if (!call.write(msg)) await once(call, 'drain', { signal });
  }

  // ---------------------------------------------------------------------------------------------
  // Capabilities

  async getCapabilities(_req: GetCapabilitiesRequest): Promise<ServerCapabilities> {
    return ServerCapabilities.fromPartial({
      cacheCapabilities: {
        digestFunctions: [DigestFunction_Value.SHA256],
        actionCacheUpdateCapabilities: { updateEnabled: true },
        cachePriorityCapabilities: { priorities: [{ minPriority: 0, maxPriority: 0 }] },
        maxBatchTotalSizeBytes: this.maxBatchTotalSizeBytes,
        symlinkAbsolutePathStrategy: SymlinkAbsolutePathStrategy_Value.ALLOWED,
      },
      deprecatedApiVersion: { major: 2, minor: 0, patch: 0 },
      lowApiVersion: { major: 2, minor: 0, patch: 0 },
      highApiVersion: { major: 2, minor: 0, patch: 0 },
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Action Cache

  async getActionResult(req: GetActionResultRequest, signal: AbortSignal): Promise<ActionResult> {
    checkDigestFunction(req.digestFunction);
    const actionDigest = requireDigest(req.actionDigest, 'action_digest');
    const key = actionCacheKey(req.instanceName, actionDigest);
    const bytes = await this.acStore.get(key, signal);
    if (!bytes) {
      this.counters.acMisses++;
      throw notFound(`no action result for ${digestKey(actionDigest)}`);
    }
    let result: ActionResult;
    try {
      result = ActionResult.decode(bytes);
    } catch {
      await this.acStore.delete(key, signal);
      this.counters.acMisses++;
      throw notFound(`action result for ${digestKey(actionDigest)} was unreadable and has been dropped`);
    }
    const missing = await this.missingOutputs(result, signal);
    if (missing) {
      this.counters.acMisses++;
      this.counters.acStaleMisses++;
      throw notFound(`action result for ${digestKey(actionDigest)} references missing blob ${missing}`);
    }
    this.counters.acHits++;
    return result;
  }

  /**
   * Returns the key of a blob the result references that is no longer in the CAS, or null when all
   * are present. Checking them also refreshes their LRU position, so a hit keeps its outputs alive.
   */
  private async missingOutputs(result: ActionResult, signal: AbortSignal): Promise<string | null> {
    const refs: Digest[] = [];
    for (const f of result.outputFiles) if (f.digest) refs.push(cleanDigest(f.digest));
    if (result.stdoutDigest) refs.push(cleanDigest(result.stdoutDigest));
    if (result.stderrDigest) refs.push(cleanDigest(result.stderrDigest));
    for (const d of result.outputDirectories) {
      if (!d.treeDigest) continue;
      const treeDigest = cleanDigest(d.treeDigest);
      const treeBytes = await this.store.get(treeDigest, signal);
      if (!treeBytes) return digestKey(treeDigest);
      let tree: Tree;
      try {
        tree = Tree.decode(treeBytes);
      } catch {
        return digestKey(treeDigest);
      }
      for (const dir of [tree.root, ...tree.children]) {
        for (const f of dir?.files ?? []) if (f.digest) refs.push(cleanDigest(f.digest));
      }
      if (d.rootDirectoryDigest) refs.push(cleanDigest(d.rootDirectoryDigest));
    }
    for (const r of refs) {
      try {
        assertValidDigest(r);
      } catch {
        return digestKey(r);
      }
    }
    const missing = await this.store.findMissing(refs, signal);
    return missing[0] ? digestKey(missing[0]) : null;
  }

  async updateActionResult(req: UpdateActionResultRequest, signal: AbortSignal): Promise<ActionResult> {
    checkDigestFunction(req.digestFunction);
    const actionDigest = requireDigest(req.actionDigest, 'action_digest');
    if (!req.actionResult) throw invalidArgument('action_result is required');
    const bytes = Buffer.from(ActionResult.encode(req.actionResult).finish());
    await this.acStore.put(actionCacheKey(req.instanceName, actionDigest), bytes, signal);
    this.counters.acUpdates++;
    return req.actionResult;
  }

  // ---------------------------------------------------------------------------------------------
  // CAS

  async findMissingBlobs(req: FindMissingBlobsRequest, signal: AbortSignal): Promise<FindMissingBlobsResponse> {
    checkDigestFunction(req.digestFunction);
    const digests = req.blobDigests.map((d, i) => requireDigest(d, `blob_digests[${i}]`));
    const missing = await this.store.findMissing(digests, signal);
    return { missingBlobDigests: missing };
  }

  async batchUpdateBlobs(req: BatchUpdateBlobsRequest, signal: AbortSignal): Promise<BatchUpdateBlobsResponse> {
    checkDigestFunction(req.digestFunction);
    const responses = await Promise.all(
      req.requests.map(async (r): Promise<BatchUpdateBlobsResponse_Response> => {
        const digest = r.digest ? cleanDigest(r.digest) : undefined;
        try {
          const d = requireDigest(digest, 'digest');
          if (r.compressor !== Compressor_Value.IDENTITY) {
            throw invalidArgument(`compressor ${Compressor_Value[r.compressor] ?? r.compressor} is not supported`);
          }
          this.checkBlobSize(d);
          await this.store.put(d, r.data, signal);
          this.counters.casBlobsUploaded++;
          this.counters.casBytesUploaded += d.sizeBytes;
          return { digest: d, status: OK };
        } catch (err) {
          if (signal.aborted) throw err;
          const code = grpcCodeOf(err);
          if (code === status.INTERNAL) this.logger?.warn({ rpc: 'BatchUpdateBlobs', err: String(err) }, 'blob write failed');
          return { digest, status: rpcStatus(code, (err as Error).message) };
        }
      }),
    );
    return BatchUpdateBlobsResponse.fromPartial({ responses });
  }

  private checkBlobSize(d: Digest): void {
    if (d.sizeBytes > this.maxBlobBytes) {
      throw new GrpcError(
        status.RESOURCE_EXHAUSTED,
        `blob ${digestKey(d)} is larger than this server's limit of ${this.maxBlobBytes} bytes`,
      );
    }
  }

  async batchReadBlobs(req: BatchReadBlobsRequest, signal: AbortSignal): Promise<BatchReadBlobsResponse> {
    checkDigestFunction(req.digestFunction);
    const total = req.digests.reduce((n, d) => n + (d.sizeBytes > 0 ? d.sizeBytes : 0), 0);
    if (total > this.maxBatchReadBytes) {
      throw invalidArgument(
        `BatchReadBlobs asked for ${total} bytes; the limit is ${this.maxBatchReadBytes} (use ByteStream Read)`,
      );
    }
    const responses = await Promise.all(
      req.digests.map(async (raw): Promise<BatchReadBlobsResponse_Response> => {
        const digest = cleanDigest(raw);
        const base = { digest, data: Buffer.alloc(0), compressor: Compressor_Value.IDENTITY };
        try {
          requireDigest(digest, 'digest');
          const data = await this.store.get(digest, signal);
          if (!data) return { ...base, status: rpcStatus(status.NOT_FOUND, `blob ${digestKey(digest)} not found`) };
          this.counters.casBytesDownloaded += data.byteLength;
          return { ...base, data, status: OK };
        } catch (err) {
          if (signal.aborted) throw err;
          return { ...base, status: rpcStatus(grpcCodeOf(err), (err as Error).message) };
        }
      }),
    );
    return BatchReadBlobsResponse.fromPartial({ responses });
  }

  /**
   * Streams every Directory reachable from the root, breadth first, deduplicated, as stored (raw
   * bytes). Pages hold at most `page_size` directories and ~2 MiB; `next_page_token` is the number of
   * directories already returned, so a retried call can skip ahead. Missing subtrees are omitted.
   */
  async getTree(
    req: GetTreeRequest,
    call: ServerWritableStream<GetTreeRequest, RawGetTreeResponse>,
    signal: AbortSignal,
  ): Promise<void> {
    checkDigestFunction(req.digestFunction);
    const root = cleanDigest(requireDigest(req.rootDigest, 'root_digest'));
    const pageSize = req.pageSize > 0 ? Math.min(req.pageSize, this.maxTreePageSize) : this.maxTreePageSize;
    const maxPageBytes = 2 * MiB;
    let skip = 0;
    if (req.pageToken) {
      skip = Number(Buffer.from(req.pageToken, 'base64url').toString());
      if (!Number.isSafeInteger(skip) || skip < 0) throw invalidArgument(`invalid page_token ${JSON.stringify(req.pageToken)}`);
    }
    const rootBytes = await this.store.get(root, signal);
    if (!rootBytes) throw notFound(`root directory ${digestKey(root)} not found`);

    let position = 0;
    let page: Buffer[] = [];
    let pageBytes = 0;
    const seen = new Set<string>([digestKey(root)]);
    let level: Buffer[] = [rootBytes];
    while (level.length > 0) {
      const next: Digest[] = [];
      for (const bytes of level) {
        let dir: Directory;
        try {
          dir = Directory.decode(bytes);
        } catch {
          if (position === 0) throw invalidArgument(`root ${digestKey(root)} is not an encoded Directory`);
          continue; // not a Directory: omit it like a missing subtree
        }
        for (const child of dir.directories) {
          if (!child.digest) continue;
          const cd = cleanDigest(child.digest);
          const k = digestKey(cd);
          if (seen.has(k)) continue;
          seen.add(k);
          next.push(cd);
        }
        position++;
        if (position <= skip) continue;
        if (page.length >= pageSize || (page.length > 0 && pageBytes + bytes.byteLength > maxPageBytes)) {
          await this.send(call, { directories: page, nextPageToken: pageToken(position - 1) }, signal);
          page = [];
          pageBytes = 0;
        }
        page.push(bytes);
        pageBytes += bytes.byteLength;
      }
      const fetched = await Promise.all(
        next.map(async (d) => {
          try {
            assertValidDigest(d);
            return await this.store.get(d, signal);
          } catch (err) {
            if (signal.aborted) throw err;
            return null;
          }
        }),
      );
      level = fetched.filter((b): b is Buffer => b !== null);
    }
    await this.send(call, { directories: page, nextPageToken: '' }, signal);
  }

  // ---------------------------------------------------------------------------------------------
  // ByteStream

  async read(req: ReadRequest, call: ServerWritableStream<ReadRequest, { data: Buffer }>, signal: AbortSignal): Promise<void> {
    const { digest } = parseReadResource(req.resourceName);
    const offset = req.readOffset;
    if (offset < 0 || offset > digest.sizeBytes) {
      throw outOfRange(`read_offset ${offset} is outside blob ${digestKey(digest)}`);
    }
    if (req.readLimit < 0) throw outOfRange(`read_limit ${req.readLimit} is negative`);
    let remaining = digest.sizeBytes - offset;
    if (req.readLimit > 0) remaining = Math.min(remaining, req.readLimit);
    const stream = await this.store.getStream(digest, { offset, signal });
    if (!stream) throw notFound(`blob ${digestKey(digest)} not found`);
    const chunkBytes = this.readChunkBytes;
    let acc: Buffer[] = [];
    let accBytes = 0;
    try {
      for await (const raw of stream as AsyncIterable<Buffer>) {
        let chunk = raw.byteLength > remaining ? raw.subarray(0, remaining) : raw;
        remaining -= chunk.byteLength;
        while (chunk.byteLength > 0) {
          const take = Math.min(chunkBytes - accBytes, chunk.byteLength);
          acc.push(chunk.subarray(0, take));
          accBytes += take;
          chunk = chunk.subarray(take);
          if (accBytes === chunkBytes) {
            await this.send(call, { data: Buffer.concat(acc, accBytes) }, signal);
            this.counters.casBytesDownloaded += accBytes;
            acc = [];
            accBytes = 0;
          }
        }
        if (remaining === 0) break;
      }
    } finally {
      stream.destroy();
    }
    if (accBytes > 0) {
      await this.send(call, { data: Buffer.concat(acc, accBytes) }, signal);
      this.counters.casBytesDownloaded += accBytes;
    }
    if (remaining !== 0) throw new GrpcError(status.DATA_LOSS, `blob ${digestKey(digest)} ended early`);
  }

  /**
   * ByteStream Write. Messages are processed strictly in order (the call is paused while one is being
   * handled). A stream that ends without `finish_write` keeps its bytes for a later resumption.
   */
  write = (call: ServerReadableStream<WriteRequest, WriteResponse>, callback: sendUnaryData<WriteResponse>): void => {
    const signal = callSignal(call);
    let done = false;
    let resourceName = '';
    let upload: Awaited<ReturnType<UploadManager['begin']>> | undefined;
    let digest: Digest | undefined;
    const respond = (err: unknown, res?: WriteResponse) => {
      if (done) return;
      done = true;
      if (err) {
        this.logError('Write', call.metadata, err);
        callback(toServiceError(err));
      } else callback(null, res);
    };

    const handle = async (req: WriteRequest): Promise<void> => {
      if (!upload) {
        if (!req.resourceName) throw invalidArgument('the first WriteRequest must set resource_name');
        resourceName = req.resourceName;
        const parsed = parseWriteResource(resourceName);
        digest = parsed.digest;
        this.checkBlobSize(digest);
        const missing = await this.store.findMissing([digest], signal);
        if (missing.length === 0) {
          // Already stored (by anyone): finish right away without reading the rest.
          await this.uploads.get(resourceName)?.discard();
          respond(null, { committedSize: digest.sizeBytes });
          return;
        }
        upload = await this.uploads.begin(resourceName, digest, req.writeOffset);
      } else if (req.resourceName && req.resourceName !== resourceName) {
        throw invalidArgument(`resource_name changed within one Write stream (${resourceName} → ${req.resourceName})`);
      }
      await upload.append(req.writeOffset, req.data);
      if (req.finishWrite) {
        await upload.finish(this.store, signal);
        this.counters.casBlobsUploaded++;
        this.counters.casBytesUploaded += digest!.sizeBytes;
        respond(null, { committedSize: digest!.sizeBytes });
      }
    };

    let chain = Promise.resolve();
    call.on('data', (req: WriteRequest) => {
      if (done) return;
      call.pause();
      chain = chain
        .then(() => (done ? undefined : handle(req)))
        .catch((err: unknown) => respond(err))
        .finally(() => {
          if (!done) call.resume();
        });
    });
    call.on('end', () => {
      chain = chain.then(() => {
        if (done) return;
        if (!upload) respond(invalidArgument('Write stream ended without any request'));
        // Ended without finish_write: report progress; the bytes are kept for resumption.
        else respond(null, { committedSize: upload.committed });
      });
    });
    call.on('error', (err) => respond(err));
  };

  async queryWriteStatus(req: QueryWriteStatusRequest): Promise<QueryWriteStatusResponse> {
    const { digest } = parseWriteResource(req.resourceName);
    if ((await this.store.findMissing([digest])).length === 0) {
      return { committedSize: digest.sizeBytes, complete: true };
    }
    // Unknown uploads report 0 rather than NOT_FOUND: Bazel's uploader treats a failed query as fatal
    // for that attempt and would retry from its stale offset, while 0 makes it restart cleanly.
    return { committedSize: this.uploads.get(req.resourceName)?.committed ?? 0, complete: false };
  }
}

type BatchUpdateBlobsResponse_Response = BatchUpdateBlobsResponse['responses'][number];
type BatchReadBlobsResponse_Response = BatchReadBlobsResponse['responses'][number];

function pageToken(position: number): string {
  return Buffer.from(String(position)).toString('base64url');
}
