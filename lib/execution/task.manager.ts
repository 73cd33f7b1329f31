import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { In, type EntityManager } from 'typeorm';
import { Coordinator } from '../coordination/coordinator.interface';
import { ContinuousJobError, InvalidQueryError, RecordNotFoundError, UnknownJobError } from '../errors';
import { JobRegistry } from '../scheduling/job.registry';
import { isFinalStatus, TaskStatus } from './execution.constants';
import type { JsonObject } from './execution.entity';
import { AfterCommit } from './after-commit';
import { applyFilters, applyPage } from './record-query';
import type { TaskQuery } from './record-query.interface';
import { checkId, checkJsonObject, checkStatus, checkString, checkStrings, checkTaskQuery, checkWhole } from './record-query.validation';
import { RecordsDialect } from './records.dialect';
import { nextRevision, StatusChangeHandler } from './status-change.handler';
import type { StatusChangeResult } from './status-change.handler';
import { TaskDispatcher } from './task-dispatcher';
import { stopPendingRetry } from './pending-retry.stop';
import { TaskLog } from './task-log.entity';
import { Task } from './task.entity';

/** What a task runs: an on-demand `@DistributedJob` and the parameters it gets as `ctx.parameters`. */
export interface TaskJob {
  name: string;
  parameters?: JsonObject;
}

/** One task of `TaskManager.createMany`: its job, parameters and extra attributes. */
export interface TaskSpec extends TaskJob {
  extraAttrs?: JsonObject;
}

/** Rows per INSERT of `createMany`: well under every dialect's limit on bound parameters. */
const INSERT_CHUNK = 200;

/** A task's status as reported from outside the library (`TaskManager.reportStatus`). */
export interface TaskStatusReport {
  status: TaskStatus;
  /**
   * Orders the reports of one attempt: one whose revision is below the task's `statusRevision`
   * (or equal, without a later status) is refused as outdated. A whole number, e.g. the time of
   * the change in ms, or a counter your worker keeps.
   */
  revision: number;
  /**
   * The attempt reporting, as `task.fencingToken` was when it started: a report of an older
   * attempt is refused as superseded; a higher one starts a new attempt (`runCount` + 1).
   * @default the task's current attempt
   */
  fencingToken?: number;
  /** Becomes the task's `statusMessage` (and a single-task execution's). */
  message?: string | null;
  /** When the change happened. @default now */
  at?: Date;
}

/** The fields `TaskManager.update` may write directly. */
export type TaskUpdatableField = 'statusMessage' | 'extraAttrs' | 'runCount' | 'startTime' | 'endTime';
const UPDATABLE_FIELDS: readonly TaskUpdatableField[] = ['statusMessage', 'extraAttrs', 'runCount', 'startTime', 'endTime'];
/** Fields that only the status change path writes, with the execution's refresh and the hooks. */
const STATUS_FIELDS: readonly string[] = ['status', 'statusRevision', 'fencingToken'];

/** Why `update` refuses these fields, if one of them is the status's. */
function refusal(fields: string[]): string {
  const status = fields.filter((field) => STATUS_FIELDS.includes(field));
  if (status.length === 0) return '';
  return `; ${status.join(', ')} change only through TaskManager.reportStatus, stop or updateStatusInBatch, which refresh the execution's status and metrics and run the hooks`;
}

function isRecordLike(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Tasks: the units that run, each belonging to an execution. `create` records a task and runs
 * its job once the record is committed.
 */
@Injectable()
export class TaskManager {
  private readonly logger = new Logger('ExecutionRecords');

  constructor(
    @Inject(RecordsDialect) private readonly dialect: RecordsDialect,
    private readonly statusChanges: StatusChangeHandler,
    private readonly dispatcher: TaskDispatcher,
    private readonly afterCommit: AfterCommit,
    private readonly registry: JobRegistry,
    private readonly coordinator: Coordinator,
  ) {}

  /**
   * Records a Pending task of the execution and runs the job `job.name` with `job.parameters`.
   * Pass the `EntityManager` of your transaction to create it with your own writes: the job is
   * dispatched only after that transaction commits, and never if it rolls back.
   */
  async create(executionId: number, job: TaskJob, extraAttrs: JsonObject = {}, manager?: EntityManager): Promise<number> {
    checkId('TaskManager.create', 'executionId', executionId);
    this.checkTask('TaskManager.create', job, extraAttrs);
    const [id] = await this.insertTasks(executionId, [{ ...job, extraAttrs }], manager);
    return id;
  }

  /**
   * Records several Pending tasks of the execution in one transaction (one lock of its row, one
   * refresh of its status) and dispatches them together: a fan-out of a thousand tasks costs a
   * few statements instead of a thousand transactions. Answers their ids, in order. All or none:
   * a bad spec refuses the call before anything is written. With `manager`, as `create`.
   */
  async createMany(executionId: number, tasks: TaskSpec[], manager?: EntityManager): Promise<number[]> {
    checkId('TaskManager.createMany', 'executionId', executionId);
    if (!Array.isArray(tasks)) throw new InvalidQueryError('TaskManager.createMany', 'tasks', tasks, 'expected an array of { name, parameters?, extraAttrs? }');
    tasks.forEach((task, index) => {
      if (!isRecordLike(task)) throw new InvalidQueryError('TaskManager.createMany', `tasks[${index}]`, task, 'expected { name, parameters?, extraAttrs? }');
      this.checkTask('TaskManager.createMany', task, task.extraAttrs ?? {}, `tasks[${index}].`);
    });
    if (tasks.length === 0) return [];
    return this.insertTasks(executionId, tasks, manager);
  }

  private checkTask(method: string, job: TaskJob, extraAttrs: JsonObject, field = ''): void {
    if (job.parameters !== undefined) checkJsonObject(method, `${field}parameters`, job.parameters);
    checkJsonObject(method, `${field}extraAttrs`, extraAttrs);
    if (!this.registry.has(job.name)) throw new UnknownJobError(job.name);
    if (this.registry.get(job.name)!.definition.continuous) throw new ContinuousJobError(job.name, method);
  }

  private async insertTasks(executionId: number, tasks: TaskSpec[], manager?: EntityManager): Promise<number[]> {
    const ids = await this.dialect.transaction(async (tx) => {
      const execution = await this.statusChanges.lockExecution(tx, executionId);
      const now = new Date();
      const rows = tasks.map((task) => ({
        vendorType: execution.vendorType,
        executionId,
        jobName: task.name,
        parameters: task.parameters ?? {},
        status: 'Pending' as const,
        statusMessage: null,
        runCount: 0,
        jobId: randomUUID(),
        extraAttrs: task.extraAttrs ?? {},
        creationTime: now,
        startTime: null,
        updateTime: now,
        endTime: null,
        statusRevision: 0,
        fencingToken: 0,
      }));
      const inserted: number[] = [];
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        const chunk = rows.slice(i, i + INSERT_CHUNK);
        const result = await tx.insert(Task, chunk);
        if (chunk.length === 1) {
          inserted.push(Number(result.identifiers[0].id));
          continue;
        }
        // Not every driver reports the ids of a multi-row insert (SQLite, MySQL's interleaved
        // auto-increment): read them back by each row's unique job id.
        const found = await tx.find(Task, { where: { executionId, jobId: In(chunk.map((row) => row.jobId)) }, select: { id: true, jobId: true } });
        const byJobId = new Map(found.map((task) => [task.jobId, task.id]));
        inserted.push(...chunk.map((row) => Number(byJobId.get(row.jobId))));
      }
      await this.statusChanges.refreshExecution(tx, execution);
      return inserted;
    }, manager);
    // In one event-loop turn: the dispatcher sends them in one round trip.
    this.afterCommit.run(manager, () => ids.forEach((id, index) => void this.dispatch(id, tasks[index].name)));
    return ids;
  }

  private async dispatch(taskId: number, jobName: string): Promise<void> {
    try {
      await this.dispatcher.dispatch({ taskId, jobName });
    } catch (error) {
      const message = `it could not be dispatched: ${(error as Error).message}`;
      this.logger.error(`Task ${taskId} of job "${jobName}": ${message}`);
      await this.statusChanges.handle({ taskId, status: 'Error', revision: nextRevision(), fencingToken: 0, message }).catch(() => undefined);
    }
  }

  /**
   * Stops a task: a pending one at once; a running one is aborted through its `ctx.signal` on
   * whichever replica runs it, which records it Stopped. One that no replica holds any more is
   * marked Stopped here. One between two attempts (its last attempt failed, its retry waits) gets
   * no next attempt: the retry is removed, and the task keeps its last attempt's Error.
   */
  async stop(id: number): Promise<void> {
    checkId('TaskManager.stop', 'id', id);
    await this.stopTask(await this.get(id));
  }

  /** @internal also used by `ExecutionManager.stop`. */
  async stopTask(task: Task): Promise<void> {
    // First, in one step in the coordinator: its dispatch (not taken yet) and any pending retry
    // are withdrawn, so no replica starts it from now on, and a run that took it is revoked (its
    // replica aborts it and records it Stopped; one whose records are not written yet never
    // starts its handler, the records below refusing it, or the cancel aborting it first).
    const { revoked } = await this.coordinator.stopTask(task.jobName, task.id, randomUUID());
    for (let seen = task; !isFinalStatus(seen.status); seen = await this.get(task.id)) {
      if (seen.status === 'Running' && (revoked > 0 || (await this.coordinator.stop(seen.jobName, seen.fencingToken, randomUUID())))) return;
      const message = seen.status === 'Running' ? 'stopped; no replica held its run any more' : 'stopped before it started';
      const result = await this.statusChanges.handle({ taskId: seen.id, status: 'Stopped', revision: nextRevision(), fencingToken: seen.fencingToken, message });
      // Superseded: an attempt started meanwhile; look again and stop that one.
      if (result !== 'superseded') return;
    }
  }

  /** @internal `ExecutionManager.stop`: the execution's tasks between two attempts get no next one. */
  async stopPendingRetries(executionId: number): Promise<void> {
    const failed = await this.dialect.manager.findBy(Task, { executionId, status: 'Error' });
    await Promise.all(failed.map((task) => stopPendingRetry(this.coordinator, this.dialect.manager, task)));
  }

  async get(id: number): Promise<Task> {
    checkId('TaskManager.get', 'id', id);
    const task = await this.dialect.manager.findOneBy(Task, { id });
    if (!task) throw new RecordNotFoundError('task', id);
    return task;
  }

  /** A page of the tasks matching `query`; `InvalidQueryError` for a field or value it cannot take. */
  async list(query: TaskQuery = {}): Promise<Task[]> {
    const checked = checkTaskQuery('TaskManager.list', query);
    return applyPage(this.filtered(checked), checked).getMany();
  }

  async count(query: TaskQuery = {}): Promise<number> {
    return this.filtered(checkTaskQuery('TaskManager.count', query)).getCount();
  }

  /** Replaces the task's extra attributes. */
  async updateExtraAttrs(id: number, extraAttrs: JsonObject): Promise<void> {
    checkId('TaskManager.updateExtraAttrs', 'id', id);
    checkJsonObject('TaskManager.updateExtraAttrs', 'extraAttrs', extraAttrs);
    const result = await this.dialect.manager.update(Task, { id }, { extraAttrs, updateTime: new Date() });
    if (result.affected === 0) throw new RecordNotFoundError('task', id);
  }

  /**
   * Writes the named fields of `task` as they are on the object. Status changes go through
   * `reportStatus`, `stop` or `updateStatusInBatch` instead.
   */
  async update(task: Pick<Task, 'id'> & Partial<Task>, fields: TaskUpdatableField[]): Promise<void> {
    checkId('TaskManager.update', 'task.id', task.id);
    // Refused rather than routed through the status change path: `update` writes what the object
    // holds, with no revision or attempt to order it against the reports of the run itself, so a
    // status passed here could only be applied as "the newest" and overwrite a later real end.
    // A caller that means to change a status says so with `reportStatus`, which orders it.
    if (!Array.isArray(fields)) {
      const named = isRecordLike(fields) ? Object.keys(fields) : [];
      throw new InvalidQueryError('TaskManager.update', 'fields', fields, `expected an array of field names among ${UPDATABLE_FIELDS.join(', ')}${refusal(named)}`);
    }
    for (const field of fields) {
      if (!UPDATABLE_FIELDS.includes(field)) throw new InvalidQueryError('TaskManager.update', 'fields', field, `expected fields among ${UPDATABLE_FIELDS.join(', ')}${refusal([field])}`);
    }
    const patch = Object.fromEntries(fields.map((field) => [field, task[field]]));
    const result = await this.dialect.manager.update(Task, { id: task.id }, { ...patch, updateTime: new Date() });
    if (result.affected === 0) throw new RecordNotFoundError('task', task.id);
  }

  /**
   * Reports a task's status from outside the library (a webhook of a worker of yours, say), as
   * Harbor's hook handler takes a job service's: the task by id or by `jobId`, its new status, and
   * the report's revision (and attempt). It goes through the one status change path: the
   * execution's status and metrics are refreshed, and the hooks run. A report older than the
   * task's last change of that attempt (`revision` below, or equal with no later status) is
   * refused: `'outdated'`, as is any report once the attempt has ended; one from an attempt older
   * than the task's (`fencingToken` below `task.fencingToken`): `'superseded'`. Nothing changes
   * then. `RecordNotFoundError` for an unknown task.
   */
  async reportStatus(task: { id: number } | { jobId: string }, report: TaskStatusReport): Promise<StatusChangeResult> {
    const method = 'TaskManager.reportStatus';
    if (typeof task !== 'object' || task === null) throw new InvalidQueryError(method, 'task', task, 'expected { id } or { jobId }');
    if ('id' in task && task.id !== undefined) checkId(method, 'task.id', task.id);
    else checkString(method, 'task.jobId', (task as { jobId?: unknown }).jobId);
    if (typeof report !== 'object' || report === null) throw new InvalidQueryError(method, 'report', report, 'expected { status, revision, fencingToken?, message?, at? }');
    checkStatus(method, 'report.status', report.status);
    checkWhole(method, 'report.revision', report.revision, 0);
    if (report.fencingToken !== undefined) checkWhole(method, 'report.fencingToken', report.fencingToken, 0);
    if (report.message !== undefined && report.message !== null) checkString(method, 'report.message', report.message);
    if (report.at !== undefined && !(report.at instanceof Date && !Number.isNaN(report.at.getTime()))) {
      throw new InvalidQueryError(method, 'report.at', report.at, 'expected a valid Date');
    }
    const found = await this.dialect.manager.findOne(Task, {
      where: 'id' in task && task.id !== undefined ? { id: task.id } : { jobId: (task as { jobId: string }).jobId },
      select: { id: true, executionId: true },
    });
    if (!found) throw new RecordNotFoundError('task', 'id' in task && task.id !== undefined ? task.id : (task as { jobId: string }).jobId);
    const { status, revision, fencingToken, message, at } = report;
    return this.statusChanges.handle({ taskId: found.id, executionId: found.executionId, status, revision, fencingToken, message, at });
  }

  /** Sets the status of the tasks with these job ids, `batchSize` at a time, as a newer change of each. */
  async updateStatusInBatch(jobIds: string[], status: TaskStatus, batchSize = 100): Promise<void> {
    checkStrings('TaskManager.updateStatusInBatch', 'jobIds', jobIds);
    checkStatus('TaskManager.updateStatusInBatch', 'status', status);
    checkWhole('TaskManager.updateStatusInBatch', 'batchSize', batchSize, 1);
    for (let i = 0; i < jobIds.length; i += batchSize) {
      const tasks = await this.dialect.manager
        .createQueryBuilder(Task, 'r')
        .select(['r.id'])
        .where('r.jobId IN (:...jobIds)', { jobIds: jobIds.slice(i, i + batchSize) })
        .getMany();
      await this.statusChanges.setStatus(tasks.map((task) => task.id), status);
    }
  }

  /** The ids of executions of `vendorType` that have a task in `status`. */
  async executionIdsByVendorAndStatus(vendorType: string, status: TaskStatus): Promise<number[]> {
    checkString('TaskManager.executionIdsByVendorAndStatus', 'vendorType', vendorType);
    checkStatus('TaskManager.executionIdsByVendorAndStatus', 'status', status);
    const rows: { executionId: string | number }[] = await this.dialect.manager
      .createQueryBuilder(Task, 'r')
      .select('DISTINCT r.executionId', 'executionId')
      .where('r.vendorType = :vendorType AND r.status = :status', { vendorType, status })
      .getRawMany();
    return rows.map((row) => Number(row.executionId));
  }

  /** The task's log ('' if it wrote none): the lines its handler wrote through `ctx.logger`. */
  async getLog(id: number): Promise<string> {
    checkId('TaskManager.getLog', 'id', id);
    await this.get(id);
    const log = await this.dialect.manager.findOneBy(TaskLog, { taskId: id });
    return log?.content ?? '';
  }

  async getLogByJobId(jobId: string): Promise<string> {
    checkString('TaskManager.getLogByJobId', 'jobId', jobId);
    const task = await this.dialect.manager.findOne(Task, { where: { jobId }, select: { id: true } });
    if (!task) throw new RecordNotFoundError('task', jobId);
    return this.getLog(task.id);
  }

  private filtered(query: TaskQuery) {
    return applyFilters(this.dialect.manager.createQueryBuilder(Task, 'r'), query, this.dialect);
  }
}
