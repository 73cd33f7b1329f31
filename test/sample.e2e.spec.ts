import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { maskUrl } from '../sample/security/mask-url';
import { TestDatabase } from './support/databases';
import { freePort, TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

const ROOT = join(__dirname, '..');
const TOKEN = 'sample-token-7f3a';
const SECRETS = ['pg-s3cr@t', 'qs-s3cret', 'redis-s3cret'];

/** Starts the sample as `npm run sample` does (the library from dist/: run `npm run build` first); resolves once it has printed its startup lines. */
async function startSample(port: number, env: Record<string, string>, output: EventLog<string>): Promise<ChildProcess> {
  const app = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'sample/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_PROJECT: 'sample/tsconfig.json', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  app.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  app.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const printed = () => output.events.join('');
  const exited = new Promise<never>((_, reject) => app.once('exit', (code) => reject(new Error(`the sample exited with ${code}: ${printed()}`))));
  await Promise.race([output.until('the startup lines', () => /^Coordinating (on Redis |in this process).*\n/m.test(printed()), 90_000), exited]);
  return app;
}

async function stopSample(app: ChildProcess | undefined): Promise<void> {
  if (!app || app.exitCode !== null) return;
  await new Promise((resolve) => {
    app.once('exit', resolve);
    app.kill('SIGTERM');
  });
}

/**
 * The sample is a template people copy. It runs here as `npm run sample` runs it (sample/main.ts,
 * the library from dist/: run `npm run build` first), on PostgreSQL and a Redis of the test's own,
 * with passwords in both URLs and SAMPLE_API_TOKEN set.
 */
describe('the sample app', () => {
  let db: TestDatabase;
  let redis: TestRedisServer;
  let app: ChildProcess;
  let base: string;
  const output = new EventLog<string>();
  const printed = () => output.events.join('');

  beforeAll(async () => {
    db = await TestDatabase.create('postgres');
    redis = await TestRedisServer.reserve();
    await redis.start();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const database = (db.options as { database: string }).database;
    app = await startSample(port, {
      // A password holding '@', and another one as a query parameter.
      DATABASE_URL: `postgres://postgres:${SECRETS[0]}@127.0.0.1:5432/${database}?password=${SECRETS[1]}`,
      REDIS_URL: `redis://:${SECRETS[2]}@127.0.0.1:${redis.port}`,
      KEY_PREFIX: uniquePrefix('sample'),
      SAMPLE_API_TOKEN: TOKEN,
    }, output);
  }, 120_000);

  afterAll(async () => {
    await stopSample(app);
    await redis?.stop();
    await db?.drop();
  });

  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const withToken = { authorization: `Bearer ${TOKEN}` };

  it('prints where its database and Redis are without their passwords', () => {
    const database = (db.options as { database: string }).database;
    expect(printed()).toContain(`Execution records in the PostgreSQL database postgres://postgres:***@127.0.0.1:5432/${database}?password=***`);
    expect(printed()).toContain(`Coordinating on Redis redis://:***@127.0.0.1:${redis.port}`);
    for (const secret of SECRETS) expect(printed()).not.toContain(secret);
    expect(printed()).not.toContain('open to anyone');
  });

  it('with SAMPLE_API_TOKEN, refuses changes without that bearer token and still answers reads', async () => {
    expect((await call('GET', '/jobs')).status).toBe(200);
    expect((await call('GET', '/executions')).status).toBe(200);
    const refused = await call('POST', '/jobs/heartbeat/pause');
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ statusCode: 401, message: expect.stringContaining('Authorization: Bearer') });
    expect((await call('POST', '/jobs/heartbeat/pause', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await call('POST', '/jobs/heartbeat/pause', { authorization: TOKEN })).status).toBe(401);
    expect((await call('PUT', '/jobs/heartbeat/schedule', {}, { every: '1s' })).status).toBe(401);
    expect((await call('POST', '/reports', {}, { requestedBy: 'mallory' })).status).toBe(401);
    expect((await call('DELETE', '/executions/1')).status).toBe(401);
    expect(((await (await call('GET', '/jobs/heartbeat')).json()) as { paused: boolean }).paused).toBe(false);

    expect((await call('POST', '/jobs/heartbeat/pause', withToken)).status).toBe(204);
    expect(((await (await call('GET', '/jobs/heartbeat')).json()) as { paused: boolean }).paused).toBe(true);
    expect((await call('POST', '/jobs/heartbeat/resume', withToken)).status).toBe(204);
    // Nothing the refused requests asked for happened.
    const dataSource = new DataSource({ ...db.options });
    await dataSource.initialize();
    try {
      expect(await dataSource.query(`SELECT COUNT(*)::int AS n FROM dsched_execution WHERE extra_attrs::jsonb ->> 'requestedBy' = 'mallory'`)).toEqual([{ n: 0 }]);
    } finally {
      await dataSource.destroy();
    }
  });

  it("answers the client's own mistakes with the library's message", async () => {
    const unknown = await call('POST', '/jobs/no-such-job/trigger', withToken);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: 'UnknownJobError', message: expect.stringContaining('No job is named "no-such-job"') });
    const missing = await call('GET', '/executions/987654');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { message: string }).message).toBe('No execution has the id 987654.');
  });

  it('answers a Redis outage with a plain 503, and logs where it tried', async () => {
    await redis.stop();
    const response = await call('GET', '/jobs');
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      statusCode: 503,
      error: 'CoordinatorUnavailableError',
      message: 'The job scheduler cannot be reached right now; try again shortly.',
    });
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toContain(String(redis.port));
    await output.until('the detail in the log', () => new RegExp(`GET /jobs answered 503: .*127\\.0\\.0\\.1:${redis.port}`).test(printed()));
  });
});

describe('the sample app without SAMPLE_API_TOKEN', () => {
  let app: ChildProcess;
  let dir: string;
  let base: string;
  const output = new EventLog<string>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsched-sample-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await startSample(port, { SQLITE_PATH: join(dir, 'records.sqlite') }, output);
  }, 120_000);

  afterAll(async () => {
    await stopSample(app);
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves its routes open, as before, and warns at startup that they are', async () => {
    const warning = /routes that trigger, pause, reschedule, create, stop and delete are open to anyone.*Set SAMPLE_API_TOKEN/;
    await output.until('the warning', () => warning.test(output.events.join('')));
    expect(output.events.join('')).toContain('Coordinating in this process (embedded; no REDIS_URL)');
    expect((await fetch(`${base}/jobs/heartbeat/pause`, { method: 'POST' })).status).toBe(204);
    expect(((await (await fetch(`${base}/jobs/heartbeat`)).json()) as { paused: boolean }).paused).toBe(true);
  });
});

describe('maskUrl, for the startup lines of the sample', () => {
  it.each([
    ['postgres://postgres:pw@localhost:5432/db', 'postgres://postgres:***@localhost:5432/db'],
    ['postgres://:pw@host/db', 'postgres://:***@host/db'],
    ['postgres://user:p@ss:w@rd@host/db', 'postgres://user:***@host/db'],
    ['postgres://user@host/db?password=pw&sslmode=require', 'postgres://user@host/db?password=***&sslmode=require'],
    ['postgresql://user:p%40ss@host/db?PASSWORD=pw', 'postgresql://user:***@host/db?PASSWORD=***'],
    ['redis://:pw@127.0.0.1:6379/0', 'redis://:***@127.0.0.1:6379/0'],
    ['rediss://default:pw@cache.internal:6380', 'rediss://default:***@cache.internal:6380'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['postgres://postgres@localhost/db', 'postgres://postgres@localhost/db'],
    ['host=db password=pw', '(an unparseable URL, not shown)'],
  ])('%s → %s', (url, masked) => {
    expect(maskUrl(url)).toBe(masked);
  });
});
