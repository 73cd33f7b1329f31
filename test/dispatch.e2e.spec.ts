import { DataSource } from 'typeorm';
import { schedulerMigrations } from '../lib/records';
import type { FixtureJob, ReplicaMessage } from './fixtures/replica.main';
import { TestDatabase } from './support/databases';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EndEvent, Replica, RunEvent } from './support/replica';
import { EventLog, eventually } from './support/wait';

/**
 * Tasks dispatched across the cluster, with real processes on one Redis and records on
 * PostgreSQL: an API-only replica (`worker: false`) creates the tasks through `TaskManager`, three
 * workers (`worker: { concurrency: 4 }`) run them. Checked from the handlers' own start and end
 * log (each process's clock is this machine's), never from the scheduler's state.
 */
const WORKER_CONCURRENCY = 4;
const JOBS: FixtureJob[] = [
  { name: 'fan', busyMs: 5 },
  { name: 'limited', busyMs: 40, concurrency: 2 },
  { name: 'slow', busyMs: 1_500, concurrency: 1 },
];

/** The most runs live at once, from start and end events (`at`), ends before starts at equal times. */
function maxConcurrent(runs: RunEvent[], ends: EndEvent[]): number {
  const points = [...runs.map((run) => ({ at: run.at, delta: 1 })), ...ends.map((end) => ({ at: end.at, delta: -1 }))].sort((a, b) => a.at - b.at || a.delta - b.delta);
  let live = 0;
  let most = 0;
  for (const point of points) most = Math.max(most, (live += point.delta));
  return most;
}

describe('tasks dispatched across the cluster (real processes, Redis, PostgreSQL)', () => {
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  let db: TestDatabase;
  let api: Replica;

  const runs = (name: string) => log.events.filter((event): event is RunEvent => event.type === 'run' && event.name === name);
  const ends = (name: string) => log.events.filter((event): event is EndEvent => event.type === 'end' && event.name === name);

  beforeAll(async () => {
    db = await TestDatabase.create('postgres');
    const tables = new DataSource({ ...db.options, migrations: schedulerMigrations('postgres') });
    await tables.initialize();
    await tables.runMigrations();
    await tables.destroy();
    const base = { redisUrl: SHARED_REDIS_URL, keyPrefix: uniquePrefix('dispatch'), jobs: JOBS, database: db.options };
    api = await Replica.start({ ...base, instanceId: 'api', cluster: { worker: false } }, log);
    replicas.push(api);
    for (const id of ['w1', 'w2', 'w3']) replicas.push(await Replica.start({ ...base, instanceId: id, cluster: { worker: { concurrency: WORKER_CONCURRENCY } } }, log));
    // Every worker knows the others before the first task (their claim order depends on it).
    await eventually('every replica to see the four members', () => api.call<unknown[]>('members'), (members) => members.length === 4);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await db?.drop();
  });

  it('runs 1,000 tasks of one job created on an API-only replica exactly once, spread over the three workers, each within its concurrency', async () => {
    const ids = await api.call<number[]>('createTasks', 'fan', 1_000);
    expect(new Set(ids).size).toBe(1_000);
    await log.until('every task to end', () => ends('fan').length >= 1_000 && true, 120_000);
    const started = runs('fan');
    // Exactly once: every task ran, none twice.
    expect(started.map((run) => run.taskId).sort((a, b) => a! - b!)).toEqual([...ids].sort((a, b) => a - b));
    const byReplica = (id: string) => ({ runs: started.filter((run) => run.instanceId === id), ends: ends('fan').filter((end) => end.instanceId === id) });
    expect(byReplica('api').runs).toEqual([]);
    for (const id of ['w1', 'w2', 'w3']) {
      const own = byReplica(id);
      expect(own.runs.length).toBeGreaterThan(100);
      expect(maxConcurrent(own.runs, own.ends)).toBeLessThanOrEqual(WORKER_CONCURRENCY);
    }
    // Each end is recorded just after its handler returns: wait for the records to say all ended.
    const statuses = await eventually(
      'every task to be recorded as ended',
      () => api.call<Record<number, string>>('taskStatuses', ids),
      (all) => !Object.values(all).includes('Running'),
    );
    expect(new Set(Object.values(statuses))).toEqual(new Set(['Success']));
  }, 180_000);

  it("keeps a job's tasks within its concurrency across the cluster", async () => {
    const ids = await api.call<number[]>('createTasks', 'limited', 30);
    await log.until('every limited task to end', () => ends('limited').length >= 30 && true, 60_000);
    expect(runs('limited').map((run) => run.taskId).sort((a, b) => a! - b!)).toEqual([...ids].sort((a, b) => a - b));
    expect(maxConcurrent(runs('limited'), ends('limited'))).toBeLessThanOrEqual(2);
    expect(runs('limited').some((run) => run.instanceId === 'api')).toBe(false);
  }, 90_000);

  it('stops a Pending task before any replica takes it: it never starts, ends Stopped, and leaves nothing pending', async () => {
    // With concurrency 1, the first runs and the other two wait in the coordinator.
    const [first, second, third] = await api.call<number[]>('createTasks', 'slow', 3);
    const firstRun = await log.until('a slow task to start', () => runs('slow')[0]);
    const pending = [first, second, third].filter((id) => id !== firstRun.taskId);
    await api.call('stopTask', pending[1]);
    expect((await api.call<Record<number, string>>('taskStatuses', [pending[1]]))[pending[1]]).toBe('Stopped');
    // The other pending one still runs once the first ends; after it, nothing of the job is pending.
    await log.until('the other pending task to end', () => ends('slow').length >= 2 && true, 20_000);
    const description = await api.call<{ pendingTriggers: number; running: unknown[] }>('describe', 'slow');
    expect(description.pendingTriggers).toBe(0);
    expect(runs('slow').map((run) => run.taskId)).toEqual([firstRun.taskId, pending[0]]);
    // A task's end is recorded just after its handler returns: wait for the records to say it.
    const statuses = await eventually(
      'the second task to be recorded as ended',
      () => api.call<Record<number, string>>('taskStatuses', [first, second, third]),
      (all) => all[pending[0]] !== 'Running',
    );
    expect(statuses).toEqual({ [firstRun.taskId!]: 'Success', [pending[0]]: 'Success', [pending[1]]: 'Stopped' });
  }, 60_000);
});
