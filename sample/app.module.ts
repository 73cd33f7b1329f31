import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SchedulerModule } from 'nestjs-distributed-scheduler';
import { JobsController } from './jobs/jobs.controller';
import { ImportJobs } from './imports/import.jobs';
import { LeaderJobs } from './jobs/leader.jobs';
import { ReportJobs } from './jobs/report.jobs';
import { SchedulerErrorFilter } from './jobs/scheduler-error.filter';
import { databaseOptions, recordsDatabase } from './records/database';
import { ExecutionsController } from './records/executions.controller';
import { ReportBuildJobs } from './reports/report.jobs';
import { ReportsController } from './reports/reports.controller';
import { ApiTokenGuard } from './security/api-token.guard';

@Module({
  imports: [
    // The app's own database, which also holds the execution records: a SQLite file by default,
    // PostgreSQL with DATABASE_URL (see records/database.ts).
    TypeOrmModule.forRoot(databaseOptions()),
    // No REDIS_URL: the embedded coordinator, for one process. With it: once across replicas.
    SchedulerModule.forRoot({
      redis: process.env.REDIS_URL,
      instanceId: process.env.INSTANCE_ID,
      keyPrefix: process.env.KEY_PREFIX,
      // Shown by ClusterMembership.members(); a job's `hosts.labels` can pick replicas by them.
      labels: { role: process.env.ROLE ?? 'web' },
      // Every run of every job becomes an Execution with its Task. The built-in sweep keeps the
      // newest 50 executions per vendor type (20 of the 5-second heartbeat), every 10 minutes.
      // `database` maps the tables exactly as the library's migrations create them.
      records: { database: recordsDatabase(), retain: 50, retainByVendor: { heartbeat: 20 }, sweepEvery: '10m' },
    }),
  ],
  controllers: [JobsController, ExecutionsController, ReportsController],
  providers: [
    ReportJobs,
    LeaderJobs,
    ReportBuildJobs,
    ImportJobs,
    { provide: APP_FILTER, useClass: SchedulerErrorFilter },
    // Off by default; with SAMPLE_API_TOKEN set, routes that change something need that bearer token.
    { provide: APP_GUARD, useClass: ApiTokenGuard },
  ],
})
export class AppModule {}
