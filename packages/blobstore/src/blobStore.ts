/**
 * The BlobStore seam: a content-addressed store of immutable blobs, addressed by the SHA-256 of their
 * bytes (lowercase hex) plus their size. Shared by the REAPI cache (`@hearth/cache`) and snapshots.
 *
 * Contract every backend keeps:
 * - A blob is visible only once it is complete and its bytes have been verified against its digest.
 * - The empty blob (`EMPTY_DIGEST`) is always present, even if it was never written.
 * - A corrupt or truncated blob is reported as missing, never returned.
 * - Every I/O call takes an optional `AbortSignal`; an aborted write leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

export interface Digest {
  /** SHA-256 of the content, 64 lowercase hex characters. */
  hash: string;
  sizeBytes: number;
}

export const SHA256_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const EMPTY_DIGEST: Readonly<Digest> = Object.freeze({ hash: SHA256_EMPTY, sizeBytes: 0 });

export interface GetStreamOptions {
  /** Byte offset to start reading from; 0 by default. Must be ≤ sizeBytes. */
  offset?: number;
  signal?: AbortSignal;
}

export interface BlobStoreStats {
  blobCount: number;
  /** Bytes held by complete blobs. */
  totalBytes: number;
  /** The byte budget, or null when unbounded. */
  maxBytes: number | null;
  /** Bytes reserved by writes in progress (not yet part of totalBytes). */
  pendingBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Blobs found corrupt on read (and removed). */
  corruptions: number;
}

export interface BlobStore {
  /**
   * Returns the digests that are NOT present (FindMissingBlobs semantics), in input order, without
   * duplicates. Present blobs count as recently used.
   */
  findMissing(digests: readonly Digest[], signal?: AbortSignal): Promise<Digest[]>;
  /** The whole blob, or null if it is missing (or was found corrupt). */
  get(digest: Digest, signal?: AbortSignal): Promise<Buffer | null>;
  /** A stream of the blob from `offset`, or null if missing. A stream may fail late if verification fails. */
  getStream(digest: Digest, options?: GetStreamOptions): Promise<Readable | null>;
  /** Stores `data` after checking it matches `digest`; throws DigestMismatchError otherwise. Idempotent. */
  put(digest: Digest, data: Buffer, signal?: AbortSignal): Promise<void>;
  /**
   * Stores a blob from a stream, verifying size and hash while it streams. Nothing becomes visible
   * until the whole stream has been received and verified. Throws DigestMismatchError on mismatch.
   */
  putStream(digest: Digest, source: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void>;
  /** Removes a blob. Returns whether it was present. The empty blob cannot be deleted. */
  delete(digest: Digest, signal?: AbortSignal): Promise<boolean>;
  stats(): Promise<BlobStoreStats>;
}

// ---------------------------------------------------------------------------------------------
// Errors

export class BlobStoreError extends Error {
  constructor(
    readonly code: 'invalid_digest' | 'digest_mismatch' | 'blob_too_large' | 'out_of_range',
    message: string,
  ) {
    super(message);
    this.name = 'BlobStoreError';
  }
}

export class InvalidDigestError extends BlobStoreError {
  constructor(message: string) {
    super('invalid_digest', message);
    this.name = 'InvalidDigestError';
  }
}

export class DigestMismatchError extends BlobStoreError {
  constructor(
    readonly expected: Digest,
    readonly actual: Digest,
  ) {
    super(
      'digest_mismatch',
      `content does not match its digest: expected ${digestKey(expected)}, got ${digestKey(actual)}`,
    );
    this.name = 'DigestMismatchError';
  }
}

export class BlobTooLargeError extends BlobStoreError {
  constructor(
    readonly digest: Digest,
    readonly maxBytes: number,
  ) {
    super('blob_too_large', `blob ${digestKey(digest)} is larger than the store's budget of ${maxBytes} bytes`);
    this.name = 'BlobTooLargeError';
  }
}

export class OffsetOutOfRangeError extends BlobStoreError {
  constructor(
    readonly digest: Digest,
    readonly offset: number,
  ) {
    super('out_of_range', `offset ${offset} is outside blob ${digestKey(digest)}`);
    this.name = 'OffsetOutOfRangeError';
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const HASH_RE = /^[0-9a-f]{64}$/;

export function isValidDigest(d: Digest): boolean {
  return (
    typeof d.hash === 'string' &&
    HASH_RE.test(d.hash) &&
    Number.isSafeInteger(d.sizeBytes) &&
    d.sizeBytes >= 0
  );
}

/** Throws InvalidDigestError unless `d` is a well-formed SHA-256 digest. */
export function assertValidDigest(d: Digest): void {
  if (!isValidDigest(d)) {
    throw new InvalidDigestError(
      `invalid digest ${JSON.stringify(d)}: hash must be 64 lowercase hex characters and sizeBytes a non-negative integer`,
    );
  }
}

/** `hash/size`, the canonical string form used in resource names and map keys. */
export function digestKey(d: Digest): string {
  return `${d.hash}/${d.sizeBytes}`;
}

export function isEmptyDigest(d: Digest): boolean {
  return d.sizeBytes === 0 && d.hash === SHA256_EMPTY;
}

export function digestOf(data: Uint8Array): Digest {
  return { hash: createHash('sha256').update(data).digest('hex'), sizeBytes: data.byteLength };
}

/** Throws DigestMismatchError unless `data` hashes to `expected`. */
export function verifyBuffer(expected: Digest, data: Uint8Array): void {
  if (data.byteLength !== expected.sizeBytes) {
    // Skip hashing: the size alone proves the mismatch, but report the real digest for debugging.
    throw new DigestMismatchError(expected, digestOf(data));
  }
  const actual = createHash('sha256').update(data).digest('hex');
  if (actual !== expected.hash) throw new DigestMismatchError(expected, { hash: actual, sizeBytes: data.byteLength });
}
