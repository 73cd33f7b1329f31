import { INestApplicationContext, Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import { DistributedJob, JobContext, JobScheduler } from '../lib';
import { firstValueFrom, filter } from 'rxjs';
import { ClaimInterruptedError } from '../lib/coordination/claim-interrupted.error';
import { ClaimRequest, Coordinator, JobRegistration } from '../lib/coordination/coordinator.interface';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import { loadScripts } from '../lib/coordination/redis/redis-script';
import { bootApp, CapturingLogger } from './support/app';
import { RedisProxy } from './support/redis-proxy';
import { SHARED_REDIS_URL, TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * Replies lost, late or sent twice (issue 9, cases 8, 11, 12 and 14): a replica talks to Redis
 * through a proxy that delays one reply past the client's `commandTimeout`, drops one with the
 * connection (ioredis then sends the command again), or answers one with an error.
 */
const SHAS = (() => {
  const scripts = loadScripts();
  return { claim: scripts.claim.sha, snapshot: scripts.snapshot.sha, reschedule: scripts.reschedule.sha, lock: scripts.lock.sha, trigger: scripts.trigger.sha };
})();

/** The arguments (ARGV) of an EVALSHA of `sha`, or null for any other command. */
function scriptArgs(command: string[], sha: string): string[] | null {
  if (command[0]?.toLowerCase() !== 'evalsha' || command[1] !== sha) return null;
  return command.slice(3 + Number(command[2]));
}

/** A claim of `job`'s due fire (ARGV: instance, ttl, channel, then name, kind, expected, ...). */
const claimOf = (job: string, kind: 'due' | 'trigger') => (command: string[]) => {
  const args = scriptArgs(command, SHAS.claim);
  return args !== null && args[3] === job && args[4] === kind;
};

const sharedPort = Number(new URL(SHARED_REDIS_URL).port || 6379);

interface Run {
  name: string;
  fencingToken: number;
  scheduledAt: number;
  trigger: string;
  runningLeases?: number;
}

describe('replies lost, late or resent', () => {
  let proxy: RedisProxy;
  const apps: INestApplicationContext[] = [];
  const clients: Redis[] = [];

  beforeEach(async () => {
    proxy = await RedisProxy.start(sharedPort);
  });

  afterEach(async () => {
    // The proxy first: a test that failed while it held traffic would leave the apps' close waiting on it.
    await proxy.close();
    for (const app of apps.splice(0)) await app.close();
    clients.splice(0).forEach((client) => client.disconnect());
  });

  async function boot(options: Parameters<typeof bootApp>[0], jobs: Parameters<typeof bootApp>[1], logger = new CapturingLogger()) {
    const app = await bootApp({ minPeriod: 100, ...options }, jobs, logger);
    apps.push(app);
    return app;
  }

  it('runs a fire whose claim reply came after the client timed out, once, and the job is not blocked after it', async () => {
    const runs = new EventLog<Run>();
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'late-reply', every: '1500ms', jitter: 0 })
      tick(ctx: JobContext) {
        runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger });
      }
    }
    // A client of the app's own, with a command timeout: the claim fails here but runs in Redis.
    const client = new Redis(proxy.url, { commandTimeout: 300, maxRetriesPerRequest: 1, lazyConnect: true });
    clients.push(client);
    const logger = new CapturingLogger();
    const delayed = proxy.onNextReply({ match: claimOf('late-reply', 'due'), fault: { delayMs: 1_200 } });
    await boot({ redis: client, keyPrefix: uniquePrefix('late-reply'), instanceId: 'a' }, [Jobs], logger);
    const due = Number((await delayed).slice(3 + Number((await delayed)[2]))[5]);

    await runs.until('the fire whose reply was late and the next one', (events) => events.length >= 2);
    expect(runs.events[0].scheduledAt).toBe(due);
    expect(runs.events[1].scheduledAt).toBeGreaterThan(due);
    expect(runs.events.filter((run) => run.scheduledAt === due)).toHaveLength(1);
    expect(logger.count('warn', /a run is still going/)).toBe(0);
  });

  it('keeps asking Redis about a claim left unanswered until it answers, and runs the fire while its lease lives', async () => {
    // The claim's reply comes too late, then every read of the replica's leases and the claim's
    // retry fail for 1.5 s: the replica has to keep asking, or the fire (claimed in Redis for
    // it) runs nowhere and its lease blocks the job. The retry after that (1 s later again)
    // would come after the lease (2.2 s) expired.
    const runs = new EventLog<Run>();
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'unanswered', every: '4s', jitter: 0 })
      tick(ctx: JobContext) {
        runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger });
      }
    }
    const client = new Redis(proxy.url, { commandTimeout: 300, maxRetriesPerRequest: 1, lazyConnect: true });
    clients.push(client);
    let claimedAt: number | undefined;
    const failing = (command: string[]) => claimedAt !== undefined && Date.now() < claimedAt + 1_500 && command;
    const delayed = proxy.onNextReply({ match: claimOf('unanswered', 'due'), fault: { delayMs: 1_200 } });
    void delayed.then(() => (claimedAt = Date.now()));
    for (let i = 0; i < 20; i++) {
      proxy.onNextReply({ match: (command) => !!failing(command) && scriptArgs(command, SHAS.snapshot) !== null, fault: { refuse: 'ERR read refused by the test' } });
      proxy.onNextReply({ match: (command) => !!failing(command) && claimOf('unanswered', 'due')(command), fault: { refuse: 'ERR claim refused by the test' } });
    }
    const logger = new CapturingLogger();
    await boot({ redis: client, keyPrefix: uniquePrefix('unanswered'), instanceId: 'a', lockTtl: 2_200 }, [Jobs], logger);
    const due = Number(scriptArgs(await delayed, SHAS.claim)![5]);

    const [run] = await runs.until('the fire whose claim went unanswered', (events) => events.length >= 1 && events);
    expect(run.scheduledAt).toBe(due);
    expect(logger.count('warn', /claimed by this replica although the claim's reply was lost/)).toBe(1);
    await runs.until('the next fire', (events) => events.length >= 2);
    expect(runs.events.filter((event) => event.scheduledAt === due)).toHaveLength(1);
    expect(logger.count('warn', /a run is still going/)).toBe(0);
  });

  it('runs a fire claimed while Redis was paused for writes (CLIENT PAUSE WRITE) past the client timeout, once', async () => {
    const server = await TestRedisServer.reserve();
    await server.start();
    const admin = server.client();
    clients.push(admin);
    try {
      const runs = new EventLog<Run>();
      @Injectable()
      class Jobs {
        @DistributedJob({ name: 'paused-redis', every: '1500ms', jitter: 0 })
        tick(ctx: JobContext) {
          runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger });
        }
      }
      const client = new Redis(server.url, { commandTimeout: 300, maxRetriesPerRequest: 1, lazyConnect: true });
      clients.push(client);
      const logger = new CapturingLogger();
      const app = await boot({ redis: client, keyPrefix: uniquePrefix('paused-redis'), instanceId: 'a' }, [Jobs], logger);
      await runs.until('a first run', (events) => events.length >= 1);
      const due = (await app.get(JobScheduler).describe('paused-redis')).nextRunAt!.getTime();
      // Writes stop just before the due time and resume 1.5 s later: the claim times out here
      // but runs in Redis when the pause ends.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - 100 - Date.now())));
      await admin.call('CLIENT', 'PAUSE', '1500', 'WRITE');
      const after = await runs.until('the fire due during the pause and the one after it', (events) => {
        const later = events.filter((run) => run.scheduledAt >= due);
        return later.length >= 2 && later;
      });
      expect(after[0].scheduledAt).toBe(due);
      expect(runs.events.filter((run) => run.scheduledAt === due)).toHaveLength(1);
      expect(logger.count('warn', /a run is still going/)).toBe(0);
    } finally {
      for (const app of apps.splice(0)) await app.close();
      await server.stop();
    }
  });

  it('keeps the claims of the batches answered before a later batch of the same call failed', async () => {
    const prefix = uniquePrefix('claim-batches');
    const coordinators: Coordinator[] = [new RedisCoordinator(SHARED_REDIS_URL, prefix), new RedisCoordinator(proxy.url, prefix)];
    try {
      for (const coordinator of coordinators) {
        await coordinator.connect();
        await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
      }
      const [direct, viaProxy] = coordinators;
      const due = Date.now() - 5;
      const definition = { spec: { every: 60_000, jitter: 0 }, overlap: 'skip' as const, paused: false };
      const jobs: JobRegistration[] = Array.from({ length: 501 }, (_, i) => ({
        name: `bulk-${i}`,
        definition,
        definitionHash: 'bulk',
        first: { base: due, due },
      }));
      await direct.register(jobs, 'boot', 'setup');
      const requests: ClaimRequest[] = jobs.map((job) => ({ name: job.name, rev: 1, due, next: { base: due + 60_000, due: due + 60_000 } }));
      // The second batch (the 501st job) is refused: it never reaches Redis.
      void proxy.onNextReply({ match: claimOf('bulk-500', 'due'), fault: { refuse: 'ERR refused by the test proxy' } });
      const error = await viaProxy.claim(requests, 'a', 30_000).then(
        () => null,
        (failure: unknown) => failure,
      );
      expect(error).toBeInstanceOf(ClaimInterruptedError);
      const { settled } = error as ClaimInterruptedError;
      expect(settled).toHaveLength(500);
      expect(settled.every((result) => result.status === 'claimed')).toBe(true);
    } finally {
      await Promise.all(coordinators.map((coordinator) => coordinator.close()));
    }
  });

  it('runs the fires of the claim batches answered before a later batch failed, and the failed one once retried', async () => {
    const runs = new EventLog<Run>();
    // 501 jobs due at the same instant: one claim call, sent as a batch of 500 and a batch of one.
    class Bulk {}
    for (let i = 0; i < 501; i++) {
      const method = `run${i}`;
      Object.defineProperty(Bulk.prototype, method, {
        value: (ctx: JobContext) => runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger }),
        configurable: true,
        writable: true,
      });
      const descriptor = Object.getOwnPropertyDescriptor(Bulk.prototype, method)!;
      const decorated = DistributedJob({ name: `bulk-${i}`, cron: '*/2 * * * * *' })(Bulk.prototype, method, descriptor);
      if (decorated) Object.defineProperty(Bulk.prototype, method, decorated);
    }
    Injectable()(Bulk);
    const refused = proxy.onNextReply({
      // ARGV: 3, then 13 per request (claim.lua): the call of one request is the batch of one.
      match: (command) => (scriptArgs(command, SHAS.claim)?.length ?? 0) === 3 + 13,
      fault: { refuse: 'ERR refused by the test proxy' },
    });
    const logger = new CapturingLogger();
    await boot({ redis: proxy.url, keyPrefix: uniquePrefix('bulk'), instanceId: 'a' }, [Bulk], logger);
    const due = Number(scriptArgs(await refused, SHAS.claim)![5]);
    const ran = await runs.until('every job at the due time of the failed call', (events) => {
      const atDue = events.filter((run) => run.scheduledAt === due);
      return new Set(atDue.map((run) => run.name)).size === 501 && atDue;
    });
    expect(ran).toHaveLength(501);
    // The answered batches ran from their replies, not recovered later as leases without a run
    // (a resync racing the call may adopt a stray one first: the same run, started once).
    expect(logger.count('warn', /although the claim's reply was lost/)).toBeLessThan(5);
  });

  it('never starts a run revoked (cancel-previous) before its claim reply arrived', async () => {
    const runs = new EventLog<Run>();
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'replaceable', overlap: 'cancel-previous' })
      async replaceable(ctx: JobContext) {
        runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger });
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      }
    }
    const logger = new CapturingLogger();
    const app = await boot({ redis: proxy.url, keyPrefix: uniquePrefix('replaceable'), instanceId: 'a', shutdownTimeout: 500 }, [Jobs], logger);
    const scheduler = app.get(JobScheduler);
    const slow = proxy.onNextReply({ match: claimOf('replaceable', 'trigger'), fault: { delayMs: 800 } });
    await scheduler.trigger('replaceable');
    await slow;
    // The second trigger's claim runs in Redis behind the first, revokes its lease and publishes
    // the cancel, which arrives on the subscriber connection before the first claim's reply.
    await scheduler.trigger('replaceable');
    const aborted = await logger.until('warn', /Job "replaceable" \(fencing token (\d+)\) is aborted: a newer fire replaced it/);
    const revoked = Number(/fencing token (\d+)/.exec(aborted.message)![1]);
    const [run] = await runs.until('the replacing run', (events) => events.length >= 1 && events);
    expect(run.fencingToken).toBeGreaterThan(revoked);
    expect(runs.events.map((event) => event.fencingToken)).not.toContain(revoked);
  });

  it('takes one lease for a task whose claim ioredis sent again after a reconnection, and runs it once', async () => {
    const runs = new EventLog<Run & { leases: { fencingToken: number; taskId?: number }[] }>();
    let release: () => void = () => undefined;
    let coordinator!: Coordinator;
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'task-job' })
      async taskJob(ctx: JobContext) {
        const [record] = await coordinator.describe(['task-job']);
        const leases = record.running.map(({ fencingToken, taskId }) => ({ fencingToken, taskId }));
        runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger, leases });
        await new Promise<void>((resolve) => (release = resolve));
      }
    }
    const logger = new CapturingLogger();
    const app = await boot({ redis: proxy.url, keyPrefix: uniquePrefix('task-claim'), instanceId: 'a' }, [Jobs], logger);
    coordinator = app.get(Coordinator);
    // ARGV of claim.lua: instance, ttl, channel, then name, kind, trigger member, ...
    const taskClaim = (command: string[]) => claimOf('task-job', 'trigger')(command) && scriptArgs(command, SHAS.claim)![5] === 'task-job\nEVENT\ntask:42';
    // Every claim of the task on its way to Redis (this rule takes none), to see that it was sent again.
    const sent: string[][] = [];
    void proxy.onNextReply({ match: (command) => (taskClaim(command) && sent.push(command), false), fault: { drop: true } });
    const dropped = proxy.onNextReply({ match: taskClaim, fault: { drop: true } });
    // Dispatched as TaskManager.create does (ClusterTaskDispatcher): the app claims it through the proxy.
    expect(await coordinator.dispatchTasks([{ name: 'task-job', taskId: 42 }])).toEqual([true]);
    await dropped;
    const [run] = await runs.until('the task run', (events) => events.length >= 1 && events);
    expect(run.leases).toEqual([{ fencingToken: run.fencingToken, taskId: 42 }]);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    // Started from the answer to the claim sent again (the same lease), not adopted later as a lease without a run.
    expect(logger.count('warn', /although the lease's reply was lost/)).toBe(0);
    release();
    // Its one lease is released when it ends: no second one is left behind, nor run.
    await until(async () => (await coordinator.describe(['task-job']))[0].running.length === 0);
    expect(runs.events).toHaveLength(1);
  });

  it('does not let a resume sent again after a reconnection undo a pause acknowledged since', async () => {
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'pausable', every: '1h' })
      tick() {}
    }
    const prefix = uniquePrefix('resent-resume');
    const viaProxy = (await boot({ redis: proxy.url, keyPrefix: prefix, instanceId: 'a' }, [Jobs])).get(JobScheduler);
    const direct = (await boot({ redis: SHARED_REDIS_URL, keyPrefix: prefix, instanceId: 'b' }, [Jobs])).get(JobScheduler);
    await direct.pause('pausable');

    const dropped = proxy.onNextReply({ match: (command) => scriptArgs(command, SHAS.reschedule) !== null, fault: { drop: true } });
    const resuming = viaProxy.resume('pausable');
    await dropped;
    // The resume ran; its reply is lost with the connection, and its resend waits for us.
    proxy.hold();
    await until(async () => (await direct.describe('pausable')).paused === false);
    await direct.pause('pausable');
    proxy.release();
    await resuming;
    expect((await direct.describe('pausable')).paused).toBe(true);
  });

  it('refuses a resume that reaches Redis after a pause made since it read the job', async () => {
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'late-resume', every: '1h' })
      tick() {}
    }
    const prefix = uniquePrefix('late-resume');
    const logger = new CapturingLogger();
    const viaProxy = (await boot({ redis: proxy.url, keyPrefix: prefix, instanceId: 'a' }, [Jobs], logger)).get(JobScheduler);
    // One logger for both: Nest's Logger is process-wide, the last app's wins.
    const direct = (await boot({ redis: SHARED_REDIS_URL, keyPrefix: prefix, instanceId: 'b' }, [Jobs], logger)).get(JobScheduler);
    await direct.pause('late-resume');

    const delayed = proxy.onNextReply({ match: (command) => scriptArgs(command, SHAS.reschedule) !== null, fault: { delayCommandMs: 1_000 } });
    const resuming = viaProxy.resume('late-resume');
    await delayed;
    // While that resume is on its way: another resume, then a pause, both acknowledged.
    await direct.resume('late-resume');
    await direct.pause('late-resume');
    await resuming;
    expect((await direct.describe('late-resume')).paused).toBe(true);
    expect(logger.count('warn', /Job "late-resume": resume refused: .* \(control by instance "a"\)/)).toBe(1);
  });

  it('does not let a lock sent again after a reconnection take the lock again after an unlock', async () => {
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'lockable', every: '1h' })
      tick() {}
    }
    const prefix = uniquePrefix('resent-lock');
    const viaProxy = (await boot({ redis: proxy.url, keyPrefix: prefix, instanceId: 'a' }, [Jobs])).get(JobScheduler);
    const direct = (await boot({ redis: SHARED_REDIS_URL, keyPrefix: prefix, instanceId: 'b' }, [Jobs])).get(JobScheduler);

    const dropped = proxy.onNextReply({ match: (command) => scriptArgs(command, SHAS.lock) !== null, fault: { drop: true } });
    const locking = viaProxy.lock('lockable', { holder: 'ops' });
    await dropped;
    proxy.hold();
    await until(async () => (await direct.describe('lockable')).locked !== null);
    await direct.unlock('lockable');
    proxy.release();
    await locking;
    expect((await direct.describe('lockable')).locked).toBeNull();
  });

  it('still requests the start run of every job when the request of one fails, and of that one too', async () => {
    const runs = new EventLog<Run>();
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'start-first', runOnStart: true })
      first(ctx: JobContext) {
        runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger });
      }

      @DistributedJob({ name: 'start-second', runOnStart: true })
      second(ctx: JobContext) {
        runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger });
      }

      @DistributedJob({ name: 'start-third', runOnStart: true })
      third(ctx: JobContext) {
        runs.push({ name: ctx.name, fencingToken: ctx.fencingToken, scheduledAt: ctx.scheduledAt.getTime(), trigger: ctx.trigger });
      }
    }
    const failed = proxy.onNextReply({
      match: (command) => scriptArgs(command, SHAS.trigger)?.[0] === 'start-first',
      fault: { refuse: 'ERR refused by the test proxy' },
    });
    await boot({ redis: proxy.url, keyPrefix: uniquePrefix('start-runs'), instanceId: 'a' }, [Jobs]);
    await failed;
    await runs.until('the start run of every job', (events) => new Set(events.map((run) => run.name)).size === 3);
    expect(runs.events.map((run) => [run.name, run.trigger]).sort()).toEqual([
      ['start-first', 'EVENT'],
      ['start-second', 'EVENT'],
      ['start-third', 'EVENT'],
    ]);
  });
});

/** Polls Redis's state (there is no event for it) until `check` holds, for at most 10 s. */
async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('Timed out waiting for the state to change');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
