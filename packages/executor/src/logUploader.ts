import { type HearthClient, ApiError } from '@hearth/api';
import { SecretMasker } from '@hearth/core';

/**
 * Ships a run's log to the server: masks secrets (also across chunk boundaries), batches writes
 * (at most every `flushMs`), and retries with the same offset, which the server makes idempotent.
 * The whole log stays in memory until the run is reported, so any lost append can be resent.
 */
export class LogUploader {
  private readonly chunks: Buffer[] = [];
  private total = 0;
  private sent = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly masker: SecretMasker;
  /** Set when the server says the run is no longer ours. */
  stale = false;

  constructor(
    private readonly client: HearthClient,
    private readonly ids: { executorId: string; invocationId: string; attempt: number },
    secretValues: string[],
    private readonly flushMs = 100,
    private readonly onStale: () => void = () => {},
  ) {
    this.masker = new SecretMasker(secretValues);
  }

  write(chunk: Buffer): void {
    this.add(this.masker.push(chunk));
  }

  private add(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(Buffer.from(b));
    this.total += b.length;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs);
  }

  /** Sends everything written so far; resolves when the server has it (or the run went stale). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.sent >= this.total || this.stale) return;
    this.flushing = this.sendPending().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async sendPending(): Promise<void> {
    let backoffMs = 200;
    while (this.sent < this.total && !this.stale) {
      const data = Buffer.concat(this.chunks).subarray(this.sent, Math.min(this.total, this.sent + (8 << 20)));
      try {
        const res = await this.client.appendLog({
          executor_id: this.ids.executorId,
          invocation_id: this.ids.invocationId,
          attempt: this.ids.attempt,
          offset: this.sent,
          data: data.toString('base64'),
        });
        this.sent = Math.max(this.sent, Math.min(res.next_offset, this.total));
        backoffMs = 200;
      } catch (err) {
        if (err instanceof ApiError && err.code === 'stale') {
          this.stale = true;
          this.onStale();
          return;
        }
        if (err instanceof ApiError && err.code === 'out_of_range') {
          this.sent = 0; // the server lost bytes we sent: resend all, it skips what it has
          continue;
        }
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }

  /** Flushes the masker's held-back tail and everything pending. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.add(this.masker.flush());
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
