import { Inject, Injectable } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import type { EntityManager } from 'typeorm';
import { ExecutionNotFinalError, RecordNotFoundError, StopTimeoutError } from '../errors';
import { ExecutionStatus, ExecutionTrigger, isFinalStatus } from './execution.constants';
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
      metrics: null,
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

  /** Stops every task of the execution that has not ended (see `TaskManager.stop`). */
  async stop(id: number): Promise<void> {
    checkId('ExecutionManager.stop', 'id', id);
    const execution = await this.get(id);
    // A task between two attempts (Error, its retry pending) gets no next one, even in a final execution.
    await this.tasks.stopPendingRetries(id);
    if (isFinalStatus(execution.status)) return;
    const open = await this.dialect.manager
      .createQueryBuilder(Task, 'r')
      .where('r.executionId = :id AND r.status IN (:...statuses)', { id, statuses: ['Pending', 'Running'] })
      .getMany();
    const total = open.length > 0 ? open.length : await this.tasks.count({ executionId: id });
    if (total === 0) return this.finalize(id, 'Stopped', 'stopped');
    await Promise.all(open.map((task) => this.tasks.stopTask(task)));
  }

  /** Stops the execution and waits until all its tasks have ended; throws `StopTimeoutError` after `timeoutMs`. */
  async stopAndWait(id: number, timeoutMs: number): Promise<void> {
    checkWhole('ExecutionManager.stopAndWait', 'timeoutMs', timeoutMs, 0);
    await this.stop(id);
    const deadline = Date.now() + timeoutMs;
    let pause = WAIT_POLL_MIN_MS;
    while (!isFinalStatus((await this.get(id)).status)) {
      if (Date.now() >= deadline) throw new StopTimeoutError(id, timeoutMs);
      await delay(Math.min(pause, Math.max(1, deadline - Date.now())));
      pause = Math.min(pause * 2, WAIT_POLL_MAX_MS);
    }
  }

  /** `stopAndWait`, then, if `originalError` is given, `markError` with its message. */
  async stopAndWaitWithError(id: number, timeoutMs: number, originalError?: Error | string | null): Promise<void> {
    await this.stopAndWait(id, timeoutMs);
    if (originalError) await this.markError(id, originalError instanceof Error ? originalError.message : originalError);
  }

  /** Deletes a final execution with its tasks and their logs. */
  async delete(id: number): Promise<void> {
    checkId('ExecutionManager.delete', 'id', id);
    const execution = await this.get(id);
    if (!isFinalStatus(execution.status)) throw new ExecutionNotFinalError([id], `Execution ${id} cannot be deleted`);
    await this.sweep.clean([id]);
  }

  /** Deletes every execution of a vendor; refuses (deleting nothing) while any of them is not final. */
  async deleteByVendor(vendorType: string, vendorId: string | number | null): Promise<void> {
    checkString('ExecutionManager.deleteByVendor', 'vendorType', vendorType);
    if (vendorId !== null) checkStringOrNumber('ExecutionManager.deleteByVendor', 'vendorId', vendorId);
    const ofVendor = this.dialect.manager
      .createQueryBuilder(Execution, 'r')
      .select(['r.id', 'r.status'])
      .where('r.vendorType = :vendorType', { vendorType });
    if (vendorId === null) ofVendor.andWhere('r.vendorId IS NULL');
    else ofVendor.andWhere('r.vendorId = :vendorId', { vendorId: String(vendorId) });
    const executions = await ofVendor.getMany();
    const open = executions.filter((execution) => !isFinalStatus(execution.status)).map((execution) => execution.id);
    if (open.length > 0) throw new ExecutionNotFinalError(open, `The executions of vendor ${vendorType}/${vendorId} cannot be deleted`);
    await this.sweep.clean(executions.map((execution) => execution.id));
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
      await manager.update(Execution, { id }, { status, statusMessage: message, updateTime: now, endTime: now });
      const previous = execution.status;
      return previous === status ? null : { after: Object.assign(execution, { status, statusMessage: message, updateTime: now, endTime: now }), previous };
    });
    await this.statusChanges.runHooks({ task: null, execution: committed });
  }
}
