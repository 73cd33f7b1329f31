import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DISTRIBUTED_JOB_METADATA } from '../scheduler.constants';
import type { DistributedJobOptions } from './distributed-job-options.interface';
import type { TakenOverSchedule } from './nest-schedule.bridge';
import { TAKEN_OVER_SCHEDULE_METADATA } from './nest-schedule.constants';

@Injectable()
export class JobMetadataAccessor {
  constructor(private readonly reflector: Reflector) {}

  getJobOptions(target: Function): DistributedJobOptions | undefined {
    return this.reflector.get(DISTRIBUTED_JOB_METADATA, target);
  }

  /** The @nestjs/schedule metadata `@DistributedJob` took over from the method, if any. */
  getTakenOverSchedule(target: Function): TakenOverSchedule | undefined {
    return this.reflector.get(TAKEN_OVER_SCHEDULE_METADATA, target);
  }
}
