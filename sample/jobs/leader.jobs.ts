import { Injectable } from '@nestjs/common';
import { DistributedJob, JobContext } from 'nestjs-distributed-scheduler';

@Injectable()
export class LeaderJobs {
  /**
   * A continuous job with `max: 1`: one replica leads at a time (sticky: it stays leader while it
   * lives). Its run lasts until `ctx.signal` aborts: another replica was chosen, the job was
   * paused, or this one shuts down. A killed leader is replaced within the session TTL (10 s) and
   * `lockTtl`. Anything it writes elsewhere should carry `ctx.fencingToken`.
   */
  @DistributedJob({ name: 'leader', continuous: { max: 1 } })
  async lead(ctx: JobContext) {
    ctx.logger.log(`${ctx.instanceId} leads (token ${ctx.fencingToken})`);
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    ctx.logger.log(`${ctx.instanceId} no longer leads (${(ctx.signal.reason as { kind?: string })?.kind ?? 'aborted'})`);
  }
}
