import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import type { EntityManager, SelectQueryBuilder } from 'typeorm';
import { ExecutionNotFinalError, RecordNotFoundError, StopTimeoutError } from '../errors';
import { NO_TASKS } from './execution-status';
import { ExecutionStatus, ExecutionTrigger, isFinalStatus, OPEN_STATUSES } from './execution.constants';
import { Execution, JsonObject } from './execution.entity';
import { applyFilters, applyPage } from './record-query';
import type { ExecutionQuery } from './record-query.interface';
import { checkExecutionQuery, checkId, checkOneOf, checkString, checkStringOrNumber, checkWhole, checkJsonObject, TRIGGERS } from './record-query.validation';
import { RecordsDialect } from './records.dialect';
import { RecordsRunRecorder } from './records.run-recorder';
import { StatusChangeHandler } from './status-change.handler';
import { SweepManager } from './sweep.manager';
import { Task } from './task.entity';
import { TaskManager } from './task.manager';

/** How often `stopAndWait` looks at the execution, at first and at most. */
const WAIT_POLL_MIN_MS = 25;
const WAIT_POLL_MAX_MS = 500;

/** How the records of this replica are doing, for health checks. */
export interface RecordingStatus {
  databaseReachable: boolean;
  /** Record writes kept while the database is unreachable. */
  waitingWrites: number;
  /** Runs the database's unique (job, due time) constraint caught as a second run of one due time. */
  duplicatesCaught: number;
}

/**
 * Executions: one per run of a `@DistributedJob` (written by the library), or created by callers
 * for their own actions, each holding tasks.
 */
@Injectable()
export class ExecutionManager {
  private readonly logger = new Logger('ExecutionRecords');

  constructor(
    @Inject(RecordsDialect) private readonly dialect: RecordsDialect,
    private readonly statusChanges: StatusChangeHandler,
    private readonly tasks: TaskManager,
    private readonly sweep: SweepManager,
    private readonly recorder: RecordsRunRecorder,
  ) {}

  /**
   * Records a new execution, Running until its tasks say otherwise (or `markDone` / `markError`
   * end one without tasks). Pass your transaction's `EntityManager` to commit it with your writes.
   */
  async create(
    vendorType: string,
    vendorId: string | number | null,
    trigger: ExecutionTrigger,
    extraAttrs: JsonObject = {},
    manager?: EntityManager,
  ): Promise<number> {
    checkString('ExecutionManager.create', 'vendorType', vendorType);
    if (vendorId !== null) checkStringOrNumber('ExecutionManager.create', 'vendorId', vendorId);
    checkOneOf('ExecutionManager.create', 'trigger', trigger, TRIGGERS);
    checkJsonObject('ExecutionManager.create', 'extraAttrs', extraAttrs);
    const now = new Date();
    const result = await (manager ?? this.dialect.manager).insert(Execution, {
      vendorType,
      vendorId: vendorId === null ? null : String(vendorId),
      status: 'Running',
      statusMessage: null,
      metrics: NO_TASKS,
      trigger,
      extraAttrs,
      startTime: now,
      updateTime: now,
      endTime: null,
      jobName: null,
      scheduledAt: null,
      dueAt: null,
      fencingToken: null,
    });
    return Number(result.identifiers[0].id);
  }

  /** Replaces the execution's extra attributes. */
  async updateExtraAttrs(id: number, extraAttrs: JsonObject): Promise<void> {
    checkId('ExecutionManager.updateExtraAttrs', 'id', id);
    checkJsonObject('ExecutionManager.updateExtraAttrs', 'extraAttrs', extraAttrs);
    const result = await this.dialect.manager.update(Execution, { id }, { extraAttrs, updateTime: new Date() });
    if (result.affected === 0) throw new RecordNotFoundError('execution', id);
  }

  /** Ends an execution as Success; needed for executions without tasks. */
  async markDone(id: number, message?: string): Promise<void> {
    checkId('ExecutionManager.markDone', 'id', id);
    return this.finalize(id, 'Success', message ?? null);
  }

  /** Ends an execution as Error, e.g. when its tasks could not be created. */
  async markError(id: number, message: string): Promise<void> {
    checkId('ExecutionManager.markError', 'id', id);
    return this.finalize(id, 'Error', message);
  }

  /**
   * Stops every task of the execution that has not ended (see `TaskManager.stop`), whatever the
   * execution's status: `markError` or `markDone` may have ended it while tasks still run or wait
   * to (Harbor's own advice is `markError` when creating the remaining tasks fails). An execution
   * without tasks that has not ended ends `Stopped`.
   */
  async stop(id: number): Promise<void> {
    checkId('ExecutionManager.stop', 'id', id);
    const execution = await this.get(id);
    // A task between two attempts (Error, its retry pending) gets no next one, even in a final execution.
    await this.tasks.stopPendingRetries(id);
    const open = await this.openTasks([id]);
    if (open.length > 0) {
      await Promise.all(open.map((task) => this.tasks.stopTask(task)));
      return;
    }
    if (isFinalStatus(execution.status)) return;
    if ((await this.tasks.count({ executionId: id })) === 0) await this.finalize(id, 'Stopped', 'stopped');
  }

  /**
   * Stops the execution and waits until it is final and all its tasks have ended; throws
   * `StopTimeoutError` once `timeoutMs` have passed since the call, the stop included: the stop
   * may wait for the execution's row, locked by another transaction (MySQL gives up on a lock
   * only after `innodb_lock_wait_timeout`, 50 s by default; PostgreSQL never). A stop still
   * waiting then goes on by itself, and the tasks it reaches still stop.
   */
  async stopAndWait(id: number, timeoutMs: number): Promise<void> {
    checkId('ExecutionManager.stopAndWait', 'id', id);
    checkWhole('ExecutionManager.stopAndWait', 'timeoutMs', timeoutMs, 0);
    const deadline = Date.now() + timeoutMs;
    const work = this.stopAndWaitUntil(id, deadline);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, timeoutMs, 'timeout')));
    try {
      if ((await Promise.race([work, timedOut])) === 'stopped') return;
    } finally {
      clearTimeout(timer);
    }
    work.catch((error: Error) => this.logger.warn(`The stop of execution ${id} failed after its stopAndWait had timed out: ${error.message}`));
    throw new StopTimeoutError(id, timeoutMs);
  }

  private async stopAndWaitUntil(id: number, deadline: number): Promise<'stopped' | 'timeout'> {
    let pause = WAIT_POLL_MIN_MS;
    const pauseOrTimeout = async (): Promise<boolean> => {
      if (Date.now() >= deadline) return true;
      await delay(Math.min(pause, Math.max(1, deadline - Date.now())));
      pause = Math.min(pause * 2, WAIT_POLL_MAX_MS);
      return false;
    };
    // SQLite refuses at once (rather than waits) a write while another connection holds the
    // database: the stop is tried again until the deadline, as it would have waited elsewhere.
    for (;;) {
      try {
        await this.stop(id);
        break;
      } catch (error) {
        if (!this.dialect.isLockContention(error)) throw error;
        if (await pauseOrTimeout()) return 'timeout';
      }
    }
    pause = WAIT_POLL_MIN_MS;
    while (!(await this.hasEnded(id))) {
      if (await pauseOrTimeout()) return 'timeout';
    }
    return 'stopped';
  }

  /** Final, and so are all its tasks. */
  private async hasEnded(id: number): Promise<boolean> {
    return isFinalStatus((await this.get(id)).status) && (await this.openTasks([id])).length === 0;
  }

  /** `stopAndWait`, then, if `originalError` is given, `markError` with its message. */
  async stopAndWaitWithError(id: number, timeoutMs: number, originalError?: Error | string | null): Promise<void> {
    await this.stopAndWait(id, timeoutMs);
    if (originalError) await this.markError(id, originalError instanceof Error ? originalError.message : originalError);
  }

  /**
   * Deletes a final execution with its tasks and their logs; `ExecutionNotFinalError` while it is
   * not final or any of its tasks is still Pending or Running (its end would find no execution).
   */
  async delete(id: number): Promise<void> {
    checkId('ExecutionManager.delete', 'id', id);
    const execution = await this.get(id);
    const refused = async () => new ExecutionNotFinalError([id], `Execution ${id} cannot be deleted`, (await this.openTasks([id])).map((task) => task.id));
    if (!isFinalStatus(execution.status)) throw await refused();
    if ((await this.sweep.clean([id])) > 0) return;
    // `clean` left it: a task of it is open (or it was deleted meanwhile, which is what was asked).
    if ((await this.dialect.manager.countBy(Execution, { id })) > 0) throw await refused();
  }

  /**
   * Deletes every execution of a vendor; refuses (deleting nothing) while any of them is not
   * final or has a task still Pending or Running.
   */
  async deleteByVendor(vendorType: string, vendorId: string | number | null): Promise<void> {
    checkString('ExecutionManager.deleteByVendor', 'vendorType', vendorType);
    if (vendorId !== null) checkStringOrNumber('ExecutionManager.deleteByVendor', 'vendorId', vendorId);
    const executions = await this.ofVendor(this.dialect.manager.createQueryBuilder(Execution, 'r').select(['r.id', 'r.status']), 'r', vendorType, vendorId).getMany();
    const openTasks = await this.ofVendor(
      this.dialect.manager
        .createQueryBuilder(Task, 't')
        .select(['t.id', 't.executionId'])
        .innerJoin(Execution, 'r', 'r.id = t.executionId')
        .where('t.status IN (:...open)', { open: OPEN_STATUSES }),
      'r',
      vendorType,
      vendorId,
    ).getMany();
    const open = new Set([...executions.filter((execution) => !isFinalStatus(execution.status)).map((execution) => execution.id), ...openTasks.map((task) => task.executionId)]);
    if (open.size > 0) {
      throw new ExecutionNotFinalError([...open].sort((a, b) => a - b), `The executions of vendor ${vendorType}/${vendorId} cannot be deleted`, openTasks.map((task) => task.id));
    }
    await this.sweep.clean(executions.map((execution) => execution.id));
  }

  private ofVendor<T extends object>(query: SelectQueryBuilder<T>, alias: string, vendorType: string, vendorId: string | number | null): SelectQueryBuilder<T> {
    query.andWhere(`${alias}.vendorType = :vendorType`, { vendorType });
    if (vendorId === null) return query.andWhere(`${alias}.vendorId IS NULL`);
    return query.andWhere(`${alias}.vendorId = :vendorId`, { vendorId: String(vendorId) });
  }

  /** The tasks of these executions that have not ended. */
  private openTasks(executionIds: number[]): Promise<Task[]> {
    return this.dialect.manager
      .createQueryBuilder(Task, 't')
      .where('t.executionId IN (:...executionIds) AND t.status IN (:...open)', { executionIds, open: OPEN_STATUSES })
      .orderBy('t.id', 'ASC')
      .getMany();
  }

  async get(id: number): Promise<Execution> {
    checkId('ExecutionManager.get', 'id', id);
    const execution = await this.dialect.manager.findOneBy(Execution, { id });
    if (!execution) throw new RecordNotFoundError('execution', id);
    return execution;
  }

  /** A page of the executions matching `query`; `InvalidQueryError` for a field or value it cannot take. */
  async list(query: ExecutionQuery = {}): Promise<Execution[]> {
    const checked = checkExecutionQuery('ExecutionManager.list', query);
    return applyPage(this.filtered(checked), checked).getMany();
  }

  async count(query: ExecutionQuery = {}): Promise<number> {
    return this.filtered(checkExecutionQuery('ExecutionManager.count', query)).getCount();
  }

  recordingStatus(): RecordingStatus {
    const { databaseReachable, waitingWrites, duplicatesCaught } = this.recorder;
    return { databaseReachable, waitingWrites, duplicatesCaught };
  }

  private filtered(query: ExecutionQuery) {
    return applyFilters(this.dialect.manager.createQueryBuilder(Execution, 'r'), query, this.dialect);
  }

  private async finalize(id: number, status: ExecutionStatus, message: string | null): Promise<void> {
    const committed = await this.dialect.transaction(async (manager) => {
      const execution = await this.statusChanges.lockExecution(manager, id);
      const now = new Date();
      // An execution recorded by an earlier version without tasks has no metrics: zeros, as today's.
      const patch = { status, statusMessage: message, updateTime: now, endTime: now, metrics: execution.metrics ?? NO_TASKS };
      await manager.update(Execution, { id }, patch);
      const previous = execution.status;
      return previous === status ? null : { after: Object.assign(execution, patch), previous };
    });
    await this.statusChanges.runHooks({ task: null, execution: committed });
  }
}
