import { Injectable, INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DistributedJob, JobContext, JobScheduler, SchedulerModule } from '../lib';
import { ExecutionManager, TaskManager } from '../lib/records';
import { CapturingLogger } from './support/app';
import { DATABASE_KINDS, TestDatabase, TestDatabaseKind } from './support/databases';
import { RecordsReplica } from './support/records-replica';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { eventually, EventLog } from './support/wait';

/**
 * The records of retried runs, on each database: a task's `runCount` grows by one per attempt
 * (each attempt a new fencing token), and its execution's final status follows the last attempt;
 * including an attempt that recovers a run whose replica was killed (kill -9) mid-run.
 */
const LOCK_TTL = 1_000;
const attempts = new EventLog<{ job: string; attempt: number; fencingToken: number; taskId: number | null }>();

@Injectable()
class RetriedJobs {
  /** Fails its first two attempts, succeeds on its third. */
  @DistributedJob({ name: 'flaky', vendorType: 'flaky', overlap: 'allow', retry: { attempts: 3, backoff: { delay: 50 } } })
  async flaky(ctx: JobContext) {
    attempts.push({ job: 'flaky', attempt: ctx.attempt, fencingToken: ctx.fencingToken, taskId: ctx.taskId });
    if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`);
  }

  /** Fails every attempt. */
  @DistributedJob({ name: 'failing', vendorType: 'failing', overlap: 'allow', retry: { attempts: 3, backoff: { delay: 50 } } })
  async failing(ctx: JobContext) {
    attempts.push({ job: 'failing', attempt: ctx.attempt, fencingToken: ctx.fencingToken, taskId: ctx.taskId });
    throw new Error(`attempt ${ctx.attempt} fails too`);
  }

  /** Fails; tried again 1.5 s later (long enough for a test to stop it between two attempts). */
  @DistributedJob({ name: 'slow-retry', vendorType: 'slow-retry', overlap: 'allow', retry: { attempts: 3, backoff: { delay: 1_500 } } })
  async slowRetry(ctx: JobContext) {
    attempts.push({ job: 'slow-retry', attempt: ctx.attempt, fencingToken: ctx.fencingToken, taskId: ctx.taskId });
    throw new Error(`attempt ${ctx.attempt} fails`);
  }
}

/**
 * The two-process cases are about replicas dying and handing back, not about the dialect (the
 * status changes they make are tested on all three databases by records.spec): each runs on one.
 */
const PROCESS_CASES: Record<TestDatabaseKind, ('kill -9' | 'hand-back')[]> = { postgres: ['kill -9'], mariadb: ['hand-back'], sqlite: [] };

describe.each(DATABASE_KINDS)('records of retried and recovered runs on %s', (kind) => {
  jest.setTimeout(60_000);
  let db: TestDatabase;
  let app: INestApplicationContext;
  const replicas: RecordsReplica[] = [];
  const keyPrefix = uniquePrefix('records-retry');

  beforeAll(async () => {
    // Task ids start again in each database: the handlers' log is this database's only.
    attempts.events.splice(0);
    db = await TestDatabase.create(kind);
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize: true }),
        SchedulerModule.forRoot({ redis: SHARED_REDIS_URL, keyPrefix, lockTtl: LOCK_TTL, shutdownTimeout: 1_000, records: { sweepEvery: false } }),
      ],
      providers: [RetriedJobs],
    })
      .setLogger(new CapturingLogger())
      .compile();
    app = await moduleRef.init();
  });

  // Each test's replicas only: a replica left from an earlier test could take the next test's task.
  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.kill()));
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  /** The task once it has ended with `status` after `runCount` attempts (a task is Error between attempts too). */
  const taskEnded = (taskId: number, status: string, runCount: number) =>
    eventually(`task ${taskId} to end ${status} after ${runCount} attempts`, () => app.get(TaskManager).get(taskId), (task) => task.status === status && task.runCount === runCount, 20_000);

  it("a task's runCount grows by one per attempt; its execution ends as its last attempt did", async () => {
    const executions = app.get(ExecutionManager);
    const tasks = app.get(TaskManager);
    const succeeded = await tasks.create(await executions.create('flaky', 'a', 'MANUAL'), { name: 'flaky' });
    const failed = await tasks.create(await executions.create('failing', 'b', 'MANUAL'), { name: 'failing' });

    const success = await taskEnded(succeeded, 'Success', 3);
    const tokens = attempts.events.filter((event) => event.taskId === succeeded).map((event) => event.fencingToken);
    expect(tokens).toHaveLength(3);
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
    expect(success.fencingToken).toBe(tokens[2]);
    expect(await executions.get(success.executionId)).toMatchObject({ status: 'Success', metrics: expect.objectContaining({ successTaskCount: 1, errorTaskCount: 0 }) });

    const error = await taskEnded(failed, 'Error', 3);
    expect(error).toMatchObject({ statusMessage: 'attempt 3 fails too' });
    expect(attempts.events.filter((event) => event.taskId === failed).map((event) => event.attempt)).toEqual([1, 2, 3]);
    expect(await executions.get(error.executionId)).toMatchObject({ status: 'Error' });
  });

  it("a job's retried run continues its first attempt's task: one execution, runCount 3, Success", async () => {
    const before = attempts.events.length;
    const receipt = await app.get(JobScheduler).trigger('flaky');
    expect(receipt.status).toBe('accepted');
    const third = await attempts.until('the third attempt of the triggered run', (events) => events.slice(before).find((event) => event.job === 'flaky' && event.attempt === 3));
    expect(new Set(attempts.events.slice(before).map((event) => event.taskId))).toEqual(new Set([third.taskId]));
    const task = await taskEnded(third.taskId!, 'Success', 3);
    expect(task).toMatchObject({ fencingToken: third.fencingToken });
    const execution = await app.get(ExecutionManager).get(task.executionId);
    expect(execution).toMatchObject({ status: 'Success', jobName: 'flaky', trigger: 'MANUAL' });
    expect(await app.get(TaskManager).count({ executionId: execution.id })).toBe(1);
  });

  it('stop() between two attempts removes the pending retry: no next attempt runs (TaskManager.stop, ExecutionManager.stop)', async () => {
    const executions = app.get(ExecutionManager);
    const tasks = app.get(TaskManager);
    const scheduler = app.get(JobScheduler);
    const before = attempts.events.length;
    const taskId = await tasks.create(await executions.create('slow-retry', 'c', 'MANUAL'), { name: 'slow-retry' });
    await scheduler.trigger('slow-retry');
    const [one, two] = await attempts.until('both first attempts', (events) => {
      const firsts = events.slice(before).filter((event) => event.job === 'slow-retry' && event.attempt === 1);
      return firsts.length === 2 && firsts;
    });
    const run = one.taskId === taskId ? two : one;
    await eventually('both retries pending', () => scheduler.describe('slow-retry'), (job) => job.pendingRetries.length === 2);
    const runTask = await eventually('the run between attempts', () => tasks.get(run.taskId!), (task) => task.status === 'Error');
    expect(await eventually('the task between attempts', () => tasks.get(taskId), (task) => task.status === 'Error')).toMatchObject({ runCount: 1 });

    await tasks.stop(taskId);
    expect((await scheduler.describe('slow-retry')).pendingRetries).toEqual([expect.objectContaining({ firstFencingToken: run.fencingToken, taskId: null })]);
    await executions.stop(runTask.executionId);
    expect((await scheduler.describe('slow-retry')).pendingRetries).toEqual([]);

    // Past the time the next attempts were due (1.5 s): none ran, and the records kept the last attempt's end.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(attempts.events.slice(before).filter((event) => event.job === 'slow-retry')).toHaveLength(2);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Error', runCount: 1 });
    expect(await executions.get(runTask.executionId)).toMatchObject({ status: 'Error' });
  });

  /**
   * Two replica processes with the `recoverable` job (endless in its first attempt), not this app:
   * creates a task of it and answers which replica runs attempt 1, the other, and that run.
   */
  async function taskOnAReplica() {
    const env = { DB_OPTIONS: JSON.stringify(db.options), REDIS_URL: SHARED_REDIS_URL, KEY_PREFIX: keyPrefix, LOCK_TTL: String(LOCK_TTL) };
    const pair = await Promise.all([RecordsReplica.start(env), RecordsReplica.start(env)]);
    replicas.push(...pair);
    const taskId = (await pair[0].call('recoverable')) as number;
    const runOf = (replica: RecordsReplica, attempt: number) => replica.runs.events.find((run) => run.taskId === taskId && run.attempt === attempt);
    await eventually('attempt 1 on a replica', async () => pair.filter((replica) => runOf(replica, 1)), (holders) => holders.length > 0, 30_000);
    const holder = pair.find((replica) => runOf(replica, 1))!;
    const first = runOf(holder, 1)!;
    expect(await app.get(TaskManager).get(taskId)).toMatchObject({ status: 'Running', runCount: 1, fencingToken: first.fencingToken });
    return { taskId, holder, other: pair.find((replica) => replica !== holder)!, first, runOf };
  }

  if (PROCESS_CASES[kind].includes('kill -9')) it('a task whose replica was killed mid-run is recovered on another replica as attempt 2: runCount 2, Success', async () => {
    const { taskId, holder, other, first, runOf } = await taskOnAReplica();
    await holder.kill();

    const task = await taskEnded(taskId, 'Success', 2);
    const recovered = runOf(other, 2)!;
    expect(recovered.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(task).toMatchObject({ fencingToken: recovered.fencingToken });
    expect(await app.get(ExecutionManager).get(task.executionId)).toMatchObject({ status: 'Success' });
    expect((await app.get(JobScheduler).describe('recoverable')).recoveredRuns).toBe(1);
  });

  if (PROCESS_CASES[kind].includes('hand-back')) it('a task still running when its replica shuts down is handed back: the other replica runs attempt 2 at once, runCount 2, Success', async () => {
    const { taskId, holder, other, first, runOf } = await taskOnAReplica();
    const recoveredBefore = (await app.get(JobScheduler).describe('recoverable')).recoveredRuns;
    // Graceful: after its shutdownTimeout (1 s) the run is aborted and released with its next attempt due now.
    await holder.stop();
    const task = await taskEnded(taskId, 'Success', 2);
    const resumed = runOf(other, 2)!;
    expect(resumed.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(task).toMatchObject({ fencingToken: resumed.fencingToken });
    // Handed back, not recovered after its lease expired.
    expect((await app.get(JobScheduler).describe('recoverable')).recoveredRuns).toBe(recoveredBefore);
  });
});
