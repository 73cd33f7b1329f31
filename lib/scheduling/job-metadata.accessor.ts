import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DISTRIBUTED_JOB_METADATA } from '../scheduler.constants';
import type { DistributedJobOptions } from './distributed-job-options.interface';

@Injectable()
export class JobMetadataAccessor {
  constructor(private readonly reflector: Reflector) {}

  getJobOptions(target: Function): DistributedJobOptions | undefined {
    return this.reflector.get(DISTRIBUTED_JOB_METADATA, target);
  }
}
