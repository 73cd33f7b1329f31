import { Module } from '@nestjs/common';
import { SchedulerModule } from 'nestjs-distributed-scheduler';
import { JobsController } from './jobs/jobs.controller';
import { SchedulerErrorFilter } from './jobs/scheduler-error.filter';
import { ReportJobs } from './jobs/report.jobs';
import { APP_FILTER } from '@nestjs/core';

@Module({
  imports: [
    // No REDIS_URL: the embedded coordinator, for one process. With it: once across replicas.
    SchedulerModule.forRoot({
      redis: process.env.REDIS_URL,
      instanceId: process.env.INSTANCE_ID,
      keyPrefix: process.env.KEY_PREFIX,
    }),
  ],
  controllers: [JobsController],
  providers: [ReportJobs, { provide: APP_FILTER, useClass: SchedulerErrorFilter }],
})
export class AppModule {}
