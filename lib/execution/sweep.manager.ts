import { Inject, Injectable, Logger } from '@nestjs/common';
import { Brackets } from 'typeorm';
import { Coordinator, type JobRecord } from '../coordination/coordinator.interface';
import { HEARTBEAT_INTERVAL_MS, RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { DEFAULT_DANGLING_PENDING_MS, FINAL_STATUSES, OPEN_STATUSES, TaskStatus } from './execution.constants';
import { CorruptJobError, InvalidQueryError } from '../errors';
import { Execution } from './execution.entity';
import { checkId, checkString, checkWhole } from './record-query.validation';
import { RecordsDialect } from './records.dialect';
import { RecordsRunRecorder, STATUS_OF } from './records.run-recorder';
import { StatusChangeHandler } from './status-change.handler';
import { TaskLog } from './task-log.entity';
import { Task } from './task.entity';

/** Executions deleted per transaction: bounded so a large sweep never holds long locks. */
const CLEAN_BATCH = 500;


/** Open tasks read per query, so also the most job names one `describe` asks about. */
const ABANDONED_BATCH = 200;

/**
 * How much longer than `lockTtl` ago a Running task must have started before it may be ended as
 * abandoned: its start is stamped on its replica's estimate of the coordinator's clock, and its
 * replica writes its end just after releasing its lease. No lease is the condition; this only
 * keeps the sweep away from runs that are starting or ending.
 */
export const ABANDONED_MARGIN_MS = 5_000;

/** The message of a Running task ended because no replica held its run any more. */
export const ABANDONED_RUN_MESSAGE =
  'abandoned: its lease expired without a finish (its replica was killed, paused past its lease or cut off) and no attempt recovered it';
/** The message of a Pending task ended because it never started and no replica holds a run of it. */
export const ABANDONED_PENDING_MESSAGE = 'abandoned: it never started and no replica holds a run of it (its replica stopped before running it)';

type OpenTask = Pick<Task, 'id' | 'executionId' | 'jobName' | 'status' | 'fencingToken'>;

/**
 * A lease that expired without a finish is recovered within a heartbeat by a live replica with its
 * job (LeaseRecovery, which looks at every expiry it knows of, and at least once a heartbeat):
 * until this long after its expiry, its task is left to that recovery.
 */
const RECOVERY_WAIT_MS = HEARTBEAT_INTERVAL_MS;

/** What the coordinator said of a batch's jobs: their records, and the jobs it could not say (corrupt). */
interface Holders {
  records: Map<string, JobRecord>;
  unknown: Set<string>;
  /** Leases that expired after this (coordinator's clock) may still be recovered. */
  recoverableAfter: number;
  /** Pending tasks whose dispatch waits to be claimed. */
  queued: Set<number>;
}

/** Removes old executions and repairs ones left in a state their tasks contradict. */
@Injectable()
export class SweepManager {
  private readonly logger = new Logger('ExecutionRecords');
  /** On the embedded coordinator, leases live in this process: the ones held before it started went with the previous one. */
  private readonly startedAt = Date.now();

  constructor(
    @Inject(RecordsDialect) private readonly dialect: RecordsDialect,
    private readonly statusChanges: StatusChangeHandler,
    private readonly coordinator: Coordinator,
    private readonly recorder: RecordsRunRecorder,
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly schedulerOptions: ResolvedSchedulerOptions,
  ) {}

  /**
   * The final executions of `vendorType` older than the newest `retainCount` executions of their
   * vendor, as Harbor keeps them: per (vendorType, vendorId), newest by start time (ties: the
   * later id), counting executions that are still going. Executions with a task still Pending or
   * Running are left out (their end would find no execution).
   */
  async listCandidates(vendorType: string, retainCount: number): Promise<number[]> {
    checkString('SweepManager.listCandidates', 'vendorType', vendorType);
    checkWhole('SweepManager.listCandidates', 'retainCount', retainCount, 0);
    // ROW_NUMBER() is in PostgreSQL, MySQL 8, MariaDB 10.2 and SQLite 3.25.
    const ranked = this.dialect.manager
      .createQueryBuilder(Execution, 'r')
      .select('r.id', 'id')
      .addSelect('r.status', 'status')
      .addSelect('ROW_NUMBER() OVER (PARTITION BY r.vendorId ORDER BY r.startTime DESC, r.id DESC)', 'recency')
      .where('r.vendorType = :vendorType', { vendorType });
    const rows: { id: string | number }[] = await this.dialect.manager
      .createQueryBuilder()
      .select('ranked.id', 'id')
      .from(`(${ranked.getQuery()})`, 'ranked')
      .where('ranked.recency > :retainCount AND ranked.status IN (:...final)')
      .andWhere(`NOT EXISTS (SELECT 1 FROM ${this.table(Task)} t WHERE t.execution_id = ranked.id AND t.status IN (:...open))`)
      .setParameters({ ...ranked.getParameters(), retainCount, final: FINAL_STATUSES, open: OPEN_STATUSES })
      .orderBy('ranked.id', 'ASC')
      .getRawMany();
    return rows.map((row) => Number(row.id));
  }

  /**
   * Deletes these executions, if final and none of their tasks is still Pending or Running, with
   * their tasks and logs, in batches; returns how many were deleted. The others are left as they
   * are (Harbor's clean leaves them too).
   */
  async clean(executionIds: number[]): Promise<number> {
    if (!Array.isArray(executionIds)) throw new InvalidQueryError('SweepManager.clean', 'executionIds', executionIds, 'expected an array of ids');
    executionIds.forEach((id, index) => checkId('SweepManager.clean', `executionIds[${index}]`, id));
    let deleted = 0;
    for (let i = 0; i < executionIds.length; i += CLEAN_BATCH) {
      const batch = executionIds.slice(i, i + CLEAN_BATCH);
      deleted += await this.dialect.transaction(async (manager) => {
        // Locked as a status change locks them: a change of one of their tasks waits for this
        // transaction, then finds no execution; one that came first is seen here.
        const final = await this.dialect
          .forUpdate(
            manager
              .createQueryBuilder(Execution, 'r')
              .select('r.id')
              .where('r.id IN (:...batch) AND r.status IN (:...final)', { batch, final: FINAL_STATUSES })
              .andWhere(`NOT EXISTS (SELECT 1 FROM ${this.table(Task)} t WHERE t.execution_id = r.id AND t.status IN (:...open))`, { open: OPEN_STATUSES }),
          )
          .getMany();
        if (final.length === 0) return 0;
        const ids = final.map((row) => row.id);
        const taskIds = (await manager.createQueryBuilder(Task, 't').select('t.id').where('t.executionId IN (:...ids)', { ids }).getMany()).map((t) => t.id);
        for (let j = 0; j < taskIds.length; j += CLEAN_BATCH) {
          await manager.createQueryBuilder().delete().from(TaskLog).where('taskId IN (:...taskIds)', { taskIds: taskIds.slice(j, j + CLEAN_BATCH) }).execute();
        }
        await manager.createQueryBuilder().delete().from(Task).where('executionId IN (:...ids)', { ids }).execute();
        await manager.createQueryBuilder().delete().from(Execution).where('id IN (:...ids)', { ids }).execute();
        return ids.length;
      });
    }
    return deleted;
  }

  /**
   * Repairs what a replica that stopped without reporting left open: first the tasks whose run no
   * replica holds any more (`fixAbandonedTasks`), then executions whose status their tasks
   * contradict: still Running (or Pending) although every task has ended (a status refresh lost
   * with a crash), and ones without any task for longer than `pendingGraceMs` (their creator died
   * before creating tasks), which end as Error. Returns how many tasks and executions it repaired.
   */
  async fixDanglingStateExecution(pendingGraceMs = DEFAULT_DANGLING_PENDING_MS): Promise<number> {
    checkWhole('SweepManager.fixDanglingStateExecution', 'pendingGraceMs', pendingGraceMs, 0);
    const tasksEnded = await this.fixAbandonedTasks(pendingGraceMs);
    const open = ['Pending', 'Running'];
    const settled = await this.dialect.manager
      .createQueryBuilder(Execution, 'r')
      .select('r.id')
      .where('r.status IN (:...open)', { open })
      .andWhere(`EXISTS (SELECT 1 FROM ${this.table(Task)} t WHERE t.execution_id = r.id)`)
      .andWhere(`NOT EXISTS (SELECT 1 FROM ${this.table(Task)} t WHERE t.execution_id = r.id AND t.status IN (:...open))`, { open })
      .getMany();
    for (const { id } of settled) {
      const committed = await this.dialect.transaction(async (manager) => {
        return this.statusChanges.refreshExecution(manager, await this.statusChanges.lockExecution(manager, id));
      });
      await this.statusChanges.runHooks({ task: null, execution: committed });
    }
    const abandoned = await this.dialect.manager
      .createQueryBuilder(Execution, 'r')
      .select('r.id')
      .where('r.status IN (:...open) AND r.updateTime < :before', { open, before: new Date(Date.now() - pendingGraceMs) })
      .andWhere(`NOT EXISTS (SELECT 1 FROM ${this.table(Task)} t WHERE t.execution_id = r.id)`)
      .getMany();
    if (abandoned.length > 0) {
      const ids = abandoned.map((row) => row.id);
      const now = new Date();
      await this.dialect.manager
        .createQueryBuilder()
        .update(Execution)
        .set({ status: 'Error', statusMessage: `no task was created within ${pendingGraceMs} ms`, updateTime: now, endTime: now })
        .where('id IN (:...ids) AND status IN (:...open)', { ids, open })
        .execute();
    }
    const fixed = settled.length + abandoned.length;
    if (fixed > 0) this.logger.log(`Fixed ${fixed} execution(s) left in a state their tasks contradict.`);
    return tasksEnded + fixed;
  }

  /**
   * Ends the tasks that a replica which stopped without reporting (killed, or cut off until its
   * lease expired) left open, and refreshes their executions through the status change handler:
   * a task Running although the coordinator holds no live lease of its run (its job and fencing
   * token), started longer than `lockTtl` + `ABANDONED_MARGIN_MS` ago, ends as Error (or, if the
   * coordinator recorded that run's end, as that end: its replica released the lease and had not
   * written the end yet); a task Pending for longer than `pendingGraceMs` that no live lease runs
   * ends as Error. The coordinator is asked once per batch of tasks; when it does not answer,
   * nothing is ended in this call. On the embedded coordinator, whose leases live in this
   * process, only tasks from before this process started are looked at. Returns how many it ended.
   */
  async fixAbandonedTasks(pendingGraceMs = DEFAULT_DANGLING_PENDING_MS): Promise<number> {
    checkWhole('SweepManager.fixAbandonedTasks', 'pendingGraceMs', pendingGraceMs, 0);
    // Writes this replica still has to make may be ends of runs whose leases it has released.
    if (this.recorder.waitingWrites > 0) {
      this.logger.warn(`Abandoned tasks are not looked for in this sweep: ${this.recorder.waitingWrites} record write(s) of this replica wait for the database.`);
      return 0;
    }
    if (!this.coordinator.isAvailable()) {
      this.skipAbandoned(`the coordinator (${this.coordinator.describeTarget()}) is unreachable`);
      return 0;
    }
    const clockNow = this.coordinator.clock.known ? this.coordinator.clock.now() : Date.now();
    let runningBefore = clockNow - this.schedulerOptions.lockTtl - ABANDONED_MARGIN_MS;
    let pendingBefore = Date.now() - pendingGraceMs;
    if (this.coordinator.kind === 'embedded') {
      runningBefore = Math.min(runningBefore, this.startedAt);
      pendingBefore = Math.min(pendingBefore, this.startedAt);
    }
    let ended = 0;
    let after = 0;
    for (;;) {
      const batch: OpenTask[] = await this.dialect.manager
        .createQueryBuilder(Task, 't')
        .select(['t.id', 't.executionId', 't.jobName', 't.status', 't.fencingToken'])
        .where('t.id > :after', { after })
        .andWhere(
          new Brackets((open) =>
            open
              .where('t.status = :running AND t.startTime < :runningBefore', { running: 'Running', runningBefore: new Date(runningBefore) })
              .orWhere('t.status = :pending AND t.creationTime < :pendingBefore', { pending: 'Pending', pendingBefore: new Date(pendingBefore) }),
          ),
        )
        .orderBy('t.id', 'ASC')
        .limit(ABANDONED_BATCH)
        .getMany();
      if (batch.length === 0) break;
      after = batch[batch.length - 1].id;
      const holders = await this.holders(batch);
      if (!holders) break;
      for (const task of batch) {
        const end = abandonedEnd(task, holders);
        if (!end) continue;
        // The task's own attempt: a report of it that lands first wins (its end is its last word),
        // and one landing after is refused as outdated; a newer attempt supersedes this change.
        const result = await this.statusChanges.handle({ taskId: task.id, executionId: task.executionId, fencingToken: task.fencingToken, ...end });
        if (result === 'applied') ended++;
      }
      if (batch.length < ABANDONED_BATCH) break;
    }
    if (ended > 0) this.logger.warn(`Ended ${ended} task(s) left open by a replica that stopped without reporting (no replica held their runs any more).`);
    return ended;
  }

  /**
   * What the coordinator says of these tasks' jobs (one `describe`) and which Pending ones still
   * wait to be claimed (one round trip per job), or null if it did not answer.
   */
  private async holders(tasks: OpenTask[]): Promise<Holders | null> {
    const unknown = new Set<string>();
    for (let asked = [...new Set(tasks.map((task) => task.jobName))]; ; ) {
      try {
        const records = await this.coordinator.describe(asked);
        const recoverableAfter = this.coordinator.clock.now() - RECOVERY_WAIT_MS;
        return { records: new Map(records.map((record) => [record.name, record])), unknown, recoverableAfter, queued: await this.queued(tasks, asked, unknown) };
      } catch (error) {
        if (error instanceof CorruptJobError && asked.includes(error.job)) {
          // Whether its runs are held cannot be told: its tasks are left as they are.
          unknown.add(error.job);
          asked = asked.filter((name) => name !== error.job);
          if (asked.length === 0) return { records: new Map(), unknown, recoverableAfter: 0, queued: new Set() };
          continue;
        }
        const reason = this.coordinator.isUnreachableError(error) ? `the coordinator (${this.coordinator.describeTarget()}) is unreachable` : `the coordinator failed`;
        this.skipAbandoned(`${reason}: ${(error as Error).message}`);
        return null;
      }
    }
  }

  /**
   * The Pending tasks among these whose dispatch waits in the coordinator to be claimed (a
   * backlog, not abandoned). A job whose pending triggers cannot be read (a corrupt key) joins
   * `unknown`: its tasks are left as they are.
   */
  private async queued(tasks: OpenTask[], jobs: string[], unknown: Set<string>): Promise<Set<number>> {
    const queued = new Set<number>();
    for (const name of jobs) {
      const ids = tasks.filter((task) => task.jobName === name && task.status === 'Pending').map((task) => task.id);
      if (ids.length === 0) continue;
      try {
        const pending = await this.coordinator.tasksPending(name, ids);
        ids.forEach((id, index) => pending[index] && queued.add(id));
      } catch (error) {
        if (!/WRONGTYPE/.test((error as Error).message)) throw error;
        unknown.add(name);
      }
    }
    return queued;
  }

  private skipAbandoned(reason: string): void {
    this.logger.warn(`Abandoned tasks are not looked for in this sweep (nothing is ended without the coordinator's answer): ${reason}.`);
  }

  private table(entity: Function): string {
    const metadata = this.dialect.manager.connection.getMetadata(entity);
    return this.dialect.manager.connection.driver.escape(metadata.tableName);
  }
}

/** How an open task ends if no live lease runs it; null if one does, or if that cannot be told. */
function abandonedEnd(task: OpenTask, { records, unknown, recoverableAfter, queued }: Holders): { status: TaskStatus; message: string | null; at?: Date } | null {
  // Waiting behind the job's or the workers' concurrency: it starts when a slot frees.
  if (unknown.has(task.jobName) || queued.has(task.id)) return null;
  // A job the coordinator does not have (gone from the code, or lost with Redis's data) holds no lease.
  const record = records.get(task.jobName);
  const names = (lease: { taskId?: number; fencingToken: number }) => lease.taskId === task.id || (task.fencingToken > 0 && lease.fencingToken === task.fencingToken);
  // A live lease: the run goes on, however long ago it started. A lease expired without a finish
  // lately (a live replica with the job recovers it within a heartbeat), or a recovered run's next
  // attempt waiting to be claimed: that attempt will take the task over.
  const held =
    (record?.running ?? []).some(names) ||
    (record?.awaitingRecovery ?? []).some((lease) => names(lease) && lease.expiresAt > recoverableAfter) ||
    (record?.pendingRetries ?? []).some((retry) => retry.taskId === task.id || (task.fencingToken > 0 && retry.firstFencingToken === task.fencingToken));
  if (held) return null;
  if (task.status === 'Pending') return { status: 'Error', message: ABANDONED_PENDING_MESSAGE };
  const last = record?.lastRun;
  if (last && last.fencingToken === task.fencingToken && last.status === 'abandoned') {
    // Its replica died and its job's retry.attempts left no attempt to recover it (recover.lua's words).
    return { status: 'Error', message: `abandoned: ${last.error}`, at: last.finishedAt === null ? undefined : new Date(last.finishedAt) };
  }
  if (last && last.fencingToken === task.fencingToken && last.status !== 'running' && last.status !== 'abandoned' && last.finishedAt !== null) {
    // The run ended and its replica told the coordinator, but its records do not say so (yet).
    return { status: STATUS_OF[last.status], message: last.error, at: new Date(last.finishedAt) };
  }
  return { status: 'Error', message: ABANDONED_RUN_MESSAGE };
}
