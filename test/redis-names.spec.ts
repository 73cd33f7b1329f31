import { Injectable, INestApplicationContext } from '@nestjs/common';
import Redis from 'ioredis';
import { DistributedJob, InvalidJobOptionError, JobContext, JobScheduler, UnknownJobError } from '../lib';
import { bootApp } from './support/app';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

const runs = new EventLog<string>();

/** Names a user may give, with every character that means something in a key, a hash tag or a trigger member. */
const ODD = ['reports}{nightly', '{other-tag}', 'a:job:b', 'back\\slash "quoted"', 'ünï cödé'];

@Injectable()
class OddNames {
  @DistributedJob({ name: ODD[0] })
  a(ctx: JobContext) {
    runs.push(ctx.name);
  }
  @DistributedJob({ name: ODD[1] })
  b(ctx: JobContext) {
    runs.push(ctx.name);
  }
  @DistributedJob({ name: ODD[2] })
  c(ctx: JobContext) {
    runs.push(ctx.name);
  }
  @DistributedJob({ name: ODD[3] })
  d(ctx: JobContext) {
    runs.push(ctx.name);
  }
  @DistributedJob({ name: ODD[4], every: '1h' })
  e(ctx: JobContext) {
    runs.push(ctx.name);
  }
}

@Injectable()
class MultiLine {
  @DistributedJob({ name: 'one\nSCHEDULE\nqueued' })
  run() {}
}

/** The hash tag Redis Cluster computes a key's slot from: between the first `{` and the next `}`, if not empty. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

/**
 * Job names, trigger ids and lock holders reach Redis keys, channel messages and Lua arguments.
 * None of them may move a key out of the prefix's hash tag, reach another job's keys, or create keys.
 */
describe('names that reach Redis', () => {
  const keyPrefix = uniquePrefix('names');
  let app: INestApplicationContext;
  let scheduler: JobScheduler;
  let redis: Redis;

  beforeAll(async () => {
    app = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'names' }, [OddNames]);
    scheduler = app.get(JobScheduler);
    redis = new Redis(SHARED_REDIS_URL);
  });

  afterAll(async () => {
    await app?.close();
    redis?.disconnect();
  });

  const keysOfPrefix = async () => (await redis.keys(`{${keyPrefix}}*`)).sort();

  it('runs, pauses and describes jobs whose names hold braces, colons, quotes and backslashes, keeping every key in the prefix hash tag', async () => {
    for (const name of ODD) await scheduler.trigger(name);
    await runs.until('a run of every job', (names) => ODD.every((name) => names.includes(name)));
    await scheduler.pause(ODD[4]);
    expect((await scheduler.describe(ODD[4])).paused).toBe(true);
    await scheduler.resume(ODD[4]);
    expect((await scheduler.list()).map((job) => job.name).sort()).toEqual([...ODD].sort());

    const keys = await keysOfPrefix();
    expect(keys.length).toBeGreaterThan(ODD.length);
    expect(keys.filter((key) => hashTag(key) !== keyPrefix)).toEqual([]);
    for (const name of ODD) expect(keys).toContain(`{${keyPrefix}}:job:${name}`);
  });

  it('answers UnknownJobError for names that only look like keys or trigger members, and writes nothing', async () => {
    const before = await keysOfPrefix();
    const version = await redis.get(`{${keyPrefix}}:version`);
    const ghosts = [`${ODD[4]}\nSCHEDULE\nqueued`, 'reports}', '{' + keyPrefix + '}:job:' + ODD[4], `${ODD[2]}:extra`, '*', ''];
    for (const ghost of ghosts) {
      for (const call of [() => scheduler.trigger(ghost), () => scheduler.pause(ghost), () => scheduler.resume(ghost), () => scheduler.lock(ghost), () => scheduler.describe(ghost)]) {
        await expect(call()).rejects.toThrow(UnknownJobError);
      }
    }
    expect(await keysOfPrefix()).toEqual(before);
    expect(await redis.get(`{${keyPrefix}}:version`)).toBe(version);
  });

  it('keeps a lock holder exactly as given, quotes and newlines included', async () => {
    const holder = 'ops"}\n{"by":"mallory';
    await scheduler.lock(ODD[0], { holder });
    expect((await scheduler.describe(ODD[0])).locked).toEqual({ by: holder, until: null });
    await scheduler.unlock(ODD[0]);
    expect((await scheduler.describe(ODD[0])).locked).toBeNull();
  });

  it('refuses at startup a job name on several lines, which would split a trigger member', async () => {
    const error = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix: uniquePrefix('multiline') }, [MultiLine]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as Error).message).toContain('option "name"');
  });
});
