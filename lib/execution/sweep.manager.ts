import { Inject, Injectable, Logger } from '@nestjs/common';
import { DEFAULT_DANGLING_PENDING_MS, FINAL_STATUSES } from './execution.constants';
import { InvalidQueryError } from '../errors';
import { Execution } from './execution.entity';
import { checkId, checkString, checkWhole } from './record-query.validation';
import { RecordsDialect } from './records.dialect';
import { StatusChangeHandler } from './status-change.handler';
import { TaskLog } from './task-log.entity';
import { Task } from './task.entity';

/** Executions deleted per transaction: bounded so a large sweep never holds long locks. */
const CLEAN_BATCH = 500;

/** Removes old executions and repairs ones left in a state their tasks contradict. */
@Injectable()
export class SweepManager {
  private readonly logger = new Logger('ExecutionRecords');

  constructor(
    @Inject(RecordsDialect) private readonly dialect: RecordsDialect,
    private readonly statusChanges: StatusChangeHandler,
  ) {}

  /** The final executions of `vendorType` older than its newest `retainCount` executions. */
  async listCandidates(vendorType: string, retainCount: number): Promise<number[]> {
    checkString('SweepManager.listCandidates', 'vendorType', vendorType);
    checkWhole('SweepManager.listCandidates', 'retainCount', retainCount, 0);
    const candidates = this.dialect.manager
      .createQueryBuilder(Execution, 'r')
      .select('r.id')
      .where('r.vendorType = :vendorType AND r.status IN (:...final)', { vendorType, final: FINAL_STATUSES });
    if (retainCount > 0) {
      const boundary = await this.dialect.manager
        .createQueryBuilder(Execution, 'r')
        .select('r.id')
        .where('r.vendorType = :vendorType', { vendorType })
        .orderBy('r.id', 'DESC')
        .offset(retainCount - 1)
        .limit(1)
        .getOne();
      if (!boundary) return [];
      candidates.andWhere('r.id < :boundary', { boundary: boundary.id });
    }
    const rows = await candidates.orderBy('r.id', 'ASC').getMany();
    return rows.map((row) => row.id);
  }

  /** Deletes these executions, if final, with their tasks and logs, in batches; returns how many were deleted. */
  async clean(executionIds: number[]): Promise<number> {
    if (!Array.isArray(executionIds)) throw new InvalidQueryError('SweepManager.clean', 'executionIds', executionIds, 'expected an array of ids');
    executionIds.forEach((id, index) => checkId('SweepManager.clean', `executionIds[${index}]`, id));
    let deleted = 0;
    for (let i = 0; i < executionIds.length; i += CLEAN_BATCH) {
      const batch = executionIds.slice(i, i + CLEAN_BATCH);
      deleted += await this.dialect.transaction(async (manager) => {
        const final = await manager
          .createQueryBuilder(Execution, 'r')
          .select('r.id')
          .where('r.id IN (:...batch) AND r.status IN (:...final)', { batch, final: FINAL_STATUSES })
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
   * Repairs executions whose status their tasks contradict: still Running (or Pending) although
   * every task has ended (a status refresh lost with a crash), and ones without any task for
   * longer than `pendingGraceMs` (their creator died before creating tasks), which end as Error.
   * Returns how many were fixed.
   */
  async fixDanglingStateExecution(pendingGraceMs = DEFAULT_DANGLING_PENDING_MS): Promise<number> {
    checkWhole('SweepManager.fixDanglingStateExecution', 'pendingGraceMs', pendingGraceMs, 0);
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
    return fixed;
  }

  private table(entity: Function): string {
    const metadata = this.dialect.manager.connection.getMetadata(entity);
    return this.dialect.manager.connection.driver.escape(metadata.tableName);
  }
}
