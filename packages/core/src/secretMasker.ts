/**
 * Masks secret values in a stream of log bytes, even when a secret is split across writes: bytes
 * that could be the start of a secret are held back until the next chunk (or `flush`) decides.
 * Every byte that belongs to any occurrence of any secret is hidden, and each maximal run of
 * hidden bytes becomes one `***`, so overlapping secrets, secrets inside other secrets and
 * back-to-back occurrences never leave a fragment in clear. The output does not depend on how
 * the stream was split into chunks.
 */
export class SecretMasker {
  private readonly secrets: Buffer[];
  private held: Buffer = Buffer.alloc(0);
  /** Leading bytes of `held` already known to be secret (an occurrence that began before them). */
  private heldMasked = 0;
  /** Whether the last byte emitted was masked (so a run continuing in the next chunk adds no mask). */
  private inMask = false;
  static readonly MASK = Buffer.from('***');

  constructor(secretValues: readonly string[]) {
    this.secrets = [...new Set(secretValues.filter((s) => s.length > 0))].map((s) => Buffer.from(s));
  }

  get active(): boolean {
    return this.secrets.length > 0;
  }

  /** Returns the bytes that are safe to emit now. */
  push(chunk: Buffer): Buffer {
    if (this.secrets.length === 0) return chunk;
    const buf = Buffer.concat([this.held, chunk]);
    const masked = this.maskFlags(buf);
    // Hold back the longest tail that could still grow into a secret.
    const cut = buf.length - this.longestSecretPrefixSuffix(buf);
    let carried = 0;
    for (let i = cut; i < buf.length && masked[i]; i++) carried++;
    // Only occurrences that began before the cut must be carried (those starting at or after it
    // are found again); with nothing emitted, what was carried stays carried.
    const crossing = cut > 0 ? masked[cut - 1] === 1 : this.heldMasked > 0;
    this.heldMasked = crossing ? carried : 0;
    const out = this.render(buf, masked, cut);
    this.held = Buffer.from(buf.subarray(cut));
    return out;
  }

  /** Returns the held-back tail at the end of the stream, masked. */
  flush(): Buffer {
    if (this.held.length === 0) {
      this.inMask = false;
      return Buffer.alloc(0);
    }
    const out = this.render(this.held, this.maskFlags(this.held), this.held.length);
    this.held = Buffer.alloc(0);
    this.heldMasked = 0;
    this.inMask = false;
    return out;
  }

  private maskFlags(buf: Buffer): Uint8Array {
    const masked = new Uint8Array(buf.length);
    masked.fill(1, 0, Math.min(this.heldMasked, buf.length));
    for (const s of this.secrets) {
      for (let at = buf.indexOf(s); at >= 0; at = buf.indexOf(s, at + 1)) masked.fill(1, at, at + s.length);
    }
    return masked;
  }

  /** `buf[0, end)` with each maximal masked run replaced by one MASK. */
  private render(buf: Buffer, masked: Uint8Array, end: number): Buffer {
    const parts: Buffer[] = [];
    let from = 0;
    let i = 0;
    while (i < end) {
      if (!masked[i]) {
        i++;
        continue;
      }
      parts.push(buf.subarray(from, i));
      const continues = i === 0 && this.inMask;
      while (i < end && masked[i]) i++;
      if (!continues) parts.push(SecretMasker.MASK);
      from = i;
    }
    parts.push(buf.subarray(from, end));
    if (end > 0) this.inMask = masked[end - 1] === 1;
    return Buffer.concat(parts);
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
