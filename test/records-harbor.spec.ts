import { Injectable, INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DistributedJob, ExecutionNotFinalError, InvalidQueryError, JobContext, RecordNotFoundError, SchedulerModule, StopTimeoutError } from '../lib';
import { Execution, ExecutionManager, isFinalStatus, schedulerEntities, SweepManager, Task, TaskManager, VendorHookRegistry } from '../lib/records';
import { CapturingLogger } from './support/app';
import { DATABASE_KINDS, TestDatabase } from './support/databases';
import { pendingTask, waitUntil } from './support/records';
import { EventLog } from './support/wait';

/** The task ids of the runs of `until-stopped` that have started. */
const started = new EventLog<number>();

@Injectable()
class Jobs {
  @DistributedJob({ name: 'until-stopped' })
  async untilStopped(ctx: JobContext) {
    started.push(ctx.taskId!);
    await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
  }
}

/**
 * The records as Harbor's task package has them (issue 11): stop and delete look at the tasks, not
 * only at the execution's status; stopAndWait's timeout covers the stop; retention per vendor id;
 * nested extraAttrs keys; status changes only through the status change path, also from outside.
 */
describe.each(DATABASE_KINDS)('execution records as Harbor has them on %s', (kind) => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let executions: ExecutionManager;
  let tasks: TaskManager;
  let sweep: SweepManager;
  let dataSource: DataSource;
  let logger: CapturingLogger;
  const taskChanges = new EventLog<Task>();
  const executionChanges = new EventLog<Execution>();

  beforeAll(async () => {
    db = await TestDatabase.create(kind);
    logger = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize: true }),
        SchedulerModule.forRoot({ minPeriod: 100, records: { sweepEvery: false } }),
      ],
      providers: [Jobs],
    })
      .setLogger(logger)
      .compile();
    moduleRef.useLogger(logger);
    const hooks = moduleRef.get(VendorHookRegistry);
    hooks.onTaskStatusChange('reported', (task) => taskChanges.push({ ...task }));
    hooks.onExecutionStatusChange('reported', (execution) => executionChanges.push({ ...execution }));
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

  /** A task inserted as it is (no replica runs it), of `vendorType`. */
  const insertTask = async (executionId: number, vendorType = 'revisions') =>
    (await dataSource.getRepository(Task).insert({ ...pendingTask(executionId), vendorType })).identifiers[0].id as number;

  /** An execution of `until-stopped`, its task running, ended by `end` while the task still runs. */
  async function endedWhileRunning(vendorType: string, end: (id: number) => Promise<void>): Promise<{ id: number; taskId: number }> {
    const id = await executions.create(vendorType, null, 'MANUAL');
    const taskId = await tasks.create(id, { name: 'until-stopped' });
    await started.until(`task ${taskId} to run`, (ids) => ids.includes(taskId));
    // Its handler runs once its start is being recorded: wait for the record.
    await waitUntil(async () => (await tasks.get(taskId)).status === 'Running', 10_000);
    await end(id);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Running' });
    return { id, taskId };
  }

  it('stops the running tasks of an execution that markError or markDone has ended', async () => {
    const errored = await endedWhileRunning('stop-final', (id) => executions.markError(id, 'creating the other tasks failed'));
    const done = await endedWhileRunning('stop-final', (id) => executions.markDone(id));
    expect((await executions.get(errored.id)).status).toBe('Error');

    await executions.stopAndWait(errored.id, 10_000);
    expect(await tasks.get(errored.taskId)).toMatchObject({ status: 'Stopped' });
    await executions.stop(done.id);
    await waitUntil(async () => (await tasks.get(done.taskId)).status === 'Stopped', 10_000);
    for (const { id } of [errored, done]) expect(isFinalStatus((await executions.get(id)).status)).toBe(true);
  });

  it('refuses to delete (and the sweep to clean) a final execution while a task of it still runs; deletes it once the task has ended', async () => {
    const { id, taskId } = await endedWhileRunning('delete-open', (id) => executions.markError(id, 'gave up'));
    const refused = await executions.delete(id).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ExecutionNotFinalError);
    expect(refused).toMatchObject({ executionIds: [id], taskIds: [taskId] });
    expect((refused as Error).message).toBe(`Execution ${id} cannot be deleted: execution ${id} has not ended yet (task ${taskId} is still Pending or Running); stop it or wait for it to end.`);
    await expect(executions.deleteByVendor('delete-open', null)).rejects.toMatchObject({ executionIds: [id], taskIds: [taskId] });
    expect(await sweep.listCandidates('delete-open', 0)).toEqual([]);
    expect(await sweep.clean([id])).toBe(0);

    // The task's end still finds its execution, and is recorded.
    const errorsBefore = logger.count('error', /./);
    await executions.stopAndWait(id, 10_000);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Stopped', endTime: expect.any(Date) });
    expect(logger.count('error', /./)).toBe(errorsBefore);
    expect(await sweep.listCandidates('delete-open', 0)).toEqual([id]);
    await executions.delete(id);
    await expect(executions.get(id)).rejects.toThrow(RecordNotFoundError);
    expect(await tasks.count({ executionId: id })).toBe(0);
  });

  it("times stopAndWait from its call: the execution's row locked by another connection makes it time out on time, not when the lock goes", async () => {
    const id = await executions.create('stop-locked', null, 'MANUAL');
    const taskId = await insertTask(id);
    // Another connection (of another DataSource) takes the execution's row lock, as a long
    // transaction of the app would: a row lock on PostgreSQL and MariaDB, the write lock on SQLite.
    const other = new DataSource({ ...db.options, entities: schedulerEntities() });
    await other.initialize();
    const locker = other.createQueryRunner();
    let timer: NodeJS.Timeout | undefined;
    try {
      await locker.startTransaction();
      await locker.manager.update(Execution, { id }, { statusMessage: 'held by another transaction' });
      const released = new Promise<void>((resolve, reject) => (timer = setTimeout(() => locker.rollbackTransaction().then(resolve, reject), 2_500)));

      const from = Date.now();
      const outcome = await executions.stopAndWait(id, 500).catch((error: unknown) => error);
      const took = Date.now() - from;
      expect(outcome).toBeInstanceOf(StopTimeoutError);
      expect(outcome).toMatchObject({ executionId: id, timeoutMs: 500 });
      expect(took).toBeGreaterThanOrEqual(490);
      expect(took).toBeLessThan(1_500);

      await released;
      await executions.stopAndWait(id, 10_000);
      expect(await tasks.get(taskId)).toMatchObject({ status: 'Stopped' });
      expect((await executions.get(id)).status).toBe('Stopped');
    } finally {
      clearTimeout(timer);
      if (locker.isTransactionActive) await locker.rollbackTransaction();
      await locker.release();
      await other.destroy();
    }
  });

  it('keeps the newest N executions of each vendor id, newest by start time', async () => {
    const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);
    /** Creates a final execution of vendor id `vendorId` started `minutes` ago. */
    const ended = async (vendorId: string | null, minutes: number) => {
      const id = await executions.create('retained', vendorId, 'SCHEDULE');
      await executions.markDone(id);
      await dataSource.getRepository(Execution).update({ id }, { startTime: minutesAgo(minutes) });
      return id;
    };
    // Created in another order than they started: the last created started first.
    const a = [await ended('a', 1), await ended('a', 3), await ended('a', 2), await ended('a', 4)];
    const b = [await ended('b', 10), await ended('b', 20)];
    const none = [await ended(null, 5), await ended(null, 6), await ended(null, 7)];
    const oldestRunning = await executions.create('retained', 'a', 'SCHEDULE');
    await dataSource.getRepository(Execution).update({ id: oldestRunning }, { startTime: minutesAgo(100) });

    // Per vendor id, the two that started last stay: a (1, 2 minutes ago), b (both), null (5, 6).
    const expected = [a[1], a[3], none[2]].sort((x, y) => x - y);
    expect(await sweep.listCandidates('retained', 2)).toEqual(expected);
    expect(await sweep.clean(await sweep.listCandidates('retained', 2))).toBe(3);
    const left = (await executions.list({ vendorType: 'retained', pageSize: 100 })).map((e) => e.id).sort((x, y) => x - y);
    expect(left).toEqual([a[0], a[2], ...b, none[0], none[1], oldestRunning].sort((x, y) => x - y));
  });

  it('filters by nested extraAttrs keys, two and three levels deep, with keys and values bound', async () => {
    const nested = await executions.create('nested', null, 'EVENT', { artifact: { digest: 'sha256:abc', tag: 'v1' }, a: { b: { c: 3, 'it\'s "x"': true } } });
    const flat = await executions.create('nested', null, 'EVENT', { 'artifact.digest': 'sha256:abc' });
    const other = await executions.create('nested', null, 'EVENT', { artifact: { digest: 'sha256:def' }, a: { b: { c: 4 } } });
    const ids = async (extraAttrs: Record<string, string | number | boolean>) =>
      (await executions.list({ vendorType: 'nested', extraAttrs, pageSize: 100 })).map((e) => e.id).sort((x, y) => x - y);
    expect(await ids({ 'artifact.digest': 'sha256:abc' })).toEqual([nested, flat]);
    expect(await ids({ 'artifact.digest': 'sha256:def' })).toEqual([other]);
    expect(await ids({ 'artifact.tag': 'v1', 'a.b.c': 3 })).toEqual([nested]);
    expect(await ids({ 'a.b.c': 4 })).toEqual([other]);
    expect(await ids({ 'a.b.it\'s "x"': true })).toEqual([nested]);
    expect(await ids({ 'a.b.c.d': 3 })).toEqual([]);
    expect(await ids({ "a.b') OR 1=1 --": 3 })).toEqual([]);
    expect(await executions.count({ vendorType: 'nested', extraAttrs: { 'a.b.c': 3 } })).toBe(1);

    const taskId = await insertTask(nested);
    await tasks.updateExtraAttrs(taskId, { scan: { report: { uuid: 'r-1' } } });
    expect((await tasks.list({ extraAttrs: { 'scan.report.uuid': 'r-1' } })).map((task) => task.id)).toEqual([taskId]);
  });

  it("refuses a status in TaskManager.update, saying which path changes it; the task and its execution stay as they were", async () => {
    const id = await executions.create('update-status', null, 'MANUAL');
    const taskId = await insertTask(id);
    const task = await tasks.get(taskId);
    const execution = await executions.get(id);
    const asFields = await tasks.update({ ...task, status: 'Success' }, ['statusMessage', 'status' as 'statusMessage']).catch((error: unknown) => error);
    expect(asFields).toBeInstanceOf(InvalidQueryError);
    expect((asFields as Error).message).toMatch(/"fields" has an invalid value 'status'.*status change only through TaskManager\.reportStatus/);
    const asObject = await tasks.update(task, { status: 'Success' } as never).catch((error: unknown) => error);
    expect(asObject).toBeInstanceOf(InvalidQueryError);
    expect((asObject as Error).message).toMatch(/status change only through TaskManager\.reportStatus/);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Pending', statusMessage: null });
    expect(await executions.get(id)).toEqual(execution);
  });

  it('gives an execution without tasks zero metrics, and an execution the end time of its last task, not of its last change', async () => {
    const zeros = { taskCount: 0, pendingTaskCount: 0, runningTaskCount: 0, successTaskCount: 0, errorTaskCount: 0, stoppedTaskCount: 0 };
    const empty = await executions.create('metrics', null, 'MANUAL');
    expect((await executions.get(empty)).metrics).toEqual(zeros);
    await executions.markDone(empty);
    expect((await executions.get(empty)).metrics).toEqual(zeros);

    const id = await executions.create('metrics', null, 'MANUAL');
    const [first, second] = [await insertTask(id), await insertTask(id)];
    const now = Date.now();
    // The second task ends last, but its end is reported first; the first's end arrives late.
    await tasks.reportStatus({ id: second }, { status: 'Success', revision: 1, at: new Date(now - 1_000) });
    await tasks.reportStatus({ id: first }, { status: 'Success', revision: 1, at: new Date(now - 5_000) });
    const execution = await executions.get(id);
    expect(execution).toMatchObject({ status: 'Success', metrics: { ...zeros, taskCount: 2, successTaskCount: 2 } });
    expect(execution.endTime).toEqual(new Date(now - 1_000));

    // The sweep repairing an execution whose refresh was lost: its end is still its last task's.
    const repaired = await executions.create('metrics', null, 'MANUAL');
    await dataSource.getRepository(Task).insert({ ...pendingTask(repaired), status: 'Error', endTime: new Date(now - 60_000) });
    await sweep.fixDanglingStateExecution(3_600_000);
    expect(await executions.get(repaired)).toMatchObject({ status: 'Error', endTime: new Date(now - 60_000) });
  });

  it('takes status reports from outside by job id or task id with a revision: refuses stale ones, refreshes the execution and runs the hooks', async () => {
    const id = await executions.create('reported', 'policy-9', 'EVENT');
    const taskId = await insertTask(id, 'reported');
    const { jobId } = await tasks.get(taskId);

    expect(await tasks.reportStatus({ jobId }, { status: 'Running', revision: 5 })).toBe('applied');
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Running', statusRevision: 5 });
    // A report older than the last one of this attempt changes nothing.
    expect(await tasks.reportStatus({ jobId }, { status: 'Error', revision: 3, message: 'late' })).toBe('outdated');
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Running', statusRevision: 5, statusMessage: null });
    // From an attempt older than the task's: refused too.
    await dataSource.getRepository(Task).update({ id: taskId }, { fencingToken: 4 });
    expect(await tasks.reportStatus({ id: taskId }, { status: 'Error', revision: 9, fencingToken: 3 })).toBe('superseded');

    expect(await tasks.reportStatus({ id: taskId }, { status: 'Success', revision: 6, message: 'copied 12 images' })).toBe('applied');
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Success', statusRevision: 6, statusMessage: 'copied 12 images', endTime: expect.any(Date) });
    expect(await executions.get(id)).toMatchObject({ status: 'Success', statusMessage: 'copied 12 images', metrics: expect.objectContaining({ successTaskCount: 1 }) });
    await taskChanges.until('the hook of the task', (events) => events.find((task) => task.id === taskId && task.status === 'Success'));
    await executionChanges.until('the hook of the execution', (events) => events.find((execution) => execution.id === id && execution.status === 'Success'));
    // An ended attempt's end is its last word.
    expect(await tasks.reportStatus({ jobId }, { status: 'Error', revision: 7 })).toBe('outdated');

    await expect(tasks.reportStatus({ jobId: 'no-such-job' }, { status: 'Running', revision: 1 })).rejects.toThrow(RecordNotFoundError);
    await expect(tasks.reportStatus({ id: taskId }, { status: 'Done' as 'Success', revision: 8 })).rejects.toThrow(InvalidQueryError);
    await expect(tasks.reportStatus({ id: taskId }, { status: 'Success', revision: -1 })).rejects.toThrow(InvalidQueryError);
  });
});
