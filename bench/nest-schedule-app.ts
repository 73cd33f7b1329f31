/**
 * The @nestjs/schedule reference, run as one Node process by run.ts: `ScheduleModule.forRoot()`
 * and JOB_COUNT `@Interval(1000)` jobs `job-0 .. job-N-1`. It has no coordination, so it is a
 * single process and only its lag is compared. It speaks the same IPC protocol as replica.ts.
 *
 * Intended tick time: @nestjs/schedule registers each interval with `setInterval(fn, 1000)` at
 * application bootstrap. The k-th call (k = 1, 2, …) is intended at registration + k · 1000, so
 * lag = handler entry − (registration + k · 1000). setInterval re-arms from when each callback
 * ran, so any delay carries over to the ticks after it and shows up here as growing lag.
 */
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Interval, ScheduleModule } from '@nestjs/schedule';
import { send, startReporting, unsent } from './child-reporting';

const jobCount = Number(process.env.JOB_COUNT ?? 10);
const everyMs = Number(process.env.EVERY_MS ?? 1_000);
const instanceId = process.env.INSTANCE_ID ?? 'nest-schedule';

/**
 * Registration time and call count of the interval whose callback is running now. The bench's own
 * timers are set before the app is created, so only @nestjs/schedule's intervals are wrapped.
 */
let current: { registeredAt: number; calls: number } | undefined;
function recordIntervalRegistrations(): void {
  const original = global.setInterval;
  const wrapped = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const tick = { registeredAt: Date.now(), calls: 0 };
    return original(
      (...callArgs: unknown[]) => {
        tick.calls++;
        current = tick;
        try {
          callback(...callArgs);
        } finally {
          current = undefined;
        }
      },
      ms,
      ...args,
    );
  }) as typeof setInterval;
  global.setInterval = wrapped;
}

@Injectable()
class NestScheduleJobs {}

for (let i = 0; i < jobCount; i++) {
  const key = `job${i}`;
  const name = `job-${i}`;
  const handler = (): void => {
    const startedAt = Date.now(); // taken first: lag is measured to the handler's entry
    const tick = current!;
    const intendedAt = tick.registeredAt + tick.calls * everyMs;
    unsent.push({ name, scheduledAt: intendedAt, startedAt, claimedAt: startedAt, instanceId });
  };
  Object.defineProperty(NestScheduleJobs.prototype, key, { value: handler, writable: true, configurable: true });
  Interval(name, everyMs)(NestScheduleJobs.prototype, key, Object.getOwnPropertyDescriptor(NestScheduleJobs.prototype, key)!);
}

@Module({ imports: [ScheduleModule.forRoot()], providers: [NestScheduleJobs] })
class NestScheduleBenchModule {}

async function main(): Promise<void> {
  startReporting();
  recordIntervalRegistrations();
  const app = await NestFactory.createApplicationContext(NestScheduleBenchModule, { logger: ['error', 'warn'] });
  process.on('disconnect', () => void app.close().finally(() => process.exit(0)));
  send({ type: 'ready' });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
