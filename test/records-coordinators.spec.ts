import { Injectable, INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DistributedJob, ExecutionNotFinalError, JobContext, JobScheduler, SchedulerModule, SchedulerModuleOptions, StopTimeoutError } from '../lib';
import { Coordinator } from '../lib/coordination/coordinator.interface';
import { TaskDispatcher } from '../lib/execution/task-dispatcher';
import { Execution, ExecutionManager, OnCheckIn, OnExecutionStatusChange, OnTaskStatusChange, Task, TaskManager } from '../lib/records';
import { CapturingLogger } from './support/app';
import { TestDatabase } from './support/databases';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { leaseTask, registerElsewhere } from './support/task-lease';
import { EventLog } from './support/wait';

/**
 * The execution records on each coordinator: on Redis (production) as well as embedded. One
 * database (SQLite: the dialects are covered by records.spec.ts); every test makes its own
 * executions and tasks and reads only those.
 */
let arrived = new EventLog<{ taskId: number; ctx: JobContext }>();
let hookCalls = new EventLog<{ kind: string; id: number; status?: string; data?: unknown }>();
let release: () => void = () => undefined;
let released = new Promise<void>((resolve) => (release = resolve));

@Injectable()
class RecordedJobs {
  @DistributedJob({ name: 'held', vendorType: 'held' })
  async held(ctx: JobContext) {
    arrived.push({ taskId: ctx.taskId!, ctx });
    await new Promise<void>((resolve, reject) => {
      void released.then(resolve);
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
    });
  }

  /** Ignores its signal: a stop cannot end it until the test lets it go. */
  @DistributedJob({ name: 'stubborn', vendorType: 'stubborn' })
  async stubborn(ctx: JobContext) {
    arrived.push({ taskId: ctx.taskId!, ctx });
    await released;
  }

  @DistributedJob({ name: 'reporting', vendorType: 'hooked' })
  async reporting(ctx: JobContext) {
    arrived.push({ taskId: ctx.taskId!, ctx });
    await ctx.checkIn({ step: 1 });
  }

  @DistributedJob({ name: 'tx-only', vendorType: 'tx' })
  txOnly(ctx: JobContext) {
    arrived.push({ taskId: ctx.taskId!, ctx });
  }

  @DistributedJob({ name: 'marker', vendorType: 'marker' })
  marker(ctx: JobContext) {
    arrived.push({ taskId: ctx.taskId!, ctx });
  }
}

/** Hooks declared with the decorators, found on a provider as an app would write them. */
@Injectable()
class HookedVendor {
  @OnTaskStatusChange('hooked')
  task(task: Task, previous: string) {
    hookCalls.push({ kind: `task ${previous}->${task.status}`, id: task.id, status: task.status });
  }

  @OnExecutionStatusChange('hooked')
  execution(execution: Execution) {
    hookCalls.push({ kind: 'execution', id: execution.id, status: execution.status });
  }

  @OnCheckIn('hooked')
  checkIn(task: Task, data: unknown) {
    hookCalls.push({ kind: 'check-in', id: task.id, data });
  }
}

const COORDINATORS: { name: string; options: () => SchedulerModuleOptions }[] = [
  { name: 'Redis', options: () => ({ redis: SHARED_REDIS_URL, keyPrefix: uniquePrefix('records') }) },
  { name: 'the embedded coordinator', options: () => ({}) },
];

describe.each(COORDINATORS)('execution records on $name', ({ options }) => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let executions: ExecutionManager;
  let tasks: TaskManager;

  beforeAll(async () => {
    // Ids start again in each database: each coordinator's runs in logs of their own.
    arrived = new EventLog();
    hookCalls = new EventLog();
    db = await TestDatabase.create('sqlite');
    const logger = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize: true }),
        SchedulerModule.forRootAsync({ records: { sweepEvery: false }, useFactory: () => ({ ...options(), minPeriod: 100, shutdownTimeout: 1_000 }) }),
      ],
      providers: [RecordedJobs, HookedVendor],
    })
      .setLogger(logger)
      .compile();
    app = await moduleRef.init();
    executions = app.get(ExecutionManager);
    tasks = app.get(TaskManager);
  });

  afterAll(async () => {
    release();
    await app?.close();
    await db?.drop();
  });

  beforeEach(() => {
    released = new Promise<void>((resolve) => (release = resolve));
  });

  const running = (taskId: number) => arrived.until(`task ${taskId} to run`, (events) => events.find((event) => event.taskId === taskId));

  it("records a dispatched task's run, with its fencing token (forRootAsync with records)", async () => {
    const id = await executions.create('held', 'one', 'MANUAL');
    const taskId = await tasks.create(id, { name: 'held' });
    const { ctx } = await running(taskId);
    expect(ctx.executionId).toBe(id);
    expect((await tasks.get(taskId)).status).toBe('Running');
    expect((await tasks.get(taskId)).fencingToken).toBe(ctx.fencingToken);
    release();
    await waitFor(async () => (await tasks.get(taskId)).status === 'Success');
    expect((await executions.get(id)).status).toBe('Success');
  });

  it('stopAndWait throws StopTimeoutError when a task does not stop in time', async () => {
    // A task whose run is held by a replica that does not answer (alive, its lease live), of a
    // job this app does not declare, so it is not the one that takes the task.
    const coordinator = app.get(Coordinator);
    await registerElsewhere(coordinator, 'ghostly', 'ghost');
    const id = await executions.create('ghostly', null, 'MANUAL');
    const repository = app.get(DataSource).getRepository(Task);
    const now = new Date();
    const taskId = (
      await repository.insert({
        vendorType: 'ghostly', executionId: id, jobName: 'ghostly', parameters: {}, status: 'Running', statusMessage: null, runCount: 1,
        jobId: `ghost-${Math.random()}`, extraAttrs: {}, creationTime: now, startTime: now, updateTime: now, endTime: null, statusRevision: 1, fencingToken: 0,
      })
    ).identifiers[0].id as number;
    const lease = await leaseTask(coordinator, 'ghostly', 'ghost', 60_000, taskId);
    await repository.update({ id: taskId }, { fencingToken: lease.fencingToken });
    const error = await executions.stopAndWait(id, 300).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StopTimeoutError);
    expect(error).toMatchObject({ executionId: id, timeoutMs: 300, message: `Execution ${id} did not stop within 300 ms.` });
    expect((await tasks.get(taskId)).status).toBe('Running');
  });

  it('stopAndWaitWithError stops the execution, then records it as failed with the error', async () => {
    const id = await executions.create('held', 'two', 'MANUAL');
    const taskId = await tasks.create(id, { name: 'held' });
    await running(taskId);
    await executions.stopAndWaitWithError(id, 30_000, new Error('the upstream feed is gone'));
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Stopped' });
    expect(await executions.get(id)).toMatchObject({ status: 'Error', statusMessage: 'the upstream feed is gone' });
  });

  it('delete(id) deletes a finished execution with its tasks, and refuses one still going', async () => {
    const id = await executions.create('held', 'three', 'MANUAL');
    const taskId = await tasks.create(id, { name: 'held' });
    await running(taskId);
    await expect(executions.delete(id)).rejects.toBeInstanceOf(ExecutionNotFinalError);
    expect(await executions.count({ vendorId: 'three' })).toBe(1);
    release();
    await waitFor(async () => (await executions.get(id)).status === 'Success');
    const kept = await executions.create('held', 'kept', 'MANUAL');
    await executions.markDone(kept);
    await executions.delete(id);
    expect(await executions.count({ vendorId: 'three' })).toBe(0);
    expect(await tasks.count({ executionId: id })).toBe(0);
    expect((await executions.get(kept)).status).toBe('Success');
  });

  it('calls the hooks declared with @OnTaskStatusChange, @OnExecutionStatusChange and @OnCheckIn', async () => {
    const id = await executions.create('hooked', null, 'EVENT');
    const taskId = await tasks.create(id, { name: 'reporting' });
    await hookCalls.until('the check-in', (events) => events.find((e) => e.kind === 'check-in' && e.id === taskId));
    await hookCalls.until('the task to succeed', (events) => events.find((e) => e.kind.startsWith('task ') && e.status === 'Success' && e.id === taskId));
    await hookCalls.until('the execution to succeed', (events) => events.find((e) => e.kind === 'execution' && e.id === id && e.status === 'Success'));
    expect(hookCalls.events.find((e) => e.kind === 'check-in' && e.id === taskId)!.data).toEqual({ step: 1 });
  });

  it('never dispatches a task created in a transaction that rolled back', async () => {
    const dataSource = app.get(DataSource);
    // Every dispatch, observed on its way to the real dispatcher.
    const dispatcher = app.get(TaskDispatcher);
    const dispatch = dispatcher.dispatch.bind(dispatcher);
    const dispatched: string[] = [];
    dispatcher.dispatch = (task) => {
      dispatched.push(task.jobName);
      return dispatch(task);
    };
    let rolledBackTask = 0;
    await expect(
      dataSource.transaction(async (manager) => {
        const id = await executions.create('tx', 'rolled-back', 'MANUAL', {}, manager);
        rolledBackTask = await tasks.create(id, { name: 'tx-only' }, {}, manager);
        throw new Error('the caller changed its mind');
      }),
    ).rejects.toThrow('the caller changed its mind');
    // A task dispatched after it, through the same path: once it has run, the first would have too.
    const marker = await executions.create('marker', null, 'MANUAL');
    const markerTask = await tasks.create(marker, { name: 'marker' });
    await running(markerTask);
    await waitFor(async () => (await executions.get(marker)).status === 'Success');
    const scheduler = app.get(JobScheduler);
    expect(rolledBackTask).toBeGreaterThan(0);
    expect(dispatched).toEqual(['marker']);
    expect(arrived.events.filter((event) => event.ctx.name === 'tx-only').map((event) => event.taskId)).toEqual([]);
    expect((await scheduler.describe('tx-only')).lastRun).toBeNull();
    expect((await scheduler.describe('tx-only')).running).toEqual([]);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('Timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
