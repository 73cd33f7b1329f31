import { Inject, Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { RecordNotFoundError } from '../errors';
import { deriveExecutionStatus } from './execution-status';
import { ExecutionStatus, isFinalStatus, statusRank, TaskStatus } from './execution.constants';
import { Execution } from './execution.entity';
import { RecordsDialect } from './records.dialect';
import { Task } from './task.entity';
import { VendorHookRegistry } from './vendor-hooks.registry';

/** A change of a task's status, as an attempt of it reports it. */
export interface TaskStatusChange {
  taskId: number;
  status: TaskStatus;
  /** Orders the changes of one attempt; see `nextRevision`. Omitted: newer than the task's last change. */
  revision?: number;
  /** The attempt reporting the change; a change from an older attempt than the task's is rejected. Omitted: the task's current attempt. */
  fencingToken?: number;
  message?: string | null;
  at?: Date;
  /** The task's execution, when the caller knows it (saves a read). */
  executionId?: number;
}

export type StatusChangeResult = 'applied' | 'outdated' | 'superseded';

interface Committed {
  task: { after: Task; previous: TaskStatus } | null;
  execution: { after: Execution; previous: ExecutionStatus } | null;
}

let lastRevision = 0;

/** A revision for a status change made now: increasing within this process, and with time across processes. */
export function nextRevision(): number {
  lastRevision = Math.max(Date.now(), lastRevision + 1);
  return lastRevision;
}

/** A change waiting for its execution's transaction (see `StatusChangeHandler.handle`). */
interface QueuedChange {
  change: TaskStatusChange;
  resolve(result: StatusChangeResult): void;
  reject(error: unknown): void;
}

/** What one change did within its transaction. */
interface Applied {
  result: StatusChangeResult;
  task: Committed['task'];
  message: string | null;
  at: Date;
}

/** The most changes one transaction takes: a backlog commits in several, each short. */
const MAX_CHANGES_PER_TRANSACTION = 100;

/**
 * The one path by which a task's status changes. Each change runs in a transaction that first
 * locks the task's execution row, so the changes of one execution's tasks are serialized and
 * the execution's status, derived from all of them, never loses an update. Post functions run
 * after the commit; one that throws is logged and undoes nothing.
 *
 * Changes of one execution are committed together (group commit): while a transaction of the
 * execution is in flight, the changes that arrive wait, and the next transaction takes them all,
 * locking the row and counting the execution's tasks once for all of them. A change alone is
 * written at once, as before; under a fan-out (many tasks of one execution starting and ending
 * at the same time) the row lock is taken once per batch instead of once per change.
 */
@Injectable()
export class StatusChangeHandler {
  private readonly logger = new Logger('ExecutionRecords');
  /** Per execution with a transaction in flight: the changes waiting for the next one. */
  private readonly waiting = new Map<number, QueuedChange[]>();

  constructor(
    @Inject(RecordsDialect) private readonly dialect: RecordsDialect,
    private readonly hooks: VendorHookRegistry,
  ) {}

  async handle(change: TaskStatusChange, outer?: EntityManager): Promise<StatusChangeResult> {
    // Within the caller's transaction, or with the execution to look up first: on its own.
    if (outer || change.executionId === undefined) return this.handleAlone(change, outer);
    const executionId = change.executionId;
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(executionId);
      if (queue) return void queue.push({ change, resolve, reject });
      this.waiting.set(executionId, [{ change, resolve, reject }]);
      void this.commitWaiting(executionId);
    });
  }

  /** Commits the execution's waiting changes, batch after batch, until none is left. */
  private async commitWaiting(executionId: number): Promise<void> {
    const queue = this.waiting.get(executionId)!;
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_CHANGES_PER_TRANSACTION);
      try {
        await this.commitBatch(executionId, batch);
      } catch (error) {
        if (batch.length === 1) {
          batch[0].reject(error);
          continue;
        }
        // One change the database refuses (its task deleted meanwhile) must not fail the others.
        for (const { change, resolve, reject } of batch) await this.handleAlone(change).then(resolve, reject);
      }
    }
    this.waiting.delete(executionId);
  }

  private async commitBatch(executionId: number, batch: QueuedChange[]): Promise<void> {
    const committed = await this.dialect.transaction(async (manager) => {
      const execution = await this.lockExecution(manager, executionId);
      const applied: Applied[] = [];
      for (const { change } of batch) applied.push(await this.apply(manager, change));
      const last = applied.filter((one) => one.result === 'applied').at(-1);
      const executionChange = last ? await this.refreshExecution(manager, execution, last.message, last.at) : null;
      return { applied, executionChange };
    });
    for (const { task } of committed.applied) await this.runHooks({ task, execution: null });
    await this.runHooks({ task: null, execution: committed.executionChange });
    batch.forEach((queued, index) => queued.resolve(committed.applied[index].result));
  }

  private async handleAlone(change: TaskStatusChange, outer?: EntityManager): Promise<StatusChangeResult> {
    let result: StatusChangeResult = 'outdated';
    const committed = await this.dialect.transaction(async (manager) => {
      const executionId = change.executionId ?? (await this.executionOf(manager, change.taskId));
      const execution = await this.lockExecution(manager, executionId);
      const applied = await this.apply(manager, change);
      result = applied.result;
      if (result !== 'applied') return { task: null, execution: null };
      return { task: applied.task, execution: await this.refreshExecution(manager, execution, applied.message, applied.at) } satisfies Committed;
    }, outer);
    await this.runHooks(committed);
    return result;
  }

  /** Writes one change to its task (its execution's row locked by the caller), if it may overwrite what the task has. */
  private async apply(manager: EntityManager, change: TaskStatusChange): Promise<Applied> {
    const task = await manager.findOneBy(Task, { id: change.taskId });
    if (!task) throw new RecordNotFoundError('task', change.taskId);
    const fencingToken = change.fencingToken ?? task.fencingToken;
    // Newer than the task's last change even if that came from a replica whose clock is ahead.
    const revision = change.revision ?? Math.max(nextRevision(), task.statusRevision + 1);
    const result = verdict(task, { ...change, fencingToken, revision });
    const at = change.at ?? new Date();
    if (result !== 'applied') return { result, task: null, message: null, at };
    const newAttempt = fencingToken > task.fencingToken;
    const patch: QueryDeepPartialEntity<Task> = {
      status: change.status,
      statusRevision: revision,
      fencingToken,
      updateTime: at,
      endTime: isFinalStatus(change.status) ? at : null,
    };
    if (change.message !== undefined) patch.statusMessage = change.message;
    if (newAttempt && change.status !== 'Pending') patch.runCount = task.runCount + 1;
    if (change.status === 'Running' && (newAttempt || !task.startTime)) patch.startTime = at;
    await manager.update(Task, { id: task.id }, patch);
    const previous = task.status;
    return { result, task: { after: Object.assign(task, patch), previous }, message: change.message ?? null, at };
  }

  /**
   * Sets several tasks' status at once (`TaskManager.updateStatusInBatch`), as a newer revision of
   * each, and refreshes their executions.
   */
  async setStatus(taskIds: number[], status: TaskStatus, message?: string): Promise<void> {
    for (const taskId of taskIds) await this.handle({ taskId, status, message });
  }

  /** Recomputes a locked execution's status and metrics from its tasks (within the caller's transaction). */
  async refreshExecution(manager: EntityManager, execution: Execution, message: string | null = null, at = new Date()): Promise<Committed['execution']> {
    const executionId = execution.id;
    const rows: { status: TaskStatus; count: string | number }[] = await manager
      .createQueryBuilder(Task, 't')
      .select('t.status', 'status')
      .addSelect('COUNT(*)', 'count')
      .where('t.executionId = :executionId', { executionId })
      .groupBy('t.status')
      .getRawMany();
    if (rows.length === 0) return null; // without tasks, markDone / markError decide
    const { status, metrics } = deriveExecutionStatus(Object.fromEntries(rows.map((row) => [row.status, Number(row.count)])));
    // Ended when its last task ended: not when that end was recorded (a late report of an earlier
    // end, or the sweep repairing it, comes after), as Harbor has it.
    const endTime = isFinalStatus(status) ? ((await this.lastTaskEnd(manager, executionId)) ?? at) : null;
    const patch: QueryDeepPartialEntity<Execution> = { status, metrics, updateTime: at, endTime };
    // A single-task execution (a job's run) carries its task's message, e.g. the error.
    if (metrics.taskCount === 1 && message !== null) patch.statusMessage = message;
    await manager.update(Execution, { id: executionId }, patch);
    const previous = execution.status;
    return previous === status ? null : { after: Object.assign(execution, patch), previous };
  }

  private async lastTaskEnd(manager: EntityManager, executionId: number): Promise<Date | null> {
    const last = await manager
      .createQueryBuilder(Task, 't')
      .select(['t.id', 't.endTime'])
      .where('t.executionId = :executionId AND t.endTime IS NOT NULL', { executionId })
      .orderBy('t.endTime', 'DESC')
      .limit(1)
      .getOne();
    return last?.endTime ?? null;
  }

  /** Locks an execution's row for the rest of the transaction, serializing the changes of its tasks. */
  async lockExecution(manager: EntityManager, executionId: number): Promise<Execution> {
    const locked = await this.dialect.forUpdate(manager.createQueryBuilder(Execution, 'e').where('e.id = :executionId', { executionId })).getOne();
    if (!locked) throw new RecordNotFoundError('execution', executionId);
    return locked;
  }

  private async executionOf(manager: EntityManager, taskId: number): Promise<number> {
    const task = await manager.findOne(Task, { where: { id: taskId }, select: { id: true, executionId: true } });
    if (!task) throw new RecordNotFoundError('task', taskId);
    return task.executionId;
  }

  async runHooks(committed: Committed): Promise<void> {
    if (committed.task) {
      const { after, previous } = committed.task;
      await this.callHook(this.hooks.taskHook(after.vendorType), `task ${after.id}`, after, previous);
    }
    if (committed.execution) {
      const { after, previous } = committed.execution;
      await this.callHook(this.hooks.executionHook(after.vendorType), `execution ${after.id}`, after, previous);
    }
  }

  private async callHook<A extends unknown[]>(hook: ((...args: A) => unknown) | undefined, subject: string, ...args: A): Promise<void> {
    if (!hook) return;
    try {
      await hook(...args);
    } catch (error) {
      const cause = error instanceof Error ? error : new Error(String(error));
      this.logger.error(`The status change hook for ${subject} failed (the status change stands): ${cause.message}`, cause.stack);
    }
  }
}

/** Whether a change may overwrite what the task has now. */
function verdict(task: Task, change: Required<Pick<TaskStatusChange, 'status' | 'revision' | 'fencingToken'>>): StatusChangeResult {
  if (change.fencingToken < task.fencingToken) return 'superseded';
  // A task a caller stopped stays stopped: no later attempt revives it. One that succeeded stays
  // succeeded: a later attempt is a recovery of a run whose replica died between writing this end
  // and releasing its lease (attempts follow failures only), so it must not run the task again.
  if (task.status === 'Stopped' || task.status === 'Success') return 'outdated';
  if (change.fencingToken > task.fencingToken) return 'applied';
  // An attempt's end is its last word: a late stop or a replayed report never rewrites it.
  if (isFinalStatus(task.status)) return 'outdated';
  if (change.revision > task.statusRevision) return 'applied';
  if (change.revision === task.statusRevision && statusRank(change.status) > statusRank(task.status)) return 'applied';
  return 'outdated';
}
