import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { TypeOrmModuleOptions } from '@nestjs/typeorm';
import { maskUrl } from '../security/mask-url';

/**
 * Where the sample keeps its execution records.
 *
 * - By default: a SQLite file, `sample-data/records.sqlite` at the root of the repository
 *   (`*.sqlite` is gitignored; delete the file to start over). `SQLITE_PATH` picks another file.
 * - With `DATABASE_URL=postgres://user:pass@host:5432/db`: that PostgreSQL database.
 *
 * `synchronize: true` lets TypeORM create the tables at startup: fine for a sample and for
 * development. In production, run migrations instead (the README's "Execution records" section).
 */
export function databaseOptions(): TypeOrmModuleOptions {
  const url = process.env.DATABASE_URL;
  if (url) {
    // In production, drop `synchronize` and run the library's migrations with yours instead:
    // `migrations: [...schedulerMigrations('postgres'), ...yours], migrationsRun: true`.
    return { type: 'postgres', url, autoLoadEntities: true, synchronize: true };
  }
  const database = sqlitePath();
  mkdirSync(dirname(database), { recursive: true });
  return { type: 'better-sqlite3', database, autoLoadEntities: true, synchronize: true };
}

/** Which of the library's table mappings (and migrations) fits the database above. */
export function recordsDatabase(): 'postgres' | 'sqlite' {
  return process.env.DATABASE_URL ? 'postgres' : 'sqlite';
}

/** For the startup line: where the records are, without the password of a URL. */
export function describeDatabase(): string {
  const url = process.env.DATABASE_URL;
  if (url) return `PostgreSQL database ${maskUrl(url)}`;
  return `SQLite file ${sqlitePath()}`;
}

function sqlitePath(): string {
  return resolve(process.env.SQLITE_PATH ?? resolve(__dirname, '..', '..', 'sample-data', 'records.sqlite'));
}
