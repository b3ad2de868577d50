import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HearthError } from '@hearth/core';

/**
 * Byte-exact, append-only run logs on local disk, one file per invocation. Appends carry their
 * offset so that an executor retrying after a lost response never duplicates bytes, and readers
 * can resume at any offset. Readers waiting for more bytes are woken through `waitForData`.
 */
export class LogStore {
  private readonly sizes = new Map<string, number>();
  private readonly events = new EventEmitter();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.events.setMaxListeners(0);
  }

  private path(id: string): string {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new HearthError('invalid_argument', `bad invocation id ${JSON.stringify(id)}`);
    return join(this.dir, `${id}.log`);
  }

  size(id: string): number {
    const cached = this.sizes.get(id);
    if (cached !== undefined) return cached;
    let size = 0;
    try {
      const fd = openSync(this.path(id), 'r');
      try {
        size = fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.sizes.set(id, size);
    return size;
  }

  /**
   * Appends `data` found at byte `offset` of the log. Bytes before the current end are already
   * stored and skipped; a gap (offset past the end) is refused with the expected offset.
   */
  append(id: string, offset: number, data: Buffer): number {
    const size = this.size(id);
    if (offset > size) {
      throw new HearthError('out_of_range', `log append at ${offset} but the log has ${size} bytes`, 409);
    }
    const fresh = data.subarray(size - offset);
    if (fresh.length > 0) {
      const fd = openSync(this.path(id), 'a');
      try {
        let written = 0;
        while (written < fresh.length) written += writeSync(fd, fresh, written);
      } finally {
        closeSync(fd);
      }
      this.sizes.set(id, size + fresh.length);
      this.events.emit(id);
    }
    return size + fresh.length;
  }

  read(id: string, offset: number, limit = 4 << 20): Buffer {
    const size = this.size(id);
    if (offset >= size) return Buffer.alloc(0);
    const len = Math.min(limit, size - offset);
    const buf = Buffer.alloc(len);
    const fd = openSync(this.path(id), 'r');
    try {
      let got = 0;
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  }

  /** Wakes all readers of `id` (new bytes, or the run finished). */
  notify(id: string): void {
    this.events.emit(id);
  }

  /** Resolves when `id` gets new bytes or a notify, or after `timeoutMs`, or on abort. */
  waitForData(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off(id, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.events.on(id, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
