import { Injectable } from '@nestjs/common';
import { DistributedJob, JobContext } from 'nestjs-distributed-scheduler';

const ITEMS = 1_000;
const ITEM_MS = 20;

/** What the import records of its progress: a `type`, so that it is JSON for `ctx.checkpoint`. */
type ImportProgress = { pass: number; item: number };

@Injectable()
export class ImportJobs {
  /**
   * A long job that checkpoints: one pass over 1,000 items takes about 20 s, and every item done
   * is recorded with `ctx.checkpoint` (written every 50 items or 2 s). Kill the replica running
   * it (`kill -9`) with REDIS_URL set and several replicas up: the next run, on another replica,
   * starts from the last checkpoint written, not from item 1. On the embedded default the
   * checkpoint lives in this process, and in the snapshot the records' database keeps (every
   * 30 s): a restart resumes from there.
   */
  @DistributedJob({ name: 'import-items', every: '1m', checkpoint: { maxUpdates: 50, interval: '2s' } })
  async importItems(ctx: JobContext) {
    const last = ctx.lastCheckpoint?.state as ImportProgress | undefined;
    // The previous pass ended: start the next one; it was cut off: go on where it was.
    const progress: ImportProgress = !last ? { pass: 1, item: 0 } : last.item >= ITEMS ? { pass: last.pass + 1, item: 0 } : { ...last };
    if (progress.item > 0) ctx.logger.log(`resuming pass ${progress.pass} at item ${progress.item + 1} (checkpoint of run ${ctx.lastCheckpoint!.fencingToken})`);
    while (progress.item < ITEMS && !ctx.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, ITEM_MS));
      progress.item++;
      await ctx.checkpoint(progress);
    }
    if (progress.item >= ITEMS) ctx.logger.log(`pass ${progress.pass}: ${ITEMS} items imported`);
  }

  /**
   * An hourly rollup that must not lose an hour: with `missed: 'all'`, the hours that passed while
   * every replica was down run when the app is back, one at a time, oldest first (the last 24 at
   * most), each with `ctx.scheduledAt` set to its hour and `ctx.catchUp` true.
   */
  @DistributedJob({ name: 'hourly-rollup', cron: '0 * * * *', timeZone: 'UTC', missed: 'all', catchUpWindow: '24h', maxCatchUp: 24 })
  rollup(ctx: JobContext) {
    ctx.logger.log(`rollup of the hour ending ${ctx.scheduledAt.toISOString()}${ctx.catchUp ? ' (catching up)' : ''}`);
  }
}
