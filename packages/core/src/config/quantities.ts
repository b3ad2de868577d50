/**
 * Value parsers for workflow config fields. Each returns the parsed value or throws an Error whose
 * message completes the sentence "<field> ..." (e.g. `must be a duration like 30m or 1h30m, got "x"`).
 */

const NS_PER_UNIT: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * Parses a Go `time.ParseDuration` string ("90s", "1h30m", "1.5h", "250ms", "0") as `buildbuddy.yaml`
 * does, returning milliseconds (rounded up so that a tiny positive duration stays positive). A bare
 * number other than 0 is rejected: Go would read it as nanoseconds, a human means seconds, so we ask
 * for a unit instead of guessing. Signs are rejected (no config duration may be negative).
 */
export function parseConfigDurationMs(text: string): number {
  const t = text.trim();
  if (t === '0') return 0;
  if (/^\d+(\.\d+)?$/.test(t)) {
    throw new Error(`must be a duration with a unit, e.g. "${t}s", "${t}m" or "1h30m", got "${text}"`);
  }
  const re = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let ns = 0;
  let pos = 0;
  while (pos < t.length) {
    re.lastIndex = pos;
    const m = re.exec(t);
    if (!m) break;
    ns += Number(m[1]) * NS_PER_UNIT[m[2]!]!;
    pos = re.lastIndex;
  }
  if (t.length === 0 || pos !== t.length || !Number.isFinite(ns)) {
    throw new Error(`must be a duration like "30m", "1h30m" or "90s", got "${text}"`);
  }
  return Math.ceil(ns / 1e6);
}

const BINARY_POWER: Record<string, number> = { '': 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };

/**
 * Parses a byte quantity: a number of bytes (`8589934592`, `8e9`) or a number with a binary unit,
 * as BuildBuddy's resource requests accept it: `8GB` = `8G` = `8Gi` = `8GiB` = 8·1024³ (case-insensitive,
 * optional space, units K M G T P E). Returns whole bytes (rounded up); must be > 0.
 */
export function parseByteQuantity(text: string): number {
  const t = text.trim();
  let bytes: number | undefined;
  if (/^\d+(\.\d+)?(e\+?\d+)?$/i.test(t)) {
    bytes = Number(t);
  } else {
    const m = /^(\d+(?:\.\d+)?) ?([kmgtpe])i?b?$/i.exec(t);
    if (m) bytes = Number(m[1]) * 1024 ** BINARY_POWER[m[2]!.toLowerCase()]!;
  }
  if (bytes === undefined || !Number.isFinite(bytes) || bytes > Number.MAX_SAFE_INTEGER) {
    throw new Error(`must be a number of bytes or a size like "8GB", "512MB" or "1.5GiB", got "${text}"`);
  }
  if (bytes <= 0) throw new Error(`must be greater than 0, got "${text}"`);
  return Math.ceil(bytes);
}

/**
 * Parses a CPU quantity: a number of cores (`3`, `0.5`) or millicores with an `m` suffix (`8000m`).
 * Returns millicores (rounded up); must be > 0.
 */
export function parseCpuMillis(text: string): number {
  const t = text.trim();
  let millis: number | undefined;
  if (/^\d+(\.\d+)?(e\+?\d+)?$/i.test(t)) millis = Number(t) * 1000;
  else if (/^\d+m$/.test(t)) millis = Number(t.slice(0, -1));
  if (millis === undefined || !Number.isFinite(millis) || millis > Number.MAX_SAFE_INTEGER) {
    throw new Error(`must be a number of cores like "4" or "0.5", or millicores like "8000m", got "${text}"`);
  }
  if (millis <= 0) throw new Error(`must be greater than 0, got "${text}"`);
  return Math.ceil(millis);
}
