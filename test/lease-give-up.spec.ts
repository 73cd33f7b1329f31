import { INestApplicationContext, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { DistributedJob, JobAbortedError, JobContext, JobScheduler } from '../lib';
import { bootApp } from './support/app';
import { TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

const events = new EventLog<{ type: 'start' } | { type: 'abort'; at: number; kind: string }>();

@Injectable()
class HeldJob {
  @DistributedJob({ name: 'held' })
  async run(ctx: JobContext): Promise<void> {
    events.push({ type: 'start' });
    await new Promise<void>((resolve) =>
      ctx.signal.addEventListener('abort', () => {
        events.push({ type: 'abort', at: Date.now(), kind: (ctx.signal.reason as JobAbortedError).kind });
        resolve();
      }),
    );
  }
}

/**
 * A run whose lease cannot be renewed (Redis paused for writes) gives it up at 90 % of the
 * validity it had left, on a timer of its own: before the lease expires and another replica may
 * take the job, not at the next extension tick (which came only at 100 %).
 */
describe('a lease that cannot be renewed', () => {
  jest.setTimeout(60_000);
  let server: TestRedisServer;
  let admin: Redis;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    server = await TestRedisServer.reserve();
    await server.start();
    admin = server.client();
  });

  afterAll(async () => {
    await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
    await app?.close();
    admin.disconnect();
    await server.stop();
  });

  it('is given up before it expires', async () => {
    const keyPrefix = uniquePrefix('lease-give-up');
    const lockTtl = 5_000;
    app = await bootApp({ redis: server.url, keyPrefix, instanceId: 'holder', lockTtl }, [HeldJob]);
    await app.get(JobScheduler).trigger('held');
    await events.until('the run', (all) => all.some((event) => event.type === 'start'));

    const runsKey = `{${keyPrefix}}:runs:held`;
    const expiry = async () => Math.max(...Object.values(await admin.hgetall(runsKey)).map((lease) => (JSON.parse(lease) as { e: number }).e));
    // Right after a renewal, Redis stops taking writes: no extension succeeds from here on.
    const first = await expiry();
    while ((await expiry()) === first) await new Promise((resolve) => setImmediate(resolve));
    await admin.call('CLIENT', 'PAUSE', String(2 * lockTtl), 'WRITE');
    const expiresAt = await expiry();

    const abort = await events.until('the abort', (all) => all.find((event) => event.type === 'abort'), 2 * lockTtl);
    expect(abort).toMatchObject({ kind: 'lease-lost' });
    // 90 % of 5 s: half a second before the expiry (Redis and this test read the same machine's clock).
    expect(abort.at).toBeLessThan(expiresAt - 150);
  });
});
