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
import { flush, send, startReporting, unsent } from './child-reporting';

export type { ParentMessage, ReplicaMessage } from './child-reporting';

const jobCount = Number(process.env.JOB_COUNT ?? 0);
const everyMs = Number(process.env.EVERY_MS ?? 1_000);
const busyMs = Number(process.env.BUSY_MS ?? 0);
/** Failover configuration only: the handler then waits this long (asynchronously) before it returns. */
const holdMs = Number(process.env.HOLD_MS ?? 0);
/** Failover configuration only: send each run at once, so a replica killed right after the start has reported it. */
const reportAtOnce = process.env.REPORT_AT_ONCE === '1';



/**
 * The histogram records the time between its timer's ticks, so an idle loop reads as the
 * resolution itself: the delay is what exceeds it (as @fastify/under-pressure computes it).
 */

/** Keeps the CPU (and so this replica's event loop) busy, like a handler doing synchronous work. */
function burnCpu(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

@Injectable()
class BenchJobs {}

// The job count is only known at run time, so the decorated methods are added to the prototype
// here, as `@DistributedJob` would on a written method (the pattern of test/fixtures/replica.main.ts).
for (let i = 0; i < jobCount; i++) {
  const key = `job${i}`;
  const handler = (ctx: JobContext): void | Promise<void> => {
    const startedAt = Date.now(); // taken first: lag is measured to the handler's entry
    unsent.push({
      name: ctx.name,
      scheduledAt: ctx.scheduledAt.getTime(),
      startedAt,
      claimedAt: ctx.startedAt.getTime(),
      fencingToken: ctx.fencingToken,
      instanceId: ctx.instanceId,
    });
    if (reportAtOnce) flush();
    if (busyMs > 0) burnCpu(busyMs);
    if (holdMs > 0) return new Promise((resolve) => setTimeout(resolve, holdMs));
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
