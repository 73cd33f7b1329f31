/**
 * One replica of the bench app, run as its own Node process by run.ts: a NestJS application
 * context with JOB_COUNT jobs `job-0 .. job-N-1`, each `every: EVERY_MS`. It imports the library
 * only through its public entry, as an application would, and reports every run to the parent.
 */
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { performance } from 'node:perf_hooks';
import { DistributedJob, JobContext, SchedulerModule } from 'nestjs-distributed-scheduler';
import { record, send, startReporting, work } from './child-reporting';

const jobCount = Number(process.env.JOB_COUNT ?? 0);
const everyMs = Number(process.env.EVERY_MS ?? 1_000);

@Injectable()
class BenchJobs {}

// The job count is only known at run time, so the decorated methods are added to the prototype
// here, as `@DistributedJob` would on a written method (the pattern of test/fixtures/replica.main.ts).
for (let i = 0; i < jobCount; i++) {
  const key = `job${i}`;
  const handler = (ctx: JobContext): void | Promise<void> => {
    const startedAt = Date.now(); // taken first: lag is measured to the handler's entry
    record({
      name: ctx.name,
      scheduledAt: ctx.scheduledAt.getTime(),
      startedAt,
      claimedAt: ctx.startedAt.getTime(),
      fencingToken: ctx.fencingToken,
      instanceId: ctx.instanceId,
    });
    return work();
  };
  Object.defineProperty(BenchJobs.prototype, key, { value: handler, writable: true, configurable: true });
  DistributedJob({ name: `job-${i}`, every: everyMs })(BenchJobs.prototype, key, Object.getOwnPropertyDescriptor(BenchJobs.prototype, key)!);
}

@Module({
  imports: [
    SchedulerModule.forRoot({
      redis: process.env.REDIS_URL,
      keyPrefix: process.env.KEY_PREFIX,
      instanceId: process.env.INSTANCE_ID,
      shutdownTimeout: 1_000,
      ...(process.env.LOCK_TTL_MS ? { lockTtl: Number(process.env.LOCK_TTL_MS) } : {}),
    }),
  ],
  providers: [BenchJobs],
})
class BenchModule {}

async function main(): Promise<void> {
  startReporting();
  const bootStart = performance.now();
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
  // The parent disconnects to stop a replica, or it died: either way, shut down.
  process.on('disconnect', () => void app.close().finally(() => process.exit(0)));
  send({ type: 'ready', bootMs: performance.now() - bootStart });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
