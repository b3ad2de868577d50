import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FASTCDC_DEFAULTS } from './fastcdc.ts';
import { type Manifest, ManifestError, decodeManifest, encodeManifest, manifestStats, uniqueChunkDigests } from './manifest.ts';

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);

function sample(): Manifest {
  return {
    chunking: { ...FASTCDC_DEFAULTS },
    entries: [
      { type: 'dir', path: '', mode: 0o755, mtimeNs: 1_700_000_000_123_456_789n },
      { type: 'dir', path: 'bin', mode: 0o555, mtimeNs: 1n },
      { type: 'file', path: 'bin/tool', mode: 0o755, mtimeNs: 2n, sizeBytes: 300, chunks: [{ hash: H1, sizeBytes: 100 }, { hash: null, sizeBytes: 200 }] },
      { type: 'file', path: 'copy', mode: 0o644, mtimeNs: 3n, sizeBytes: 100, chunks: [{ hash: H1, sizeBytes: 100 }] },
      { type: 'file', path: 'empty', mode: 0o600, mtimeNs: -5n, sizeBytes: 0, chunks: [] },
      { type: 'symlink', path: 'external', target: '/root/.cache/bazel/_bazel_root/abc/external', mtimeNs: 4n },
      { type: 'file', path: 'z', mode: 0o644, mtimeNs: 5n, sizeBytes: 7, chunks: [{ hash: H2, sizeBytes: 7 }] },
    ],
  };
}

function tamper(edit: (doc: any) => void): Buffer {
  const doc = JSON.parse(encodeManifest(sample()).toString());
  edit(doc);
  return Buffer.from(JSON.stringify(doc));
}

describe('manifest', () => {
  it('round-trips, deterministically', () => {
    const bytes = encodeManifest(sample());
    assert.deepEqual(decodeManifest(bytes), sample());
    assert.ok(encodeManifest(decodeManifest(bytes)).equals(bytes), 're-encoding gives the same bytes');
    assert.match(bytes.toString(), /^\{"format":"hearth-snapshot-manifest","version":1,/);
    assert.match(bytes.toString(), /\["a{64}",100\],\[null,200\]/);
  });

  it('stats and unique chunks (duplicates and zero chunks are not counted twice)', () => {
    const m = sample();
    assert.deepEqual(uniqueChunkDigests(m), [{ hash: H1, sizeBytes: 100 }, { hash: H2, sizeBytes: 7 }]);
    assert.deepEqual(manifestStats(m), {
      dirs: 2, files: 4, symlinks: 1, sizeBytes: 407, chunks: 4, zeroBytes: 200, uniqueChunks: 2, uniqueChunkBytes: 107,
    });
  });

  it('rejects anything that could write outside the destination or through a symlink', () => {
    const bad: [string, (d: any) => void][] = [
      ['dotdot', (d) => (d.entries[3].path = '../etc/passwd')],
      ['dotdot inside', (d) => (d.entries[3].path = 'bin/../../x')],
      ['absolute', (d) => (d.entries[3].path = '/etc/passwd')],
      ['dot', (d) => (d.entries[3].path = './copy')],
      ['empty component', (d) => (d.entries[3].path = 'bin//copy')],
      ['NUL', (d) => (d.entries[3].path = 'co\u0000py')],
      ['under a symlink', (d) => (d.entries[6].path = 'external/z')],
      ['under a file', (d) => (d.entries[6].path = 'copy/z')],
      ['parent later', (d) => d.entries.splice(1, 2, d.entries[2], d.entries[1])],
      ['duplicate', (d) => (d.entries[6].path = 'copy')],
      ['no root', (d) => d.entries.shift()],
    ];
    for (const [name, edit] of bad) assert.throws(() => decodeManifest(tamper(edit)), ManifestError, name);
  });

  it('rejects malformed content', () => {
    const bad: [string, (d: any) => void][] = [
      ['version', (d) => (d.version = 2)],
      ['format', (d) => (d.format = 'other')],
      ['size mismatch', (d) => (d.entries[2].sizeBytes = 301)],
      ['bad hash', (d) => (d.entries[3].chunks[0][0] = 'A'.repeat(64))],
      ['zero-size chunk', (d) => d.entries[3].chunks.push([H2, 0])],
      ['mode', (d) => (d.entries[3].mode = 0o4755)],
      ['mtime', (d) => (d.entries[3].mtimeNs = 3)],
      ['type', (d) => (d.entries[3].type = 'fifo')],
      ['empty target', (d) => (d.entries[5].target = '')],
    ];
    for (const [name, edit] of bad) assert.throws(() => decodeManifest(tamper(edit)), ManifestError, name);
    assert.throws(() => decodeManifest(Buffer.from('{"format": "hearth-snap')), ManifestError);
    assert.throws(() => decodeManifest(Buffer.from('[]')), ManifestError);
  });
});
