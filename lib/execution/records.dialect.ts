import type { DataSource, EntityManager, SelectQueryBuilder } from 'typeorm';

import type { RecordsDatabase } from './execution.constants';

/** What differs between the databases the records live in, in one place. */
export class RecordsDialect {
  readonly database: RecordsDatabase;

  constructor(private readonly dataSource: DataSource) {
    // A string: TypeORM 1.x no longer lists 'sqlite' among its types, 0.3 still does.
    const type: string = dataSource.options.type;
    if (type === 'postgres' || type === 'cockroachdb') this.database = 'postgres';
    else if (type === 'mysql' || type === 'mariadb' || type === 'aurora-mysql') this.database = 'mysql';
    else if (type === 'sqlite' || type === 'better-sqlite3' || type === 'sqljs' || type === 'capacitor' || type === 'expo') this.database = 'sqlite';
    else throw new Error(`Execution records support PostgreSQL, MySQL/MariaDB and SQLite; the DataSource is "${type}".`);
    if (this.database === 'sqlite') transactionsTakeTurns(dataSource);
  }

  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /**
   * The text value at a path of a JSON column, in the database's own JSON functions; the path is
   * bound as `:keyParameter` (see `jsonPath`), never written into the SQL.
   */
  jsonText(column: string, keyParameter: string, depth: number): string {
    switch (this.database) {
      case 'postgres':
        // `#>>` takes the path as a text[]: one member per level.
        return depth === 1 ? `(${column}::jsonb ->> :${keyParameter})` : `(${column}::jsonb #>> CAST(:${keyParameter} AS text[]))`;
      case 'mysql':
        return `JSON_UNQUOTE(JSON_EXTRACT(${column}, :${keyParameter}))`;
      case 'sqlite':
        return `CAST(json_extract(${column}, :${keyParameter}) AS TEXT)`;
    }
  }

  /**
   * The path parameter for `jsonText`, one member per level: PostgreSQL takes the key (or an array
   * of them), the others a JSON path whose quoted members MySQL reads as JSON strings (so control
   * characters are escaped too) and SQLite up to the next unescaped quote.
   */
  jsonPath(members: readonly string[]): string | string[] {
    if (this.database === 'postgres') return members.length === 1 ? members[0] : [...members];
    if (this.database === 'mysql') return `$${members.map((member) => `.${JSON.stringify(member)}`).join('')}`;
    return `$${members.map((member) => `."${member.replace(/["\\]/g, '\\$&')}"`).join('')}`;
  }

  /** How `jsonText` renders a scalar: SQLite's json_extract gives 1 and 0 for true and false. */
  jsonScalar(value: string | number | boolean): string {
    if (typeof value === 'boolean' && this.database === 'sqlite') return value ? '1' : '0';
    return String(value);
  }

  /**
   * Runs `work` in a transaction, READ COMMITTED so that a transaction that waited for a row lock
   * reads what the one before it committed (PostgreSQL's default; MySQL's is REPEATABLE READ).
   */
  transaction<T>(work: (manager: EntityManager) => Promise<T>, outer?: EntityManager): Promise<T> {
    if (outer?.queryRunner?.isTransactionActive) return work(outer);
    const manager = outer ?? this.dataSource.manager;
    return this.database === 'mysql' ? manager.transaction('READ COMMITTED', work) : manager.transaction(work);
  }

  /** Locks the selected rows for the rest of the transaction (SQLite locks the whole database anyway). */
  forUpdate<T extends object>(query: SelectQueryBuilder<T>): SelectQueryBuilder<T> {
    return this.database === 'sqlite' ? query : query.setLock('pessimistic_write');
  }

  /**
   * Whether a statement failed because another connection holds the lock it needed: SQLite's
   * "database is locked" (a transaction that has read cannot wait for the write lock), MySQL's
   * lock wait timeout, PostgreSQL's `lock_timeout`.
   */
  isLockContention(error: unknown): boolean {
    const code = errorCode(error);
    return code === 'SQLITE_BUSY' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === '55P03';
  }

  isUniqueViolation(error: unknown): boolean {
    const code = errorCode(error);
    return code === '23505' || code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT';
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string; driverError?: { code?: string } })?.driverError?.code ?? (error as { code?: string })?.code;
}

const TAKING_TURNS = Symbol('nestjs-distributed-scheduler:transactions-take-turns');

/**
 * TypeORM gives a SQLite DataSource one connection, which holds one transaction at a time: two
 * that overlap fail ("cannot start a transaction within a transaction"). The records open one per
 * status change, alongside the app's own, so every transaction of the DataSource takes its turn.
 */
function transactionsTakeTurns(dataSource: DataSource): void {
  const manager = dataSource.manager as EntityManager & { [TAKING_TURNS]?: true };
  if (manager[TAKING_TURNS]) return;
  const transaction = manager.transaction.bind(manager) as (...args: unknown[]) => Promise<unknown>;
  let turn: Promise<unknown> = Promise.resolve();
  manager.transaction = ((...args: unknown[]) => {
    const mine = turn.then(() => transaction(...args));
    turn = mine.catch(() => undefined);
    return mine;
  }) as EntityManager['transaction'];
  manager[TAKING_TURNS] = true;
}
