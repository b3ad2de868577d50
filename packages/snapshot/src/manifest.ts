/**
 * The snapshot manifest: a versioned, deterministic JSON description of a directory tree, stored itself
 * as a blob (its digest is what a snapshot index records).
 *
 * ```json
 * {
 *   "format": "hearth-snapshot-manifest",
 *   "version": 1,
 *   "chunking": {"algorithm": "fastcdc-gear32-v1", "minSizeBytes": 65536, ...},
 *   "entries": [
 *     {"type": "dir", "path": "", "mode": 493, "mtimeNs": "1733234567123456789"},
 *     {"type": "file", "path": "bin/tool", "mode": 493, "mtimeNs": "…", "sizeBytes": 300000,
 *      "chunks": [["<sha256>", 262144], [null, 37856]]},
 *     {"type": "symlink", "path": "external/x", "target": "/abs/path/kept/verbatim", "mtimeNs": "…"}
 *   ]
 * }
 * ```
 *
 * - `entries` is a pre-order walk of the tree, children sorted by the UTF-8 bytes of their names; the
 *   first entry is the root directory (path ""). Paths are relative, `/`-separated, never contain `.`,
 *   `..` or empty components, and each entry's parent is an earlier `dir` entry (so restoring never
 *   writes through a symlink or outside the destination).
 * - A chunk is `[sha256, sizeBytes]`, or `[null, sizeBytes]` for an all-zero chunk: zero runs are
 *   neither stored nor fetched and are restored as holes (sparse files). Empty files have no chunks.
 *   Identical chunks (within a file, across files, across snapshots) are stored once by content address.
 * - `mode` holds the permission bits (`& 0o777`, including the exec bits); setuid/setgid/sticky bits and
 *   ownership are not recorded. `mtimeNs` is the modification time in nanoseconds, as a decimal string.
 * - Symlink targets are kept verbatim (absolute targets are common in Bazel output bases).
 * - Only names and symlink targets that are valid UTF-8 can be represented; the saver skips others.
 */
import type { Digest } from '@hearth/blobstore';
import type { FastCdcParams } from './fastcdc.ts';

export const MANIFEST_FORMAT = 'hearth-snapshot-manifest';
export const MANIFEST_VERSION = 1;

/** A chunk of a file: `hash` null means `sizeBytes` zero bytes (not stored). */
export interface ChunkRef {
  hash: string | null;
  sizeBytes: number;
}

export interface DirEntry {
  type: 'dir';
  path: string;
  mode: number;
  mtimeNs: bigint;
}

export interface FileEntry {
  type: 'file';
  path: string;
  mode: number;
  mtimeNs: bigint;
  sizeBytes: number;
  chunks: ChunkRef[];
}

export interface SymlinkEntry {
  type: 'symlink';
  path: string;
  target: string;
  mtimeNs: bigint;
}

export type ManifestEntry = DirEntry | FileEntry | SymlinkEntry;

export interface Manifest {
  chunking: FastCdcParams;
  /** Pre-order; entries[0] is the root directory (path ""). */
  entries: ManifestEntry[];
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** Encodes a manifest as deterministic JSON bytes (same tree → same bytes → same digest). */
export function encodeManifest(m: Manifest): Buffer {
  const doc = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    chunking: {
      algorithm: m.chunking.algorithm,
      minSizeBytes: m.chunking.minSizeBytes,
      avgSizeBytes: m.chunking.avgSizeBytes,
      maxSizeBytes: m.chunking.maxSizeBytes,
      normalizationLevel: m.chunking.normalizationLevel,
    },
    entries: m.entries.map((e) => {
      switch (e.type) {
        case 'dir':
          return { type: e.type, path: e.path, mode: e.mode, mtimeNs: e.mtimeNs.toString() };
        case 'file':
          return {
            type: e.type,
            path: e.path,
            mode: e.mode,
            mtimeNs: e.mtimeNs.toString(),
            sizeBytes: e.sizeBytes,
            chunks: e.chunks.map((c) => [c.hash, c.sizeBytes]),
          };
        case 'symlink':
          return { type: e.type, path: e.path, target: e.target, mtimeNs: e.mtimeNs.toString() };
      }
    }),
  };
  // One entry per line: diffs of two manifests stay readable, and the cost is one byte per entry.
  const { entries, ...rest } = doc;
  const head = JSON.stringify(rest).slice(0, -1);
  return Buffer.from(`${head},"entries":[\n${entries.map((e) => JSON.stringify(e)).join(',\n')}\n]}\n`);
}

const HASH_RE = /^[0-9a-f]{64}$/;
const MTIME_RE = /^-?[0-9]{1,20}$/;

/** Parses and fully validates manifest bytes; throws ManifestError on anything unexpected. */
export function decodeManifest(data: Uint8Array): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (err) {
    throw new ManifestError(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  const o = obj(doc, 'manifest');
  if (o.format !== MANIFEST_FORMAT) throw new ManifestError(`not a snapshot manifest (format ${JSON.stringify(o.format)})`);
  if (o.version !== MANIFEST_VERSION) {
    throw new ManifestError(`unsupported manifest version ${JSON.stringify(o.version)} (this build reads ${MANIFEST_VERSION})`);
  }
  const c = obj(o.chunking, 'chunking');
  const chunking: FastCdcParams = {
    algorithm: str(c.algorithm, 'chunking.algorithm'),
    minSizeBytes: int(c.minSizeBytes, 'chunking.minSizeBytes'),
    avgSizeBytes: int(c.avgSizeBytes, 'chunking.avgSizeBytes'),
    maxSizeBytes: int(c.maxSizeBytes, 'chunking.maxSizeBytes'),
    normalizationLevel: int(c.normalizationLevel, 'chunking.normalizationLevel'),
  };
  if (!Array.isArray(o.entries) || o.entries.length === 0) throw new ManifestError('manifest has no entries');
  const entries: ManifestEntry[] = [];
  const kinds = new Map<string, ManifestEntry['type']>();
  for (let i = 0; i < o.entries.length; i++) {
    const where = `entries[${i}]`;
    const e = obj(o.entries[i], where);
    const p = str(e.path, `${where}.path`);
    if (i === 0) {
      if (p !== '' || e.type !== 'dir') throw new ManifestError('the first entry must be the root directory (path "")');
    } else {
      checkPath(p, where);
      if (kinds.has(p)) throw new ManifestError(`${where}: duplicate path ${JSON.stringify(p)}`);
      const slash = p.lastIndexOf('/');
      const parent = slash < 0 ? '' : p.slice(0, slash);
      if (kinds.get(parent) !== 'dir') {
        throw new ManifestError(`${where}: parent of ${JSON.stringify(p)} is not an earlier directory entry`);
      }
    }
    const mtimeNs = mtime(e.mtimeNs, `${where}.mtimeNs`);
    let entry: ManifestEntry;
    if (e.type === 'dir') {
      entry = { type: 'dir', path: p, mode: mode(e.mode, where), mtimeNs };
    } else if (e.type === 'file') {
      const sizeBytes = int(e.sizeBytes, `${where}.sizeBytes`);
      if (!Array.isArray(e.chunks)) throw new ManifestError(`${where}.chunks must be an array`);
      const chunks: ChunkRef[] = [];
      let sum = 0;
      for (let j = 0; j < e.chunks.length; j++) {
        const cr: unknown = e.chunks[j];
        if (!Array.isArray(cr) || cr.length !== 2) throw new ManifestError(`${where}.chunks[${j}] must be [hash|null, size]`);
        const hash: unknown = cr[0];
        const size = int(cr[1], `${where}.chunks[${j}] size`);
        if (size === 0) throw new ManifestError(`${where}.chunks[${j}] is empty`);
        if (hash !== null && (typeof hash !== 'string' || !HASH_RE.test(hash))) {
          throw new ManifestError(`${where}.chunks[${j}] hash must be 64 lowercase hex characters or null`);
        }
        chunks.push({ hash: hash as string | null, sizeBytes: size });
        sum += size;
      }
      if (sum !== sizeBytes) throw new ManifestError(`${where}: chunks add up to ${sum} bytes, not ${sizeBytes}`);
      entry = { type: 'file', path: p, mode: mode(e.mode, where), mtimeNs, sizeBytes, chunks };
    } else if (e.type === 'symlink') {
      const target = str(e.target, `${where}.target`);
      if (target === '' || target.includes('\0')) throw new ManifestError(`${where}: invalid symlink target`);
      entry = { type: 'symlink', path: p, target, mtimeNs };
    } else {
      throw new ManifestError(`${where}: unknown entry type ${JSON.stringify(e.type)}`);
    }
    kinds.set(p, entry.type);
    entries.push(entry);
  }
  return { chunking, entries };
}

/** Totals of a manifest. `sizeBytes` is the logical size of all files (zero runs included). */
export interface ManifestStats {
  dirs: number;
  files: number;
  symlinks: number;
  sizeBytes: number;
  chunks: number;
  zeroBytes: number;
  /** Distinct stored chunks and their bytes: what a restore fetches. */
  uniqueChunks: number;
  uniqueChunkBytes: number;
}

export function manifestStats(m: Manifest): ManifestStats {
  const s: ManifestStats = { dirs: 0, files: 0, symlinks: 0, sizeBytes: 0, chunks: 0, zeroBytes: 0, uniqueChunks: 0, uniqueChunkBytes: 0 };
  for (const d of uniqueChunkDigests(m)) {
    s.uniqueChunks++;
    s.uniqueChunkBytes += d.sizeBytes;
  }
  for (const e of m.entries) {
    if (e.type === 'dir') s.dirs++;
    else if (e.type === 'symlink') s.symlinks++;
    else {
      s.files++;
      s.sizeBytes += e.sizeBytes;
      s.chunks += e.chunks.length;
      for (const c of e.chunks) if (c.hash === null) s.zeroBytes += c.sizeBytes;
    }
  }
  return s;
}

/** The distinct stored (non-zero) chunks a manifest references, in first-use order. */
export function uniqueChunkDigests(m: Manifest): Digest[] {
  const seen = new Set<string>();
  const out: Digest[] = [];
  for (const e of m.entries) {
    if (e.type !== 'file') continue;
    for (const c of e.chunks) {
      if (c.hash === null) continue;
      const k = `${c.hash}/${c.sizeBytes}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ hash: c.hash, sizeBytes: c.sizeBytes });
    }
  }
  return out;
}

/** Valid relative path: `/`-separated, no empty, `.` or `..` components, no NUL. */
export function checkPath(p: string, where = 'path'): void {
  if (p === '' || p.includes('\0')) throw new ManifestError(`${where}: invalid path ${JSON.stringify(p)}`);
  for (const part of p.split('/')) {
    if (part === '' || part === '.' || part === '..') {
      throw new ManifestError(`${where}: invalid path ${JSON.stringify(p)}`);
    }
  }
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ManifestError(`${where} must be an object`);
  return v as Record<string, unknown>;
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new ManifestError(`${where} must be a string`);
  return v;
}

function int(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ManifestError(`${where} must be a non-negative integer`);
  return v;
}

function mode(v: unknown, where: string): number {
  const m = int(v, `${where}.mode`);
  if (m > 0o777) throw new ManifestError(`${where}.mode must be permission bits (≤ 0o777)`);
  return m;
}

function mtime(v: unknown, where: string): bigint {
  if (typeof v !== 'string' || !MTIME_RE.test(v)) throw new ManifestError(`${where} must be a decimal string of nanoseconds`);
  return BigInt(v);
}
