import type { DataSource, EntityManager, EntitySubscriberInterface, QueryRunner, TransactionCommitEvent, TransactionRollbackEvent } from 'typeorm';

/**
 * Runs work once the caller's transaction has committed, and drops it if it rolls back, so that
 * a task created inside a caller's transaction is not dispatched before its row is visible (or
 * at all, if it never is). Hooks the DataSource's transaction events.
 */
export class AfterCommit implements EntitySubscriberInterface {
  private readonly waiting = new WeakMap<QueryRunner, (() => void)[]>();

  constructor(dataSource: DataSource) {
    dataSource.subscribers.push(this);
  }

  /** Runs `work` now when `manager` is not in a transaction, else after its outermost commit. */
  run(manager: EntityManager | undefined, work: () => void): void {
    const runner = manager?.queryRunner;
    if (!runner?.isTransactionActive) return work();
    const list = this.waiting.get(runner) ?? [];
    list.push(work);
    this.waiting.set(runner, list);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    // A savepoint's release commits nothing yet: wait for the outermost commit.
    if (event.queryRunner.isTransactionActive) return;
    const list = this.waiting.get(event.queryRunner);
    this.waiting.delete(event.queryRunner);
    list?.forEach((work) => work());
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) this.waiting.delete(event.queryRunner);
  }
}
