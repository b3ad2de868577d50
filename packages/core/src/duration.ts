/**
 * Parses a human duration like "90s", "10m", "1h30m", "1500ms" or a bare number of seconds.
 * Returns milliseconds, or throws with a message that says what is accepted.
 */
export function parseDurationMs(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== t.length) {
    throw new Error(`invalid duration "${text}": use e.g. 90s, 10m, 1h30m or a number of seconds`);
  }
  return Math.round(total);
}

export function formatDurationMs(ms: number): string {
  // Round once, up front, so that rounding never yields "1000ms", "60.0s" or "1m60s".
  const r = Math.round(ms);
  if (r < 1000) return `${r}ms`;
  if (r < 9995) return `${(r / 1000).toFixed(2)}s`;
  if (r < 59_950) return `${(r / 1000).toFixed(1)}s`;
  const totalS = Math.round(r / 1000);
  return `${Math.floor(totalS / 60)}m${totalS % 60}s`;
}
