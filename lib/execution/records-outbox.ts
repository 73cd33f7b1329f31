import { Logger } from '@nestjs/common';

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;

interface QueuedWrite {
  label: string;
  write: () => Promise<void>;
}

/**
 * Record writes that must reach the database eventually. Each is tried at once; while the
 * database is unreachable, failed writes, and every write after them, wait in order and are
 * retried with backoff. The outage is logged once, with its end.
 */
export class RecordsOutbox {
  private readonly logger = new Logger('ExecutionRecords');
  private readonly queue: QueuedWrite[] = [];
  private outageSince: number | null = null;
  private retryTimer?: NodeJS.Timeout;
  private retryDelay = FIRST_RETRY_MS;
  private flushing = false;
  private drained: (() => void)[] = [];

  get waiting(): number {
    return this.queue.length;
  }

  get inOutage(): boolean {
    return this.outageSince !== null;
  }

  /**
   * Writes now, or queues behind earlier writes still waiting. Resolves true once written, false
   * if queued for retry; rejects only on errors a retry cannot fix (the database refused the write).
   */
  async write(label: string, write: () => Promise<void>): Promise<boolean> {
    if (this.queue.length > 0) {
      this.queue.push({ label, write });
      return false;
    }
    try {
      await write();
      return true;
    } catch (error) {
      if (!isTransient(error)) throw error;
      this.queue.push({ label, write });
      this.failed(error);
      return false;
    }
  }

  /** Resolves when nothing is waiting, or at the deadline (logging what is left unwritten). */
  async drain(deadline: number): Promise<void> {
    if (this.queue.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.drained.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())))),
    ]);
    clearTimeout(timer);
    clearTimeout(this.retryTimer);
    if (this.queue.length > 0) {
      this.logger.error(`Shutting down with ${this.queue.length} record write(s) the database never took: ${this.queue.slice(0, 5).map((w) => w.label).join(', ')}.`);
    }
  }

  private failed(error: unknown): void {
    if (this.outageSince === null) {
      this.outageSince = Date.now();
      const reason = error instanceof Error ? error.message : String(error);
      this.logger.error(`The database is unreachable (${reason}). Jobs keep running; their records are kept and written when it returns.`);
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.flush(), this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_MS);
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const next = this.queue[0];
        try {
          await next.write();
        } catch (error) {
          if (isTransient(error)) return this.scheduleRetry();
          this.logger.error(`Record write "${next.label}" was refused by the database and is dropped: ${(error as Error).message}`);
        }
        this.queue.shift();
      }
      if (this.outageSince !== null) {
        this.logger.log(`The database is reachable again after ${((Date.now() - this.outageSince) / 1000).toFixed(1)} s; the records kept meanwhile are written.`);
      }
      this.outageSince = null;
      this.retryDelay = FIRST_RETRY_MS;
      this.drained.splice(0).forEach((resolve) => resolve());
    } finally {
      this.flushing = false;
    }
  }
}

/**
 * True for errors of reaching the database (worth retrying); false for errors the database
 * answered with (a retry would fail the same way).
 */
export function isTransient(error: unknown): boolean {
  const err = error as { name?: string; code?: string; errno?: number; driverError?: { code?: string }; message?: string };
  const code = String(err?.driverError?.code ?? err?.code ?? '');
  // Socket errors (ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT ...).
  if (/^E[A-Z]+$/.test(code)) return true;
  // PostgreSQL SQLSTATE: connection (08), authorization (28, e.g. a login revoked for a while),
  // resources (53), operator intervention (57, e.g. shutdown), and lost races (40) pass; the rest
  // (constraints, syntax, a missing table) would fail again.
  if (/^[0-9A-Z]{5}$/.test(code)) return /^(08|28|40|53|57)/.test(code);
  if (/^SQLITE_/.test(code)) return /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL)/.test(code);
  if (/^ER_/.test(code)) return /^ER_(LOCK_DEADLOCK|LOCK_WAIT_TIMEOUT|CON_COUNT_ERROR|SERVER_SHUTDOWN|ACCESS_DENIED|DBACCESS_DENIED)/.test(code);
  if (/^PROTOCOL_|^POOL_/.test(code)) return true;
  // Without a code: the drivers' and pools' own words for a connection that is gone or never came;
  // anything else (a bug, say) would fail again and must not hold up the writes behind it.
  return /connect|connection|terminated|timeout|timed out|socket|closed/i.test(err?.message ?? '');
}
