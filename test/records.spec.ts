import { Injectable, INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DistributedJob, ExecutionNotFinalError, UnknownJobError, DuplicateVendorHookError, JobContext, JobScheduler, SchedulerModule } from '../lib';
import { Execution, ExecutionManager, SweepManager, Task, TaskManager, VendorHookRegistry } from '../lib/records';
import { nextRevision, StatusChangeHandler } from '../lib/execution/status-change.handler';
import { ABANDONED_PENDING_MESSAGE, ABANDONED_RUN_MESSAGE } from '../lib/execution/sweep.manager';
import { Coordinator } from '../lib/coordination/coordinator.interface';
import { SweepJob } from '../lib/execution/sweep.job';
import { RunRecorder } from '../lib/scheduling/run-recorder';
import { JobRegistry } from '../lib/scheduling/job.registry';
import { CapturingLogger } from './support/app';
import { DATABASE_KINDS, TestDatabase } from './support/databases';
import { pendingTask, waitUntil } from './support/records';
import { leaseTask, registerElsewhere } from './support/task-lease';
import { EventLog } from './support/wait';

/** Lets the test hold handlers until it releases them all at once. A test gets a new one (beforeEach). */
class Gate {
  private open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  /** The task ids of the runs that reached the gate. */
  readonly arrived = new EventLog<number>();
  /** The parameters of the `unit` runs that reached the gate. */
  readonly units = new EventLog<Readonly<Record<string, unknown>>>();
  release(): void {
    this.open();
  }
}

let gate = new Gate();

@Injectable()
class RecordedJobs {
  @DistributedJob({ name: 'unit', vendorType: 'batch' })
  async unit(ctx: JobContext) {
    ctx.logger.log(`unit ${JSON.stringify(ctx.parameters)}`);
    gate.units.push(ctx.parameters);
    gate.arrived.push(ctx.taskId!);
    await gate.opened;
    if (ctx.parameters.fail) throw new Error(`unit ${ctx.parameters.n} failed`);
  }

  @DistributedJob({ name: 'until-stopped' })
  async untilStopped(ctx: JobContext) {
    gate.arrived.push(ctx.taskId!);
    await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
  }

  /** Runs only in the test that resumes it (and pauses it again). */
  @DistributedJob({ name: 'tick', every: 150, paused: true })
  tick(ctx: JobContext) {
    ctx.logger.log(`tick for ${ctx.scheduledAt.toISOString()} as execution ${ctx.executionId}`);
  }

  /** On demand: the test of duplicate due times records runs of it by hand, and nothing else runs it. */
  @DistributedJob({ name: 'recorded-once' })
  recordedOnce() {}

  @DistributedJob({ name: 'broken' })
  broken() {
    throw new Error('the report template is missing');
  }

  @DistributedJob({ name: 'reporter' })
  async reporter(ctx: JobContext) {
    await ctx.checkIn({ step: 1, of: 2 });
  }

  @DistributedJob({ name: 'kept', vendorType: 'kept-two', retain: 2 })
  kept() {}

  /** Checkpoints `count` times (2 unless its task says), each flushed at once, and ends. */
  @DistributedJob({ name: 'progress', checkpoint: { maxUpdates: 1 } })
  async progress(ctx: JobContext) {
    const count = (ctx.parameters.count as number | undefined) ?? 2;
    for (let step = 1; step <= count; step++) await ctx.checkpoint({ step, of: count, done: Array.from({ length: step }, (_, i) => i) });
  }

  @DistributedJob({ name: 'no-progress' })
  noProgress() {}
}

describe.each(DATABASE_KINDS)('execution records on %s', (kind) => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let executions: ExecutionManager;
  let tasks: TaskManager;
  let sweep: SweepManager;
  let dataSource: DataSource;
  let logger: CapturingLogger;
  const checkIns = new EventLog<{ task: Task; data: unknown }>();
  const taskChanges = new EventLog<Task>();
  const executionChanges = new EventLog<Execution>();

  beforeAll(async () => {
    db = await TestDatabase.create(kind);
    logger = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize: true }),
        // 50 tasks at once on this one replica (the default worker.concurrency is 10).
        SchedulerModule.forRoot({ minPeriod: 100, worker: { concurrency: 50 }, records: { sweepEvery: false } }),
      ],
      providers: [RecordedJobs],
    })
      .setLogger(logger)
      .compile();
    moduleRef.useLogger(logger);
    const hooks = moduleRef.get(VendorHookRegistry);
    for (const vendorType of ['batch', 'tick', 'broken', 'stoppable']) {
      hooks.onTaskStatusChange(vendorType, (task) => taskChanges.push({ ...task }));
      hooks.onExecutionStatusChange(vendorType, (execution) => executionChanges.push({ ...execution }));
    }
    hooks.onCheckIn('progress', (task, data) => checkIns.push({ task, data }));
    hooks.onTaskStatusChange('throwing', () => {
      throw new Error('the hook broke');
    });
    await moduleRef.init();
    app = moduleRef;
    executions = app.get(ExecutionManager);
    tasks = app.get(TaskManager);
    sweep = app.get(SweepManager);
    dataSource = app.get(DataSource);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  beforeEach(() => (gate = new Gate()));

  const finalExecution = (id: number) =>
    executionChanges.until(`execution ${id} to end`, (events) => events.find((e) => e.id === id && ['Success', 'Error', 'Stopped'].includes(e.status)));

  it('derives the status of an execution whose 50 tasks finish at the same moment, losing no update', async () => {
    const id = await executions.create('batch', 'nightly', 'MANUAL');
    const created: number[] = [];
    for (let n = 0; n < 50; n++) created.push(await tasks.create(id, { name: 'unit', parameters: { n, fail: n % 10 === 0 } }));
    await gate.arrived.until('50 running tasks', (ids) => created.every((taskId) => ids.includes(taskId)));
    expect((await executions.get(id)).status).toBe('Running');
    gate.release();
    await finalExecution(id);

    const execution = await executions.get(id);
    expect(execution.status).toBe('Error');
    expect(execution.metrics).toEqual({ taskCount: 50, pendingTaskCount: 0, runningTaskCount: 0, successTaskCount: 45, errorTaskCount: 5, stoppedTaskCount: 0 });
    expect(await tasks.count({ executionId: id, status: 'Error' })).toBe(5);
    const failed = await tasks.list({ executionId: id, status: 'Error', pageSize: 1 });
    expect(failed[0].statusMessage).toMatch(/^unit \d+ failed$/);
    expect(await tasks.getLog(failed[0].id)).toMatch(/LOG unit \{"n":\d+,"fail":true\}/);
  });

  it('creates many tasks in one call: ids in order, each with its parameters and attributes, all run once; a bad spec writes none', async () => {
    const id = await executions.create('batch', 'many', 'MANUAL');
    const specs = Array.from({ length: 450 }, (_, n) => ({ name: 'unit', parameters: { n, many: true }, extraAttrs: { shard: n % 3 } }));
    await expect(tasks.createMany(id, [...specs.slice(0, 3), { name: 'unit', parameters: [1] as never }])).rejects.toThrow(/tasks\[3\]\.parameters/);
    await expect(tasks.createMany(id, [{ name: 'no-such-job' }])).rejects.toThrow(UnknownJobError);
    expect(await tasks.count({ executionId: id })).toBe(0);

    // Worker concurrency is 50 here: the tasks run as they come, not held at the gate.
    gate.release();
    const created = await tasks.createMany(id, specs);
    expect(created).toHaveLength(450);
    expect(new Set(created).size).toBe(450);
    const rows = await dataSource.getRepository(Task).find({ where: { executionId: id } });
    const byId = new Map(rows.map((row) => [row.id, row]));
    created.forEach((taskId, n) => expect(byId.get(taskId)).toMatchObject({ parameters: { n, many: true }, extraAttrs: { shard: n % 3 }, jobName: 'unit' }));
    expect(await tasks.createMany(id, [])).toEqual([]);
    await gate.arrived.until('450 tasks run', (ids) => created.every((taskId) => ids.includes(taskId)));
    await finalExecution(id);
    expect((await executions.get(id)).metrics).toMatchObject({ taskCount: 450, successTaskCount: 450 });
    expect(gate.units.events.filter((parameters) => parameters.many)).toHaveLength(450);
  });

  it('applies status changes by revision, whatever order they arrive in, and rejects those of a replaced attempt', async () => {
    const handler = app.get(StatusChangeHandler);
    const id = await executions.create('revisions', null, 'EVENT');
    const taskId = (await dataSource.getRepository(Task).insert(pendingTask(id))).identifiers[0].id as number;
    const changes = [
      { status: 'Running', revision: 10 },
      { status: 'Running', revision: 20 },
      { status: 'Success', revision: 30 },
      { status: 'Success', revision: 30 },
    ] as const;
    for (const order of [[3, 1, 0, 2], [2, 0, 3, 1], [0, 1, 2, 3]]) {
      await dataSource.getRepository(Task).update({ id: taskId }, { status: 'Pending', statusRevision: 0, fencingToken: 7 });
      await Promise.all(order.map((i) => handler.handle({ taskId, fencingToken: 7, ...changes[i] })));
      const task = await tasks.get(taskId);
      expect([task.status, task.statusRevision]).toEqual(['Success', 30]);
    }
    // Attempt 7 failed after all; a newer attempt (token 9) owns the task: the older attempt's late report is rejected.
    await dataSource.getRepository(Task).update({ id: taskId }, { status: 'Error' });
    expect(await handler.handle({ taskId, fencingToken: 9, status: 'Running', revision: 40 })).toBe('applied');
    expect(await handler.handle({ taskId, fencingToken: 7, status: 'Error', revision: 50, message: 'late' })).toBe('superseded');
    const task = await tasks.get(taskId);
    expect([task.status, task.fencingToken, task.runCount]).toEqual(['Running', 9, 1]);
    expect((await executions.get(id)).status).toBe('Running');
    // Its end recorded, the replica killed before releasing the lease: the recovered attempt 3 is refused, the task stays Success.
    expect(await handler.handle({ taskId, fencingToken: 9, status: 'Success', revision: 60 })).toBe('applied');
    expect(await handler.handle({ taskId, fencingToken: 11, status: 'Running', revision: 70 })).toBe('outdated');
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Success', fencingToken: 9, runCount: 1 });
    // A failed attempt is followed by the next one, as retries are.
    await dataSource.getRepository(Task).update({ id: taskId }, { status: 'Error', statusRevision: 80 });
    expect(await handler.handle({ taskId, fencingToken: 12, status: 'Running', revision: 90 })).toBe('applied');
  });

  it('filters executions and tasks by extraAttrs in the database', async () => {
    const a = await executions.create('attrs', 1, 'MANUAL', { team: 'red', size: 3, urgent: true, note: 'it\'s "quoted"' });
    const b = await executions.create('attrs', 2, 'SCHEDULE', { team: 'blue', size: 3, urgent: false });
    const c = await executions.create('attrs', 3, 'EVENT', { team: 'red', size: 12 });
    const ids = async (query: Parameters<ExecutionManager['list']>[0]) => (await executions.list({ vendorType: 'attrs', ...query })).map((e) => e.id).sort((x, y) => x - y);
    expect(await ids({ extraAttrs: { team: 'red' } })).toEqual([a, c]);
    expect(await ids({ extraAttrs: { team: 'red', size: 12 } })).toEqual([c]);
    expect(await ids({ extraAttrs: { size: 3 } })).toEqual([a, b]);
    expect(await ids({ extraAttrs: { urgent: true } })).toEqual([a]);
    expect(await ids({ extraAttrs: { urgent: false } })).toEqual([b]);
    expect(await ids({ extraAttrs: { note: 'it\'s "quoted"' } })).toEqual([a]);
    expect(await ids({ extraAttrs: { team: 'green' } })).toEqual([]);
    expect(await ids({ trigger: ['MANUAL', 'EVENT'], extraAttrs: { team: 'red' } })).toEqual([a, c]);
    expect(await executions.count({ vendorType: 'attrs', extraAttrs: { size: 3 } })).toBe(2);
    const page = await executions.list({ vendorType: 'attrs', sort: { field: 'id', order: 'ASC' }, page: 2, pageSize: 2 });
    expect(page.map((e) => e.id)).toEqual([c]);
  });

  it('sweeps a vendor down to its newest N executions, leaving unfinished ones', async () => {
    const running = await executions.create('sweepable', null, 'SCHEDULE');
    const done: number[] = [];
    for (let i = 0; i < 25; i++) {
      const id = await executions.create('sweepable', null, 'SCHEDULE');
      await executions.markDone(id);
      done.push(id);
    }
    const candidates = await sweep.listCandidates('sweepable', 10);
    expect(candidates).toEqual(done.slice(0, 15));
    expect(await sweep.clean(candidates)).toBe(15);
    const left = (await executions.list({ vendorType: 'sweepable', pageSize: 100 })).map((e) => e.id).sort((x, y) => x - y);
    expect(left).toEqual([running, ...done.slice(15)]);
    expect(await sweep.listCandidates('sweepable', 10)).toEqual([]);
  });

  it('refuses deleteByVendor while an execution of the vendor is still going', async () => {
    const first = await executions.create('deletable', 'policy-1', 'MANUAL');
    const second = await executions.create('deletable', 'policy-1', 'MANUAL');
    const other = await executions.create('deletable', 'policy-2', 'MANUAL');
    await executions.markDone(first);
    await expect(executions.deleteByVendor('deletable', 'policy-1')).rejects.toThrow(ExecutionNotFinalError);
    expect(await executions.count({ vendorType: 'deletable', vendorId: 'policy-1' })).toBe(2);
    await executions.markError(second, 'gave up');
    await executions.deleteByVendor('deletable', 'policy-1');
    expect(await executions.count({ vendorType: 'deletable' })).toBe(1);
    expect((await executions.get(other)).vendorId).toBe('policy-2');
  });

  it('fixes executions left Running with all tasks ended, and abandoned ones without tasks', async () => {
    const settled = await executions.create('dangling', null, 'MANUAL');
    await dataSource.getRepository(Task).insert({ ...pendingTask(settled), status: 'Success', endTime: new Date() });
    const abandoned = await executions.create('dangling', null, 'MANUAL');
    // A day old, against a grace of an hour: no execution of another test is that old.
    await dataSource.getRepository(Execution).update({ id: abandoned }, { updateTime: new Date(Date.now() - 24 * 3_600_000) });
    const fresh = await executions.create('dangling', null, 'MANUAL');

    // Other tests' executions may be caught too (one whose last task has just ended, say): only ours are checked.
    expect(await sweep.fixDanglingStateExecution(3_600_000)).toBeGreaterThanOrEqual(2);
    expect((await executions.get(settled)).status).toBe('Success');
    expect((await executions.get(abandoned)).status).toBe('Error');
    expect((await executions.get(fresh)).status).toBe('Running');
  });

  it('ends tasks no replica runs any more: Running without a live lease, Pending past the grace; a late report of that attempt is refused', async () => {
    const repository = dataSource.getRepository(Task);
    const coordinator = app.get(Coordinator);
    // A day ago: before this process started (on the embedded coordinator, the leases of a previous life are gone).
    const dayAgo = new Date(Date.now() - 24 * 3_600_000);
    const insertTask = async (executionId: number, fields: Partial<Task>) => (await repository.insert({ ...pendingTask(executionId), ...fields })).identifiers[0].id as number;
    const running = { status: 'Running' as const, runCount: 1, creationTime: dayAgo, startTime: dayAgo, updateTime: dayAgo, statusRevision: 1 };
    // Running, and no lease has its fencing token: its replica died.
    const lost = await executions.create('abandoned', null, 'MANUAL');
    const lostTask = await insertTask(lost, { ...running, fencingToken: 1 });
    // Pending for a day, never started; and one created a moment ago, within the grace.
    const never = await executions.create('abandoned', null, 'MANUAL');
    const neverTask = await insertTask(never, { creationTime: dayAgo, updateTime: dayAgo });
    const fresh = await executions.create('abandoned', null, 'MANUAL');
    const freshTask = await insertTask(fresh, {});
    // Running, its lease live (a replica that holds it); and Pending, its lease taken (about to
    // start). Of a job this app does not declare, so the other replica holds them, not this app.
    await registerElsewhere(coordinator, 'ghost-held', 'ghost');
    const held = await executions.create('abandoned', null, 'MANUAL');
    const heldTask = await insertTask(held, { ...running, jobName: 'ghost-held' });
    const lease = await leaseTask(coordinator, 'ghost-held', 'ghost', 60_000, heldTask);
    await repository.update({ id: heldTask }, { fencingToken: lease.fencingToken });
    const starting = await executions.create('abandoned', null, 'MANUAL');
    const startingTask = await insertTask(starting, { jobName: 'ghost-held', creationTime: dayAgo, updateTime: dayAgo });
    await leaseTask(coordinator, 'ghost-held', 'ghost', 60_000, startingTask);
    // A run that ended, and told the coordinator so, but whose end its records do not have yet.
    const from = executionChanges.events.length;
    await app.get(JobScheduler).trigger('broken');
    const broken = await executionChanges.until('the broken run', (events) => events.slice(from).find((e) => e.jobName === 'broken' && e.status === 'Error'));
    const [brokenTask] = await tasks.list({ executionId: broken.id });
    // Its records are written first, then its lease is released: wait for the coordinator to have its end.
    await waitUntil(async () => (await coordinator.describe(['broken']))[0].lastRun?.finishedAt != null);
    await repository.update({ id: brokenTask.id }, { status: 'Running', statusMessage: null, startTime: dayAgo, endTime: null });
    await dataSource.getRepository(Execution).update({ id: broken.id }, { status: 'Running', statusMessage: null, endTime: null });

    // Other tests' tasks may be caught too: only ours are checked.
    expect(await sweep.fixAbandonedTasks(3_600_000)).toBeGreaterThanOrEqual(3);
    expect(await tasks.get(lostTask)).toMatchObject({ status: 'Error', statusMessage: ABANDONED_RUN_MESSAGE, fencingToken: 1, endTime: expect.any(Date) });
    expect(await executions.get(lost)).toMatchObject({ status: 'Error', statusMessage: ABANDONED_RUN_MESSAGE });
    expect(await tasks.get(neverTask)).toMatchObject({ status: 'Error', statusMessage: ABANDONED_PENDING_MESSAGE });
    expect(await executions.get(never)).toMatchObject({ status: 'Error' });
    expect(await tasks.get(brokenTask.id)).toMatchObject({ status: 'Error', statusMessage: 'the report template is missing' });
    expect(await executions.get(broken.id)).toMatchObject({ status: 'Error', statusMessage: 'the report template is missing' });
    expect(await tasks.get(freshTask)).toMatchObject({ status: 'Pending' });
    expect(await tasks.get(heldTask)).toMatchObject({ status: 'Running' });
    expect(await tasks.get(startingTask)).toMatchObject({ status: 'Pending' });

    // The lost replica comes back (it was cut off, not dead) and reports its run: the end of that
    // attempt is already recorded, so the report is refused; a newer attempt of the task is not.
    const statusChanges = app.get(StatusChangeHandler);
    expect(await statusChanges.handle({ taskId: lostTask, status: 'Success', revision: nextRevision(), fencingToken: 1 })).toBe('outdated');
    expect(await tasks.get(lostTask)).toMatchObject({ status: 'Error', statusMessage: ABANDONED_RUN_MESSAGE });
    expect(await statusChanges.handle({ taskId: lostTask, status: 'Running', revision: nextRevision(), fencingToken: 2 })).toBe('applied');
    expect(await executions.get(lost)).toMatchObject({ status: 'Running' });
    await coordinator.stop('ghost-held', lease.fencingToken);
  });

  it("applies many concurrent status changes of one execution's tasks (committed together), each judged on its own, with a hook per change and the execution's status from all", async () => {
    const repository = dataSource.getRepository(Task);
    const statusChanges = app.get(StatusChangeHandler);
    const id = await executions.create('batch', null, 'MANUAL');
    const ids: number[] = [];
    for (let n = 0; n < 30; n++) ids.push((await repository.insert({ ...pendingTask(id), vendorType: 'batch' })).identifiers[0].id as number);
    const from = taskChanges.events.length;
    const executionsFrom = executionChanges.events.length;
    const revision = nextRevision();
    // All at once, without waiting: starts, ends, a stale report of each start, and a task that is gone.
    const results = await Promise.allSettled([
      ...ids.map((taskId) => statusChanges.handle({ taskId, executionId: id, status: 'Running', revision, fencingToken: 7 })),
      ...ids.map((taskId, n) => statusChanges.handle({ taskId, executionId: id, status: n === 0 ? 'Error' : 'Success', revision: revision + 1, fencingToken: 7, message: n === 0 ? 'bad row' : null })),
      ...ids.map((taskId) => statusChanges.handle({ taskId, executionId: id, status: 'Running', revision: revision - 1, fencingToken: 7 })),
      statusChanges.handle({ taskId: 999_999_999, executionId: id, status: 'Success', revision, fencingToken: 7 }),
    ]);
    expect(results.slice(0, 60).map((result) => result.status === 'fulfilled' && result.value)).toEqual(ids.flatMap(() => ['applied']).concat(ids.map(() => 'applied')));
    expect(results.slice(60, 90).map((result) => result.status === 'fulfilled' && result.value)).toEqual(ids.map(() => 'outdated'));
    expect(results[90]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: expect.stringContaining('999999999') }) });
    expect(await tasks.get(ids[0])).toMatchObject({ status: 'Error', statusMessage: 'bad row', runCount: 1, fencingToken: 7 });
    expect(await tasks.get(ids[1])).toMatchObject({ status: 'Success', runCount: 1, fencingToken: 7 });
    expect(await executions.get(id)).toMatchObject({ status: 'Error', metrics: expect.objectContaining({ taskCount: 30, successTaskCount: 29, errorTaskCount: 1, runningTaskCount: 0 }) });
    // One task hook per applied change, in each task's order; the execution's hooks end at its final status.
    const ours = taskChanges.events.slice(from).filter((task) => task.executionId === id);
    expect(ours).toHaveLength(60);
    for (const taskId of ids) expect(ours.filter((task) => task.id === taskId).map((task) => task.status)).toEqual(['Running', taskId === ids[0] ? 'Error' : 'Success']);
    expect(executionChanges.events.slice(executionsFrom).filter((execution) => execution.id === id).at(-1)).toMatchObject({ status: 'Error' });
  });

  it('leaves a Pending task alone, however old, while its dispatch waits to be claimed (a backlog behind concurrency)', async () => {
    const coordinator = app.get(Coordinator);
    // A job only other replicas run: its tasks wait in the coordinator until one of them claims them.
    const definition = { spec: null, overlap: 'skip' as const, paused: false };
    await coordinator.register([{ name: 'elsewhere', definition, definitionHash: JSON.stringify(definition), first: null }], 'boot', 'other-replica');
    const dayAgo = new Date(Date.now() - 24 * 3_600_000);
    const repository = dataSource.getRepository(Task);
    const insertTask = async (executionId: number) =>
      (await repository.insert({ ...pendingTask(executionId), jobName: 'elsewhere', creationTime: dayAgo, updateTime: dayAgo })).identifiers[0].id as number;
    const queued = await executions.create('abandoned', null, 'MANUAL');
    const queuedTask = await insertTask(queued);
    const { status: queuedStatus } = await executions.get(queued);
    expect(await coordinator.dispatchTasks([{ name: 'elsewhere', taskId: queuedTask }])).toEqual([true]);
    // Its dispatch lost (never written): nobody will ever run it.
    const lost = await executions.create('abandoned', null, 'MANUAL');
    const lostTask = await insertTask(lost);

    await sweep.fixAbandonedTasks(3_600_000);
    expect(await tasks.get(queuedTask)).toMatchObject({ status: 'Pending' });
    expect(await executions.get(queued)).toMatchObject({ status: queuedStatus });
    expect(await tasks.get(lostTask)).toMatchObject({ status: 'Error', statusMessage: ABANDONED_PENDING_MESSAGE });
    await coordinator.stopTask('elsewhere', queuedTask);
  });

  it('records every run of a job with its trigger, due time, fencing token and log', async () => {
    const scheduler = app.get(JobScheduler);
    const from = executionChanges.events.length;
    await scheduler.resume('tick');
    let runs: Execution[];
    try {
      runs = await executionChanges.until('three ticks', (events) => {
        const ticks = events.slice(from).filter((e) => e.jobName === 'tick' && e.status === 'Success');
        return ticks.length >= 3 && ticks;
      });
    } finally {
      await scheduler.pause('tick');
    }
    const execution = await executions.get(runs[0].id);
    expect(execution).toMatchObject({ vendorType: 'tick', trigger: 'SCHEDULE', status: 'Success', jobName: 'tick' });
    expect(execution.dueAt!.getTime()).toBe(execution.scheduledAt!.getTime());
    expect(execution.fencingToken).toBeGreaterThan(0);
    expect(execution.endTime!.getTime()).toBeGreaterThanOrEqual(execution.startTime.getTime());
    const [task] = await tasks.list({ executionId: execution.id });
    expect(task).toMatchObject({ status: 'Success', runCount: 1, fencingToken: execution.fencingToken });
    expect(await tasks.getLog(task.id)).toContain(`tick for ${execution.scheduledAt!.toISOString()} as execution ${execution.id}`);
    expect(await tasks.getLogByJobId(task.jobId)).toContain('LOG tick for');

    const receipt = await scheduler.trigger('broken');
    expect(receipt.status).toBe('accepted');
    const failed = await executionChanges.until('the broken run', (events) => events.slice(from).find((e) => e.jobName === 'broken'));
    expect(failed).toMatchObject({ status: 'Error', trigger: 'MANUAL', statusMessage: 'the report template is missing', dueAt: null });
  });

  /** The run's task once it has ended and its row has the job's checkpoint as the coordinator keeps it. */
  async function taskWithCheckpoint(name: string, query: { executionId?: number } = {}): Promise<Task> {
    const scheduler = app.get(JobScheduler);
    let task: Task | undefined;
    await waitUntil(async () => {
      [task] = await tasks.list({ jobName: name, ...query, status: 'Success' });
      const last = await scheduler.checkpoint(name);
      return !!task && !!last && task.checkpointSavedAt?.getTime() === last.savedAt.getTime() && task.fencingToken === last.fencingToken;
    }, 10_000);
    return task!;
  }

  it("records a run's last flushed checkpoint on its task: the state and when it was saved; none leaves them null", async () => {
    const scheduler = app.get(JobScheduler);
    await scheduler.clearCheckpoint('progress');
    expect((await scheduler.trigger('progress')).status).toBe('accepted');
    const task = await taskWithCheckpoint('progress');
    const last = (await scheduler.checkpoint('progress'))!;
    expect(last.state).toEqual({ step: 2, of: 2, done: [0, 1] });
    expect(task).toMatchObject({ checkpointState: { step: 2, of: 2, done: [0, 1] }, checkpointSavedAt: last.savedAt });
    expect(task.checkpointSavedAt).toBeInstanceOf(Date);
    // As TaskManager.get returns it too.
    expect(await tasks.get(task.id)).toMatchObject({ checkpointState: last.state, checkpointSavedAt: last.savedAt });

    // A task created with TaskManager: its own row, the last of 30 flushes in a row.
    const executionId = await executions.create('progress', null, 'MANUAL');
    const taskId = await tasks.create(executionId, { name: 'progress', parameters: { count: 30 } });
    const dispatched = await taskWithCheckpoint('progress', { executionId });
    expect(dispatched).toMatchObject({ id: taskId, checkpointState: { step: 30, of: 30, done: Array.from({ length: 30 }, (_, i) => i) } });
    // The first run's row keeps its own.
    expect(await tasks.get(task.id)).toMatchObject({ checkpointState: { step: 2, of: 2, done: [0, 1] }, checkpointSavedAt: last.savedAt });

    expect((await scheduler.trigger('no-progress')).status).toBe('accepted');
    let plain: Task | undefined;
    await waitUntil(async () => !!([plain] = await tasks.list({ jobName: 'no-progress', status: 'Success' }))[0]);
    expect(plain).toMatchObject({ checkpointState: null, checkpointSavedAt: null });
  });

  it("never takes a task's checkpoint back to an older one: a late write of an earlier attempt leaves the newer", async () => {
    const recorder = app.get(RunRecorder);
    const job = app.get(JobRegistry).get('recorded-once')!;
    const executionId = await executions.create('revisions', null, 'MANUAL');
    const taskId = (await dataSource.getRepository(Task).insert(pendingTask(executionId))).identifiers[0].id as number;
    const run = { job, trigger: 'MANUAL' as const, scheduledAt: new Date(), startedAt: new Date(), instanceId: 'test', taskId: Number(taskId) };
    const earlier = (await recorder.start({ ...run, fencingToken: 5 }))!;
    const newer = (await recorder.start({ ...run, fencingToken: 6 }))!;
    const at = Date.UTC(2031, 0, 1, 0, 0, 0, 500);
    newer.checkpointSaved('{"by":6}', at + 10);
    await waitUntil(async () => (await tasks.get(Number(taskId))).checkpointState?.by === 6);
    earlier.checkpointSaved('{"by":5}', at);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await tasks.get(Number(taskId))).toMatchObject({ checkpointState: { by: 6 }, checkpointSavedAt: new Date(at + 10) });
    await newer.finish({ status: 'success', error: null });
    await earlier.finish({ status: 'success', error: null });
  });

  it('does not record (or run) a due time twice', async () => {
    const recorder = app.get(RunRecorder);
    const job = app.get(JobRegistry).get('recorded-once')!;
    const scheduledAt = new Date(Date.UTC(2030, 0, 1));
    const run = { job, trigger: 'SCHEDULE' as const, scheduledAt, startedAt: new Date(), instanceId: 'test' };
    const caught = executions.recordingStatus().duplicatesCaught;
    const first = await recorder.start({ ...run, fencingToken: 1 });
    expect(first?.executionId).toEqual(expect.any(Number));
    await first!.finish({ status: 'success', error: null });
    expect(await recorder.start({ ...run, fencingToken: 2 })).toBeNull();
    expect(executions.recordingStatus().duplicatesCaught).toBe(caught + 1);
    expect(await executions.count({ jobName: 'recorded-once' })).toBe(1);
  });

  it('stops a running task on request and waits for it', async () => {
    const id = await executions.create('stoppable', null, 'MANUAL');
    const taskId = await tasks.create(id, { name: 'until-stopped' });
    await gate.arrived.until('the task to run', (ids) => ids.includes(taskId));
    await executions.stopAndWait(id, 10_000);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Stopped', statusMessage: expect.stringMatching(/stopped/) });
    expect((await executions.get(id)).status).toBe('Stopped');
  });

  it('refuses a second hook for a vendor type; a hook that throws is logged and the change stands', async () => {
    expect(() => app.get(VendorHookRegistry).onTaskStatusChange('batch', () => undefined)).toThrow(DuplicateVendorHookError);
    const id = await executions.create('throwing', null, 'EVENT');
    const taskId = (await dataSource.getRepository(Task).insert({ ...pendingTask(id), vendorType: 'throwing' })).identifiers[0].id as number;
    await app.get(StatusChangeHandler).handle({ taskId, status: 'Success', revision: 1, fencingToken: 0 });
    expect((await tasks.get(taskId)).status).toBe('Success');
    expect((await executions.get(id)).status).toBe('Success');
    expect(logger.count('error', new RegExp(`hook for task ${taskId} failed \\(the status change stands\\): the hook broke`))).toBe(1);
  });

  it("hands a running task's check-ins to its vendor's processor, with the task", async () => {
    const id = await executions.create('progress', null, 'MANUAL');
    const taskId = await tasks.create(id, { name: 'reporter' });
    const { task, data } = await checkIns.until('the check-in', (events) => events.find((event) => event.task.id === taskId));
    expect(data).toEqual({ step: 1, of: 2 });
    expect(task).toMatchObject({ executionId: id, jobName: 'reporter', status: 'Running' });
  });

  it('updates tasks in batches by job id, writes named fields, and finds executions by task status', async () => {
    const id = await executions.create('batched', null, 'EVENT');
    const repository = dataSource.getRepository(Task);
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await repository.insert({ ...pendingTask(id), vendorType: 'batched' })).identifiers[0].id as number);
    const jobIds = (await tasks.list({ executionId: id, sort: { field: 'id', order: 'ASC' } })).map((task) => task.jobId);
    expect(await tasks.executionIdsByVendorAndStatus('batched', 'Pending')).toEqual([id]);

    await tasks.updateStatusInBatch(jobIds.slice(0, 3), 'Stopped', 2);
    expect(await tasks.count({ executionId: id, status: 'Stopped' })).toBe(3);
    expect((await executions.get(id)).status).toBe('Running'); // two are still pending
    await tasks.updateStatusInBatch(jobIds.slice(3), 'Success', 2);
    expect((await executions.get(id)).metrics).toMatchObject({ taskCount: 5, stoppedTaskCount: 3, successTaskCount: 2 });
    expect((await executions.get(id)).status).toBe('Stopped');
    expect(await tasks.executionIdsByVendorAndStatus('batched', 'Pending')).toEqual([]);

    await tasks.update({ id: ids[0], statusMessage: 'checked by hand', runCount: 4, status: 'Error' }, ['statusMessage', 'runCount']);
    expect(await tasks.get(ids[0])).toMatchObject({ statusMessage: 'checked by hand', runCount: 4, status: 'Stopped' });
    await tasks.updateExtraAttrs(ids[1], { reviewed: true });
    expect(await tasks.list({ executionId: id, extraAttrs: { reviewed: true } })).toEqual([expect.objectContaining({ id: ids[1] })]);
  });

  it("creates tasks within the caller's transaction: dispatched after its commit, never after a rollback", async () => {
    const rolledBack = dataSource.transaction(async (manager) => {
      const id = await executions.create('batch', 'tx', 'MANUAL', {}, manager);
      await tasks.create(id, { name: 'unit', parameters: { n: -1 } }, {}, manager);
      throw new Error('the caller changed its mind');
    });
    await expect(rolledBack).rejects.toThrow('the caller changed its mind');
    expect(await executions.count({ vendorId: 'tx' })).toBe(0);

    let taskId = 0;
    const committed = dataSource.transaction(async (manager) => {
      const id = await executions.create('batch', 'tx', 'MANUAL', {}, manager);
      taskId = await tasks.create(id, { name: 'unit', parameters: { n: -2 } }, {}, manager);
      return id;
    });
    const id = await committed;
    await gate.arrived.until('the committed task to run', (ids) => ids.includes(taskId));
    // The rolled-back task (n: -1) was never dispatched; the committed one (n: -2) ran once.
    expect(gate.units.events.filter((parameters) => parameters.n === -1 || parameters.n === -2)).toEqual([{ n: -2 }]);
    gate.release();
    await finalExecution(id);
    expect((await executions.get(id)).status).toBe('Success');
  });
});

describe('execution records: hooks and the built-in sweep', () => {
  // The database makes no difference here: SQLite.
  let db: TestDatabase;
  let app: INestApplicationContext;

  beforeAll(async () => {
    db = await TestDatabase.create('sqlite');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('keeps the newest executions per vendor: retainByVendor, then a job\'s retain, then the module default', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize: true }),
        SchedulerModule.forRoot({ minPeriod: 100, records: { retain: 3, retainByVendor: { overridden: 1 }, sweepEvery: false } }),
      ],
      providers: [RecordedJobs],
    }).compile();
    app = await moduleRef.init();
    const executions = app.get(ExecutionManager);
    for (const vendorType of ['kept-two', 'overridden', 'plain']) {
      for (let i = 0; i < 5; i++) await executions.markDone(await executions.create(vendorType, null, 'SCHEDULE'));
    }
    expect(await app.get(SweepJob).run()).toBe(3 + 4 + 2);
    expect(await executions.count({ vendorType: 'kept-two' })).toBe(2);
    expect(await executions.count({ vendorType: 'overridden' })).toBe(1);
    expect(await executions.count({ vendorType: 'plain' })).toBe(3);
    await app.close();
  });
});
