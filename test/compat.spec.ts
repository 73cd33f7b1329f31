import Redis from 'ioredis';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DataSource } from 'typeorm';
import { CommandResult, installConsumer, packLibrary, run, runConsumer, tarballFiles, withCacheLock } from './support/consumer-apps';
import { TestDatabase } from './support/databases';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';

type Outcome = { ok: true; dir: string; output: CommandResult } | { ok: false; error: unknown };

const INSTALL_TIMEOUT = 15 * 60_000;

/**
 * The library as users get it: packed with `npm pack`, added with a plain `npm install` to apps
 * on each supported major (test/fixtures/consumers), compiled against its declarations with
 * `strict` and `skipLibCheck: false`, and run on the real Redis and PostgreSQL.
 * A first run on a new machine downloads the apps' dependencies (a few minutes); later runs
 * reinstall only the tarball (see CONSUMER_CACHE).
 */
describe('the packed library in consumer apps', () => {
  let tarball: string;
  let redis: Redis;
  /** The Redis prefix and PostgreSQL database of each app with records. */
  const services = new Map<string, { prefix: string; database: TestDatabase }>();
  const outcomes = new Map<string, Promise<Outcome>>();

  /** Installs, compiles and runs an app; never rejects, so the apps can go side by side. */
  function start(name: string, env: (name: string) => Promise<Record<string, string>>): void {
    outcomes.set(
      name,
      (async (): Promise<Outcome> => {
        try {
          return await withCacheLock(name, async () => {
            const dir = await installConsumer(name, tarball);
            return { ok: true, dir, output: await runConsumer(dir, await env(name)) };
          });
        } catch (error) {
          return { ok: false, error };
        }
      })(),
    );
  }

  async function outcomeOf(name: string): Promise<{ dir: string; output: CommandResult }> {
    const outcome = await outcomes.get(name)!;
    if (!outcome.ok) throw outcome.error;
    return outcome;
  }

  async function recordsEnv(app: string): Promise<Record<string, string>> {
    const database = await TestDatabase.create('postgres');
    const prefix = uniquePrefix('compat');
    services.set(app, { prefix, database });
    const { database: name } = database.options as { database: string };
    return { REDIS_URL: SHARED_REDIS_URL, KEY_PREFIX: prefix, DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${name}` };
  }

  beforeAll(async () => {
    tarball = await packLibrary();
    redis = new Redis(SHARED_REDIS_URL);
    // The three apps install, compile and run side by side; each test awaits its own.
    start('nest11-typeorm03', recordsEnv);
    start('nest12-typeorm1', recordsEnv);
    start('without-typeorm', async () => ({}));
  }, 5 * 60_000);

  afterAll(async () => {
    await Promise.all(outcomes.values());
    for (const { prefix } of services.values()) {
      const keys = await redis.keys(`{${prefix}}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    await redis?.quit();
    await Promise.all([...services.values()].map(({ database }) => database.drop()));
    if (tarball) rmSync(dirname(tarball), { recursive: true, force: true });
  }, 60_000);

  it('packs the build, the Lua scripts and LICENSE, with source maps that carry their sources', async () => {
    const files = await tarballFiles(tarball);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'LICENSE',
        'README.md',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/records.js',
        'dist/records.d.ts',
        'dist/coordination/redis/scripts/claim.lua',
      ]),
    );
    expect(files.filter((file) => !/^(dist\/|package\.json$|LICENSE$|README\.md$|ARCHITECTURE\.md$)/.test(file))).toEqual([]);

    const unpacked = mkdtempSync(join(tmpdir(), 'dsched-unpacked-'));
    try {
      await run('tar', ['-xzf', tarball, '-C', unpacked], unpacked);
      const maps = files.filter((file) => file.endsWith('.js.map'));
      expect(maps.length).toBeGreaterThan(50);
      for (const map of maps) {
        const { sources, sourcesContent } = JSON.parse(readFileSync(join(unpacked, 'package', map), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
        expect({ map, contents: sourcesContent?.filter((content) => typeof content === 'string' && content.length > 0).length }).toEqual({ map, contents: sources.length });
      }
    } finally {
      rmSync(unpacked, { recursive: true, force: true });
    }
  });

  it.each(['nest11-typeorm03', 'nest12-typeorm1'])(
    '%s: installs, compiles, runs a job on Redis and records it in PostgreSQL through the shipped migrations',
    async (name) => {
      const { output } = await outcomeOf(name);
      const { prefix, database } = services.get(name)!;
      const ran = /^job ran: compat\.heartbeat mode=redis executionId=(\d+)$/m.exec(output.stdout);
      const recorded = /^recorded: execution (\d+) of compat\.heartbeat Success \(hook saw (\d+)\)$/m.exec(output.stdout);
      expect({ ran: ran?.[0], recorded: recorded?.[0], stderr: output.stderr }).toEqual({ ran: expect.any(String), recorded: expect.any(String), stderr: '' });
      expect(recorded![1]).toBe(ran![1]);
      expect(recorded![2]).toBe(ran![1]);

      // Coordinated on Redis under the app's prefix, and the tables made by the migrations.
      expect((await redis.keys(`{${prefix}}:job:*`)).length).toBeGreaterThan(0);
      const dataSource = new DataSource(database.options);
      await dataSource.initialize();
      try {
        const migrations: { name: string }[] = await dataSource.query('SELECT name FROM migrations');
        // Every migration the package ships, in order: the records, the snapshots, the task's checkpoint.
        expect(migrations.map((migration) => migration.name)).toEqual([
          expect.stringMatching(/^DschedRecords\d+$/),
          expect.stringMatching(/^DschedSnapshots\d+$/),
          expect.stringMatching(/^DschedTaskCheckpoint\d+$/),
        ]);
        const rows: { status: string }[] = await dataSource.query('SELECT status FROM dsched_execution WHERE id = $1', [Number(ran![1])]);
        expect(rows).toEqual([{ status: 'Success' }]);
      } finally {
        await dataSource.destroy();
      }
    },
    INSTALL_TIMEOUT,
  );

  it(
    'without-typeorm: compiles against the main entry and runs a job with neither TypeORM nor @nestjs/schedule installed',
    async () => {
      const { dir, output } = await outcomeOf('without-typeorm');
      for (const absent of ['typeorm', '@nestjs/typeorm', '@nestjs/schedule']) {
        expect({ absent, foundAt: findPackage(dir, absent) }).toEqual({ absent, foundAt: null });
      }
      expect(output.stdout).toMatch(/^job ran: compat\.heartbeat mode=embedded executionId=null$/m);
      expect(output.stderr).toBe('');
    },
    INSTALL_TIMEOUT,
  );
});

/** Where Node (and TypeScript) would find a package from `dir`: its node_modules and every one above. */
function findPackage(dir: string, name: string): string | null {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(at) === at) return null;
  }
}
