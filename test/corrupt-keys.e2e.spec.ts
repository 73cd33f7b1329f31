import { Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import { CorruptJobError, DistributedJob, JobContext, JobScheduler } from '../lib';
import { bootApp, CapturingLogger } from './support/app';
import { TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * A key edited by hand (or by another program on the prefix) must cost its own job only: the jobs
 * due with it run on time, nothing is written for it, one error names the job, the key and what
 * is wrong, Redis is not hammered, and the job comes back once the key is repaired or deleted.
 * The test runs its own redis-server, so that its command counts are its own.
 */
describe('a job whose keys are corrupt', () => {
  jest.setTimeout(60_000);
  const runs = new EventLog<JobContext>();
  let server: TestRedisServer;
  let redis: Redis;

  // Three jobs due at the same instants, so every fire of `b` is claimed in one call with `a` and `c`.
  @Injectable()
  class Jobs {
    @DistributedJob({ name: 'a', cron: '* * * * * *' })
    a(ctx: JobContext) {
      runs.push(ctx);
    }

    @DistributedJob({ name: 'b', cron: '* * * * * *' })
    b(ctx: JobContext) {
      runs.push(ctx);
    }

    @DistributedJob({ name: 'c', cron: '* * * * * *' })
    c(ctx: JobContext) {
      runs.push(ctx);
    }
  }

  beforeAll(async () => {
    server = await TestRedisServer.reserve();
    await server.start();
    redis = server.client();
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  beforeEach(() => {
    runs.events.length = 0;
  });

  interface Kind {
    what: string;
    /** The key the error must name, as a pattern on `{prefix}:…`. */
    key: (p: string) => string;
    /** The problem the error must describe. */
    problem: RegExp;
    corrupt: (p: string) => Promise<unknown>;
    /** Repairs (or deletes) the key; returns nothing when the job recovers by itself. */
    repair: (p: string, saved: Record<string, string>) => Promise<unknown>;
    /** False for a job Redis lost: it is registered again rather than isolated. */
    isolated?: boolean;
    /** True if `describe` can still show what is stored (well-formed data, a schedule that cannot be followed). */
    describable?: boolean;
  }

  const kinds: Kind[] = [
    {
      what: 'its rev is not a number',
      key: (p) => `{${p}}:job:b`,
      problem: /field "rev" is not a number/,
      corrupt: (p) => redis.hset(`{${p}}:job:b`, 'rev', 'garbage'),
      repair: (p, saved) => redis.hset(`{${p}}:job:b`, 'rev', saved.rev),
    },
    {
      what: 'its runs hash is a string',
      key: (p) => `{${p}}:runs:b`,
      problem: /expected a hash, found a string/,
      corrupt: (p) => redis.multi().del(`{${p}}:runs:b`).set(`{${p}}:runs:b`, 'garbage').exec(),
      repair: (p) => redis.del(`{${p}}:runs:b`),
    },
    {
      what: 'its job hash is a string',
      key: (p) => `{${p}}:job:b`,
      problem: /expected a hash, found a string/,
      corrupt: (p) => redis.multi().del(`{${p}}:job:b`).set(`{${p}}:job:b`, 'garbage').exec(),
      // Deleted: the replicas register it again.
      repair: (p) => redis.del(`{${p}}:job:b`),
    },
    {
      what: 'one lease entry is not JSON',
      key: (p) => `{${p}}:runs:b`,
      problem: /entry "123" is not a run lease/,
      corrupt: (p) => redis.hset(`{${p}}:runs:b`, '123', 'garbage'),
      repair: (p) => redis.hdel(`{${p}}:runs:b`, '123'),
    },
    {
      what: 'its spec is garbage',
      key: (p) => `{${p}}:job:b`,
      problem: /field "spec" is not JSON/,
      corrupt: (p) => redis.hset(`{${p}}:job:b`, 'spec', 'garbage'),
      repair: (p, saved) => redis.hset(`{${p}}:job:b`, 'spec', saved.spec),
    },
    {
      what: 'its spec is JSON but not a schedule',
      key: (p) => `{${p}}:job:b`,
      problem: /field "spec" is not a schedule/,
      corrupt: (p) => redis.hset(`{${p}}:job:b`, 'spec', JSON.stringify({ cron: 'not a cron', jitter: 0 })),
      repair: (p, saved) => redis.hset(`{${p}}:job:b`, 'spec', saved.spec),
      describable: true,
    },
    {
      what: 'its due entry is left but its job hash is gone',
      key: (p) => `{${p}}:job:b`,
      problem: /./,
      corrupt: (p) => redis.del(`{${p}}:job:b`),
      repair: async () => undefined,
      isolated: false,
    },
  ];

  it.each(kinds)('when $what: the others run on time, nothing is written for it, one error, no hot loop, back once repaired', async (kind) => {
    const prefix = uniquePrefix('corrupt');
    const logger = new CapturingLogger();
    const app = await bootApp({ redis: server.url, keyPrefix: prefix, instanceId: 'solo' }, [Jobs], logger);
    try {
      await runs.until('a run of each job', (events) => ['a', 'b', 'c'].every((name) => events.some((ctx) => ctx.name === name)));
      const idle = await commandsPerSecond(redis, 1_000);
      const saved = await redis.hgetall(`{${prefix}}:job:b`);

      const corruptedAt = Date.now();
      await kind.corrupt(prefix);
      // Any change elsewhere makes replicas read jobs again: announce one, so the spec is read too.
      await redis.publish(`{${prefix}}:events`, JSON.stringify({ t: 'changed', names: ['b'] }));
      const keys = [`{${prefix}}:job:b`, `{${prefix}}:runs:b`, `{${prefix}}:triggers:b`];
      // A claim already in flight when the key was corrupted may still run once.
      await runs.until('a fire of a and c after the corruption', (events) => events.some((ctx) => ctx.name === 'a' && ctx.scheduledAt.getTime() > corruptedAt + 1_000));
      const before = await Promise.all(keys.map((key) => redis.dump(key)));
      const busy = await commandsPerSecond(redis, 2_000);
      const after = await Promise.all(keys.map((key) => redis.dump(key)));

      // The other two ran every second, on time.
      for (const name of ['a', 'c']) {
        const later = runs.events.filter((ctx) => ctx.name === name && ctx.scheduledAt.getTime() > corruptedAt);
        expect(later.length).toBeGreaterThanOrEqual(3);
        for (const ctx of later) expect(ctx.startedAt.getTime() - ctx.scheduledAt.getTime()).toBeLessThan(1_000);
      }
      // Redis is not hammered: bounded by a few times the idle rate.
      expect(busy).toBeLessThan(Math.max(10 * idle, 100));

      if (kind.isolated !== false) {
        // Nothing ran, and nothing was written for it.
        expect(runs.events.filter((ctx) => ctx.name === 'b' && ctx.scheduledAt.getTime() > corruptedAt + 1_000)).toEqual([]);
        expect(after).toEqual(before);
        // One error, naming the job, the key and what is wrong; not one per fire.
        const errors = logger.lines.filter((line) => line.level === 'error');
        expect(errors.map((line) => line.message)).toEqual([expect.stringContaining(`Job "b": its key "${kind.key(prefix)}"`)]);
        expect(errors[0].message).toMatch(kind.problem);
        if (!kind.describable) {
          await expect(app.get(JobScheduler).describe('b')).rejects.toThrow(CorruptJobError);
          const listed = await app.get(JobScheduler).list();
          expect(listed.map((job) => job.name)).toEqual(['a', 'c']);
          expect(logger.count('warn', new RegExp(`Job "b" is left out of the list: its key "${escape(kind.key(prefix))}"`))).toBe(1);
        }
      }

      const repairedAt = Date.now();
      await kind.repair(prefix, saved);
      await runs.until('a run of b after the repair', (events) => events.some((ctx) => ctx.name === 'b' && ctx.scheduledAt.getTime() > repairedAt), 45_000);
      if (kind.isolated !== false) expect(logger.count('log', /Job "b": its keys hold valid data again/)).toBe(1);
    } finally {
      await app.close();
    }
  });
});

describe('a running job whose keys turn corrupt', () => {
  jest.setTimeout(60_000);
  const started = new EventLog<JobContext>();
  let server: TestRedisServer;
  let redis: Redis;

  @Injectable()
  class Jobs {
    @DistributedJob({ name: 'slow' })
    async slow(ctx: JobContext) {
      started.push(ctx);
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    }
  }

  beforeAll(async () => {
    server = await TestRedisServer.reserve();
    await server.start();
    redis = server.client();
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('aborts the run when its lease cannot be renewed for that reason, names the key, and refuses controls with CorruptJobError until repaired', async () => {
    const prefix = uniquePrefix('corrupt-run');
    const logger = new CapturingLogger();
    const app = await bootApp({ redis: server.url, keyPrefix: prefix, instanceId: 'solo', lockTtl: 1_000 }, [Jobs], logger);
    const scheduler = app.get(JobScheduler);
    try {
      await scheduler.trigger('slow');
      const run = await started.until('the run', (events) => events[0]);
      const runsKey = `{${prefix}}:runs:slow`;
      await redis.multi().del(runsKey).set(runsKey, 'garbage').exec();

      const aborted = await logger.until('warn', /Job "slow" .*is aborted/);
      expect(aborted.message).toContain(`its lease could not be renewed: key "${runsKey}" holds data the scheduler did not write`);
      expect(run.signal.aborted).toBe(true);
      const error = await logger.until('error', /Job "slow": its key/);
      expect(error.message).toContain(`Job "slow": its key "${runsKey}" holds data the scheduler did not write: expected a hash, found a string`);

      const refused = await scheduler.trigger('slow').catch((caught: unknown) => caught);
      expect(refused).toBeInstanceOf(CorruptJobError);
      expect(refused).toMatchObject({ job: 'slow', key: runsKey, problem: 'expected a hash, found a string' });
      expect(await redis.get(runsKey)).toBe('garbage');

      await redis.del(runsKey);
      await scheduler.trigger('slow');
      await started.until('a run after the repair', (events) => events.length === 2);
      expect(logger.count('error', /Job "slow": its key/)).toBe(1);
    } finally {
      await app.close();
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Commands Redis ran per second over `ms` (Lua's calls included), from INFO commandstats. */
async function commandsPerSecond(redis: Redis, ms: number): Promise<number> {
  const total = async () =>
    [...(await redis.info('commandstats')).matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
  const start = await total();
  // The rate over a window of time: no event marks its end.
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ((await total()) - start - 1) / (ms / 1000);
}
