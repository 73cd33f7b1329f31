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

  /** The text value at `key` of a JSON column, in the database's own JSON functions. */
  jsonText(column: string, parameter: string): string {
    switch (this.database) {
      case 'postgres':
        return `(${column}::jsonb ->> :${parameter}_key)`;
      case 'mysql':
        return `JSON_UNQUOTE(JSON_EXTRACT(${column}, :${parameter}_key))`;
      case 'sqlite':
        return `CAST(json_extract(${column}, :${parameter}_key) AS TEXT)`;
    }
  }

  /**
   * The key parameter for `jsonText` (always bound, never written into the SQL): PostgreSQL takes
   * the key, the others a JSON path whose quoted member MySQL reads as a JSON string (so control
   * characters are escaped too) and SQLite up to the next unescaped quote.
   */
  jsonKey(key: string): string {
    if (this.database === 'postgres') return key;
    return this.database === 'mysql' ? `$.${JSON.stringify(key)}` : `$."${key.replace(/["\\]/g, '\\$&')}"`;
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

  isUniqueViolation(error: unknown): boolean {
    const code = (error as { code?: string; driverError?: { code?: string } })?.driverError?.code ?? (error as { code?: string })?.code;
    return code === '23505' || code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT';
  }
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
