import type { CheckpointSaveOutcome, ResolvedCheckpointOptions } from './checkpoint.interface';

/** Writes one checkpoint (JSON text, savedAt) with the run's fencing token. */
export type CheckpointSink = (state: string, savedAt: number) => Promise<CheckpointSaveOutcome>;

export interface CheckpointBufferEvents {
  /** The coordinator refused a flush: a newer run fenced this one. Called once; the buffer then drops everything. */
  stale(floor: number): void;
  /** A flush failed (the coordinator unreachable): called once per episode of failures. */
  failed(error: unknown, final: boolean): void;
  /** A flush succeeded after failures. */
  recovered(): void;
  /** A flush reached the coordinator (for tests and metrics). */
  flushed?(savedAt: number, updates: number): void;
}

/**
 * The checkpoints of one run, after Winlogbeat's checkpoint: the latest state wins, and it is
 * written after `maxUpdates` updates or `interval` after the first update not yet written,
 * whichever comes first, and at `close` (the run's end, including its abort at shutdown).
 * One write is in flight at a time. A failed write keeps its state (unless a newer one came)
 * and is tried again at the next flush point, never in a loop; a refused one (`stale`) ends
 * the run's checkpoints.
 */
export class CheckpointBuffer {
  private pending: { state: string; savedAt: number } | null = null;
  /** Updates since the last flush point. */
  private updates = 0;
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> | null = null;
  /** The one flush queued behind the write in flight (it writes whatever is latest then), and whether it is the last. */
  private followUp: Promise<void> | null = null;
  private followUpFinal = false;
  private failing = false;
  private refused = false;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly sink: CheckpointSink,
    private readonly options: ResolvedCheckpointOptions,
    private readonly events: CheckpointBufferEvents,
  ) {}

  /** True once the coordinator refused a write of this run. */
  get fenced(): boolean {
    return this.refused;
  }

  /** False once closed or fenced: the update is dropped. */
  update(state: string, savedAt: number): boolean {
    if (this.closing || this.refused) return false;
    this.pending = { state, savedAt };
    this.updates++;
    if (this.updates >= this.options.maxUpdates) void this.flush();
    else this.arm();
    return true;
  }

  /** Writes the pending state, after the write in flight if any. Never rejects. */
  flush(final = false): Promise<void> {
    if (this.flushing) {
      // At most one flush waits for the write in flight: a handler that calls faster than
      // Redis answers must not pile up one waiting flush per call (memory, and a write each).
      this.followUpFinal ||= final;
      this.followUp ??= this.flushing.then(() => {
        const last = this.followUpFinal;
        this.followUp = null;
        this.followUpFinal = false;
        return this.flush(last);
      });
      return this.followUp;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    const item = this.pending;
    const updates = this.updates;
    this.updates = 0;
    if (!item || this.refused) return Promise.resolve();
    this.pending = null;
    this.flushing = this.sink(item.state, item.savedAt)
      .then(
        (outcome) => {
          if (outcome.status === 'stale') {
            this.refused = true;
            this.pending = null;
            this.events.stale(outcome.floor);
            return;
          }
          if (this.failing) {
            this.failing = false;
            this.events.recovered();
          }
          this.events.flushed?.(item.savedAt, updates);
        },
        (error: unknown) => {
          // Kept for the next flush point, unless a newer state came meanwhile.
          this.pending ??= item;
          if (!this.failing || final) this.events.failed(error, final);
          this.failing = true;
          if (!this.closing) this.arm();
        },
      )
      .finally(() => (this.flushing = null));
    return this.flushing;
  }

  /**
   * Flushes what is pending and accepts no more updates; resolves once written (or refused, or
   * failed: then logged). Idempotent: a second call waits for the first.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.timer);
      this.timer = undefined;
      // The write in flight first: if it failed, its state is pending again and tried once more.
      if (this.flushing) await this.flushing;
      await this.flush(true);
    })();
    return this.closing;
  }

  private arm(): void {
    if (this.timer || this.closing) return;
    this.timer = setTimeout(() => void this.flush(), this.options.interval);
    this.timer.unref();
  }
}
