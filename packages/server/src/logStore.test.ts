import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HearthError } from '@hearth/core';
import { LogStore } from './logStore.ts';

const dirs: string[] = [];
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'hearth-logstore-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const b = (s: string) => Buffer.from(s);

describe('LogStore', () => {
  it('appends byte-exact data and reads it back', () => {
    const logs = new LogStore(freshDir());
    const bytes = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x1b, 0x5b, 0x6d]);
    assert.equal(logs.append('inv-1', 0, bytes), bytes.length);
    assert.equal(logs.append('inv-1', bytes.length, b('no newline')), bytes.length + 10);
    assert.deepEqual(logs.read('inv-1', 0), Buffer.concat([bytes, b('no newline')]));
    assert.equal(logs.size('inv-1'), bytes.length + 10);
  });

  it('an unknown log is empty, not an error', () => {
    const logs = new LogStore(freshDir());
    assert.equal(logs.size('nobody'), 0);
    assert.equal(logs.read('nobody', 0).length, 0);
    assert.equal(logs.read('nobody', 100).length, 0);
  });

  it('appends are idempotent: the same append twice stores the bytes once', () => {
    const dir = freshDir();
    const logs = new LogStore(dir);
    assert.equal(logs.append('a', 0, b('hello ')), 6);
    assert.equal(logs.append('a', 0, b('hello ')), 6); // retried after a lost response
    assert.equal(logs.append('a', 6, b('world')), 11);
    assert.equal(logs.append('a', 6, b('world')), 11);
    assert.equal(logs.read('a', 0).toString(), 'hello world');
    assert.equal(readFileSync(join(dir, 'a.log'), 'utf8'), 'hello world');
  });

  it('an overlapping append stores only the new tail', () => {
    const logs = new LogStore(freshDir());
    logs.append('a', 0, b('abcdef'));
    // The executor resends from offset 3 with more bytes: only "ghi" is new.
    assert.equal(logs.append('a', 3, b('defghi')), 9);
    assert.equal(logs.read('a', 0).toString(), 'abcdefghi');
    // Entirely old bytes (a stale retry of an earlier chunk) change nothing.
    assert.equal(logs.append('a', 1, b('bc')), 9);
    assert.equal(logs.append('a', 0, b('')), 9);
    assert.equal(logs.read('a', 0).toString(), 'abcdefghi');
  });

  it('a gap is refused with 409 out_of_range naming the expected offset', () => {
    const logs = new LogStore(freshDir());
    logs.append('a', 0, b('abc'));
    assert.throws(
      () => logs.append('a', 4, b('x')),
      (err: unknown) => {
        assert.ok(err instanceof HearthError);
        assert.equal(err.code, 'out_of_range');
        assert.equal(err.httpStatus, 409);
        assert.match(err.message, /at 4 but the log has 3 bytes/);
        return true;
      },
    );
    assert.throws(() => new LogStore(freshDir()).append('new', 1, b('x')), /out_of_range|at 1 but the log has 0/);
    // Nothing was written by the refused append.
    assert.equal(logs.read('a', 0).toString(), 'abc');
    assert.equal(logs.size('a'), 3);
  });

  it('reads honour offset and limit', () => {
    const logs = new LogStore(freshDir());
    logs.append('a', 0, b('0123456789'));
    assert.equal(logs.read('a', 0, 4).toString(), '0123');
    assert.equal(logs.read('a', 4, 4).toString(), '4567');
    assert.equal(logs.read('a', 8, 4).toString(), '89');
    assert.equal(logs.read('a', 10, 4).length, 0);
    assert.equal(logs.read('a', 999).length, 0);
    assert.equal(logs.read('a', 3).toString(), '3456789');
    // Reading in pieces of every size reassembles the log exactly.
    for (let limit = 1; limit <= 11; limit++) {
      const parts: Buffer[] = [];
      for (let off = 0; ; ) {
        const part = logs.read('a', off, limit);
        if (part.length === 0) break;
        assert.ok(part.length <= limit);
        parts.push(part);
        off += part.length;
      }
      assert.equal(Buffer.concat(parts).toString(), '0123456789', `limit ${limit}`);
    }
  });

  it('keeps logs apart per invocation', () => {
    const logs = new LogStore(freshDir());
    logs.append('a', 0, b('A'));
    logs.append('b', 0, b('BB'));
    assert.equal(logs.read('a', 0).toString(), 'A');
    assert.equal(logs.read('b', 0).toString(), 'BB');
  });

  it('survives a restart: a new LogStore on the same dir takes the size from disk', () => {
    const dir = freshDir();
    const first = new LogStore(dir);
    first.append('a', 0, b('before restart\n'));
    const second = new LogStore(dir);
    assert.equal(second.size('a'), 15);
    assert.equal(second.read('a', 0).toString(), 'before restart\n');
    // The executor resends from an old offset after the restart: no duplicates, no gap.
    assert.equal(second.append('a', 7, b('restart\nafter\n')), 21);
    assert.throws(() => second.append('a', 30, b('x')), /out_of_range|at 30/);
    assert.equal(second.read('a', 0).toString(), 'before restart\nafter\n');
  });

  it('refuses ids that could escape the directory', () => {
    const logs = new LogStore(freshDir());
    for (const id of ['../x', 'a/b', '', '.', 'a.b', 'a b']) {
      assert.throws(() => logs.append(id, 0, b('x')), (err: unknown) => err instanceof HearthError && err.code === 'invalid_argument', id);
      assert.throws(() => logs.read(id, 0), HearthError, id);
    }
  });

  it('waitForData wakes on append and on notify, and times out otherwise', async () => {
    const logs = new LogStore(freshDir());
    const t0 = Date.now();
    const woke = logs.waitForData('a', 5000);
    setTimeout(() => logs.append('a', 0, b('x')), 20);
    await woke;
    assert.ok(Date.now() - t0 < 2000, 'woken by the append, not the timeout');

    const t1 = Date.now();
    const notified = logs.waitForData('a', 5000);
    setTimeout(() => logs.notify('a'), 20);
    await notified;
    assert.ok(Date.now() - t1 < 2000, 'woken by notify');

    // An append to another log does not wake this reader; nor does an idempotent re-append.
    const t2 = Date.now();
    const quiet = logs.waitForData('a', 300);
    setTimeout(() => {
      logs.append('b', 0, b('y'));
      logs.append('a', 0, b('x'));
    }, 20);
    await quiet;
    assert.ok(Date.now() - t2 >= 280, `woke after ${Date.now() - t2} ms`);
  });

  it('waitForData resolves on abort, and many waiters all wake', async () => {
    const logs = new LogStore(freshDir());
    const abort = new AbortController();
    const t0 = Date.now();
    const w = logs.waitForData('a', 5000, abort.signal);
    setTimeout(() => abort.abort(), 20);
    await w;
    assert.ok(Date.now() - t0 < 2000);

    const waiters = Array.from({ length: 50 }, () => logs.waitForData('a', 5000));
    setTimeout(() => logs.append('a', 0, b('z')), 20);
    const t1 = Date.now();
    await Promise.all(waiters);
    assert.ok(Date.now() - t1 < 2000);
  });
});
