import type { ReplicaMessage } from './fixtures/replica.main';
import { Replica, RunEvent } from './support/replica';
import { TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * Redis losing its state (FLUSHALL, or a restart without persistence) right after a fire, while
 * the other replicas still hold the due time that just ran: no due time may run twice, and
 * fencing tokens must keep increasing. Three replica processes on a redis-server of the test's own.
 */
describe('when Redis loses its state right after a fire', () => {
  jest.setTimeout(180_000);
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  let server: TestRedisServer;
  const runs = () => log.events.filter((event): event is RunEvent => event.type === 'run' && event.name === 'tick');

  beforeEach(async () => {
    server = await TestRedisServer.reserve();
    await server.start();
    const keyPrefix = uniquePrefix('loss');
    replicas.push(
      ...(await Promise.all(
        ['r1', 'r2', 'r3'].map((instanceId) => Replica.start({ redisUrl: server.url, keyPrefix, instanceId, jobs: [{ name: 'tick', every: 1000 }] }, log)),
      )),
    );
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.kill()));
    await server.stop();
    log.events.length = 0;
  });

  /** Waits for the next run of tick, then lets `delayMs` pass: the other replicas' backup claims come 100 ms after the due time. */
  async function afterNextFire(delayMs: number): Promise<void> {
    const seen = runs().length;
    await log.until('the next run of tick', () => runs().length > seen, 20_000);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }

  function expectEachDueTimeOnceWithIncreasingTokens(): void {
    const all = runs().sort((a, b) => a.scheduledAt - b.scheduledAt);
    const twice = all.filter((run, i) => i > 0 && run.scheduledAt === all[i - 1].scheduledAt);
    expect(twice).toEqual([]);
    for (let i = 1; i < all.length; i++) expect(all[i].fencingToken).toBeGreaterThan(all[i - 1].fencingToken);
  }

  it('runs no due time twice across 6 FLUSHALLs timed 20–80 ms after a fire', async () => {
    const admin = server.client();
    try {
      for (let i = 0; i < 6; i++) {
        await afterNextFire(20 + Math.floor(Math.random() * 61));
        await admin.flushall();
      }
      // The job goes on after the last loss.
      const last = Date.now();
      await log.until('two runs after the last flush', () => runs().filter((run) => run.scheduledAt > last).length >= 2, 20_000);
      expectEachDueTimeOnceWithIncreasingTokens();
    } finally {
      admin.disconnect();
    }
  });

  it('runs no due time twice when Redis restarts empty right after a fire', async () => {
    for (let i = 0; i < 3; i++) {
      await afterNextFire(20 + Math.floor(Math.random() * 61));
      await server.stop();
      await server.start();
    }
    const last = Date.now();
    await log.until('two runs after the last restart', () => runs().filter((run) => run.scheduledAt > last).length >= 2, 30_000);
    expectEachDueTimeOnceWithIncreasingTokens();
  });
});
