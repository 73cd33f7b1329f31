import { Injectable } from '@nestjs/common';
import { DistributedJob, JobContext } from 'nestjs-distributed-scheduler';

@Injectable()
export class ReportJobs {
  /** A cron job: every 10 seconds, read in UTC. */
  @DistributedJob({ name: 'digest', cron: '*/10 * * * * *', timeZone: 'UTC' })
  async digest(ctx: JobContext) {
    ctx.logger.log(`digest for ${ctx.scheduledAt.toISOString()} (token ${ctx.fencingToken}) on ${ctx.instanceId}`);
  }

  /** An interval job: every 5 seconds, with up to 10% jitter. */
  @DistributedJob({ name: 'heartbeat', every: '5s', jitter: 0.1 })
  heartbeat(ctx: JobContext) {
    ctx.logger.log(`heartbeat due ${ctx.scheduledAt.toISOString()}, started ${ctx.startedAt.getTime() - ctx.scheduledAt.getTime()} ms later`);
  }

  /** An on-demand job: runs only when triggered (POST /jobs/rebuild-index/trigger). */
  @DistributedJob({ name: 'rebuild-index', timeout: '30s' })
  async rebuildIndex(ctx: JobContext) {
    ctx.logger.log(`rebuilding the index (${ctx.trigger})...`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 2_000);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      });
    });
    ctx.logger.log('index rebuilt');
  }
}
