import { SetMetadata } from '@nestjs/common';
import { DISTRIBUTED_JOB_METADATA } from '../scheduler.constants';
import type { DistributedJobOptions } from './distributed-job-options.interface';
import { takeOverNestSchedule } from './nest-schedule.bridge';

/**
 * Marks a provider method as a job that runs once per due time across all replicas.
 * The method receives a `JobContext`.
 *
 * ```ts
 * @DistributedJob({ name: 'reports.nightly', cron: '0 3 * * *', timeZone: 'Europe/Paris' })
 * async nightly(ctx: JobContext) { ... }
 * ```
 *
 * On a method that has `@Cron`, `@Interval` or `@Timeout` of @nestjs/schedule, a bare
 * `@DistributedJob()` takes its schedule from them, and @nestjs/schedule no longer runs it.
 */
export const DistributedJob =
  (options: DistributedJobOptions = {}): MethodDecorator =>
  (target, key, descriptor) => {
    SetMetadata(DISTRIBUTED_JOB_METADATA, options)(target, key, descriptor);
    // @nestjs/schedule's decorators written below this one are already applied; those written
    // above are applied right after it, in the same synchronous call (a method's decorators run
    // bottom-up together), so a microtask sees them all, long before any module initializes.
    takeOverNestSchedule(descriptor?.value);
    queueMicrotask(() => takeOverNestSchedule((target as Record<string | symbol, unknown>)[key]));
    return descriptor;
  };
