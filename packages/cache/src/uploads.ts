/**
 * Partial ByteStream uploads, kept between Write streams so that an interrupted upload can resume
 * at `committed_size` (QueryWriteStatus). Keyed by the full resource name (which includes the
 * client's upload UUID).
 *
 * Bytes are buffered in memory for small uploads and spilled to a temp file otherwise. Nothing is
 * written to the BlobStore until the client sends `finish_write` with every byte; the store then
 * verifies the digest. Idle partial uploads are dropped after `idleTtlMs`.
 */
import { createReadStream } from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import type { BlobStore, Digest } from '@hearth/blobstore';
import { GrpcError, invalidArgument } from './grpcErrors.ts';

export interface UploadManagerOptions {
  /** Parent directory for spill files; a private subdirectory is created in it. Default: os.tmpdir(). */
  spoolDir?: string;
  /** An upload stays in memory while it is at most this big. Default 4 MiB. */
  memoryBytesPerUpload?: number;
  /** Total memory for all partial uploads. Default 64 MiB. */
  memoryBytesTotal?: number;
  /** Partial uploads idle this long are dropped. Default 15 min. */
  idleTtlMs?: number;
}

export class PartialUpload {
  committed = 0;
  lastActiveMs = Date.now();
  private discarded = false;
  private chunks: Buffer[] = [];
  private memBytes = 0;
  private fh: FileHandle | null = null;
  private filePath: string | null = null;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly resourceName: string,
    readonly digest: Digest,
    private readonly mgr: UploadManager,
  ) {}

  /** Runs `fn` after every earlier operation on this upload (streams may race on one resource). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => {});
    return run;
  }

  append(writeOffset: number, data: Buffer): Promise<void> {
    return this.exclusive(async () => {
      this.checkLive();
      if (writeOffset !== this.committed) {
        throw invalidArgument(
          `write_offset ${writeOffset} does not match committed_size ${this.committed} of ${this.resourceName}`,
        );
      }
      if (this.committed + data.byteLength > this.digest.sizeBytes) {
        throw invalidArgument(
          `upload of ${this.resourceName} exceeds the declared size ${this.digest.sizeBytes} bytes`,
        );
      }
      this.lastActiveMs = Date.now();
      if (data.byteLength === 0) return;
      if (!this.fh && this.mgr.mayBuffer(this.memBytes + data.byteLength, data.byteLength)) {
        this.chunks.push(data);
        this.memBytes += data.byteLength;
        this.mgr.memBytes += data.byteLength;
      } else {
        if (!this.fh) await this.spill();
        await writeFully(this.fh!, data);
      }
      this.committed += data.byteLength;
    });
  }

  /** Moves the in-memory prefix into a temp file; later bytes are appended there. */
  private async spill(): Promise<void> {
    this.filePath = await this.mgr.spillPath();
    this.fh = await fsp.open(this.filePath, 'wx');
    for (const c of this.chunks) await writeFully(this.fh, c);
    this.releaseMemory();
  }

  /** Verifies completeness and moves the bytes into the store (which verifies the hash). */
  finish(store: BlobStore, signal?: AbortSignal): Promise<void> {
    return this.exclusive(async () => {
      this.checkLive();
      try {
        if (this.committed !== this.digest.sizeBytes) {
          throw invalidArgument(
            `finish_write after ${this.committed} of ${this.digest.sizeBytes} bytes of ${this.resourceName}`,
          );
        }
        if (this.fh) {
          await this.fh.close();
          this.fh = null;
          await store.putStream(this.digest, createReadStream(this.filePath!), signal);
        } else {
          await store.put(this.digest, Buffer.concat(this.chunks, this.memBytes), signal);
        }
      } finally {
        await this.discardNow();
      }
    });
  }

  /** Drops the upload and its bytes (waits for an in-flight append). */
  discard(): Promise<void> {
    this.discarded = true;
    this.mgr.forget(this);
    return this.exclusive(() => this.discardNow());
  }

  private checkLive(): void {
    if (this.discarded) {
      throw new GrpcError(status.ABORTED, `upload ${this.resourceName} was restarted or expired; query and retry`);
    }
  }

  private async discardNow(): Promise<void> {
    this.discarded = true;
    this.mgr.forget(this);
    this.releaseMemory();
    if (this.fh) await this.fh.close().catch(() => {});
    this.fh = null;
    if (this.filePath) await fsp.rm(this.filePath, { force: true });
    this.filePath = null;
  }

  private releaseMemory(): void {
    this.mgr.memBytes -= this.memBytes;
    this.memBytes = 0;
    this.chunks = [];
  }
}

export class UploadManager {
  /** Bytes of partial uploads held in memory (all uploads). */
  memBytes = 0;
  private readonly uploads = new Map<string, PartialUpload>();
  private readonly memoryBytesPerUpload: number;
  private readonly memoryBytesTotal: number;
  private readonly idleTtlMs: number;
  private spoolDir: Promise<string> | null = null;
  private spillCounter = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: UploadManagerOptions = {}) {
    this.memoryBytesPerUpload = options.memoryBytesPerUpload ?? 4 * 1024 * 1024;
    this.memoryBytesTotal = options.memoryBytesTotal ?? 64 * 1024 * 1024;
    this.idleTtlMs = options.idleTtlMs ?? 15 * 60_000;
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(60_000, this.idleTtlMs / 4)));
    this.sweeper.unref();
  }

  get(resourceName: string): PartialUpload | undefined {
    return this.uploads.get(resourceName);
  }

  /**
   * The upload a new Write stream continues. `write_offset` 0 (re)starts it from scratch; any other
   * offset must continue an existing upload (the offset itself is checked by `append`).
   */
  async begin(resourceName: string, digest: Digest, writeOffset: number): Promise<PartialUpload> {
    const existing = this.uploads.get(resourceName);
    if (writeOffset === 0) {
      if (existing && existing.committed === 0) return existing;
      if (existing) await existing.discard();
      const fresh = new PartialUpload(resourceName, digest, this);
      this.uploads.set(resourceName, fresh);
      return fresh;
    }
    if (!existing) {
      throw invalidArgument(
        `no upload in progress for ${resourceName} (committed_size is 0); restart at write_offset 0`,
      );
    }
    return existing;
  }

  mayBuffer(uploadBytesAfter: number, adding: number): boolean {
    return uploadBytesAfter <= this.memoryBytesPerUpload && this.memBytes + adding <= this.memoryBytesTotal;
  }

  async spillPath(): Promise<string> {
    this.spoolDir ??= fsp.mkdtemp(path.join(this.options.spoolDir ?? tmpdir(), 'hearth-uploads-'));
    return path.join(await this.spoolDir, `${process.pid}-${++this.spillCounter}`);
  }

  forget(upload: PartialUpload): void {
    if (this.uploads.get(upload.resourceName) === upload) this.uploads.delete(upload.resourceName);
  }

  private sweep(): void {
    const cutoff = Date.now() - this.idleTtlMs;
    for (const u of [...this.uploads.values()]) if (u.lastActiveMs < cutoff) void u.discard().catch(() => {});
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.uploads.values()].map((u) => u.discard().catch(() => {})));
    if (this.spoolDir) await fsp.rm(await this.spoolDir, { recursive: true, force: true });
  }
}

async function writeFully(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.byteLength) {
    const { bytesWritten } = await fh.write(data, off, data.byteLength - off);
    off += bytesWritten;
  }
}
