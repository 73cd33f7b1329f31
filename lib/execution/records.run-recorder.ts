import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { RunOutcome } from '../scheduling/job.runner';
import { RecordsLateError, RunRecord, RunRecorder, RunStart } from '../scheduling/run-recorder';
import { unrecorded } from '../scheduling/no-run-records';
import { RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { RESOLVED_RECORDS_OPTIONS, TaskStatus } from './execution.constants';
import { Execution, JsonObject } from './execution.entity';
import { RecordsDialect } from './records.dialect';
import { isTransient, RecordsOutbox } from './records-outbox';
import { PostgresRunInserts, RunInsert } from './postgres-run-inserts';
import { ONE_RUNNING_TASK } from './execution-status';
import type { ResolvedRecordsOptions } from './records.resolver';
import { nextRevision, StatusChangeHandler } from './status-change.handler';
import { TaskLogBuffer } from './task-log.buffer';
import { TaskLog } from './task-log.entity';
import { TaskLogger } from './task-logger';
import { Task } from './task.entity';
import { VendorHookRegistry } from './vendor-hooks.registry';

/** The longest a run waits for its records before going on without them (at most lockTtl / 3). */
const RECORD_START_WAIT_MS = 5_000;
/** A running task's log is written this often while lines arrive, and at its end. */
const LOG_FLUSH_MS = 5_000;

/** The task status a run's outcome is recorded as. */
export const STATUS_OF: Record<RunOutcome['status'], TaskStatus> = { success: 'Success', error: 'Error', timeout: 'Error', stopped: 'Stopped' };

/** One run's records while it runs. */
class RecordedRun {
  executionId: number | null = null;
  taskId: number | null = null;
  /** The records already held this due time: the run must not happen (or, if it did, is not recorded twice). */
  duplicate = false;
  /** Set once the handler runs: from then on, a duplicate is only left unrecorded. */
  started = false;
  readonly log: TaskLogBuffer;
  flushTimer?: NodeJS.Timeout;
  /** The job's, or for a dispatched task its execution's: what hooks and check-ins go by. */
  vendorType: string;
  /** The last checkpoint flush the coordinator took, numbered in flush order; null before any. */
  checkpoint: { state: string; savedAt: Date; seq: number } | null = null;
  /** The `seq` the task row has. */
  checkpointWritten = 0;
  /** A checkpoint write is in flight or waits in the outbox: it writes the latest when its turn comes. */
  checkpointQueued = false;

  constructor(
    readonly run: RunStart,
    logMaxBytes: number,
  ) {
    this.log = new TaskLogBuffer(logMaxBytes);
    this.vendorType = run.job.definition.vendorType;
  }

  get name(): string {
    return this.run.job.definition.name;
  }
}

/**
 * Writes every run as an Execution with its Task: created before the handler starts (so the
 * handler gets their ids, and a due time already recorded does not run again), ended with the
 * run's outcome through the status change handler. While the database is unreachable, runs go
 * on and their records wait in the outbox.
 */
@Injectable()
export class RecordsRunRecorder extends RunRecorder {
  private readonly logger = new Logger('ExecutionRecords');
  private readonly outbox = new RecordsOutbox();
  private readonly warnedNoCheckIn = new Set<string>();
  /** Due times the database caught as already recorded: a run Redis let happen twice. */
  duplicatesCaught = 0;
  /** PostgreSQL only: runs starting in one turn are created in one statement. */
  private readonly batchedInserts: PostgresRunInserts | null;

  constructor(
    @Inject(RecordsDialect) private readonly dialect: RecordsDialect,
    private readonly statusChanges: StatusChangeHandler,
    private readonly hooks: VendorHookRegistry,
    @Inject(RESOLVED_RECORDS_OPTIONS) private readonly options: ResolvedRecordsOptions,
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly schedulerOptions: ResolvedSchedulerOptions,
  ) {
    super();
    this.batchedInserts = dialect.database === 'postgres' ? new PostgresRunInserts(dialect.manager) : null;
  }

  get waitingWrites(): number {
    return this.outbox.waiting;
  }

  get databaseReachable(): boolean {
    return !this.outbox.inOutage;
  }

  /**
   * Waits for the run's records at most min(5 s, lockTtl / 3): a database that hangs (rather than
   * refusing) must not hold a job whose lease goes on being renewed.
   */
  async start(run: RunStart): Promise<RunRecord | null> {
    const starting = this.startRecorded(run);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Math.min(RECORD_START_WAIT_MS, this.schedulerOptions.lockTtl / 3))));
    const record = await Promise.race([starting, late]);
    clearTimeout(timer);
    return record === 'late' ? this.goOnWithout(run, starting) : record;
  }

  /**
   * A fire whose records are late runs unrecorded; a task, whose parameters are in its records,
   * does not run: its attempt fails (`RecordsLateError`), to be retried. Records that arrive later
   * are ended with the run.
   */
  private goOnWithout(run: RunStart, starting: Promise<RunRecord | null>): RunRecord | null {
    const isTask = run.taskId !== undefined;
    this.logger.error(`Job "${run.job.definition.name}": its records did not answer in time; it ${isTask ? 'does not run' : 'runs unrecorded'}.`);
    let end!: (outcome: RunOutcome) => void;
    const ended = new Promise<RunOutcome>((resolve) => (end = resolve));
    // The run's last checkpoint that the coordinator took, recorded with its end.
    let checkpoint: [state: string, savedAt: number] | null = null;
    void starting
      .then(async (arrived) => {
        const outcome = await ended;
        if (arrived && checkpoint) arrived.checkpointSaved(...checkpoint);
        return arrived?.finish(outcome);
      })
      .catch(() => undefined);
    if (isTask) {
      const error = new RecordsLateError('its records did not answer in time, so it did not run');
      end({ status: 'error', error });
      throw error;
    }
    return { ...unrecorded(run), checkpointSaved: (state, savedAt) => (checkpoint = [state, savedAt]), finish: async (outcome) => end(outcome) };
  }

  private async startRecorded(run: RunStart): Promise<RunRecord | null> {
    const recorded = new RecordedRun(run, this.options.logMaxBytes);
    let trigger = run.trigger;
    let parameters: Readonly<Record<string, unknown>> = {};
    // A retry of a job's run continues its first attempt's task (a new attempt: runCount + 1).
    const taskId = run.taskId ?? (run.firstFencingToken !== undefined ? await this.taskOfFirstAttempt(recorded, run.firstFencingToken) : undefined);
    if (taskId !== undefined) {
      const task = await this.startTask(recorded, taskId);
      if (!task) return null;
      ({ trigger, parameters } = task);
    } else {
      await this.createRun(recorded, this.runInsert(recorded));
      if (recorded.duplicate) return null;
    }
    recorded.started = true;
    recorded.flushTimer = setInterval(() => {
      // While the database is away the end of the run writes the log; no need to queue more.
      if (recorded.log.dirty && !this.outbox.inOutage) void this.outbox.write(`log of task ${recorded.taskId}`, () => this.writeLog(recorded)).catch(() => undefined);
    }, LOG_FLUSH_MS).unref();
    return {
      get executionId() {
        return recorded.executionId;
      },
      get taskId() {
        return recorded.taskId;
      },
      trigger,
      parameters,
      logger: new TaskLogger(new Logger(recorded.name), recorded.log),
      checkIn: (data) => this.checkIn(recorded, data),
      checkpointSaved: (state, savedAt) => this.checkpointSaved(recorded, state, savedAt),
      finish: (outcome) => this.finish(recorded, outcome),
    };
  }

  async drain(deadline: number): Promise<void> {
    await this.outbox.drain(deadline);
  }

  /**
   * The task of a retried run's first attempt (the job's, with that fencing token); undefined if
   * its records were never written (the retry is then recorded as a run of its own).
   */
  private async taskOfFirstAttempt(recorded: RecordedRun, firstFencingToken: number): Promise<number | undefined> {
    try {
      const execution = await this.dialect.manager.findOne(Execution, { where: { jobName: recorded.name, fencingToken: firstFencingToken }, select: { id: true } });
      const task = execution && (await this.dialect.manager.findOne(Task, { where: { executionId: execution.id }, select: { id: true } }));
      return task ? task.id : undefined;
    } catch {
      return undefined;
    }
  }

  /** A dispatched task starts: its attempt is recorded as Running, unless it was stopped or superseded. */
  private async startTask(recorded: RecordedRun, taskId: number): Promise<{ trigger: Execution['trigger']; parameters: Record<string, unknown> } | null> {
    const { run } = recorded;
    try {
      const task = await this.dialect.manager.findOneBy(Task, { id: taskId });
      const execution = task && (await this.dialect.manager.findOne(Execution, { where: { id: task.executionId }, select: { id: true, trigger: true } }));
      if (!task || !execution) {
        this.logger.warn(`Task ${taskId} of job "${recorded.name}" is not in the records (deleted?); it does not run.`);
        return null;
      }
      const applied = await this.statusChanges.handle({ taskId, executionId: task.executionId, status: 'Running', revision: nextRevision(), fencingToken: run.fencingToken, at: run.startedAt });
      if (applied !== 'applied') {
        this.logger.warn(`Task ${taskId} of job "${recorded.name}" does not run: it was stopped or has succeeded already, or a newer attempt owns it.`);
        return null;
      }
      recorded.executionId = task.executionId;
      recorded.taskId = taskId;
      recorded.vendorType = task.vendorType;
      return { trigger: execution.trigger, parameters: task.parameters };
    } catch (error) {
      this.logger.error(`Task ${taskId} of job "${recorded.name}" cannot start: its records cannot be read (${(error as Error).message}).`);
      return null;
    }
  }

  private runInsert({ run }: RecordedRun): RunInsert {
    const { definition } = run.job;
    return {
      vendorType: definition.vendorType,
      jobName: definition.name,
      trigger: run.trigger,
      startedAt: run.startedAt,
      scheduledAt: run.scheduledAt,
      dueAt: run.trigger === 'SCHEDULE' ? run.scheduledAt : null,
      fencingToken: run.fencingToken,
      revision: nextRevision(),
      jobId: randomUUID(),
      instanceId: run.instanceId,
      // A catch-up run is a SCHEDULE run like any other (it serves a due time, kept unique by
      // due_at); this flag says it ran late, for a missed due time. No column, no migration.
      executionAttrs: run.catchUp ? { catchUp: true } : {},
    };
  }

  /**
   * Creates a starting run's records: on PostgreSQL batched with the other runs starting in this
   * turn; otherwise, or to retry after an outage, in a transaction of its own.
   */
  private async createRun(recorded: RecordedRun, insert: RunInsert): Promise<void> {
    // After a failed attempt the rows may exist anyway (an earlier part of the batch, or a commit
    // whose reply was lost): each retry looks for them first.
    let mayExist = false;
    if (this.batchedInserts && this.outbox.waiting === 0) {
      try {
        const inserted = await this.batchedInserts.add(insert);
        if (inserted) Object.assign(recorded, inserted);
        else if (!(await this.adoptWritten(recorded, insert))) this.caughtDuplicate(recorded, insert);
        return;
      } catch {
        // Retried on its own below (and refused there if the database refuses it again).
        mayExist = true;
      }
    }
    try {
      await this.outbox.write(`execution of "${recorded.name}"`, async () => {
        const retry = mayExist;
        mayExist = true;
        await this.insertRun(recorded, insert, retry);
      });
    } catch (error) {
      this.refused(recorded, error);
    }
  }

  /** Takes the ids of this run's rows if an earlier attempt wrote them (same job, same fencing token). */
  private async adoptWritten(recorded: RecordedRun, insert: RunInsert): Promise<boolean> {
    const execution = await this.dialect.manager.findOne(Execution, { where: { jobName: insert.jobName, fencingToken: insert.fencingToken }, select: { id: true } });
    const task = execution && (await this.dialect.manager.findOne(Task, { where: { executionId: execution.id }, select: { id: true } }));
    if (!execution || !task) return false;
    recorded.executionId = execution.id;
    recorded.taskId = task.id;
    return true;
  }

  /** One transaction: the execution and its task, Running from the start. */
  private async insertRun(recorded: RecordedRun, insert: RunInsert, mayExist: boolean): Promise<void> {
    if (mayExist && (await this.adoptWritten(recorded, insert))) return;
    try {
      await this.dialect.transaction(async (manager) => {
        const execution = await manager.insert(Execution, {
          vendorType: insert.vendorType,
          vendorId: null,
          status: 'Running',
          statusMessage: null,
          metrics: ONE_RUNNING_TASK,
          trigger: insert.trigger,
          extraAttrs: insert.executionAttrs as JsonObject,
          startTime: insert.startedAt,
          updateTime: insert.startedAt,
          endTime: null,
          jobName: insert.jobName,
          scheduledAt: insert.scheduledAt,
          dueAt: insert.dueAt,
          fencingToken: insert.fencingToken,
        });
        const executionId = Number(execution.identifiers[0].id);
        const task = await manager.insert(Task, {
          vendorType: insert.vendorType,
          executionId,
          jobName: insert.jobName,
          parameters: {},
          status: 'Running',
          statusMessage: null,
          runCount: 1,
          jobId: insert.jobId,
          extraAttrs: { instanceId: insert.instanceId } as JsonObject,
          creationTime: insert.startedAt,
          startTime: insert.startedAt,
          updateTime: insert.startedAt,
          endTime: null,
          statusRevision: insert.revision,
          fencingToken: insert.fencingToken,
        });
        recorded.executionId = executionId;
        recorded.taskId = Number(task.identifiers[0].id);
      });
    } catch (error) {
      if (!this.dialect.isUniqueViolation(error)) throw error;
      if (!(await this.adoptWritten(recorded, insert))) this.caughtDuplicate(recorded, insert);
    }
  }

  private caughtDuplicate(recorded: RecordedRun, insert: RunInsert): void {
    recorded.duplicate = true;
    this.duplicatesCaught++;
    this.logger.error(
      `Job "${insert.jobName}": the fire due at ${insert.dueAt!.toISOString()} is already recorded; this second run of it ` +
        `(fencing token ${insert.fencingToken}, instance "${insert.instanceId}") is not ${recorded.started ? 'recorded' : 'started'}. ` +
        `Redis lost its state or two clusters share one database. (${this.duplicatesCaught} caught so far)`,
    );
  }

  private refused(recorded: RecordedRun, error: unknown): void {
    this.logger.error(`Job "${recorded.name}": the database refused the records of the run starting now; it runs unrecorded: ${(error as Error).message}`);
  }

  private async finish(recorded: RecordedRun, outcome: RunOutcome): Promise<void> {
    clearInterval(recorded.flushTimer);
    // The log says how the run ended when the handler could not: it threw, timed out or was stopped.
    if (outcome.error) recorded.log.append(outcome.status === 'error' ? 'error' : 'warn', `run ended (${outcome.status}): ${outcome.error.message}`);
    const change = { status: STATUS_OF[outcome.status], revision: nextRevision(), fencingToken: recorded.run.fencingToken, message: outcome.error?.message ?? null, at: new Date() };
    try {
      await this.outbox.write(`end of "${recorded.name}" run ${recorded.run.fencingToken}`, async () => {
        if (recorded.duplicate || recorded.taskId === null) return;
        await this.writeLog(recorded);
        const result = await this.statusChanges.handle({ taskId: recorded.taskId, executionId: recorded.executionId!, ...change });
        if (result === 'superseded') this.logger.warn(`Task ${recorded.taskId}: its end is not recorded, a newer attempt owns the task.`);
      });
    } catch (error) {
      this.logger.error(`The end of job "${recorded.name}"'s run could not be recorded: ${(error as Error).message}`);
    }
  }

  private async writeLog(recorded: RecordedRun): Promise<void> {
    if (recorded.taskId === null || !recorded.log.dirty) return;
    const { content, droppedLines, version } = recorded.log.take();
    await this.dialect.manager.upsert(TaskLog, { taskId: recorded.taskId, content, droppedLines, updateTime: new Date() }, ['taskId']);
    recorded.log.written(version);
  }

  /**
   * A checkpoint flush the coordinator took: the task row gets its state and time, through the
   * outbox (in order with the run's other writes, kept while the database is away). One write per
   * run at a time, of the latest state when its turn comes: the ones in between are skipped.
   */
  private checkpointSaved(recorded: RecordedRun, state: string, savedAt: number): void {
    recorded.checkpoint = { state, savedAt: new Date(savedAt), seq: (recorded.checkpoint?.seq ?? 0) + 1 };
    if (recorded.checkpointQueued) return;
    recorded.checkpointQueued = true;
    const label = `checkpoint of "${recorded.name}" run ${recorded.run.fencingToken}`;
    this.outbox.write(label, () => this.writeCheckpoint(recorded)).catch((error: unknown) => {
      this.logger.error(`The checkpoint of job "${recorded.name}"'s run could not be recorded on its task: ${(error as Error).message}`);
    });
  }

  /**
   * Writes the run's latest checkpoint to its task row, until the row has the latest. The row
   * never goes back to an older state: a row whose checkpoint was saved later (a newer attempt of
   * the same task) keeps it.
   */
  private async writeCheckpoint(recorded: RecordedRun): Promise<void> {
    try {
      for (let latest = recorded.checkpoint; latest && latest.seq > recorded.checkpointWritten; latest = recorded.checkpoint) {
        // Unrecorded (refused, or a duplicate): nothing to write, now or later.
        if (recorded.duplicate || recorded.taskId === null) break;
        await this.dialect.manager
          .createQueryBuilder()
          .update(Task)
          // The JSON as the coordinator took it: not parsed and written again.
          .set({ checkpointState: () => ':checkpointState', checkpointSavedAt: latest.savedAt })
          .where('id = :taskId', { taskId: recorded.taskId })
          .andWhere('(checkpoint_saved_at IS NULL OR checkpoint_saved_at <= :savedAt)', { savedAt: latest.savedAt })
          .setParameter('checkpointState', latest.state)
          .execute();
        recorded.checkpointWritten = latest.seq;
      }
      // In the same turn as the loop's last check: a checkpoint saved after it queues a write of its own.
      recorded.checkpointQueued = false;
    } catch (error) {
      // A transient failure is retried by the outbox (this write stays queued); any other drops it.
      if (!isTransient(error)) recorded.checkpointQueued = false;
      throw error;
    }
  }

  private async checkIn(recorded: RecordedRun, data: unknown): Promise<void> {
    const { vendorType } = recorded;
    const processor = this.hooks.checkInProcessor(vendorType);
    if (!processor) {
      if (!this.warnedNoCheckIn.has(vendorType)) {
        this.warnedNoCheckIn.add(vendorType);
        this.logger.warn(`ctx.checkIn was called for vendor type "${vendorType}", which has no check-in processor (@OnCheckIn); the data is dropped.`);
      }
      return;
    }
    if (recorded.taskId === null) return;
    const task = await this.dialect.manager.findOneBy(Task, { id: recorded.taskId });
    if (task) await processor(task, data);
  }
}
