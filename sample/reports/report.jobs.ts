import { Injectable, Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { DistributedJob, JobContext } from 'nestjs-distributed-scheduler';
import { Execution, ExecutionStatus, OnCheckIn, OnExecutionStatusChange, Task, TaskManager } from 'nestjs-distributed-scheduler/records';

/** The vendor type of report executions: the executions `POST /reports` creates, and their tasks. */
export const REPORT = 'report';

@Injectable()
export class ReportBuildJobs {
  private readonly logger = new Logger('Reports');

  constructor(private readonly tasks: TaskManager) {}

  /**
   * An on-demand job run as the tasks of a report execution (`POST /reports`): it gets its
   * parameters as `ctx.parameters`, and what it logs through `ctx.logger` is the task's log
   * (`GET /tasks/:id/log`). It takes a few seconds and honours `ctx.signal`, so that
   * `POST /executions/:id/stop` can stop it halfway.
   *
   * `vendorType: 'report'` makes its own runs (`POST /jobs/reports.build/trigger`) report
   * executions too, and sends `ctx.checkIn` to the `@OnCheckIn('report')` processor below.
   *
   * With `REDIS_URL` and several replicas, the tasks spread over them (each replica runs at most
   * its `worker.concurrency`, 10 by default; this job at most 4 at once across all). A task that
   * throws runs again (3 attempts, 1 s then 2 s apart), and one whose replica is killed or shut
   * down resumes on another as its next attempt.
   */
  @DistributedJob({
    name: 'reports.build',
    vendorType: REPORT,
    timeout: '1m',
    overlap: 'allow',
    concurrency: 4,
    retry: { attempts: 3, backoff: { delay: '1s', factor: 2 } },
  })
  async build(ctx: JobContext) {
    const region = String(ctx.parameters.region ?? 'all');
    const steps = Number(ctx.parameters.steps ?? 4);
    ctx.logger.log(`building the ${region} report (execution ${ctx.executionId}, task ${ctx.taskId}, ${ctx.trigger})`);
    for (let step = 1; step <= steps; step++) {
      await delay(500, undefined, { signal: ctx.signal }); // rejects with ctx.signal.reason when stopped
      ctx.logger.log(`${region}: step ${step}/${steps} done`);
      await ctx.checkIn({ progress: Math.round((step / steps) * 100) });
    }
    ctx.logger.log(`${region}: report ready`);
  }

  /** Receives `ctx.checkIn(data)` of running report tasks: keeps the progress on the task. */
  @OnCheckIn(REPORT)
  async progress(task: Task, data: { progress: number }) {
    await this.tasks.updateExtraAttrs(task.id, { ...task.extraAttrs, progress: data.progress });
  }

  /** Runs after a report execution changed status (committed already; a throw here is only logged). */
  @OnExecutionStatusChange(REPORT)
  onReportStatus(execution: Execution, previous: ExecutionStatus) {
    this.logger.log(`report execution ${execution.id}: ${previous} → ${execution.status}${execution.statusMessage ? ` (${execution.statusMessage})` : ''}`);
  }
}
