/**
 * One replica of ours in the task-dispatch bench (`dispatch.ts`), its own Node process: a NestJS
 * application context with execution records on PostgreSQL and one on-demand job, `bench.task`,
 * whose handler notes its start (with the create time carried in `ctx.parameters`), holds
 * `parameters.holdMs` (0: returns at once; it stops early when `ctx.signal` aborts) and notes its
 * end. The parent asks one replica to create the tasks through `TaskManager.create`.
 */
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { DataSourceOptions } from 'typeorm';
import { ClusterMembership, DistributedJob, JobContext, SchedulerModule } from 'nestjs-distributed-scheduler';
import { ExecutionManager, TaskManager } from 'nestjs-distributed-scheduler/records';
import { Created, DispatchCommand, hold, recordEnd, recordStart, send, startReporting } from './dispatch-events';

const JOB = 'bench.task';
const instanceId = process.env.INSTANCE_ID ?? `ours-${process.pid}`;
const database = JSON.parse(process.env.DB_OPTIONS!) as DataSourceOptions;
/**
 * Tasks per execution: CREATE_STREAMS loops at once each create an execution of this size, as an
 * app fanning out many requests would; its tasks by one `TaskManager.createMany`, or
 * (`CREATE_MODE=one`) by one `TaskManager.create` each, in turn (each locks the execution's row).
 */
const tasksPerExecution = Number(process.env.TASKS_PER_EXECUTION ?? 100);
const oneByOne = process.env.CREATE_MODE === 'one';
const createStreams = Number(process.env.CREATE_STREAMS ?? 10);

interface TaskParameters {
  createdAt: number;
  holdMs: number;
}

@Injectable()
class DispatchJobs {
  // attempts 2: a task whose replica is killed is recovered once, as its attempt 2 (the failover figure).
  @DistributedJob({ name: JOB, retry: { attempts: 2 } })
  async task(ctx: JobContext): Promise<void> {
    const at = Date.now(); // taken first: the lag is measured to the handler's entry
    const { createdAt, holdMs } = ctx.parameters as unknown as TaskParameters;
    const id = String(ctx.taskId);
    recordStart({ id, attempt: ctx.attempt, createdAt, at, instanceId }, holdMs > 0);
    const aborted = holdMs > 0 ? await hold(holdMs, ctx.signal) : null;
    recordEnd({ id, at: Date.now(), instanceId, aborted }, holdMs > 0);
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ ...database, autoLoadEntities: true, synchronize: false }),
    SchedulerModule.forRoot({
      redis: process.env.REDIS_URL,
      keyPrefix: process.env.KEY_PREFIX,
      instanceId,
      records: { database: 'postgres', sweepEvery: false },
      worker: { concurrency: 10 },
      shutdownTimeout: Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 1_000),
      ...(process.env.LOCK_TTL_MS ? { lockTtl: Number(process.env.LOCK_TTL_MS) } : {}),
    }),
  ],
  providers: [DispatchJobs],
})
class DispatchModule {}

async function createTasks(executions: ExecutionManager, tasks: TaskManager, count: number, holdMs: number): Promise<Created> {
  let next = 0;
  let firstAt = Infinity;
  let lastAt = 0;
  const stream = async () => {
    while (next < count) {
      const size = Math.min(tasksPerExecution, count - next);
      next += size;
      const executionId = await executions.create(JOB, 'bench', 'MANUAL');
      if (!oneByOne) {
        const createdAt = Date.now();
        firstAt = Math.min(firstAt, createdAt);
        await tasks.createMany(executionId, Array.from({ length: size }, () => ({ name: JOB, parameters: { createdAt, holdMs } })));
        lastAt = Math.max(lastAt, Date.now());
        continue;
      }
      for (let i = 0; i < size; i++) {
        const createdAt = Date.now();
        firstAt = Math.min(firstAt, createdAt);
        await tasks.create(executionId, { name: JOB, parameters: { createdAt, holdMs } });
        lastAt = Math.max(lastAt, Date.now());
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(createStreams, count) }, stream));
  return { firstAt, lastAt, count };
}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(DispatchModule, { logger: ['error', 'warn'] });
  // SIGTERM: the library's shutdown (stop taking work, wait shutdownTimeout, hand back what still runs).
  app.enableShutdownHooks();
  const executions = app.get(ExecutionManager);
  const tasks = app.get(TaskManager);
  const membership = app.get(ClusterMembership);
  startReporting(async (command: DispatchCommand) => {
    if (command.method === 'members') return (await membership.members()).length;
    return createTasks(executions, tasks, command.count, command.holdMs);
  });
  // The parent disconnects to stop a replica, or it died: either way, shut down.
  process.on('disconnect', () => void app.close().finally(() => process.exit(0)));
  send({ type: 'ready' });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
