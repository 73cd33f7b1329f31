import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';

/** The databases the records are tested on: the services this machine kind runs, and SQLite. */
export type TestDatabaseKind = 'postgres' | 'mariadb' | 'sqlite';
export const DATABASE_KINDS: TestDatabaseKind[] = ['postgres', 'mariadb', 'sqlite'];

const SERVERS = {
  postgres: { type: 'postgres', host: '127.0.0.1', port: 5432, username: 'postgres', password: '' },
  mariadb: { type: 'mariadb', host: '127.0.0.1', port: 3306, username: 'root', password: '' },
} as const;

/**
 * A database of its own for one test file: created empty on the shared server (a file for
 * SQLite) and dropped by `drop()`, so runs never see each other.
 */
export class TestDatabase {
  private constructor(
    readonly kind: TestDatabaseKind,
    /** DataSource options for this database, without entities. */
    readonly options: DataSourceOptions,
    private readonly cleanup: () => Promise<void>,
  ) {}

  static async create(kind: TestDatabaseKind): Promise<TestDatabase> {
    const name = `dsched_test_${randomBytes(4).toString('hex')}`;
    if (kind === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'dsched-sqlite-'));
      return new TestDatabase(kind, { type: 'better-sqlite3', database: join(dir, `${name}.db`) }, async () => rmSync(dir, { recursive: true, force: true }));
    }
    const server = SERVERS[kind];
    const admin = new DataSource({ ...server, database: kind === 'postgres' ? 'postgres' : undefined } as DataSourceOptions);
    await admin.initialize();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.destroy();
    return new TestDatabase(kind, { ...server, database: name } as DataSourceOptions, async () => {
      const dropper = new DataSource({ ...server, database: kind === 'postgres' ? 'postgres' : undefined } as DataSourceOptions);
      await dropper.initialize();
      await dropper.query(kind === 'postgres' ? `DROP DATABASE IF EXISTS ${name} WITH (FORCE)` : `DROP DATABASE IF EXISTS ${name}`);
      await dropper.destroy();
    });
  }

  drop(): Promise<void> {
    return this.cleanup();
  }
}
