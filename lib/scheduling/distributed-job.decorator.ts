import { SetMetadata } from '@nestjs/common';
import { DISTRIBUTED_JOB_METADATA } from '../scheduler.constants';
import type { DistributedJobOptions } from './distributed-job-options.interface';

/**
 * Marks a provider method as a job that runs once per due time across all replicas.
 * The method receives a `JobContext`.
 *
 * ```ts
 * @DistributedJob({ name: 'reports.nightly', cron: '0 3 * * *', timeZone: 'Europe/Paris' })
 * async nightly(ctx: JobContext) { ... }
 * ```
 */
export const DistributedJob = (options: DistributedJobOptions = {}): MethodDecorator =>
  SetMetadata(DISTRIBUTED_JOB_METADATA, options);
