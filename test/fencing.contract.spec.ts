import Redis from 'ioredis';
import { filter, firstValueFrom } from 'rxjs';
import { ClaimResult, Coordinator, JobRegistration } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import { RedisKeys } from '../lib/coordination/redis/redis-keys';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { leaseTask } from './support/task-lease';

/**
 * The guarantees the scripts give whatever the timing: fencing tokens that only grow, also for
 * task leases taken in the same millisecond as a claim or ahead of the clock, and no fire run
 * before its due time, not even by a second.
 */
const INSTANCE = 'replica-a';
const TTL = 30_000;

function registration(name: string, due: number, every = 1_000): JobRegistration {
  const definition = { spec: { every, jitter: 0 }, overlap: 'allow' as const, paused: false };
  return { name, definition, definitionHash: JSON.stringify(definition), first: { base: due, due } };
}

const factories = [
  { name: 'RedisCoordinator', create: (prefix: string): Coordinator => new RedisCoordinator(SHARED_REDIS_URL, prefix) },
  { name: 'EmbeddedCoordinator', create: (): Coordinator => new EmbeddedCoordinator() },
];

describe.each(factories)('$name', ({ name, create }) => {
  let coordinator: Coordinator;
  let prefix: string;

  beforeEach(async () => {
    prefix = uniquePrefix('fencing');
    coordinator = create(prefix);
    await coordinator.connect();
    await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
  });
  afterEach(() => coordinator.close());

  it('gives task leases taken together, and after a claim, distinct tokens above every earlier one', async () => {
    const now = Date.now();
    await coordinator.register([registration('task-job', now - 5)], 'boot', INSTANCE);
    const [claim] = await coordinator.claim([{ name: 'task-job', rev: 1, due: now - 5, next: { base: now + 60_000, due: now + 60_000 } }], INSTANCE, TTL);
    expect(claim.status).toBe('claimed');
    const claimed = (claim as Extract<ClaimResult, { status: 'claimed' }>).fencingToken;
    const leases = await Promise.all(Array.from({ length: 20 }, (_, i) => leaseTask(coordinator, 'task-job', INSTANCE, TTL, i + 1)));
    const tokens = leases.map((lease) => lease.fencingToken);
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(Math.min(...tokens)).toBeGreaterThan(claimed);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
  });

  it('refuses a fire due in one second, and in 100 ms', async () => {
    for (const ahead of [1_000, 100]) {
      const due = Date.now() + ahead;
      const job = `soon-${ahead}`;
      await coordinator.register([registration(job, due)], 'boot', INSTANCE);
      const [result] = await coordinator.claim([{ name: job, rev: 1, due, next: { base: due + 1_000, due: due + 1_000 } }], INSTANCE, TTL);
      expect(result.status).toBe('early');
    }
  });

  if (name === 'RedisCoordinator') {
    it('keeps task lease tokens above the last one issued when Redis’s clock is behind it (a failover to a replica whose clock lags)', async () => {
      await coordinator.register([registration('lagging', Date.now() + 60_000)], 'boot', INSTANCE);
      const issued = Date.now() + 10 * 60_000;
      const redis = new Redis(SHARED_REDIS_URL);
      try {
        await redis.hset(new RedisKeys(prefix).job('lagging'), 'fence', issued);
      } finally {
        redis.disconnect();
      }
      const first = await leaseTask(coordinator, 'lagging', INSTANCE, TTL, 1);
      const second = await leaseTask(coordinator, 'lagging', INSTANCE, TTL, 2);
      expect(first.fencingToken).toBeGreaterThan(issued);
      expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    });
  }
});
