/**
 * ByteStream resource names used by REAPI for CAS blobs:
 *   read:  [{instance_name}/]blobs/[{digest_function}/]{hash}/{size}
 *   write: [{instance_name}/]uploads/{uuid}/blobs/[{digest_function}/]{hash}/{size}[/{metadata...}]
 * The instance name may span several segments; it cannot contain the keywords `blobs`, `uploads` or
 * `compressed-blobs` as a segment, so the first keyword ends it. hearth advertises no compressors,
 * so `compressed-blobs` resources are rejected, as is any digest function other than SHA-256.
 */
import type { Digest } from '@hearth/blobstore';
import { invalidArgument } from './grpcErrors.ts';

export interface ReadResource {
  instanceName: string;
  digest: Digest;
}

export interface WriteResource extends ReadResource {
  uuid: string;
}

const HASH_RE = /^[0-9a-f]{64}$/;
const SIZE_RE = /^(0|[1-9][0-9]*)$/;
const DIGEST_FUNCTIONS = new Set(['sha256', 'sha1', 'md5', 'vso', 'sha384', 'sha512', 'murmur3', 'sha256tree', 'blake3']);

export function parseReadResource(name: string): ReadResource {
  const segs = name.split('/');
  const i = segs.findIndex((s) => s === 'blobs' || s === 'compressed-blobs');
  if (i < 0) throw invalidArgument(`invalid read resource name ${JSON.stringify(name)}: expected [instance/]blobs/{hash}/{size}`);
  rejectCompressed(segs[i]!, name);
  const { digest, next } = parseDigestAt(segs, i + 1, name);
  if (next !== segs.length) throw invalidArgument(`invalid read resource name ${JSON.stringify(name)}: trailing segments`);
  return { instanceName: segs.slice(0, i).join('/'), digest };
}

export function parseWriteResource(name: string): WriteResource {
  const segs = name.split('/');
  const i = segs.indexOf('uploads');
  const kind = segs[i + 2];
  if (i < 0 || !segs[i + 1] || (kind !== 'blobs' && kind !== 'compressed-blobs')) {
    throw invalidArgument(
      `invalid write resource name ${JSON.stringify(name)}: expected [instance/]uploads/{uuid}/blobs/{hash}/{size}`,
    );
  }
  rejectCompressed(kind, name);
  const { digest } = parseDigestAt(segs, i + 3, name); // anything after {size} is optional metadata
  return { instanceName: segs.slice(0, i).join('/'), uuid: segs[i + 1]!, digest };
}

function rejectCompressed(kind: string, name: string): void {
  if (kind === 'compressed-blobs') {
    throw invalidArgument(
      `compressed-blobs resources are not supported (this server advertises no compressors): ${JSON.stringify(name)}`,
    );
  }
}

function parseDigestAt(segs: string[], at: number, name: string): { digest: Digest; next: number } {
  let j = at;
  const first = segs[j];
  if (first !== undefined && DIGEST_FUNCTIONS.has(first)) {
    if (first !== 'sha256') throw invalidArgument(`digest function ${first} is not supported (SHA-256 only): ${JSON.stringify(name)}`);
    j++;
  }
  const hash = segs[j];
  const size = segs[j + 1];
  if (hash === undefined || size === undefined || !HASH_RE.test(hash) || !SIZE_RE.test(size) || !Number.isSafeInteger(Number(size))) {
    throw invalidArgument(`invalid digest in resource name ${JSON.stringify(name)}: expected {sha256 hex}/{size}`);
  }
  return { digest: { hash, sizeBytes: Number(size) }, next: j + 2 };
}
