/**
 * Masks secret values in a stream of log bytes, even when a secret is split across writes: bytes
 * that could be the start of a secret are held back until the next chunk (or `flush`) decides.
 */
export class SecretMasker {
  private readonly secrets: Buffer[];
  private held: Buffer = Buffer.alloc(0);
  static readonly MASK = Buffer.from('***');

  constructor(secretValues: readonly string[]) {
    // Longest first, so a secret that contains another is masked whole.
    this.secrets = [...new Set(secretValues.filter((s) => s.length > 0))]
      .map((s) => Buffer.from(s))
      .sort((a, b) => b.length - a.length);
  }

  get active(): boolean {
    return this.secrets.length > 0;
  }

  /** Returns the bytes that are safe to emit now. */
  push(chunk: Buffer): Buffer {
    if (this.secrets.length === 0) return chunk;
    const buf = this.replaceAll(Buffer.concat([this.held, chunk]));
    const hold = this.longestSecretPrefixSuffix(buf);
    this.held = Buffer.from(buf.subarray(buf.length - hold));
    return buf.subarray(0, buf.length - hold);
  }

  /** Returns the held-back tail at the end of the stream. */
  flush(): Buffer {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    return rest;
  }

  private replaceAll(buf: Buffer): Buffer {
    let out = buf;
    for (const s of this.secrets) {
      if (out.indexOf(s) < 0) continue;
      const parts: Buffer[] = [];
      let from = 0;
      for (let at = out.indexOf(s, from); at >= 0; at = out.indexOf(s, from)) {
        parts.push(out.subarray(from, at), SecretMasker.MASK);
        from = at + s.length;
      }
      parts.push(out.subarray(from));
      out = Buffer.concat(parts);
    }
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some secret. */
  private longestSecretPrefixSuffix(buf: Buffer): number {
    let best = 0;
    for (const s of this.secrets) {
      for (let len = Math.min(s.length - 1, buf.length); len > best; len--) {
        if (buf.subarray(buf.length - len).equals(s.subarray(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
