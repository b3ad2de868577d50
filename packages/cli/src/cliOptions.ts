import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataDir(): string {
  return process.env.HEARTH_DATA_DIR ?? join(homedir(), '.hearth');
}

export function parseIntFlag(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
    return n;
  };
}
